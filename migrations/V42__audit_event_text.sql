-- The AuditEvent of each audit row is stored as `text`, not `json`. Baraza
-- writes it from its own serializer and hashes its exact bytes, so the
-- `json` type's check on input proved nothing, and it was the audit
-- writer's largest cost: a profile of the writer's backend during the
-- search benchmark's mix put 17% of its time in `json_in`, and 3,000
-- search events (17 kB each on average) went into a copy of the table in
-- 710–870 ms as `json` against 310–335 ms as `text`. The text is the same
-- bytes `json` kept (it stores its input verbatim), so the hash chain and
-- what `baraza audit verify` and AuditEvent reads return are unchanged.
--
-- Changing the type rewrites every audit partition once, under an
-- exclusive lock, at the upgrade that applies this migration, and
-- rebuilds their indexes: 19 s for a copy of 473 MB (69,000 search
-- events) on the benchmark machine, about 40 s per GB. The type change
-- resets the column's compression, so lz4 is set again, as V39 did, with
-- the same fallback.
ALTER TABLE audit_events ALTER COLUMN event TYPE text;

DO $$
DECLARE
    part regclass;
BEGIN
    ALTER TABLE audit_events ALTER COLUMN event SET COMPRESSION lz4;
    FOR part IN SELECT inhrelid::regclass FROM pg_inherits WHERE inhparent = 'audit_events'::regclass LOOP
        EXECUTE format('ALTER TABLE %s ALTER COLUMN event SET COMPRESSION lz4', part);
    END LOOP;
EXCEPTION WHEN feature_not_supported THEN
    RAISE NOTICE 'PostgreSQL without lz4: the audit events stay pglz-compressed';
END $$;
