-- Covering owner indexes. A search condition is often checked per
-- candidate resource ("does this Patient have a birthdate after 1980?");
-- with the parameter in the key and the values included, that probe reads
-- the index alone instead of every row of the resource in the table.
-- Deleting a resource's rows still uses the (tenant, res_type, res_id)
-- prefix.

DROP INDEX search_token_owner;
CREATE INDEX search_token_owner ON search_token (tenant, res_type, res_id, param) INCLUDE (system, code);

DROP INDEX search_reference_owner;
CREATE INDEX search_reference_owner ON search_reference (tenant, res_type, res_id, param) INCLUDE (target_type, target_id);

DROP INDEX search_date_owner;
CREATE INDEX search_date_owner ON search_date (tenant, res_type, res_id, param) INCLUDE (lo, hi);

DROP INDEX search_number_owner;
CREATE INDEX search_number_owner ON search_number (tenant, res_type, res_id, param) INCLUDE (value);

DROP INDEX search_quantity_owner;
CREATE INDEX search_quantity_owner ON search_quantity (tenant, res_type, res_id, param) INCLUDE (value, system, code, canon_value, canon_code);
