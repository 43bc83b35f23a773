-- Index-only searches. Each lookup index ends with res_id, so that a
-- condition's matching resources come from the index alone (no heap visit
-- per row) and semi-joins between conditions stay cheap at millions of
-- rows. Index-only scans need the visibility map, so tables are vacuumed
-- after every 2 % of inserts rather than PostgreSQL's 20 %.

DROP INDEX search_token_lookup;
CREATE INDEX search_token_lookup ON search_token (tenant, res_type, param, code, system, res_id);

DROP INDEX search_reference_lookup;
CREATE INDEX search_reference_lookup ON search_reference (tenant, res_type, param, target_id, target_type, res_id);
DROP INDEX search_reference_target;
CREATE INDEX search_reference_target ON search_reference (tenant, target_type, target_id, res_type, param, res_id);

DROP INDEX search_string_prefix;
CREATE INDEX search_string_prefix ON search_string (tenant, res_type, param, folded text_pattern_ops, res_id);
DROP INDEX search_string_exact;
CREATE INDEX search_string_exact ON search_string (tenant, res_type, param, exact, res_id);

DROP INDEX search_date_lookup;
CREATE INDEX search_date_lookup ON search_date (tenant, res_type, param, lo, hi, res_id);

DROP INDEX search_number_lookup;
CREATE INDEX search_number_lookup ON search_number (tenant, res_type, param, value, res_id);

DROP INDEX search_quantity_code;
CREATE INDEX search_quantity_code ON search_quantity (tenant, res_type, param, code, value, res_id);
DROP INDEX search_quantity_canonical;
CREATE INDEX search_quantity_canonical ON search_quantity (tenant, res_type, param, canon_code, canon_value, res_id);

DROP INDEX search_uri_lookup;
CREATE INDEX search_uri_lookup ON search_uri (tenant, res_type, param, uri text_pattern_ops, res_id);

-- The planner's row estimates: type, parameter and value are strongly
-- correlated (param 'gender' occurs only on Patient-like types), which
-- per-column statistics cannot see.
CREATE STATISTICS search_token_stats (dependencies, mcv) ON res_type, param, code FROM search_token;
CREATE STATISTICS search_reference_stats (dependencies, mcv) ON res_type, param, target_type FROM search_reference;
CREATE STATISTICS search_string_stats (dependencies, mcv) ON res_type, param FROM search_string;
CREATE STATISTICS search_date_stats (dependencies, mcv) ON res_type, param FROM search_date;
CREATE STATISTICS search_number_stats (dependencies, mcv) ON res_type, param FROM search_number;
CREATE STATISTICS search_quantity_stats (dependencies, mcv) ON res_type, param, code FROM search_quantity;
CREATE STATISTICS search_uri_stats (dependencies, mcv) ON res_type, param FROM search_uri;

ALTER TABLE resources SET (autovacuum_vacuum_insert_scale_factor = 0.02);
ALTER TABLE search_token SET (autovacuum_vacuum_insert_scale_factor = 0.02);
ALTER TABLE search_reference SET (autovacuum_vacuum_insert_scale_factor = 0.02);
ALTER TABLE search_string SET (autovacuum_vacuum_insert_scale_factor = 0.02);
ALTER TABLE search_date SET (autovacuum_vacuum_insert_scale_factor = 0.02);
ALTER TABLE search_number SET (autovacuum_vacuum_insert_scale_factor = 0.02);
ALTER TABLE search_quantity SET (autovacuum_vacuum_insert_scale_factor = 0.02);
ALTER TABLE search_uri SET (autovacuum_vacuum_insert_scale_factor = 0.02);
ALTER TABLE search_position SET (autovacuum_vacuum_insert_scale_factor = 0.02);

-- Build the new statistics now rather than at the next automatic analyze.
ANALYZE search_token, search_reference, search_string, search_date, search_number, search_quantity, search_uri;

