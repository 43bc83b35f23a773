-- Quantity rows of one parameter in id order, for searches that lead with
-- a quantity clause or merge one with other clauses' ids
-- (`Observation?code=…|2339-0&value-quantity=gt180`, which the engine
-- searches as the composite `code-value-quantity$…|2339-0` with the value
-- test: docs/search.md). `search_quantity_code` holds a parameter's rows
-- in value order, so a range on the value had to be read whole and its ids
-- sorted (15,960 rows for the benchmark's Q5); `search_quantity_owner` is
-- in id order but per resource, every parameter of it together. The
-- INCLUDEd columns are those a quantity test reads, so the test needs no
-- heap visit.
CREATE INDEX search_quantity_param_id ON search_quantity (tenant, res_type, param, res_id)
    INCLUDE (value, system, code, canon_value, canon_code);
