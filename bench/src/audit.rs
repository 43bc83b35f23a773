//! The audit trail's cost: read-by-id and a patient's Observations search,
//! each at 1 and 16 clients, against `baraza serve` started with
//! BARAZA_AUDIT=on and =off in turns on the same data directory (the order
//! alternating per round), for `--rounds` rounds. Prints every run, then
//! per phase the median throughput with and without audit and their ratio.

use crate::harness::{Run, cpu_split, http_client, settle, timed, wait_until_up};
use anyhow::{Context, Result, bail};
use bench::synthetic;
use clap::Args as ClapArgs;
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, ClapArgs)]
pub struct Args {
    /// The baraza binary to start.
    #[arg(long, default_value = "target/release/baraza")]
    baraza: PathBuf,
    /// Data directory of the embedded PostgreSQL (kept; seeded once).
    #[arg(long)]
    data_dir: PathBuf,
    #[arg(long, default_value_t = 18182)]
    port: u16,
    /// Seconds per timed phase.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Rounds of one run with audit and one without.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Patients seeded, each with 4 encounters (12 Observations).
    #[arg(long, default_value_t = 300)]
    patients: usize,
    /// Seconds to wait after seeding for autovacuum to analyse.
    #[arg(long, default_value_t = 65)]
    settle_seconds: u64,
}

/// The phases of one run: name, clients.
const PHASES: [(&str, usize); 4] = [
    ("read c=1", 1),
    ("read c=16", 16),
    ("search c=1", 1),
    ("search c=16", 16),
];

pub async fn run(args: Args) -> Result<()> {
    let client = http_client()?;
    let base = format!("http://127.0.0.1:{}/fhir", args.port);
    println!(
        "# baraza-bench audit: {} s per phase, {} rounds, data in {}",
        args.seconds,
        args.rounds,
        args.data_dir.display()
    );
    let ids = {
        let mut server = Server::start(&args, true, &client, &base).await?;
        let ids = seed(&client, &base, args.patients).await;
        if ids.is_ok() {
            settle(
                &format!("seeded {} patients", args.patients),
                args.settle_seconds,
            )
            .await;
        }
        server.stop()?;
        Arc::new(ids?)
    };
    // results[audit on?][phase] = req/s per round
    let mut results = [[(); 4].map(|_| Vec::new()), [(); 4].map(|_| Vec::new())];
    for round in 0..args.rounds {
        let order = if round % 2 == 0 {
            [true, false]
        } else {
            [false, true]
        };
        for audit in order {
            let mut server = Server::start(&args, audit, &client, &base).await?;
            // Warm the caches of a fresh server, unmeasured.
            for (name, clients) in [PHASES[1], PHASES[3]] {
                phase_run(&client, &base, &ids, name, clients, 2).await;
            }
            for (phase, (name, clients)) in PHASES.iter().enumerate() {
                let run = phase_run(&client, &base, &ids, name, *clients, args.seconds).await;
                let rate = print_run(round, audit, name, &run);
                results[usize::from(audit)][phase].push(rate);
            }
            server.stop()?;
        }
    }
    println!("# medians over {} rounds (req/s)", args.rounds);
    for (phase, (name, _)) in PHASES.iter().enumerate() {
        let on = median(&results[1][phase]);
        let off = median(&results[0][phase]);
        println!(
            "{name:<12} audit on {on:>8.0}  off {off:>8.0}  on/off {:.3}  ({:+.1} %)",
            on / off,
            (on / off - 1.0) * 100.0
        );
    }
    Ok(())
}

/// One timed phase: reads of a patient, or that patient's Observations.
async fn phase_run(
    client: &reqwest::Client,
    base: &str,
    ids: &Arc<Vec<String>>,
    name: &str,
    clients: usize,
    seconds: u64,
) -> Run<bool> {
    let search = name.starts_with("search");
    timed(clients, seconds, {
        let (client, base, ids) = (client.clone(), base.to_owned(), ids.clone());
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

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN)
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

/// `baraza serve` on the data directory, stopped with SIGTERM.
struct Server {
    child: Child,
}

impl Server {
    async fn start(
        args: &Args,
        audit: bool,
        client: &reqwest::Client,
        base: &str,
    ) -> Result<Server> {
        let mut command = Command::new(&args.baraza);
        command.arg("serve");
        for (name, _) in std::env::vars() {
            if name.starts_with("BARAZA_") {
                command.env_remove(name);
            }
        }
        command
            .env("BARAZA_DATA_DIR", &args.data_dir)
            .env("BARAZA_LISTEN", format!("127.0.0.1:{}", args.port))
            .env("BARAZA_LOG", "warn")
            .env("BARAZA_AUDIT", if audit { "on" } else { "off" })
            .stderr(Stdio::null());
        let child = command
            .spawn()
            .with_context(|| format!("cannot start {}", args.baraza.display()))?;
        let server = Server { child };
        wait_until_up(client, base).await?;
        Ok(server)
    }

    fn stop(&mut self) -> Result<()> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        if !status.success() {
            bail!("cannot signal baraza");
        }
        self.child.wait()?;
        // Let the port and the cluster's lock go.
        std::thread::sleep(Duration::from_millis(500));
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
            let _ = self.child.wait();
        }
    }
}
