-- SQL-on-FHIR v2 ViewDefinitions (issue 8, docs/analytics.md): each
-- tenant's stored views, and their materialisation into tables of the
-- tenant's own schema `analytics_<tenant>`, which a read-only role
-- `analytics_reader_<tenant>` may read and nothing else.

CREATE TABLE view_definitions (
    tenant            text        NOT NULL,
    id                text        NOT NULL,
    -- The view's `name`: the table it is materialised into.
    name              text        NOT NULL,
    resource          text        NOT NULL,
    definition        json        NOT NULL,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    materialized_at   timestamptz,
    materialized_rows bigint,
    PRIMARY KEY (tenant, id),
    UNIQUE (tenant, name)
);

ALTER TABLE view_definitions ENABLE ROW LEVEL SECURITY;
ALTER TABLE view_definitions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON view_definitions
    USING (tenant = current_setting('baraza.tenant', true))
    WITH CHECK (tenant = current_setting('baraza.tenant', true));

-- `prefix` + tenant as a PostgreSQL name (at most 63 bytes): long tenant
-- ids are cut and told apart by a hash.
CREATE FUNCTION baraza_analytics_name(prefix text, tenant text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN length(prefix || tenant) <= 63 THEN prefix || tenant
                ELSE left(prefix || tenant, 50) || '_' || left(md5(tenant), 12) END
$$;

-- Prepares the analytics schema and reader role of the tenant of the
-- calling transaction (baraza.tenant: a transaction can prepare its own
-- tenant's only). Runs as the schema's owner, because the request role
-- may create neither schemas nor roles; it gives the calling role the
-- right to create tables in the schema (it then owns them and grants
-- SELECT on each to the reader) and the reader USAGE on the schema only.
-- The reader gets no privilege on any table of `public`.
CREATE FUNCTION baraza_analytics_prepare(OUT schema_name text, OUT reader text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t      text := current_setting('baraza.tenant', true);
    caller text := session_user;
BEGIN
    IF t IS NULL OR t !~ '^[a-z0-9][a-z0-9-]{0,62}$' THEN
        RAISE EXCEPTION 'baraza_analytics_prepare needs a transaction for a tenant';
    END IF;
    schema_name := public.baraza_analytics_name('analytics_', t);
    reader := public.baraza_analytics_name('analytics_reader_', t);
    BEGIN
        EXECUTE format('CREATE SCHEMA IF NOT EXISTS %I', schema_name);
    EXCEPTION WHEN duplicate_schema OR unique_violation THEN NULL;
    END;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = reader) THEN
        BEGIN
            EXECUTE format('CREATE ROLE %I NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS', reader);
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
        END;
    END IF;
    EXECUTE format('REVOKE ALL ON SCHEMA %I FROM PUBLIC', schema_name);
    EXECUTE format('GRANT USAGE, CREATE ON SCHEMA %I TO %I', schema_name, caller);
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', schema_name, reader);
    IF NOT has_database_privilege(reader, current_database(), 'CONNECT') THEN
        EXECUTE format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), reader);
    END IF;
END
$$;
-- Only the request role may call it (db::prepare_request_role grants it).
REVOKE ALL ON FUNCTION baraza_analytics_prepare() FROM PUBLIC;
