-- What Baraza's request role needs, granted by the schema owner after
-- each migration (mirrors db::prepare_request_role, which does the same
-- for the embedded cluster). Idempotent. :app_role is the request role.
SELECT set_config('baraza.grant_role', :'app_role', false);
DO $$
DECLARE
  role text := current_setting('baraza.grant_role');
  t text;
BEGIN
  EXECUTE format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), role);
  EXECUTE format('GRANT USAGE ON SCHEMA public TO %I', role);
  -- Every table under forced row-level security: read and write.
  FOR t IN SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
             AND c.relrowsecurity AND c.relforcerowsecurity LOOP
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO %I', t, role);
  END LOOP;
  EXECUTE format('GRANT SELECT ON tenants, refinery_schema_history TO %I', role);
  EXECUTE format('GRANT SELECT, UPDATE ON audit_chain_head TO %I', role);
  EXECUTE format('GRANT SELECT ON audit_chain_anchor TO %I', role);
  EXECUTE format('GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO %I', role);
  -- SQL-on-FHIR materialisation: each tenant's analytics schema and
  -- read-only role (docs/analytics.md).
  EXECUTE format('GRANT EXECUTE ON FUNCTION baraza_analytics_prepare() TO %I', role);
  -- The audit trail is append-only (docs/audit.md).
  EXECUTE format('REVOKE UPDATE, DELETE ON audit_events FROM %I', role);
END
$$;
