-- Number search index: integer and decimal values, exact (numeric keeps
-- every digit).
CREATE TABLE search_number (
    tenant   text    NOT NULL,
    res_type text    NOT NULL,
    res_id   text    NOT NULL,
    param    text    NOT NULL,
    value    numeric NOT NULL
);

CREATE INDEX search_number_lookup ON search_number (tenant, res_type, param, value);
CREATE INDEX search_number_owner ON search_number (tenant, res_type, res_id);

-- Quantity search index: the value as written with its system, code and
-- unit, plus the value converted to a canonical UCUM unit when the unit is
-- known, so that 180 mg/dL and 1.8 g/L compare.
CREATE TABLE search_quantity (
    tenant      text    NOT NULL,
    res_type    text    NOT NULL,
    res_id      text    NOT NULL,
    param       text    NOT NULL,
    value       numeric NOT NULL,
    system      text,
    code        text,
    unit        text,
    canon_value numeric,
    canon_code  text
);

CREATE INDEX search_quantity_code ON search_quantity (tenant, res_type, param, code, value);
CREATE INDEX search_quantity_canonical ON search_quantity (tenant, res_type, param, canon_code, canon_value);
CREATE INDEX search_quantity_owner ON search_quantity (tenant, res_type, res_id);
