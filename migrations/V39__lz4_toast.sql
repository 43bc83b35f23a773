-- New values of the two large JSON columns are compressed with lz4 instead
-- of pglz when they are TOASTed (over about 2 kB). A search's AuditEvent
-- lists every resource it returned (17.5 kB for a page of 38, on average,
-- in the search benchmark); storing 2,000 of them took 630 ms with pglz
-- and 340 ms with lz4, and lz4 reads back several times faster. Values
-- already stored keep their compression until rewritten; both kinds are
-- read alike. A PostgreSQL built without lz4 keeps pglz (the error is
-- caught), so the migration runs anywhere. The setting does not reach
-- existing partitions of audit_events from the parent, so each is set;
-- partitions created later take the parent's.
DO $$
DECLARE
    part regclass;
BEGIN
    ALTER TABLE audit_events ALTER COLUMN event SET COMPRESSION lz4;
    FOR part IN SELECT inhrelid::regclass FROM pg_inherits WHERE inhparent = 'audit_events'::regclass LOOP
        EXECUTE format('ALTER TABLE %s ALTER COLUMN event SET COMPRESSION lz4', part);
    END LOOP;
    ALTER TABLE resource_history ALTER COLUMN content SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
    RAISE NOTICE 'PostgreSQL without lz4: TOASTed JSON stays pglz-compressed';
END $$;
