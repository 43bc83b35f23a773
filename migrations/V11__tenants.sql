-- Tenants (issue 4): the organisations on whose behalf data is processed.
-- The FHIR base of a tenant is /fhir/{id}; /fhir is the tenant `default`.
-- Ids are lowercase so that they never collide with resource types; the
-- system path `metadata` is reserved. This table is the one table read
-- without a tenant: the server routes with it.
CREATE TABLE tenants (
    id         text        PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9-]{0,62}$' AND id <> 'metadata'),
    name       text        NOT NULL DEFAULT '',
    status     text        NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    created_at timestamptz NOT NULL DEFAULT now()
);

INSERT INTO tenants (id, name) VALUES ('default', 'Default tenant');

-- Row-level security, the second wall behind the tenant filter in every
-- query: a transaction sees and writes only the rows of the tenant named by
-- its `baraza.tenant` setting (set with set_config(..., true) when the
-- transaction begins, see server/src/store/transaction.rs); with the setting
-- unset it sees nothing. FORCE applies the policy to the tables' owner too,
-- so only a superuser or a BYPASSRLS role is exempt, and Baraza refuses to
-- serve through either.
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY[
        'resources', 'resource_history',
        'search_token', 'search_reference', 'search_string', 'search_date',
        'search_number', 'search_quantity', 'search_uri', 'search_position',
        'search_param_sets', 'reindex_jobs'
    ] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON %I '
            'USING (tenant = current_setting(''baraza.tenant'', true)) '
            'WITH CHECK (tenant = current_setting(''baraza.tenant'', true))',
            t
        );
    END LOOP;
END
$$;
