-- Reference search index: one row per reference value of a reference-type
-- search parameter. Local references keep type and id (absolute URLs on
-- this server are stored as local); other URLs keep the URL.
CREATE TABLE search_reference (
    tenant      text NOT NULL,
    res_type    text NOT NULL,
    res_id      text NOT NULL,
    param       text NOT NULL,
    target_type text,
    target_id   text,
    url         text,
    CHECK ((target_id IS NOT NULL) OR (url IS NOT NULL))
);

CREATE INDEX search_reference_lookup ON search_reference (tenant, res_type, param, target_id, target_type);
CREATE INDEX search_reference_url ON search_reference (tenant, res_type, param, url) WHERE url IS NOT NULL;
CREATE INDEX search_reference_owner ON search_reference (tenant, res_type, res_id);
-- For reverse lookups (_revinclude, _has, compartments).
CREATE INDEX search_reference_target ON search_reference (tenant, target_type, target_id);
