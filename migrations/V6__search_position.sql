-- Position index for Location `near` (search.html#special): latitude and
-- longitude in degrees (WGS84). Searches narrow by a bounding box on this
-- index and then compute the great-circle distance.
CREATE TABLE search_position (
    tenant    text             NOT NULL,
    res_type  text             NOT NULL,
    res_id    text             NOT NULL,
    param     text             NOT NULL,
    latitude  double precision NOT NULL,
    longitude double precision NOT NULL
);

CREATE INDEX search_position_lookup ON search_position (tenant, res_type, param, latitude, longitude);
CREATE INDEX search_position_owner ON search_position (tenant, res_type, res_id);
