-- URI search index: each uri, url or canonical value of a uri parameter,
-- as written (a canonical's |version is kept; :below and :above compare
-- paths).
CREATE TABLE search_uri (
    tenant   text NOT NULL,
    res_type text NOT NULL,
    res_id   text NOT NULL,
    param    text NOT NULL,
    uri      text NOT NULL
);

CREATE INDEX search_uri_lookup ON search_uri (tenant, res_type, param, uri text_pattern_ops);
CREATE INDEX search_uri_owner ON search_uri (tenant, res_type, res_id);
