//! `baraza-bench`: load generators for a running Baraza. Each prints its
//! figures (throughput, p50/p99) and the CPU seconds spent by baraza,
//! PostgreSQL and the generator itself, to show where the time goes.
//!
//! Usage: `baraza-bench rest --base http://127.0.0.1:8080/fhir` or
//! `baraza-bench search …` (see bench/README.md; `bench/rest.sh` and
//! `bench/search.sh` start a release server with the embedded database and
//! run them). `baraza-bench audit` starts the server itself
//! (`bench/audit.sh`); `baraza-bench mpi` a scratch PostgreSQL
//! (`bench/mpi.sh`).

mod analytics;
mod audit;
mod cpu;
mod harness;
mod import;
mod mpi;
mod mpi_review_analysis;
mod mpi_write;
mod rest;
mod search;
mod terminology;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "baraza-bench", about = "Benchmarks for Baraza")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// REST core: read-by-id at 1/16/64 clients, creates, and transaction
    /// throughput for 100- and 1,000-entry bundles.
    Rest(rest::Args),
    /// FHIR search: loads a population of patients with their encounters,
    /// observations, conditions and more, then times nine typical searches
    /// single-client and as a concurrent mix (or, with --explain-only, runs
    /// each once and collects the plans auto_explain logs).
    #[command(args_override_self = true)]
    Search(search::Args),
    /// The audit trail's cost: read and search throughput against a server
    /// started with BARAZA_AUDIT=on and off in turns.
    Audit(audit::Args),
    /// The master patient index: linking throughput, the cost per write
    /// and $match latency, on a scratch PostgreSQL (no server).
    Mpi(mpi::Args),
    /// The MPI's cost per Patient write over HTTP: creates against two
    /// servers, BARAZA_MPI=on and =off (bench/mpi-write.sh).
    MpiWrite(mpi_write::Args),
    /// The terminology service: `write-rf2` a synthetic SNOMED CT release,
    /// then `run` the operations' latencies (bench/terminology.sh).
    Terminology(terminology::Args),
    /// Bulk Data `$export` of the search population: the job's
    /// resources/s and the download of its files (bench/export.sh).
    Export(analytics::Args),
    /// Materialising a 10-column Observation view of the search
    /// population (bench/view.sh).
    View(analytics::Args),
    /// Bulk Data `$import` of generated Observations: kick-off and
    /// processing throughput (bench/import.sh).
    Import(import::Args),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Rest(args) => runtime.block_on(rest::run(args)),
        Command::Search(args) => runtime.block_on(search::run(args)),
        Command::Audit(args) => runtime.block_on(audit::run(args)),
        Command::Terminology(args) => runtime.block_on(terminology::run(args)),
        Command::Mpi(args) => runtime.block_on(mpi::run(args)),
        Command::MpiWrite(args) => runtime.block_on(mpi_write::run(args)),
        Command::Export(args) => runtime.block_on(analytics::export(args)),
        Command::View(args) => runtime.block_on(analytics::view(args)),
        Command::Import(args) => runtime.block_on(import::run(args)),
    }
}
