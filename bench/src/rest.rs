//! The REST-core benchmark: read-by-id at 1, 16 and 64 clients, creates,
//! and transaction throughput for 100- and 1,000-entry bundles.

use crate::cpu;
use anyhow::{Context, Result, bail};
use bench::synthetic;
use clap::Args as ClapArgs;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, ClapArgs)]
pub struct Args {
    /// FHIR base URL of a running Baraza.
    #[arg(long, default_value = "http://127.0.0.1:8080/fhir")]
    base: String,
    /// Seconds per timed phase.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Patients created before the read phases.
    #[arg(long, default_value_t = 1000)]
    patients: usize,
    /// Seconds to wait after seeding, so that autovacuum analyses the fresh
    /// tables as it would in any running deployment (autovacuum_naptime is
    /// one minute); without statistics PostgreSQL may pick poor plans.
    #[arg(long, default_value_t = 65)]
    settle_seconds: u64,
    /// 100-entry bundles posted per transaction phase.
    #[arg(long, default_value_t = 60)]
    small_bundles: usize,
    /// 1,000-entry bundles posted per transaction phase.
    #[arg(long, default_value_t = 12)]
    large_bundles: usize,
}

struct Phase {
    name: String,
    requests: usize,
    resources: usize,
    elapsed: Duration,
    latencies_us: Vec<u64>,
    cpu: Vec<(String, f64)>,
    errors: usize,
}

impl Phase {
    fn print(&self) {
        let mut sorted = self.latencies_us.clone();
        sorted.sort_unstable();
        let pct = |p: f64| {
            sorted
                .get(((sorted.len() as f64 * p) as usize).min(sorted.len().saturating_sub(1)))
                .copied()
                .unwrap_or(0)
        };
        let secs = self.elapsed.as_secs_f64();
        let cpu: Vec<String> = self
            .cpu
            .iter()
            .map(|(k, v)| format!("{k} {v:.1}s"))
            .collect();
        println!(
            "{:<28} {:>9.0} req/s {:>10.0} res/s  p50 {:>8.2} ms  p99 {:>8.2} ms  errors {}  cpu[{}] over {:.1}s",
            self.name,
            self.requests as f64 / secs,
            self.resources as f64 / secs,
            pct(0.50) as f64 / 1000.0,
            pct(0.99) as f64 / 1000.0,
            self.errors,
            cpu.join(", "),
            secs
        );
    }
}

pub async fn run(args: Args) -> Result<()> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(128)
        .build()?;
    let base = args.base.trim_end_matches('/').to_owned();
    wait_until_up(&client, &base).await?;
    println!(
        "# baraza-bench rest against {base}; {} s per phase",
        args.seconds
    );
    let ids = seed_patients(&client, &base, args.patients).await?;
    println!(
        "# seeded {} patients; waiting {} s for autovacuum to analyse",
        ids.len(),
        args.settle_seconds
    );
    tokio::time::sleep(Duration::from_secs(args.settle_seconds)).await;
    let ids = Arc::new(ids);
    for clients in [1usize, 16, 64] {
        let phase = timed(&format!("read-by-id c={clients}"), clients, args.seconds, {
            let (client, base, ids) = (client.clone(), base.clone(), ids.clone());
            move |n| {
                let url = format!("{base}/Patient/{}", ids[n % ids.len()]);
                let client = client.clone();
                async move {
                    client
                        .get(url)
                        .send()
                        .await
                        .map(|r| (r.status().as_u16() == 200, 1))
                }
            }
        })
        .await;
        phase.print();
    }
    for clients in [1usize, 16] {
        let phase = timed(&format!("create c={clients}"), clients, args.seconds, {
            let (client, base) = (client.clone(), base.clone());
            move |n| {
                let mut rng = synthetic::Rng::new(n as u64 + 1_000_000);
                let body = synthetic::patient(&mut rng, &format!("C{n}")).to_string();
                let request = client
                    .post(format!("{base}/Patient"))
                    .header("content-type", "application/fhir+json")
                    .body(body);
                async move {
                    request
                        .send()
                        .await
                        .map(|r| (r.status().as_u16() == 201, 1))
                }
            }
        })
        .await;
        phase.print();
    }
    for (entries, encounters, n_bundles) in [
        (101usize, 14usize, args.small_bundles),
        (997, 142, args.large_bundles),
    ] {
        for clients in [1usize, 2] {
            let bodies: Vec<String> = (0..n_bundles)
                .map(|i| {
                    synthetic::patient_bundle(
                        (entries * 1000 + i) as u64 + clients as u64 * 7,
                        encounters,
                    )
                    .to_string()
                })
                .collect();
            let bodies = Arc::new(bodies);
            let phase = counted(
                &format!("transaction {entries} c={clients}"),
                clients,
                n_bundles,
                {
                    let (client, base, bodies) = (client.clone(), base.clone(), bodies.clone());
                    move |n| {
                        let request = client
                            .post(base.clone())
                            .header("content-type", "application/fhir+json")
                            .body(bodies[n].clone());
                        async move {
                            request
                                .send()
                                .await
                                .map(|r| (r.status().as_u16() == 200, entries))
                        }
                    }
                },
            )
            .await;
            phase.print();
        }
    }
    Ok(())
}

/// Waits up to a minute for the server to answer /metadata.
async fn wait_until_up(client: &reqwest::Client, base: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match client.get(format!("{base}/metadata")).send().await {
            Ok(r) if r.status().is_success() => return Ok(()),
            Ok(r) if Instant::now() > deadline => bail!("{base}/metadata answered {}", r.status()),
            Err(e) if Instant::now() > deadline => return Err(e).context("is Baraza running?"),
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

async fn seed_patients(client: &reqwest::Client, base: &str, n: usize) -> Result<Vec<String>> {
    let mut ids = Vec::with_capacity(n);
    let mut rng = synthetic::Rng::new(42);
    for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
        let entries: Vec<Value> = chunk
            .iter()
            .map(|i| json!({"resource": synthetic::patient(&mut rng, &format!("S{i}")), "request": {"method": "POST", "url": "Patient"}}))
            .collect();
        let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": entries});
        let response: Value = client
            .post(base)
            .header("content-type", "application/fhir+json")
            .header("prefer", "return=minimal")
            .body(bundle.to_string())
            .send()
            .await?
            .json()
            .await?;
        for entry in response["entry"].as_array().map_or(&[][..], Vec::as_slice) {
            let location = entry["response"]["location"].as_str().unwrap_or_default();
            if let Some(id) = location.split('/').nth(1) {
                ids.push(id.to_owned());
            }
        }
    }
    if ids.len() != n {
        bail!("seeding created {} of {n} patients", ids.len());
    }
    Ok(ids)
}

/// Runs `clients` loops for `seconds`, each calling `make(n)` with a global
/// request counter.
async fn timed<F, Fut>(name: &str, clients: usize, seconds: u64, make: F) -> Phase
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = reqwest::Result<(bool, usize)>> + Send,
{
    let deadline = Instant::now() + Duration::from_secs(seconds);
    run_phase(name, clients, move |_| Instant::now() < deadline, make).await
}

/// Runs exactly `total` requests over `clients` loops.
async fn counted<F, Fut>(name: &str, clients: usize, total: usize, make: F) -> Phase
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = reqwest::Result<(bool, usize)>> + Send,
{
    run_phase(name, clients, move |n| n < total, make).await
}

async fn run_phase<C, F, Fut>(name: &str, clients: usize, keep_going: C, make: F) -> Phase
where
    C: Fn(usize) -> bool + Clone + Send + 'static,
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = reqwest::Result<(bool, usize)>> + Send,
{
    let counter = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let before = cpu::snapshot(cpu::GROUPS);
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (counter, keep_going, make) = (counter.clone(), keep_going.clone(), make.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let (mut resources, mut errors) = (0usize, 0usize);
                loop {
                    let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if !keep_going(n) {
                        break;
                    }
                    let t = Instant::now();
                    match make(n).await {
                        Ok((true, count)) => resources += count,
                        _ => errors += 1,
                    }
                    latencies.push(t.elapsed().as_micros() as u64);
                }
                (latencies, resources, errors)
            })
        })
        .collect();
    let mut phase = Phase {
        name: name.to_owned(),
        requests: 0,
        resources: 0,
        elapsed: Duration::ZERO,
        latencies_us: Vec::new(),
        cpu: Vec::new(),
        errors: 0,
    };
    for task in tasks {
        if let Ok((latencies, resources, errors)) = task.await {
            phase.requests += latencies.len();
            phase.latencies_us.extend(latencies);
            phase.resources += resources;
            phase.errors += errors;
        }
    }
    phase.elapsed = started.elapsed();
    phase.cpu = cpu::used(&before, &cpu::snapshot(cpu::GROUPS));
    phase
}
