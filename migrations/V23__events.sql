-- Change events (issue 9, docs/events.md): the transactional outbox, the
-- cursors of its consumers, and leases that let several Baraza instances
-- on one database share background work.

-- One row per stored version, written by the write path in the same
-- transaction as the version itself, after the resources' rows are
-- locked: per resource, `seq` follows the versions. Consumers read only
-- up to a watermark below which every sequence number is settled (its
-- transaction has ended), so a cursor never passes an event that commits
-- later (server/src/events/outbox.rs).
CREATE TABLE events (
    seq        bigint      GENERATED ALWAYS AS IDENTITY,
    tenant     text        NOT NULL,
    res_type   text        NOT NULL,
    id         text        NOT NULL,
    version_id bigint      NOT NULL,
    action     text        NOT NULL CHECK (action IN ('create', 'update', 'delete')),
    -- The integrator that submitted the change, if any (auth::integrator).
    integrator text,
    recorded   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, seq)
);

-- Who reads the outbox, and how far: one row per Subscription (consumer
-- 'Subscription/{id}') and per other sink (e.g. 'kafka'). The cursor is
-- the last `seq` handled. The lease says which instance delivers for
-- this consumer; another takes over once `lease_until` has passed.
CREATE TABLE event_consumers (
    tenant       text        NOT NULL,
    consumer     text        NOT NULL,
    enabled      boolean     NOT NULL DEFAULT true,
    last_seq     bigint      NOT NULL,
    leased_by    text,
    lease_until  timestamptz,
    -- The claims of the caller who last wrote the Subscription: deliveries
    -- see only what that caller may see. NULL: written without
    -- authentication (loopback only).
    owner        jsonb,
    -- Delivery failures in a row, when to try again, and why it failed.
    failures     integer     NOT NULL DEFAULT 0,
    next_attempt timestamptz,
    last_error   text,
    -- Notifications sent since the consumer was created.
    delivered    bigint      NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant, consumer)
);

-- Background jobs move to another instance when theirs stops renewing.
ALTER TABLE reindex_jobs ADD COLUMN leased_by text;
ALTER TABLE reindex_jobs ADD COLUMN lease_until timestamptz;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['events', 'event_consumers'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON %I '
            'USING (tenant = current_setting(''baraza.tenant'', true)) '
            'WITH CHECK (tenant = current_setting(''baraza.tenant'', true))',
            t
        );
    END LOOP;
END
$$;
