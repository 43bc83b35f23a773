-- Bulk Data $import (issue 8, docs/analytics.md): a job reads NDJSON
-- inputs (an uploaded body, or URLs on the server's allow-list) into ingest
-- batches, one batch per input, which the ingest worker writes like any
-- batch (docs/ingest.md). The job answers status polls and lists each
-- input's counts and errors when its batches are done.

-- The line of an NDJSON record in its upload, for the errors file.
ALTER TABLE ingest_records ADD COLUMN line bigint;

CREATE TABLE import_jobs (
    tenant           text        NOT NULL,
    id               text        NOT NULL,
    -- Who asked (sub, client, integrator, patient): status and errors are
    -- answered only to the same caller.
    owner            json        NOT NULL,
    -- The kick-off URL, as the final status's `request`.
    request          text        NOT NULL,
    -- 'fetching' while URL inputs are read into their batches, then
    -- 'processing': done when every batch has ended. A cancelled job is
    -- deleted (its batches stay, terminated).
    status           text        NOT NULL CHECK (status IN ('fetching', 'processing')),
    transaction_time timestamptz NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, id)
);
CREATE INDEX import_jobs_fetching ON import_jobs (tenant) WHERE status = 'fetching';

-- One input of a job and the batch it is read into. url is NULL for an
-- uploaded body. lines_read is the fetch's cursor: the lines of the input
-- already stored as records, committed with them, so an interrupted fetch
-- resumes after them.
CREATE TABLE import_inputs (
    tenant     text    NOT NULL,
    job_id     text    NOT NULL,
    input_no   integer NOT NULL,
    res_type   text,
    url        text,
    batch_id   text    NOT NULL,
    fetched    boolean NOT NULL DEFAULT false,
    lines_read bigint  NOT NULL DEFAULT 0,
    error      text,
    PRIMARY KEY (tenant, job_id, input_no),
    FOREIGN KEY (tenant, job_id) REFERENCES import_jobs (tenant, id) ON DELETE CASCADE
);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['import_jobs', 'import_inputs'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I '
                       'USING (tenant = current_setting(''baraza.tenant'', true)) '
                       'WITH CHECK (tenant = current_setting(''baraza.tenant'', true))', t);
    END LOOP;
END
$$;
