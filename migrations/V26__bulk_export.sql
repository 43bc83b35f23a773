-- Bulk Data $export (issue 8, docs/analytics.md): jobs, their output files
-- and the files' bytes. A job runs in the background in pages; each page's
-- NDJSON is appended as one chunk in the same transaction that advances
-- the job's cursor, so a restart resumes exactly where the last committed
-- page ended, with no line lost or written twice.
--
-- Files live in the database rather than in a directory: every Baraza
-- instance (two per app VM, more VMs behind nginx) can serve any job's
-- files, row-level security keeps them to their tenant like every other
-- row, and removing a job (cancel, expiry) removes its bytes with it.

CREATE TABLE export_jobs (
    tenant           text        NOT NULL,
    id               text        NOT NULL,
    -- Who asked (sub, client, integrator, patient) and with which rights:
    -- status and files are served to the same caller with the same rights.
    owner            json        NOT NULL,
    -- The kick-off URL, as the manifest's `request`.
    request          text        NOT NULL,
    -- What to export: level, types, _since, _typeFilter, patients, reach,
    -- de-identification (service/export/spec.rs).
    spec             json        NOT NULL,
    status           text        NOT NULL CHECK (status IN ('running', 'done', 'failed')),
    transaction_time timestamptz NOT NULL,
    -- Cursor: the index into spec.types and the last id written of it.
    type_index       integer     NOT NULL DEFAULT 0,
    cursor_id        text        NOT NULL DEFAULT '',
    processed        bigint      NOT NULL DEFAULT 0,
    total            bigint,
    error            text,
    -- The HMAC key of a de-identified export's pseudonyms (NULL otherwise);
    -- dropped with the job.
    pseudonym_key    bytea,
    created_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz,
    -- Set when the job ends: status and files answer 404 after it.
    expires_at       timestamptz,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX export_jobs_running ON export_jobs (tenant) WHERE status = 'running';
CREATE INDEX export_jobs_expiry ON export_jobs (tenant, expires_at);

-- One NDJSON file of a job: one resource type per file (a large type is
-- split), or the error file of OperationOutcomes.
CREATE TABLE export_files (
    tenant   text    NOT NULL,
    job      text    NOT NULL,
    file_no  integer NOT NULL,
    kind     text    NOT NULL CHECK (kind IN ('output', 'error')),
    res_type text    NOT NULL,
    count    bigint  NOT NULL DEFAULT 0,
    bytes    bigint  NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant, job, file_no),
    FOREIGN KEY (tenant, job) REFERENCES export_jobs (tenant, id) ON DELETE CASCADE
);

-- A file's bytes, one chunk per page, served in order.
CREATE TABLE export_chunks (
    tenant   text    NOT NULL,
    job      text    NOT NULL,
    file_no  integer NOT NULL,
    chunk_no integer NOT NULL,
    data     bytea   NOT NULL,
    PRIMARY KEY (tenant, job, file_no, chunk_no),
    FOREIGN KEY (tenant, job, file_no) REFERENCES export_files (tenant, job, file_no) ON DELETE CASCADE
);
-- NDJSON pages are written once and read once or twice: no compression
-- on the write path (the bytes are served as they are).
ALTER TABLE export_chunks ALTER COLUMN data SET STORAGE EXTERNAL;

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['export_jobs', 'export_files', 'export_chunks'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I '
                       'USING (tenant = current_setting(''baraza.tenant'', true)) '
                       'WITH CHECK (tenant = current_setting(''baraza.tenant'', true))', t);
    END LOOP;
END
$$;
