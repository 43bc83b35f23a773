-- Resource storage: every version in resource_history (the content lives
-- there only), and one row per logical resource in resources pointing at its
-- current version. Every table is keyed by tenant first.

CREATE TABLE resource_history (
    seq          bigint GENERATED ALWAYS AS IDENTITY,
    tenant       text        NOT NULL,
    res_type     text        NOT NULL,
    id           text        NOT NULL,
    version_id   bigint      NOT NULL,
    last_updated timestamptz NOT NULL,
    method       text        NOT NULL CHECK (method IN ('POST', 'PUT', 'PATCH', 'DELETE')),
    -- The resource exactly as served (json keeps key order and decimal text);
    -- NULL for a deletion.
    content      json,
    PRIMARY KEY (tenant, res_type, id, version_id),
    CHECK ((method = 'DELETE') = (content IS NULL))
);

-- History at system and type level, newest first, by commit sequence.
CREATE INDEX resource_history_tenant_seq ON resource_history (tenant, seq);
CREATE INDEX resource_history_type_seq ON resource_history (tenant, res_type, seq);
CREATE INDEX resource_history_tenant_updated ON resource_history (tenant, last_updated);

CREATE TABLE resources (
    tenant       text        NOT NULL,
    res_type     text        NOT NULL,
    id           text        NOT NULL,
    version_id   bigint      NOT NULL,
    last_updated timestamptz NOT NULL,
    deleted      boolean     NOT NULL,
    PRIMARY KEY (tenant, res_type, id)
);

-- Token search index (identifiers, codes, booleans): one row per value.
-- Maintained in the same transaction as the write; rows of deleted resources
-- are removed.
CREATE TABLE search_token (
    tenant   text NOT NULL,
    res_type text NOT NULL,
    res_id   text NOT NULL,
    param    text NOT NULL,
    system   text,
    code     text NOT NULL
);

CREATE INDEX search_token_lookup ON search_token (tenant, res_type, param, code, system);
CREATE INDEX search_token_owner ON search_token (tenant, res_type, res_id);
