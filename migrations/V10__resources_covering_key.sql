-- The current row of every resource answers a search's type, deleted flag
-- and version from the index alone.
ALTER TABLE resources
    DROP CONSTRAINT resources_pkey,
    ADD PRIMARY KEY (tenant, res_type, id) INCLUDE (version_id, last_updated, deleted);
