//! `baraza mpi train` and `baraza mpi relink` (issue 6, docs/mpi.md):
//!
//! - `train` estimates m- and u-probabilities by expectation–maximisation
//!   from a sample of a tenant's index and writes the configuration (TOML)
//!   to put in BARAZA_MPI_CONFIG;
//! - `relink` re-scores the whole index of a tenant after a configuration
//!   change, a batch per transaction that also writes the golden Patients
//!   and links the batch changed. The job's cursor is committed with each
//!   batch: an interrupted relink resumes where it stopped when run again.
//!
//! Like `baraza tenant`, they use the cluster of a running `baraza serve`
//! when there is one.

use super::migrate;
use crate::config::Settings;
use crate::service::patient_index::apply_outcome;
use crate::store::{Access, TenantCtx, begin, now};
use anyhow::{Context, Result, bail};
use clap::Subcommand;
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, Subcommand)]
pub enum MpiCommand {
    /// Estimate the matching probabilities from a sample of the index and
    /// write the configuration (TOML) to --out or standard output.
    Train {
        #[arg(long, default_value = crate::store::tenants::DEFAULT_TENANT)]
        tenant: String,
        /// How many records to sample (with their candidate pairs).
        #[arg(long, default_value_t = 5000)]
        sample: usize,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Re-score every record of the index with the current configuration
    /// (BARAZA_MPI_CONFIG); resumes an interrupted run.
    Relink {
        #[arg(long, default_value = crate::store::tenants::DEFAULT_TENANT)]
        tenant: String,
        /// Records per transaction.
        #[arg(long, default_value_t = 500)]
        batch: usize,
    },
}

pub fn run(settings: &Settings, command: MpiCommand) -> Result<()> {
    let linker = crate::mpi_config::linker(settings)?
        .context("the master patient index is off (BARAZA_MPI=off)")?;
    super::administer(settings, |cfg, embedded| async move {
        let request_cfg = migrate(&cfg, embedded).await?;
        let pool = crate::db::pool(request_cfg, 2)?;
        let exists = pool
            .get()
            .await?
            .query_opt(
                "SELECT 1 FROM tenants WHERE id = $1 AND status = 'active'",
                &[&tenant_of(&command)],
            )
            .await?
            .is_some();
        if !exists {
            bail!("there is no active tenant {:?}", tenant_of(&command));
        }
        match command {
            MpiCommand::Train {
                tenant,
                sample,
                out,
            } => train(&pool, &linker, &tenant, sample, out).await,
            MpiCommand::Relink { tenant, batch } => {
                relink(&pool, linker, settings, &tenant, batch).await
            }
        }
    })
}

fn tenant_of(command: &MpiCommand) -> String {
    match command {
        MpiCommand::Train { tenant, .. } | MpiCommand::Relink { tenant, .. } => tenant.clone(),
    }
}

async fn train(
    pool: &deadpool_postgres::Pool,
    linker: &mpi::store::Linker,
    tenant: &str,
    sample: usize,
    out: Option<PathBuf>,
) -> Result<()> {
    let mut client = pool.get().await?;
    let tx = crate::store::transaction::begin_for(&mut client, tenant, Access::ReadOnly)
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let options = mpi::train::TrainOptions::default();
    let result = mpi::store::train_from_index(&**tx, linker, tenant, sample, &options)
        .await
        .map_err(|e| anyhow::anyhow!("training failed: {e}"))?;
    let text = result.config.to_toml_string();
    eprintln!(
        "trained on a sample of {sample} records: {} iterations, converged: {}, estimated match share {:.4}",
        result.iterations, result.converged, result.match_share
    );
    match out {
        Some(path) => {
            std::fs::write(&path, text)
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!(
                "wrote {}; point BARAZA_MPI_CONFIG at it and run `baraza mpi relink`",
                path.display()
            );
        }
        None => print!("{text}"),
    }
    Ok(())
}

async fn relink(
    pool: &deadpool_postgres::Pool,
    linker: Arc<mpi::store::Linker>,
    settings: &Settings,
    tenant: &str,
    batch: usize,
) -> Result<()> {
    let base_url = settings.public_base(settings.listen);
    let registries = Arc::new(crate::search::custom::CustomRegistries::default());
    registries
        .load_all(pool, &[tenant.to_owned()])
        .await
        .map_err(|e| anyhow::anyhow!("cannot load the custom search parameters: {e:?}"))?;
    let mut ctx = TenantCtx::new(tenant, &base_url, registries);
    ctx.mpi = Some(linker.clone());
    // The command line holds the job's lease like a server instance, so
    // that no instance adopts it while it runs, and one does if it dies.
    let holder = format!(
        "cli:{}:{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    );
    let interval = format!("{} milliseconds", settings.events.lease.as_millis());
    let lease = mpi::store::Lease {
        holder: &holder,
        interval: &interval,
    };
    let store = |e: mpi::store::StoreError| anyhow::anyhow!("{e}");
    let job = {
        let mut client = pool.get().await?;
        let tx = begin(&mut client, &ctx, Access::ReadWrite)
            .await
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let job = match mpi::store::running_relink(&**tx, tenant)
            .await
            .map_err(store)?
        {
            Some(running) => {
                if !mpi::store::hold_lease(&**tx, tenant, &running.id, lease)
                    .await
                    .map_err(store)?
                {
                    bail!(
                        "the relink job {} is running on {} ({} of {} records); follow it with \
                         GET Patient/$mpi-relink?job={}",
                        running.id,
                        running.leased_by.as_deref().unwrap_or("another instance"),
                        running.processed,
                        running.total,
                        running.id
                    );
                }
                eprintln!("resuming relink job {}", running.id);
                running.id
            }
            None => {
                let id = format!("relink-{}", chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ"));
                let batch = i32::try_from(batch).unwrap_or(i32::MAX);
                mpi::store::start_relink_job(&**tx, tenant, &id, batch, Some(lease))
                    .await
                    .map_err(store)?;
                id
            }
        };
        tx.commit().await?;
        job
    };
    let started = std::time::Instant::now();
    loop {
        let mut client = pool.get().await?;
        let tx = begin(&mut client, &ctx, Access::ReadWrite)
            .await
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        if !mpi::store::hold_lease(&**tx, tenant, &job, lease)
            .await
            .map_err(store)?
        {
            bail!("the relink job {job} was taken over by another instance or ended");
        }
        let (progress, outcome) = mpi::store::relink_step(&**tx, &linker, tenant, &job, batch)
            .await
            .map_err(|e| anyhow::anyhow!("relink failed: {e}"))?;
        apply_outcome(&tx, &ctx, &outcome, &HashSet::new(), None, now())
            .await
            .map_err(|e| anyhow::anyhow!("cannot write the relinked records: {e:?}"))?;
        tx.commit().await?;
        eprintln!(
            "{job}: {}/{} records, {} links changed, {:.0} s",
            progress.processed,
            progress.total,
            progress.changed,
            started.elapsed().as_secs_f64()
        );
        if progress.status != "running" {
            println!(
                "relinked {} records of tenant {tenant}: {} links changed",
                progress.processed, progress.changed
            );
            return Ok(());
        }
    }
}
