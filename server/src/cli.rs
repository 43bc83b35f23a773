//! The `baraza` command line: `serve`, `migrate`, `tenant`, `audit`,
//! `terminology`, `mpi` and `dhis2`.
//! Settings come from `BARAZA_*` variables, listed by `--help`.

mod audit;
mod dhis2;
mod mpi;
mod tenant;
mod terminology;

use crate::config::{Settings, VARIABLES};
use crate::embedded_pg::EmbeddedPostgres;
use crate::{app::Application, db};
use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(name = "baraza", version, about = "Baraza: a FHIR R4 health-information exchange on PostgreSQL", after_long_help = variables_help())]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the FHIR API at /fhir. Without BARAZA_DATABASE_URL, runs a
    /// private PostgreSQL cluster in BARAZA_DATA_DIR.
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Create, list, disable and enable tenants (FHIR bases /fhir/{tenant}).
    #[command(subcommand)]
    Tenant(tenant::TenantCommand),
    /// Check the audit trail (`verify`: recompute its hash chain).
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Load terminology releases (code systems) for every tenant or one.
    #[command(subcommand)]
    Terminology(terminology::TerminologyCommand),
    /// The master patient index: train its probabilities, relink the index.
    #[command(subcommand)]
    Mpi(mpi::MpiCommand),
    /// Pull DHIS2 data into a tenant through an ingest batch (`sync`).
    #[command(subcommand)]
    Dhis2(dhis2::Dhis2Command),
}

fn variables_help() -> String {
    let mut text = String::from("Environment variables:\n");
    for (name, meaning) in VARIABLES {
        text.push_str(&format!("  {name:<28} {meaning}\n"));
    }
    text
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let loaded = crate::config::file::merged(std::env::vars())
        .and_then(|vars| Ok((Settings::from_vars(vars.clone())?, vars)));
    let (settings, vars) = match loaded {
        Ok(loaded) => loaded,
        Err(message) => {
            eprintln!("baraza: {message}");
            return ExitCode::from(2);
        }
    };
    crate::telemetry::init(&settings);
    if matches!(cli.command, Command::Serve) {
        let shown = crate::config::file::redacted(&vars);
        tracing::info!(
            settings = %shown.join(" "),
            "configuration (secrets redacted; anything not listed has its default)"
        );
    }
    let embedded = settings.database_url.is_none();
    let result = match cli.command {
        Command::Serve => serve(settings),
        Command::Migrate => with_database(&settings, |cfg| async move {
            migrate(&cfg, embedded).await?;
            println!(
                "database schema is at version {}",
                db::known_schema_version()
            );
            Ok(())
        }),
        Command::Tenant(command) => tenant::run(&settings, command),
        Command::Audit(command) => audit::run(&settings, command),
        Command::Terminology(command) => terminology::run(&settings, command),
        Command::Mpi(command) => mpi::run(&settings, command),
        Command::Dhis2(command) => dhis2::run(&settings, command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("baraza: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs `work` with the database's connection settings, starting the
/// embedded cluster first when no URL is configured. The cluster is started
/// on this (the main) thread, which lives as long as the process.
fn with_database<F, Fut>(settings: &Settings, work: F) -> Result<()>
where
    F: FnOnce(tokio_postgres::Config) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let mut embedded = None;
    let cfg = match &settings.database_url {
        Some(url) => {
            let url = db::tls::parse_database_url(url.expose()).map_err(anyhow::Error::msg)?;
            db::tls::set_process_tls(url.tls);
            url.config
        }
        None => {
            tracing::info!(data_dir = %settings.data_dir.display(), "starting the embedded PostgreSQL");
            let pg = EmbeddedPostgres::start(&settings.data_dir)?;
            let cfg = pg.config(db::EMBEDDED_DBNAME);
            embedded = Some((pg, cfg.clone()));
            cfg
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    db::driver::set_runtime(runtime.handle().clone());
    let result = runtime.block_on(async {
        if let Some((pg, _)) = &embedded {
            let admin = db::connect(&pg.config("postgres")).await?;
            db::ensure_database(&admin, db::EMBEDDED_DBNAME).await?;
        }
        work(cfg).await
    });
    drop(runtime);
    if let Some((mut pg, _)) = embedded {
        tracing::info!("stopping the embedded PostgreSQL");
        pg.stop();
    }
    result
}

fn serve(settings: Settings) -> Result<()> {
    let authenticated = settings.oidc.is_some();
    if !authenticated && !settings.listen.ip().is_loopback() {
        bail!(
            "refusing to listen on {}: authentication is not configured, so Baraza only serves a loopback address (e.g. 127.0.0.1:8080)",
            settings.listen
        );
    }
    let server_settings = settings.clone();
    with_database(&settings, |cfg| async move {
        let request_cfg = migrate(&cfg, server_settings.database_url.is_none()).await?;
        let pool = db::pool(request_cfg.clone(), server_settings.db_pool_size)?;
        let app = Application::build_shared(&server_settings, pool, Some(request_cfg)).await?;
        if !authenticated {
            tracing::warn!(
                "no authentication is configured: serving UNAUTHENTICATED requests on loopback address {} only",
                app.addr()
            );
        }
        tracing::info!(base = %app.base_url(), "Baraza is serving FHIR R4");
        tokio::spawn(reload_log_filter_on_sighup());
        app.run().await.context("the HTTP server failed")?;
        tracing::info!("stopped serving");
        Ok(())
    })
}

/// On SIGHUP, reads the configuration file and environment again and
/// applies their log filter (other settings need a restart).
async fn reload_log_filter_on_sighup() {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hangups) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot listen for SIGHUP: the log filter cannot change at run time");
        return;
    };
    while hangups.recv().await.is_some() {
        let reread = crate::config::file::merged(std::env::vars()).and_then(Settings::from_vars);
        match reread.and_then(|s| crate::telemetry::set_filter(&s.log).map(|()| s.log)) {
            Ok(filter) => tracing::info!(%filter, "SIGHUP: log filter changed"),
            Err(e) => tracing::error!(error = %e, "SIGHUP: the log filter is unchanged"),
        }
    }
}

/// Runs an administrative command (`tenant`, `terminology`) as the
/// database owner: on the cluster of a `baraza serve` running on the same
/// embedded data directory when there is one (its directory is locked),
/// else as [`with_database`] does. `work` gets the settings and whether
/// the cluster is the embedded one.
fn administer<F, Fut>(settings: &Settings, work: F) -> Result<()>
where
    F: FnOnce(tokio_postgres::Config, bool) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    if settings.database_url.is_none() {
        if let Some(cfg) = EmbeddedPostgres::running_config(&settings.data_dir, db::EMBEDDED_DBNAME)
        {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            return runtime.block_on(work(cfg, true));
        }
    }
    let embedded = settings.database_url.is_none();
    with_database(settings, |cfg| work(cfg, embedded))
}

/// Migrates as the configured role (the tables' owner) and returns the
/// settings requests connect with: in the embedded cluster the request role
/// [`db::REQUEST_ROLE`], which row-level security holds; with
/// BARAZA_DATABASE_URL the URL's own role, which `Application::build`
/// checks (docs/tenants.md).
async fn migrate(cfg: &tokio_postgres::Config, embedded: bool) -> Result<tokio_postgres::Config> {
    let mut client = db::connect(cfg).await?;
    db::migrate(&mut client).await?;
    let mut request_cfg = cfg.clone();
    if embedded {
        db::prepare_request_role(&client, None).await?;
        request_cfg.user(db::REQUEST_ROLE);
    }
    Ok(request_cfg)
}
