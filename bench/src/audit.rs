//! The audit trail's cost: read-by-id and a patient's Observations search,
//! each at 1 and 16 clients, against two `baraza serve`s started side by
//! side on data directories seeded alike, one with BARAZA_AUDIT=on and one
//! with =off. Each phase runs against one server and then the other (the
//! order alternating per round), so that whatever else the machine does
//! weighs on both alike. Prints every measurement, then per phase the
//! median throughput of each and the median of the rounds' on/off ratios.

use crate::harness::{Run, Server, cpu_split, http_client, median, settle, timed};
use anyhow::{Context, Result};
use bench::synthetic;
use clap::Args as ClapArgs;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, Clone, ClapArgs)]
pub struct Args {
    /// The baraza binary to start.
    #[arg(long, default_value = "target/release/baraza")]
    baraza: PathBuf,
    /// Directory for the two servers' embedded PostgreSQL (`on/`, `off/`)
    /// and their logs (`on.log`, `off.log`); the postgres user must be able
    /// to enter it.
    #[arg(long)]
    data_dir: PathBuf,
    /// Port of the server with audit; the other uses the next one.
    #[arg(long, default_value_t = 18182)]
    port: u16,
    /// Seconds per timed phase and server.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Rounds of every phase against both servers.
    #[arg(long, default_value_t = 6)]
    rounds: usize,
    /// Patients seeded in each server, each with 4 encounters (12
    /// Observations).
    #[arg(long, default_value_t = 200)]
    patients: usize,
    /// Seconds to wait after seeding for autovacuum to analyse.
    #[arg(long, default_value_t = 65)]
    settle_seconds: u64,
}

/// The phases: name, clients.
const PHASES: [(&str, usize); 4] = [
    ("read c=1", 1),
    ("read c=16", 16),
    ("search c=1", 1),
    ("search c=16", 16),
];

/// One of the two servers and the patients seeded in it.
struct Target {
    audit: bool,
    base: String,
    ids: Arc<Vec<String>>,
    server: Server,
}

pub async fn run(args: Args) -> Result<()> {
    let client = http_client()?;
    println!(
        "# baraza-bench audit: {} s per phase and server, {} rounds, data in {}",
        args.seconds,
        args.rounds,
        args.data_dir.display()
    );
    let mut targets = Vec::new();
    for (audit, port) in [(true, args.port), (false, args.port + 1)] {
        let base = format!("http://127.0.0.1:{port}/fhir");
        let dir = args.data_dir.join(if audit { "on" } else { "off" });
        let env = [("BARAZA_AUDIT", if audit { "on" } else { "off" })];
        let server = Server::start(&args.baraza, &dir, port, &env, &client, &base).await?;
        let ids = Arc::new(seed(&client, &base, args.patients).await?);
        targets.push(Target {
            audit,
            base,
            ids,
            server,
        });
    }
    settle(
        &format!("seeded {} patients in each", args.patients),
        args.settle_seconds,
    )
    .await;
    // Warm both servers' caches, unmeasured.
    for target in &targets {
        for (name, clients) in [PHASES[1], PHASES[3]] {
            phase_run(&client, target, name, clients, 2).await;
        }
    }
    // rates[audit on?][phase], and ratios[phase], one per round.
    let mut rates = [[(); 4].map(|_| Vec::new()), [(); 4].map(|_| Vec::new())];
    let mut ratios = [(); 4].map(|_| Vec::new());
    for round in 0..args.rounds {
        for (phase, (name, clients)) in PHASES.iter().enumerate() {
            let mut pair = [0.0; 2];
            for i in 0..2 {
                let target = &targets[(i + round) % 2];
                let run = phase_run(&client, target, name, *clients, args.seconds).await;
                let rate = print_run(round, target.audit, name, &run);
                pair[usize::from(target.audit)] = rate;
                rates[usize::from(target.audit)][phase].push(rate);
            }
            ratios[phase].push(pair[1] / pair[0]);
        }
    }
    for target in &mut targets {
        target.server.stop()?;
    }
    println!("# medians over {} rounds (req/s)", args.rounds);
    for (phase, (name, _)) in PHASES.iter().enumerate() {
        let ratio = median(&ratios[phase]);
        println!(
            "{name:<12} audit on {:>8.0}  off {:>8.0}  on/off {ratio:.3} ({:+.1} %)",
            median(&rates[1][phase]),
            median(&rates[0][phase]),
            (ratio - 1.0) * 100.0
        );
    }
    Ok(())
}

/// One timed phase: reads of a patient, or that patient's Observations.
async fn phase_run(
    client: &reqwest::Client,
    target: &Target,
    name: &str,
    clients: usize,
    seconds: u64,
) -> Run<bool> {
    let search = name.starts_with("search");
    timed(clients, seconds, {
        let (client, base, ids) = (client.clone(), target.base.clone(), target.ids.clone());
        move |n| {
            let id = &ids[(n * 7919) % ids.len()];
            let url = if search {
                format!("{base}/Observation?subject=Patient/{id}&_count=20")
            } else {
                format!("{base}/Patient/{id}")
            };
            let client = client.clone();
            async move {
                match client.get(url).send().await {
                    Ok(r) if r.status() == 200 => r.bytes().await.is_ok(),
                    _ => false,
                }
            }
        }
    })
    .await
}

/// Prints one phase and returns its successful requests per second.
fn print_run(round: usize, audit: bool, name: &str, run: &Run<bool>) -> f64 {
    let ok = run.samples.iter().filter(|s| s.outcome).count();
    let errors = run.samples.len() - ok;
    let secs = run.elapsed.as_secs_f64();
    let latencies = run.latencies();
    println!(
        "round {} audit={:<3} {name:<12} {:>8.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms  errors {errors}  cpu[{}]",
        round + 1,
        if audit { "on" } else { "off" },
        ok as f64 / secs,
        latencies.ms(0.50),
        latencies.ms(0.99),
        cpu_split(&run.cpu),
    );
    ok as f64 / secs
}

/// Loads `n` patients, each with their encounters and observations, and
/// returns the patients' ids.
async fn seed(client: &reqwest::Client, base: &str, n: usize) -> Result<Vec<String>> {
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let bundle = synthetic::patient_bundle(9_000 + i as u64, 4);
        let response: Value = client
            .post(base)
            .header("content-type", "application/fhir+json")
            .header("prefer", "return=minimal")
            .body(bundle.to_string())
            .send()
            .await?
            .json()
            .await?;
        let patient = response["entry"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["response"]["location"].as_str())
            .find_map(|l| l.strip_prefix("Patient/"))
            .and_then(|rest| rest.split('/').next())
            .context("a seeding transaction created no Patient")?;
        ids.push(patient.to_owned());
    }
    Ok(ids)
}
