-- String search index: each searchable string of a string parameter, folded
-- (case and accents, for the default starts-with and :contains) and as
-- written (for :exact).
CREATE TABLE search_string (
    tenant   text NOT NULL,
    res_type text NOT NULL,
    res_id   text NOT NULL,
    param    text NOT NULL,
    folded   text NOT NULL,
    exact    text NOT NULL
);

CREATE INDEX search_string_prefix ON search_string (tenant, res_type, param, folded text_pattern_ops);
CREATE INDEX search_string_exact ON search_string (tenant, res_type, param, exact);
CREATE INDEX search_string_owner ON search_string (tenant, res_type, res_id);

-- Date search index: each date, dateTime, instant, Period or Timing value
-- as a half-open range [lo, hi) in UTC microseconds since the epoch, at
-- the precision it was written with; open ends are the bigint extremes.
CREATE TABLE search_date (
    tenant   text   NOT NULL,
    res_type text   NOT NULL,
    res_id   text   NOT NULL,
    param    text   NOT NULL,
    lo       bigint NOT NULL,
    hi       bigint NOT NULL
);

CREATE INDEX search_date_lookup ON search_date (tenant, res_type, param, lo, hi);
CREATE INDEX search_date_owner ON search_date (tenant, res_type, res_id);
