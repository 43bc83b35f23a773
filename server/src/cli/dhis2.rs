//! `baraza dhis2 sync`: pulls org units, tracked entities or data values
//! from a DHIS2 instance into an ingest batch of a tenant and writes it
//! through the normal write path (docs/ingest.md, `ingest::sync`). Like
//! `baraza tenant`, it uses the cluster of a running `baraza serve` when
//! there is one. Secrets may come from `DHIS2_TOKEN` / `DHIS2_PASSWORD`
//! instead of the command line, where other users could see them.

use super::migrate;
use crate::config::{Secret, Settings};
use crate::db;
use crate::ingest::DataType;
use crate::ingest::sync::{Dhis2Auth, SyncOptions, sync};
use crate::service::AppState;
use anyhow::{Context, Result, bail};
use clap::Subcommand;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Subcommand)]
pub enum Dhis2Command {
    /// Pull one kind of DHIS2 data (incrementally, by lastUpdated) into a
    /// tenant; an interrupted sync resumes at the page it stopped on.
    Sync {
        /// The DHIS2 root URL (the Web API is under /api).
        #[arg(long)]
        base_url: String,
        /// A DHIS2 personal access token (else DHIS2_TOKEN).
        #[arg(long)]
        token: Option<String>,
        /// Basic authentication user (the password from DHIS2_PASSWORD or --password).
        #[arg(long)]
        username: Option<String>,
        #[arg(long)]
        password: Option<String>,
        /// The mapping config (YAML or JSON, docs/dhis2.md).
        #[arg(long)]
        config: PathBuf,
        #[arg(long, default_value = "default")]
        tenant: String,
        /// metadata (org units), tracker or datavalues.
        #[arg(long, default_value = "metadata")]
        kind: String,
        #[arg(long, default_value_t = 100)]
        page_size: u32,
        /// The tracker program (tracker).
        #[arg(long)]
        program: Option<String>,
        /// The root org unit (tracker, datavalues).
        #[arg(long)]
        org_unit: Option<String>,
        /// The data set (datavalues).
        #[arg(long)]
        data_set: Option<String>,
        /// Attempts after the first for a failing page.
        #[arg(long, default_value_t = 5)]
        retries: u32,
        /// The first retry's delay; each next one doubles.
        #[arg(long, default_value_t = 500)]
        backoff_ms: u64,
    },
}

pub fn run(settings: &Settings, command: Dhis2Command) -> Result<()> {
    let settings = settings.clone();
    super::administer(&settings.clone(), move |cfg, embedded| {
        execute(settings, cfg, embedded, command)
    })
}

fn secret(flag: Option<String>, variable: &str) -> Option<Secret> {
    flag.or_else(|| std::env::var(variable).ok())
        .filter(|s| !s.is_empty())
        .map(Secret::new)
}

async fn execute(
    settings: Settings,
    cfg: tokio_postgres::Config,
    embedded: bool,
    command: Dhis2Command,
) -> Result<()> {
    let Dhis2Command::Sync {
        base_url,
        token,
        username,
        password,
        config,
        tenant,
        kind,
        page_size,
        program,
        org_unit,
        data_set,
        retries,
        backoff_ms,
    } = command;
    let kind = match kind.as_str() {
        "metadata" => DataType::Dhis2Metadata,
        "tracker" => DataType::Dhis2Tracker,
        "datavalues" => DataType::Dhis2DataValues,
        other => bail!("--kind {other:?} is not one of metadata, tracker, datavalues"),
    };
    let auth = match (secret(token, "DHIS2_TOKEN"), username) {
        (Some(token), None) => Dhis2Auth::Token(token),
        (None, Some(user)) => Dhis2Auth::Basic(
            user,
            secret(password, "DHIS2_PASSWORD")
                .context("--username needs a password (DHIS2_PASSWORD)")?,
        ),
        _ => bail!("give either --token (or DHIS2_TOKEN) or --username with a password"),
    };
    let mapping = adapters::dhis2::Config::load(&config).map_err(|e| anyhow::anyhow!("{e}"))?;
    let request_cfg = migrate(&cfg, embedded).await?;
    let pool = db::pool(request_cfg, 4)?;
    let state = background_state(&settings, pool, mapping).await?;
    let Some(ctx) = crate::service::tenants::resolve(&state, &tenant)
        .await
        .ok()
        .map(|(ctx, _)| ctx)
        .filter(|ctx| ctx.tenant == tenant)
    else {
        bail!("there is no active tenant {tenant:?}");
    };
    let opts = SyncOptions {
        base_url,
        auth,
        kind,
        page_size: page_size.max(1),
        program,
        org_unit,
        data_set,
        retries,
        backoff: Duration::from_millis(backoff_ms),
    };
    let result = sync(&state, &ctx, &opts).await;
    state.audit.flush(Duration::from_secs(30)).await;
    let report = result?;
    let batch = report.batch.to_json();
    println!(
        "synced {} from {} pages (since {}): batch {} {}: {}",
        kind.as_str(),
        report.pages,
        report.since.as_deref().unwrap_or("the beginning"),
        batch["id"].as_str().unwrap_or_default(),
        batch["status"].as_str().unwrap_or_default(),
        batch["counts"]
    );
    Ok(())
}

/// The server state background work needs (no HTTP listener).
async fn background_state(
    settings: &Settings,
    pool: deadpool_postgres::Pool,
    mapping: adapters::dhis2::Config,
) -> Result<AppState> {
    let tenants = Arc::new(
        crate::store::tenants::Directory::load(pool.clone())
            .await
            .map_err(|e| anyhow::anyhow!("cannot read the tenants: {e}"))?,
    );
    let registries = Arc::new(crate::search::custom::CustomRegistries::default());
    registries
        .load_all(&pool, &tenants.active())
        .await
        .map_err(|e| anyhow::anyhow!("cannot load custom search parameters: {e:?}"))?;
    let audit = if settings.audit {
        crate::audit::Recorder::start(pool.clone())
    } else {
        crate::audit::Recorder::off()
    };
    let node = Arc::new(crate::events::Node::new(settings.events.clone()));
    Ok(AppState {
        pool,
        base_url: settings.public_base(settings.listen),
        max_bundle_entries: settings.max_bundle_entries,
        max_page_size: settings.max_page_size,
        terminology_max_expansion: settings.terminology_max_expansion,
        max_body_bytes: settings.max_body_bytes,
        capabilities: Arc::default(),
        registries,
        tenants,
        auth: None,
        login_client: None,
        groups: Arc::default(),
        audit,
        metrics: Arc::default(),
        metrics_token: None,
        dhis2: Some(Arc::new(mapping)),
        csv: None,
        mpi: crate::mpi_config::linker(settings)?,
        // The sync runs without the dispatcher: link within each write.
        mpi_queued: false,
        console_client_id: None,
        exports: Arc::new(crate::service::export::Exports::new(settings, &node)),
        imports: Arc::new(crate::ingest::import::Imports::new(settings)),
        // Writes record their events; the servers deliver them.
        node,
        read_pool: None,
    })
}
