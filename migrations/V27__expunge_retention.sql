-- $expunge and retention policies (issue 8, docs/analytics.md).
--
-- Retention: how long each tenant keeps each resource type; the scheduled
-- job expunges resources whose last change is older, and records what it
-- removed (counts per type, never ids or content) in retention_runs.

CREATE TABLE retention_policies (
    tenant    text        NOT NULL,
    res_type  text        NOT NULL,
    keep_days integer     NOT NULL CHECK (keep_days > 0),
    set_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, res_type)
);

CREATE TABLE retention_runs (
    tenant  text        NOT NULL,
    ran_at  timestamptz NOT NULL DEFAULT now(),
    -- {"Observation": 120, ...}: resources expunged per type.
    removed json        NOT NULL,
    PRIMARY KEY (tenant, ran_at)
);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['retention_policies', 'retention_runs'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I '
                       'USING (tenant = current_setting(''baraza.tenant'', true)) '
                       'WITH CHECK (tenant = current_setting(''baraza.tenant'', true))', t);
    END LOOP;
END
$$;

-- The MPI's link log is append-only, except for erasure: $expunge (GDPR
-- article 17) removes a patient's entries in a transaction that sets
-- baraza.expunge, which only the expunge path does (store/expunge.rs).
CREATE OR REPLACE FUNCTION mpi_link_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('baraza.expunge', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'the MPI link log is append-only: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$;
