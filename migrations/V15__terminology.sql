-- The terminology service (issue 5): code systems, value sets and concept
-- maps, with the concepts in tables built for the operations ($expand,
-- $validate-code, $lookup, $subsumes, $translate).
--
-- Global content (the R4 code systems and value sets loaded at first
-- start, and `baraza terminology load` without --tenant) has tenant ''.
-- Every tenant reads it; only a transaction whose baraza.tenant is the
-- marker '.global' (not a tenant id: ids start with a letter or digit)
-- writes it. A tenant's own content is read and written by that tenant
-- only, like every other table.
--
-- Concepts are numbered per code-system version (concept_id), so the
-- closure and the other tables hold two integers per row.

CREATE TABLE term_code_systems (
    tenant            text        NOT NULL,
    id                bigserial   NOT NULL,
    url               text        NOT NULL,
    version           text        NOT NULL DEFAULT '',
    resource_id       text,
    name              text,
    title             text,
    content           text        NOT NULL DEFAULT 'complete',
    hierarchy_meaning text,
    value_set         text,
    -- The CodeSystem resource as served by reads that fall back to global
    -- content (loaded releases: without their concepts).
    resource          json        NOT NULL,
    concept_count     integer     NOT NULL DEFAULT 0,
    -- Newest version of its url in its tenant: used when no version is asked.
    is_current        boolean     NOT NULL DEFAULT true,
    -- 'r4' (first start), 'load' (loader), 'rest' (a CodeSystem written through the API)
    origin            text        NOT NULL,
    loaded_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, id),
    UNIQUE (tenant, url, version)
);
CREATE INDEX term_code_systems_value_set ON term_code_systems (tenant, value_set);
CREATE INDEX term_code_systems_resource ON term_code_systems (tenant, resource_id);

CREATE TABLE term_concepts (
    tenant     text    NOT NULL,
    system_id  bigint  NOT NULL,
    concept_id integer NOT NULL,
    code       text    NOT NULL,
    display    text,
    definition text,
    active     boolean NOT NULL DEFAULT true,
    PRIMARY KEY (tenant, system_id, concept_id)
);
CREATE UNIQUE INDEX term_concepts_code ON term_concepts (tenant, system_id, code) INCLUDE (concept_id, active);

-- Direct is-a edges, for $lookup's parent and child properties.
CREATE TABLE term_edges (
    tenant    text    NOT NULL,
    system_id bigint  NOT NULL,
    child     integer NOT NULL,
    parent    integer NOT NULL,
    PRIMARY KEY (tenant, system_id, child, parent)
);
CREATE INDEX term_edges_parent ON term_edges (tenant, system_id, parent, child);

-- The transitive closure of is-a, including each concept with itself.
CREATE TABLE term_closure (
    tenant     text    NOT NULL,
    system_id  bigint  NOT NULL,
    ancestor   integer NOT NULL,
    descendant integer NOT NULL,
    PRIMARY KEY (tenant, system_id, ancestor, descendant)
);
CREATE INDEX term_closure_up ON term_closure (tenant, system_id, descendant, ancestor);

CREATE TABLE term_designations (
    tenant     text    NOT NULL,
    system_id  bigint  NOT NULL,
    concept_id integer NOT NULL,
    language   text,
    use_system text,
    use_code   text,
    value      text    NOT NULL,
    preferred  boolean NOT NULL DEFAULT false
);
CREATE INDEX term_designations_concept ON term_designations (tenant, system_id, concept_id);

-- kind: code, Coding, string, integer, boolean, dateTime, decimal.
CREATE TABLE term_properties (
    tenant       text    NOT NULL,
    system_id    bigint  NOT NULL,
    concept_id   integer NOT NULL,
    property     text    NOT NULL,
    kind         text    NOT NULL,
    value        text    NOT NULL,
    value_system text
);
CREATE INDEX term_properties_concept ON term_properties (tenant, system_id, concept_id);
CREATE INDEX term_properties_value ON term_properties (tenant, system_id, property, value);

-- The words of displays and designations, folded (lowercase, no accents),
-- for the text filter of $expand: a prefix is a range scan of this index.
CREATE TABLE term_words (
    tenant     text    NOT NULL,
    system_id  bigint  NOT NULL,
    word       text    COLLATE "C" NOT NULL,
    concept_id integer NOT NULL
);
CREATE INDEX term_words_word ON term_words (tenant, system_id, word, concept_id);

CREATE TABLE term_value_sets (
    tenant      text      NOT NULL,
    id          bigserial NOT NULL,
    url         text      NOT NULL,
    version     text      NOT NULL DEFAULT '',
    resource_id text,
    resource    json      NOT NULL,
    origin      text      NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX term_value_sets_url ON term_value_sets (tenant, url, version);
CREATE INDEX term_value_sets_resource ON term_value_sets (tenant, resource_id);

CREATE TABLE term_concept_maps (
    tenant      text      NOT NULL,
    id          bigserial NOT NULL,
    url         text      NOT NULL,
    version     text      NOT NULL DEFAULT '',
    resource_id text,
    source      text,
    target      text,
    resource    json      NOT NULL,
    origin      text      NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX term_concept_maps_url ON term_concept_maps (tenant, url);
CREATE INDEX term_concept_maps_resource ON term_concept_maps (tenant, resource_id);

CREATE TABLE term_map_entries (
    tenant         text   NOT NULL,
    map_id         bigint NOT NULL,
    source_system  text   NOT NULL DEFAULT '',
    source_version text,
    source_code    text   NOT NULL,
    source_display text,
    target_system  text   NOT NULL DEFAULT '',
    target_version text,
    target_code    text,
    target_display text,
    equivalence    text   NOT NULL,
    comment        text
);
CREATE INDEX term_map_entries_source ON term_map_entries (tenant, source_code, map_id);
CREATE INDEX term_map_entries_target ON term_map_entries (tenant, target_code, map_id);
CREATE INDEX term_map_entries_map ON term_map_entries (tenant, map_id);

-- A counter per tenant ('' for global content), raised by every change of
-- terminology content in the changing transaction; caches of value-set
-- membership compare it (docs/terminology.md).
CREATE TABLE term_changes (
    tenant text   NOT NULL PRIMARY KEY,
    n      bigint NOT NULL DEFAULT 0
);

-- Which built-in releases are loaded (the R4 content at first start).
CREATE TABLE term_bootstrap (
    tenant    text        NOT NULL,
    release   text        NOT NULL,
    loaded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, release)
);

DO $$
DECLARE
    t text;
    owner_expr text := 'CASE WHEN current_setting(''baraza.tenant'', true) = ''.global'' '
                       'THEN '''' ELSE current_setting(''baraza.tenant'', true) END';
BEGIN
    FOREACH t IN ARRAY ARRAY[
        'term_code_systems', 'term_concepts', 'term_edges', 'term_closure',
        'term_designations', 'term_properties', 'term_words', 'term_value_sets',
        'term_concept_maps', 'term_map_entries', 'term_changes', 'term_bootstrap'
    ] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        -- Reads: the transaction's tenant and global content.
        EXECUTE format(
            'CREATE POLICY tenant_or_global_read ON %I FOR SELECT '
            'USING (tenant = current_setting(''baraza.tenant'', true) OR tenant = '''')',
            t
        );
        -- Writes: the transaction's own rows only ('' under the global marker).
        EXECUTE format(
            'CREATE POLICY tenant_write ON %I FOR ALL USING (tenant = %s) WITH CHECK (tenant = %s)',
            t, owner_expr, owner_expr
        );
    END LOOP;
END
$$;
