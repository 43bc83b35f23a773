-- The records of ingest batches (docs/ingest.md), stored durably when
-- uploaded. payload is the transaction Bundle the record becomes (NULL for
-- a record that could not be mapped at upload). A record's state changes
-- from 'pending' in the same database transaction as its write, so a crash
-- at any moment leaves each record either written and marked or neither:
-- processing resumes at the first pending record and never writes one
-- twice.
CREATE TABLE ingest_records (
    tenant       text        NOT NULL,
    batch_id     text        NOT NULL,
    seq          bigint      NOT NULL,
    source_id    text        NOT NULL,
    content_hash text        NOT NULL,
    payload      json,
    state        text        NOT NULL CHECK (state IN (
                     'pending', 'created', 'updated', 'unchanged', 'failed', 'skipped')),
    outcome      json,
    processed_at timestamptz,
    PRIMARY KEY (tenant, batch_id, seq)
);
CREATE INDEX ingest_records_pending ON ingest_records (tenant, batch_id, seq)
    WHERE state = 'pending';
CREATE INDEX ingest_records_failed ON ingest_records (tenant, batch_id, seq)
    WHERE state = 'failed';

ALTER TABLE ingest_records ENABLE ROW LEVEL SECURITY;
ALTER TABLE ingest_records FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON ingest_records
    USING (tenant = current_setting('baraza.tenant', true))
    WITH CHECK (tenant = current_setting('baraza.tenant', true));
