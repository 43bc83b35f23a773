-- Kafka (issue 9, docs/events.md). The ingest consumers' inbox: per
-- tenant, topic and partition, the offset of the last message whose write
-- committed, written in the same transaction as that write. A message the
-- broker delivers again (the consumer died before committing its offset)
-- is recognised and not written twice; the results of the last one are
-- kept so that they can be sent again.
CREATE TABLE kafka_inbox (
    tenant      text        NOT NULL,
    topic       text        NOT NULL,
    partition   integer     NOT NULL,
    last_offset bigint      NOT NULL,
    -- [{"topic": "...", "key": "...", "value": "..."}]: what the message
    -- at last_offset produced (.out and .invalid messages).
    results     jsonb       NOT NULL,
    updated     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, topic, partition)
);
ALTER TABLE kafka_inbox ENABLE ROW LEVEL SECURITY;
ALTER TABLE kafka_inbox FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON kafka_inbox
    USING (tenant = current_setting('baraza.tenant', true))
    WITH CHECK (tenant = current_setting('baraza.tenant', true));

-- The batch status last published to the integrator's .notification
-- topic. Batches that exist now count as published.
ALTER TABLE ingest_batches ADD COLUMN notified_status text;
UPDATE ingest_batches SET notified_status = status;
CREATE INDEX ingest_batches_unnotified ON ingest_batches (tenant)
    WHERE notified_status IS DISTINCT FROM status;
