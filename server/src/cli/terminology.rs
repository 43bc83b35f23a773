//! `baraza terminology load --format F PATH [--tenant T] [--version V]`:
//! loads a release (ICD-10 ClaML, ICD-10-CM, LOINC, SNOMED CT RF2, CSV) as
//! global content (every tenant sees it) or for one tenant, in one
//! transaction: a malformed release changes nothing. Like `baraza
//! tenant`, it uses the cluster of a running `baraza serve` when there is
//! one.

use super::migrate;
use crate::config::Settings;
use crate::db;
use anyhow::{Result, bail};
use clap::Subcommand;
use std::path::PathBuf;
use terminology::formats::{Format, Options};

#[derive(Debug, Subcommand)]
pub enum TerminologyCommand {
    /// Load a code system release (a file, or a directory for loinc and snomed).
    Load {
        /// icd10, icd10cm, loinc, snomed or csv.
        #[arg(long)]
        format: Format,
        path: PathBuf,
        /// The tenant that owns the content; without it, the content is
        /// global (every tenant sees it).
        #[arg(long)]
        tenant: Option<String>,
        /// The version to store it as (default: the release's own).
        #[arg(long)]
        version: Option<String>,
        /// The code system url (default: the release's own).
        #[arg(long)]
        url: Option<String>,
        #[arg(long)]
        name: Option<String>,
    },
}

pub fn run(settings: &Settings, command: TerminologyCommand) -> Result<()> {
    super::administer(settings, |cfg, embedded| execute(cfg, embedded, command))
}

async fn execute(
    cfg: tokio_postgres::Config,
    embedded: bool,
    command: TerminologyCommand,
) -> Result<()> {
    migrate(&cfg, embedded).await?;
    let TerminologyCommand::Load {
        format,
        path,
        tenant,
        version,
        url,
        name,
    } = command;
    let mut client = db::connect(&cfg).await?;
    if let Some(tenant) = &tenant {
        let exists = client
            .query_opt("SELECT 1 FROM tenants WHERE id = $1", &[tenant])
            .await?
            .is_some();
        if !exists {
            bail!("there is no tenant {tenant:?} (create it with `baraza tenant create`)");
        }
    }
    let started = std::time::Instant::now();
    let options = Options {
        url,
        version: version.clone(),
        name,
        ..Options::default()
    };
    let (header, records) =
        terminology::formats::open(format, &path, &options).map_err(|e| anyhow::anyhow!("{e}"))?;
    let tx = client.transaction().await?;
    let owner = tenant.as_deref().unwrap_or(terminology::GLOBAL);
    let setting = tenant.as_deref().unwrap_or(terminology::GLOBAL_MARKER);
    tx.execute("SELECT set_config('baraza.tenant', $1, true)", &[&setting])
        .await?;
    let load_options = terminology::load::LoadOptions {
        version,
        ..terminology::load::LoadOptions::new(owner, "load")
    };
    let summary = terminology::release::load_release(
        &terminology::Tx::unpooled(&tx),
        &load_options,
        &header,
        records,
    )
    .await
    .map_err(|e| anyhow::anyhow!("the load failed, nothing was changed: {e}"))?;
    tx.commit().await?;
    println!(
        "loaded {} version {:?} for {}: {} concepts, {} is-a edges, {} designations, {} properties, \
         {} reference set members in {:.1} s",
        summary.url,
        summary.version,
        tenant
            .as_deref()
            .map_or("every tenant (global)".to_owned(), |t| format!(
                "tenant {t}"
            )),
        summary.concepts,
        summary.edges,
        summary.designations,
        summary.properties,
        summary.members,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
