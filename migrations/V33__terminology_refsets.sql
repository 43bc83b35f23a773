-- SNOMED CT reference sets (issue 5): the members of the simple reference
-- sets of a loaded RF2 release, for the implicit value sets
-- http://snomed.info/sct?fhir_vs=refset/<id> and ?fhir_vs=refset, and the
-- filter `concept in <refset id>`. Both columns are concept numbers of the
-- same code-system version (term_concepts.concept_id): the reference set's
-- own concept and the member.
--
-- Keyed and secured like the tables of V15: global content has tenant '',
-- readable by every tenant and written only under the '.global' marker.

CREATE TABLE term_refset_members (
    tenant     text    NOT NULL,
    system_id  bigint  NOT NULL,
    refset_id  integer NOT NULL,
    concept_id integer NOT NULL,
    PRIMARY KEY (tenant, system_id, refset_id, concept_id)
);

ALTER TABLE term_refset_members ENABLE ROW LEVEL SECURITY;
ALTER TABLE term_refset_members FORCE ROW LEVEL SECURITY;

CREATE POLICY tenant_or_global_read ON term_refset_members FOR SELECT
    USING (tenant = current_setting('baraza.tenant', true) OR tenant = '');

CREATE POLICY tenant_write ON term_refset_members FOR ALL
    USING (tenant = CASE WHEN current_setting('baraza.tenant', true) = '.global'
                         THEN '' ELSE current_setting('baraza.tenant', true) END)
    WITH CHECK (tenant = CASE WHEN current_setting('baraza.tenant', true) = '.global'
                              THEN '' ELSE current_setting('baraza.tenant', true) END);
