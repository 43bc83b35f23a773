//! Loads the master patient index's configuration at start-up
//! (BARAZA_MPI, BARAZA_MPI_CONFIG): a file that does not parse or
//! validate stops the server with the problems it has, each with its line.

use crate::config::Settings;
use anyhow::{Context, Result};
use std::sync::Arc;

/// The linker the settings call for; `None` with BARAZA_MPI=off.
pub fn linker(settings: &Settings) -> Result<Option<Arc<mpi::store::Linker>>> {
    if !settings.mpi {
        tracing::info!("BARAZA_MPI=off: Patient writes are not linked");
        return Ok(None);
    }
    let config = load(settings.mpi_config.as_deref())?;
    let linker = mpi::store::Linker::new(config)
        .map_err(|e| anyhow::anyhow!("the MPI configuration is not valid:\n{e}"))?;
    Ok(Some(Arc::new(linker)))
}

/// The configuration in `path`, or the built-in defaults.
pub fn load(path: Option<&std::path::Path>) -> Result<mpi::Config> {
    let Some(path) = path else {
        return Ok(mpi::Config::default());
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the MPI configuration {}", path.display()))?;
    mpi::Config::from_toml_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "the MPI configuration {} is not valid:\n{e}",
            path.display()
        )
    })
}
