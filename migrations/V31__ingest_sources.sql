-- What each integrator's records last wrote (docs/ingest.md): the content
-- hash of the record last written for a source id, so that the same record
-- sent again is counted 'unchanged' and not written again. integrator is
-- '' for callers without one.
CREATE TABLE ingest_sources (
    tenant       text        NOT NULL,
    integrator   text        NOT NULL,
    source_id    text        NOT NULL,
    content_hash text        NOT NULL,
    batch_id     text        NOT NULL,
    written_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, integrator, source_id)
);

-- The DHIS2 pull's cursor per tenant, source (the DHIS2 base URL) and kind
-- of data (`baraza dhis2 sync`, docs/dhis2.md): the lastUpdated high-water
-- mark of the last finished run, and within the run in progress, its
-- start time and the next page to fetch, so an interrupted sync resumes.
CREATE TABLE dhis2_sync_cursors (
    tenant        text        NOT NULL,
    source        text        NOT NULL,
    kind          text        NOT NULL,
    last_updated  text,
    run_started   text,
    next_page     integer,
    batch_id      text,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, source, kind)
);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['ingest_sources', 'dhis2_sync_cursors'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I '
                       'USING (tenant = current_setting(''baraza.tenant'', true)) '
                       'WITH CHECK (tenant = current_setting(''baraza.tenant'', true))', t);
    END LOOP;
END
$$;
