//! Database connection: the pool, the embedded-or-external choice, and the
//! schema migrations (refinery) with the "newer schema" guard.

use anyhow::{Context, Result, bail};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::NoTls;

mod embedded {
    refinery::embed_migrations!("../migrations");
}

/// The database name the embedded cluster serves.
pub const EMBEDDED_DBNAME: &str = "baraza";

/// Advisory-lock key that serialises migrations between instances.
const MIGRATION_LOCK: i64 = 0x6261_7261_7a61; // "baraza"

pub fn pool(mut cfg: tokio_postgres::Config, size: usize) -> Result<Pool> {
    // Searches and writes are many small statements from many clients;
    // parallel workers add start-up time to each and take the cores the
    // other clients need. (Analysts' SQL runs on its own connections.)
    // Search statements are prepared once per shape but their best plan
    // depends on the values (`gender=female` matches half the patients,
    // `identifier=…` one): plan each execution for its values.
    const SESSION: &str =
        "-c max_parallel_workers_per_gather=0 -c plan_cache_mode=force_custom_plan";
    let options = match cfg.get_options() {
        Some(given) => format!("{given} {SESSION}"),
        None => SESSION.to_owned(),
    };
    cfg.options(&options);
    let manager = Manager::from_config(
        cfg,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
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

/// Applies pending migrations, idempotently, under an advisory lock so that
/// several instances starting together do not race. Refuses a database whose
/// schema is newer than this binary.
pub async fn migrate(client: &mut tokio_postgres::Client) -> Result<()> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await
        .context("cannot take the migration lock")?;
    let result = migrate_locked(client).await;
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

/// Opens one plain connection (for migrations and administration).
pub async fn connect(cfg: &tokio_postgres::Config) -> Result<tokio_postgres::Client> {
    let (client, connection) = cfg
        .connect(NoTls)
        .await
        .context("cannot connect to PostgreSQL")?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "administrative connection closed");
        }
    });
    Ok(client)
}
