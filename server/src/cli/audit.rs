//! `baraza audit verify`: recomputes the audit trail's hash chain and
//! exits non-zero, naming the first broken sequence number, when a row was
//! changed, inserted or deleted. With the embedded cluster it uses the
//! cluster of a running `baraza serve` when there is one, else starts it.

use super::with_database;
use crate::config::Settings;
use crate::db;
use crate::embedded_pg::EmbeddedPostgres;
use anyhow::{Context, Result, bail};
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recompute the hash chain from its oldest kept row to its head;
    /// print OK with the head's hash, or the first sequence number where
    /// the chain breaks (and exit with status 1).
    Verify,
}

pub fn run(settings: &Settings, command: AuditCommand) -> Result<()> {
    if settings.database_url.is_none() {
        if let Some(cfg) = EmbeddedPostgres::running_config(&settings.data_dir, db::EMBEDDED_DBNAME)
        {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            return runtime.block_on(execute(cfg, command));
        }
    }
    with_database(settings, |cfg| execute(cfg, command))
}

async fn execute(cfg: tokio_postgres::Config, command: AuditCommand) -> Result<()> {
    let mut client = db::connect(&cfg).await?;
    match command {
        AuditCommand::Verify => {
            let report = crate::audit::verify::verify(&mut client)
                .await
                .context("cannot read the audit trail")?;
            println!("{report}");
            if let Some((seq, _)) = report.broken {
                bail!("the audit trail does not verify: the chain breaks at sequence {seq}");
            }
        }
    }
    Ok(())
}
