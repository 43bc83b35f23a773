//! `baraza tenant create|list|disable|enable`: the tenants table, changed as the
//! database owner. With the embedded cluster these commands use the
//! cluster of a running `baraza serve` when there is one (its data
//! directory is locked), else start it themselves. A running server sees a
//! change within `store::tenants::DIRECTORY_TTL`.

use super::migrate;
use crate::config::Settings;
use crate::db;
use crate::store::tenants::{self, DIRECTORY_TTL, Tenant};
use anyhow::Result;
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant, served at /fhir/{id}.
    Create {
        /// 1-63 of a-z, 0-9 and '-', starting with a letter or digit.
        id: String,
        /// A human-readable name.
        #[arg(long, default_value = "")]
        name: String,
    },
    /// List every tenant with its status.
    List,
    /// Stop serving a tenant (its data is kept).
    Disable { id: String },
    /// Serve a disabled tenant again.
    Enable { id: String },
}

pub fn run(settings: &Settings, command: TenantCommand) -> Result<()> {
    super::administer(settings, |cfg, embedded| execute(cfg, embedded, command))
}

async fn execute(
    cfg: tokio_postgres::Config,
    embedded: bool,
    command: TenantCommand,
) -> Result<()> {
    migrate(&cfg, embedded).await?;
    let client = db::connect(&cfg).await?;
    match command {
        TenantCommand::Create { id, name } => {
            tenants::create(&client, &id, &name).await?;
            println!("created tenant {id}, served at /fhir/{id}");
        }
        TenantCommand::List => print!("{}", table(&tenants::list(&client).await?)),
        TenantCommand::Disable { id } => {
            tenants::disable(&client, &id).await?;
            println!(
                "disabled tenant {id}; a running server stops serving it within {} s",
                DIRECTORY_TTL.as_secs()
            );
        }
        TenantCommand::Enable { id } => {
            tenants::enable(&client, &id).await?;
            println!(
                "enabled tenant {id}; a running server serves it within {} s",
                DIRECTORY_TTL.as_secs()
            );
        }
    }
    Ok(())
}

/// One line per tenant under a header: id, status, creation time, name.
fn table(rows: &[Tenant]) -> String {
    let mut out = format!("{:<24} {:<9} {:<20} NAME\n", "ID", "STATUS", "CREATED");
    for t in rows {
        out.push_str(&format!(
            "{:<24} {:<9} {:<20} {}\n",
            t.id,
            t.status,
            t.created_at.format("%Y-%m-%dT%H:%M:%SZ"),
            t.name
        ));
    }
    out
}
