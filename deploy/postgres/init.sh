#!/bin/bash
# First start of the trial database (docker-entrypoint-initdb.d).
# The trial uses the simpler of the two set-ups of docs/tenants.md ("The
# database role"): one role `baraza`, NOSUPERUSER NOBYPASSRLS, owns the
# schema, migrates at start-up and serves (forced row-level security holds
# the owner). The VMs use a separate owner and request role (Ansible).
# Also Keycloak's database, and the LEAKPROOF statements as superuser.
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  -v baraza_pw="$BARAZA_DB_PASSWORD" -v kc_pw="$KEYCLOAK_DB_PASSWORD" <<'SQL'
CREATE ROLE baraza LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE PASSWORD :'baraza_pw';
CREATE ROLE keycloak LOGIN NOSUPERUSER NOBYPASSRLS PASSWORD :'kc_pw';
CREATE DATABASE baraza OWNER baraza;
CREATE DATABASE keycloak OWNER keycloak;
REVOKE ALL ON DATABASE baraza FROM PUBLIC;
REVOKE ALL ON DATABASE keycloak FROM PUBLIC;
SQL
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname baraza <<'SQL'
ALTER FUNCTION pg_catalog.numeric_eq(numeric, numeric) LEAKPROOF;
ALTER FUNCTION pg_catalog.numeric_ne(numeric, numeric) LEAKPROOF;
ALTER FUNCTION pg_catalog.numeric_lt(numeric, numeric) LEAKPROOF;
ALTER FUNCTION pg_catalog.numeric_le(numeric, numeric) LEAKPROOF;
ALTER FUNCTION pg_catalog.numeric_gt(numeric, numeric) LEAKPROOF;
ALTER FUNCTION pg_catalog.numeric_ge(numeric, numeric) LEAKPROOF;
SQL
