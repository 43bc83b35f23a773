-- `_sort=-date`: pages are read off this index in descending order of each
-- value's upper bound, ties by id (search/execute/by_index.rs). Ascending
-- date sorts use search_date_lookup (lower bound first).
CREATE INDEX search_date_sort_desc ON search_date (tenant, res_type, param, hi DESC, res_id);

-- Fresh statistics matter more than usual here: a registry's first bulk
-- load takes tables from empty to millions of rows, and plans made with
-- the statistics of an empty table read the whole index. Analyze after
-- every 2 % of change instead of PostgreSQL's 10 %.
ALTER TABLE resources SET (autovacuum_analyze_scale_factor = 0.02);
ALTER TABLE resource_history SET (autovacuum_analyze_scale_factor = 0.02);
ALTER TABLE search_token SET (autovacuum_analyze_scale_factor = 0.02);
ALTER TABLE search_reference SET (autovacuum_analyze_scale_factor = 0.02);
ALTER TABLE search_string SET (autovacuum_analyze_scale_factor = 0.02);
ALTER TABLE search_date SET (autovacuum_analyze_scale_factor = 0.02);
ALTER TABLE search_number SET (autovacuum_analyze_scale_factor = 0.02);
ALTER TABLE search_quantity SET (autovacuum_analyze_scale_factor = 0.02);
ALTER TABLE search_uri SET (autovacuum_analyze_scale_factor = 0.02);
ALTER TABLE search_position SET (autovacuum_analyze_scale_factor = 0.02);
