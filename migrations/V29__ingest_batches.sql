-- Ingest batches (issue 7, docs/ingest.md): one row per batch an
-- integrator (or a tenant admin) opened, with its lifecycle status and
-- its record counts. The counts are updated in the same transaction as
-- each record's write, so they always agree with ingest_records.
--
-- caller: the verified principal that opened the batch (subject, client,
-- scopes, groups, integrator), so that the background worker writes the
-- records with that caller's rights and integrator stamp. NULL when
-- authentication is off.
CREATE TABLE ingest_batches (
    tenant            text        NOT NULL,
    id                text        NOT NULL,
    name              text        NOT NULL,
    data_type         text        NOT NULL CHECK (data_type IN (
                          'fhir-bundle', 'ndjson', 'dhis2-tracker',
                          'dhis2-metadata', 'dhis2-datavalues', 'csv')),
    integrator        text,
    caller            json,
    status            text        NOT NULL CHECK (status IN (
                          'started', 'sendCompleted', 'processing',
                          'completed', 'failed', 'terminated')),
    expected_count    bigint,
    received          bigint      NOT NULL DEFAULT 0,
    created           bigint      NOT NULL DEFAULT 0,
    updated           bigint      NOT NULL DEFAULT 0,
    unchanged         bigint      NOT NULL DEFAULT 0,
    failed            bigint      NOT NULL DEFAULT 0,
    failure_message   text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    send_completed_at timestamptz,
    finished_at       timestamptz,
    last_success_at   timestamptz,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX ingest_batches_status ON ingest_batches (tenant, status, created_at);
CREATE INDEX ingest_batches_integrator ON ingest_batches (tenant, integrator, created_at);

ALTER TABLE ingest_batches ENABLE ROW LEVEL SECURITY;
ALTER TABLE ingest_batches FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON ingest_batches
    USING (tenant = current_setting('baraza.tenant', true))
    WITH CHECK (tenant = current_setting('baraza.tenant', true));
