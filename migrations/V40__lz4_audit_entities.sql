-- The array of references an audit row lists (`entities`: every resource a
-- search returned, some 50 for a page) is TOASTed too, and V39 left it on
-- pglz: a profile of the search benchmark's mix still showed pglz
-- compressing it in ~1% of PostgreSQL's time. The same change as V39 for
-- the three arrays, parent and existing partitions alike, and the same
-- fallback where PostgreSQL has no lz4.
DO $$
DECLARE
    part regclass;
    col text;
BEGIN
    FOREACH col IN ARRAY ARRAY['entities', 'patients', 'agents'] LOOP
        EXECUTE format('ALTER TABLE audit_events ALTER COLUMN %I SET COMPRESSION lz4', col);
        FOR part IN SELECT inhrelid::regclass FROM pg_inherits WHERE inhparent = 'audit_events'::regclass LOOP
            EXECUTE format('ALTER TABLE %s ALTER COLUMN %I SET COMPRESSION lz4', part, col);
        END LOOP;
    END LOOP;
EXCEPTION WHEN feature_not_supported THEN
    RAISE NOTICE 'PostgreSQL without lz4: audit arrays stay pglz-compressed';
END $$;
