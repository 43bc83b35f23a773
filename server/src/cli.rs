//! The `baraza` command line: `serve` and `migrate`. Settings come from
//! `BARAZA_*` variables, listed by `--help`.

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
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(message) => {
            eprintln!("baraza: {message}");
            return ExitCode::from(2);
        }
    };
    crate::telemetry::init(&settings);
    let result = match cli.command {
        Command::Serve => serve(settings),
        Command::Migrate => with_database(&settings, |cfg| async move {
            let mut client = db::connect(&cfg).await?;
            db::migrate(&mut client).await?;
            println!(
                "database schema is at version {}",
                db::known_schema_version()
            );
            Ok(())
        }),
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
        Some(url) => url
            .expose()
            .parse::<tokio_postgres::Config>()
            .context("BARAZA_DATABASE_URL is not a valid PostgreSQL URL")?,
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
        let mut client = db::connect(&cfg).await?;
        db::migrate(&mut client).await?;
        drop(client);
        let pool = db::pool(cfg, server_settings.db_pool_size)?;
        let app = Application::build(&server_settings, pool).await?;
        if !authenticated {
            tracing::warn!(
                "no authentication is configured: serving UNAUTHENTICATED requests on loopback address {} only",
                app.addr()
            );
        }
        tracing::info!(base = %app.base_url(), "Baraza is serving FHIR R4");
        app.run().await.context("the HTTP server failed")?;
        tracing::info!("stopped serving");
        Ok(())
    })
}
