//! The master patient index's cost per Patient write over HTTP (issue 6:
//! "a Patient write with matching on must stay within 2× the time of one
//! without"): two `baraza serve`s side by side, BARAZA_MPI=on and =off,
//! each seeded with the same generated patients (`mpi::generator`'s
//! standard setting, duplicates included), then rounds of creates of
//! further generated patients at 1 and 8 clients against one server and
//! then the other (the order alternating per round). Prints every phase
//! and, per client count, the median latencies and the median of the
//! rounds' on/off latency ratios.

use crate::harness::{Run, Server, http_client, median, settle, timed};
use crate::mpi::dataset;
use anyhow::{Result, bail};
use clap::Args as ClapArgs;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, Clone, ClapArgs)]
pub struct Args {
    #[arg(long, default_value = "target/release/baraza")]
    baraza: PathBuf,
    /// Directory for the two servers' embedded PostgreSQL (`on/`, `off/`).
    #[arg(long)]
    data_dir: PathBuf,
    /// Port of the server with the MPI on; the other uses the next one.
    #[arg(long, default_value_t = 18184)]
    port: u16,
    /// Patients seeded in each server before timing.
    #[arg(long, default_value_t = 5000)]
    seed_patients: usize,
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    #[arg(long, default_value_t = 30)]
    settle_seconds: u64,
    /// How the server with the MPI on links (BARAZA_MPI_LINKING): `inline`
    /// in each write's transaction, or `queued` just after it commits. With
    /// `queued`, each phase also waits until its writes are linked and
    /// prints how long that took.
    #[arg(long, default_value = "inline")]
    linking: String,
}

const CLIENTS: [usize; 2] = [1, 8];

struct Target {
    mpi: bool,
    base: String,
    server: Server,
}

pub async fn run(args: Args) -> Result<()> {
    let client = http_client()?;
    println!(
        "# baraza-bench mpi-write: {} seeded patients, {} s per phase, {} rounds, {} linking",
        args.seed_patients, args.seconds, args.rounds, args.linking
    );
    let queued = args.linking == "queued";
    // Seeds and the timed creates come from one generated population, so
    // that timed writes meet their duplicates in the index.
    let timed_pool = 200_000;
    let all = Arc::new(dataset(7, args.seed_patients + timed_pool, "p"));
    let mut targets = Vec::new();
    for (mpi, port) in [(true, args.port), (false, args.port + 1)] {
        let base = format!("http://127.0.0.1:{port}/fhir");
        let dir = args.data_dir.join(if mpi { "on" } else { "off" });
        let env = [
            ("BARAZA_MPI", if mpi { "on" } else { "off" }),
            ("BARAZA_MPI_LINKING", args.linking.as_str()),
        ];
        let server = Server::start(&args.baraza, &dir, port, &env, &client, &base).await?;
        let seeds: Vec<Value> = all[..args.seed_patients]
            .iter()
            .map(|r| r.patient.clone())
            .collect();
        for chunk in seeds.chunks(500) {
            load(&client, &base, chunk).await?;
        }
        targets.push(Target { mpi, base, server });
    }
    settle("seeded both servers", args.settle_seconds).await;
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(args.seed_patients));
    let mut latency = [[(); 2].map(|_| Vec::new()), [(); 2].map(|_| Vec::new())];
    let mut ratios = [(); 2].map(|_| Vec::new());
    for round in 0..args.rounds {
        for (phase, clients) in CLIENTS.iter().enumerate() {
            let mut pair = [0.0; 2];
            for i in 0..2 {
                let target = &targets[(i + round) % 2];
                let first = next.load(std::sync::atomic::Ordering::Relaxed);
                let run = creates(&client, target, &all, &next, *clients, args.seconds).await;
                let (p50, p95) = report(round, target.mpi, *clients, &run);
                if queued && target.mpi {
                    drained(&client, &target.base, &all, first, &run).await?;
                }
                pair[usize::from(target.mpi)] = p50;
                latency[usize::from(target.mpi)][phase].push((p50, p95));
            }
            ratios[phase].push(pair[1] / pair[0]);
        }
    }
    for target in &mut targets {
        target.server.stop()?;
    }
    println!("# medians over {} rounds", args.rounds);
    for (phase, clients) in CLIENTS.iter().enumerate() {
        let p = |mpi: usize, f: fn(&(f64, f64)) -> f64| {
            median(&latency[mpi][phase].iter().map(f).collect::<Vec<_>>())
        };
        println!(
            "create c={clients}: mpi on p50 {:.2} ms p95 {:.2} ms | off p50 {:.2} ms p95 {:.2} ms | on/off p50 ratio {:.2}",
            p(1, |l| l.0),
            p(1, |l| l.1),
            p(0, |l| l.0),
            p(0, |l| l.1),
            median(&ratios[phase])
        );
    }
    Ok(())
}

/// The id of the `n`th timed create.
fn timed_id(all: &[::mpi::generator::Record], n: usize) -> String {
    format!(
        "{}-{n}",
        all[n % all.len()].patient["id"].as_str().unwrap_or("x")
    )
}

/// With queued linking: waits until the phase's last writes carry their
/// links, and prints how long after the phase that was and the rate of
/// linking over the phase and the wait.
async fn drained(
    client: &reqwest::Client,
    base: &str,
    all: &[::mpi::generator::Record],
    first: usize,
    run: &Run<bool>,
) -> Result<()> {
    let written = run.samples.len();
    let waited = std::time::Instant::now();
    for n in (first + written.saturating_sub(16))..(first + written) {
        let url = format!("{base}/Patient/{}", timed_id(all, n));
        loop {
            let patient: Value = client.get(&url).send().await?.json().await?;
            if patient["link"].as_array().is_some_and(|l| !l.is_empty()) {
                break;
            }
            if waited.elapsed() > std::time::Duration::from_secs(600) {
                bail!("{url} was not linked within 10 minutes");
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
    let lag = waited.elapsed().as_secs_f64();
    println!(
        "    queued linking: {written} writes linked {lag:.2} s after the phase ended ({:.0} linked/s over the phase and the wait)",
        written as f64 / (run.elapsed.as_secs_f64() + lag)
    );
    Ok(())
}

/// Creates generated Patients (each id once per server).
async fn creates(
    client: &reqwest::Client,
    target: &Target,
    all: &Arc<Vec<::mpi::generator::Record>>,
    next: &Arc<std::sync::atomic::AtomicUsize>,
    clients: usize,
    seconds: u64,
) -> Run<bool> {
    let start = next.load(std::sync::atomic::Ordering::Relaxed);
    let run = timed(clients, seconds, {
        let (client, base, all) = (client.clone(), target.base.clone(), all.clone());
        move |n| {
            let mut patient = all[(start + n) % all.len()].patient.clone();
            patient["id"] = Value::String(timed_id(&all, start + n));
            let client = client.clone();
            let url = format!("{base}/Patient/{}", patient["id"].as_str().unwrap_or("x"));
            async move {
                match client
                    .put(url)
                    .header("content-type", "application/fhir+json")
                    .header("prefer", "return=minimal")
                    .body(patient.to_string())
                    .send()
                    .await
                {
                    Ok(r) => r.status() == 201,
                    Err(_) => false,
                }
            }
        }
    })
    .await;
    next.fetch_add(run.samples.len(), std::sync::atomic::Ordering::Relaxed);
    run
}

fn report(round: usize, mpi: bool, clients: usize, run: &Run<bool>) -> (f64, f64) {
    let ok = run.samples.iter().filter(|s| s.outcome).count();
    let latencies = run.latencies();
    let (p50, p95) = (latencies.ms(0.50), latencies.ms(0.95));
    println!(
        "round {} mpi={:<3} create c={clients}: {:>6.0} writes/s  p50 {p50:>6.2} ms  p95 {p95:>6.2} ms  errors {}",
        round + 1,
        if mpi { "on" } else { "off" },
        ok as f64 / run.elapsed.as_secs_f64(),
        run.samples.len() - ok
    );
    (p50, p95)
}

/// Seeds Patients with a batch Bundle of PUTs.
async fn load(client: &reqwest::Client, base: &str, patients: &[Value]) -> Result<()> {
    let entries: Vec<Value> = patients
        .iter()
        .map(|p| {
            serde_json::json!({"resource": p, "request": {"method": "PUT",
                "url": format!("Patient/{}", p["id"].as_str().unwrap_or_default())}})
        })
        .collect();
    let bundle =
        serde_json::json!({"resourceType": "Bundle", "type": "transaction", "entry": entries});
    let response = client
        .post(base)
        .header("content-type", "application/fhir+json")
        .header("prefer", "return=minimal")
        .body(bundle.to_string())
        .send()
        .await?;
    if !response.status().is_success() {
        bail!("seeding failed: {}", response.text().await?);
    }
    Ok(())
}
