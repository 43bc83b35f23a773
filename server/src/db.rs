//! Database connection: the pool, the embedded-or-external choice, the
//! schema migrations (refinery) with the "newer schema" guard, and the
//! request role, which row-level security holds (docs/tenants.md).

use anyhow::{Context, Result, bail};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::NoTls;

pub mod driver;
pub mod tls;
use tls::DbTls;

mod embedded {
    refinery::embed_migrations!("../migrations");
}

/// The database name the embedded cluster serves.
pub const EMBEDDED_DBNAME: &str = "baraza";

/// Advisory-lock key that serialises migrations between instances.
const MIGRATION_LOCK: i64 = 0x6261_7261_7a61; // "baraza"

/// The request pool, through this process's database TLS
/// ([`tls::set_process_tls`]).
pub fn pool(cfg: tokio_postgres::Config, size: usize) -> Result<Pool> {
    pool_with_tls(cfg, size, tls::process_tls())
}

/// The pool, through TLS when BARAZA_DATABASE_URL asks for it (`tls`).
pub fn pool_with_tls(mut cfg: tokio_postgres::Config, size: usize, tls: &DbTls) -> Result<Pool> {
    // Searches and writes are many small statements from many clients;
    // parallel workers add start-up time to each and take the cores the
    // other clients need. (Analysts' SQL runs on its own connections.)
    // Search statements are prepared once per shape but their best plan
    // depends on the values (`gender=female` matches half the patients,
    // `identifier=…` one): plan each execution for its values.
    // JIT compilation pays only for long scans: a walked search, which
    // the planner costs as a scan of the whole type though it stops after
    // a page, spent 22 of its 56 ms compiling.
    const SESSION: &str =
        "-c max_parallel_workers_per_gather=0 -c plan_cache_mode=force_custom_plan -c jit=off";
    let options = match cfg.get_options() {
        Some(given) => format!("{given} {SESSION}"),
        None => SESSION.to_owned(),
    };
    cfg.options(&options);
    let manager_config = ManagerConfig {
        recycling_method: RecyclingMethod::Fast,
    };
    let manager = match tls {
        DbTls::Off => {
            Manager::from_connect(cfg, driver::OnProcessRuntime { tls: NoTls }, manager_config)
        }
        DbTls::Verified(connector) => Manager::from_connect(
            cfg,
            driver::OnProcessRuntime {
                tls: connector.clone(),
            },
            manager_config,
        ),
    };
    Pool::builder(manager)
        .max_size(size)
        .build()
        .context("cannot build the database pool")
}

/// The highest migration version this binary knows.
pub fn known_schema_version() -> i64 {
    embedded::migrations::runner()
        .get_migrations()
        .iter()
        .map(|m| i64::from(m.version()))
        .max()
        .unwrap_or(0)
}

/// Creates `dbname` on the cluster if it does not exist (embedded mode).
pub async fn ensure_database(admin: &tokio_postgres::Client, dbname: &str) -> Result<()> {
    let exists = admin
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&dbname])
        .await?
        .is_some();
    if !exists {
        let quoted = dbname.replace('"', "\"\"");
        admin
            .batch_execute(&format!("CREATE DATABASE \"{quoted}\""))
            .await
            .with_context(|| format!("cannot create database {dbname}"))?;
    }
    Ok(())
}

/// The role the embedded cluster's request pool logs in as: it can neither
/// bypass row-level security nor change the schema (the cluster's bootstrap
/// superuser owns the tables and runs the migrations).
pub const REQUEST_ROLE: &str = "baraza_app";

/// Tenant-keyed tables the request role may add to but never change or
/// delete from (append-only records).
const APPEND_ONLY_TABLES: &[&str] = &["audit_events"];

/// Creates [`REQUEST_ROLE`] if needed and grants it what requests need:
/// read and write on the tables under forced row-level security, read on
/// `tenants` and on the migration history (for the schema check), and the
/// sequences. Run by the tables' owner after every migration, so that
/// tables added later are covered. `password` is for clusters reached over
/// TCP (the embedded one trusts its unix socket).
pub async fn prepare_request_role(
    client: &tokio_postgres::Client,
    password: Option<&str>,
) -> Result<()> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await
        .context("cannot take the migration lock")?;
    let mut result = prepare_request_role_locked(client, password).await;
    if result.is_ok() {
        result = leakproof_numeric_comparisons(client).await;
    }
    let _ = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await;
    result
}

async fn prepare_request_role_locked(
    client: &tokio_postgres::Client,
    password: Option<&str>,
) -> Result<()> {
    let role = REQUEST_ROLE;
    let password = match password {
        Some(p) => format!("PASSWORD '{}'", p.replace('\'', "''")),
        None => String::new(),
    };
    let revokes: String = APPEND_ONLY_TABLES
        .iter()
        .map(|t| format!("REVOKE UPDATE, DELETE ON {t} FROM {role};"))
        .collect();
    client
        .batch_execute(&format!(
            "DO $$ BEGIN \
               IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN \
                 CREATE ROLE {role}; \
               END IF; \
             END $$; \
             ALTER ROLE {role} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE {password}; \
             DO $$ DECLARE t text; BEGIN \
               EXECUTE format('GRANT CONNECT ON DATABASE %I TO {role}', current_database()); \
               FOR t IN SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') \
                        AND c.relrowsecurity AND c.relforcerowsecurity LOOP \
                 EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO {role}', t); \
               END LOOP; \
             END $$; \
             GRANT USAGE ON SCHEMA public TO {role}; \
             GRANT SELECT ON tenants, refinery_schema_history TO {role}; \
             GRANT SELECT, UPDATE ON audit_chain_head TO {role}; \
             GRANT SELECT ON audit_chain_anchor TO {role}; \
             GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {role}; \
             GRANT EXECUTE ON FUNCTION baraza_analytics_prepare() TO {role}; \
             {revokes}"
        ))
        .await
        .with_context(|| format!("cannot prepare the database role {role}"))?;
    Ok(())
}

/// Marks PostgreSQL's `numeric` comparisons LEAKPROOF, when the owner is
/// a superuser (always in the embedded cluster; else it is skipped and
/// docs/tenants.md says what a superuser may run).
///
/// Under row-level security PostgreSQL scans an index with a condition
/// before the policy's check only if the condition's operator is leakproof.
/// The text, integer, float and timestamp comparisons ship leakproof; the
/// `numeric` ones do not, so number and quantity searches and number
/// `_sort` pages would read every row of their parameter (150 times slower
/// on 200,000 values). The functions compare two values and can fail for no
/// value, so they reveal nothing beyond their result, like `int8lt`.
async fn leakproof_numeric_comparisons(client: &tokio_postgres::Client) -> Result<()> {
    client
        .batch_execute(
            "DO $$ DECLARE f text; BEGIN \
               IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN \
                 FOREACH f IN ARRAY ARRAY['numeric_eq', 'numeric_ne', 'numeric_lt', \
                                          'numeric_le', 'numeric_gt', 'numeric_ge'] LOOP \
                   EXECUTE format('ALTER FUNCTION pg_catalog.%I(numeric, numeric) LEAKPROOF', f); \
                 END LOOP; \
               END IF; \
             END $$",
        )
        .await
        .context("cannot mark the numeric comparisons leakproof")
}

/// Refuses a request connection that row-level security would not hold:
/// a superuser, a role with BYPASSRLS, or a member of either (which could
/// `SET ROLE` to it).
pub async fn check_request_role(client: &tokio_postgres::Client) -> Result<()> {
    let row = client
        .query_one(
            "SELECT current_user::text, \
             (SELECT string_agg(r.rolname, ', ' ORDER BY r.rolname) FROM pg_roles r \
              WHERE (r.rolsuper OR r.rolbypassrls) AND pg_has_role(current_user, r.oid, 'MEMBER'))",
            &[],
        )
        .await
        .context("cannot read the database role")?;
    let (user, privileged): (String, Option<String>) = (row.get(0), row.get(1));
    if let Some(privileged) = privileged {
        bail!(
            "refusing to serve: the database role {user} bypasses row-level security \
             (superuser or BYPASSRLS: {privileged}), so tenants would not be isolated; \
             connect as a role without those rights (see docs/tenants.md)"
        );
    }
    Ok(())
}

/// Applies pending migrations, idempotently, under an advisory lock so that
/// several instances starting together do not race. Refuses a database whose
/// schema is newer than this binary.
pub async fn migrate(client: &mut tokio_postgres::Client) -> Result<()> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await
        .context("cannot take the migration lock")?;
    let mut result = migrate_locked(client).await;
    if result.is_ok() {
        // The R4 code systems and value sets, once (terminology::r4).
        result = terminology::r4::bootstrap(client)
            .await
            .map(|loaded| {
                if loaded {
                    tracing::info!("loaded the R4 terminology content");
                }
            })
            .map_err(|e| anyhow::anyhow!("cannot load the R4 terminology content: {e}"));
    }
    let _ = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await;
    result
}

async fn migrate_locked(client: &mut tokio_postgres::Client) -> Result<()> {
    let known = known_schema_version();
    let has_history = client
        .query_one(
            "SELECT to_regclass('refinery_schema_history') IS NOT NULL",
            &[],
        )
        .await?
        .get::<_, bool>(0);
    if has_history {
        let applied: Option<i32> = client
            .query_one("SELECT max(version) FROM refinery_schema_history", &[])
            .await?
            .get(0);
        if let Some(applied) = applied {
            if i64::from(applied) > known {
                bail!(
                    "the database schema is at version {applied}, newer than this Baraza knows ({known}); \
                     run a newer Baraza or restore a matching backup"
                );
            }
            // A current schema needs nothing, and a role that may not change
            // the schema (a request role) can start on it.
            if i64::from(applied) == known {
                return Ok(());
            }
        }
    }
    embedded::migrations::runner()
        .set_abort_divergent(true)
        .set_abort_missing(true)
        .run_async(client)
        .await
        .context("database migration failed")?;
    Ok(())
}

/// Opens one connection (for migrations and administration), through this
/// process's database TLS ([`tls::set_process_tls`]).
pub async fn connect(cfg: &tokio_postgres::Config) -> Result<tokio_postgres::Client> {
    connect_with_tls(cfg, tls::process_tls()).await
}

/// Opens one connection, through TLS when `tls` says so.
pub async fn connect_with_tls(
    cfg: &tokio_postgres::Config,
    tls: &DbTls,
) -> Result<tokio_postgres::Client> {
    let (client, connection) = match tls {
        DbTls::Off => {
            let (client, connection) = cfg
                .connect(NoTls)
                .await
                .context("cannot connect to PostgreSQL")?;
            (client, futures_util::future::Either::Left(connection))
        }
        DbTls::Verified(connector) => {
            let (client, connection) = cfg
                .connect(connector.clone())
                .await
                .context("cannot connect to PostgreSQL over TLS")?;
            (client, futures_util::future::Either::Right(connection))
        }
    };
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "administrative connection closed");
        }
    });
    Ok(client)
}
