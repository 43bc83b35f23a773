//! The REST-core benchmark: read-by-id at 1, 16 and 64 clients, creates,
//! and transaction throughput for 100- and 1,000-entry bundles.

use crate::harness::{
    Latencies, Run, counted, cpu_split, http_client, settle, timed, wait_until_up,
};
use anyhow::{Result, bail};
use bench::synthetic;
use clap::Args as ClapArgs;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

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
    latencies: Latencies,
    cpu: Vec<(String, f64)>,
    errors: usize,
}

impl Phase {
    /// Counts a run whose requests return whether they succeeded and how
    /// many resources they carried.
    fn new(name: &str, run: Run<reqwest::Result<(bool, usize)>>) -> Phase {
        let (mut resources, mut errors) = (0, 0);
        for sample in &run.samples {
            match sample.outcome {
                Ok((true, count)) => resources += count,
                _ => errors += 1,
            }
        }
        Phase {
            name: name.to_owned(),
            requests: run.samples.len(),
            resources,
            elapsed: run.elapsed,
            latencies: run.latencies(),
            cpu: run.cpu,
            errors,
        }
    }

    fn print(&self) {
        let secs = self.elapsed.as_secs_f64();
        println!(
            "{:<28} {:>9.0} req/s {:>10.0} res/s  p50 {:>8.2} ms  p99 {:>8.2} ms  errors {}  cpu[{}] over {:.1}s",
            self.name,
            self.requests as f64 / secs,
            self.resources as f64 / secs,
            self.latencies.ms(0.50),
            self.latencies.ms(0.99),
            self.errors,
            cpu_split(&self.cpu),
            secs
        );
    }
}

pub async fn run(args: Args) -> Result<()> {
    let client = http_client()?;
    let base = args.base.trim_end_matches('/').to_owned();
    wait_until_up(&client, &base).await?;
    println!(
        "# baraza-bench rest against {base}; {} s per phase",
        args.seconds
    );
    let ids = seed_patients(&client, &base, args.patients).await?;
    settle(
        &format!("seeded {} patients", ids.len()),
        args.settle_seconds,
    )
    .await;
    let ids = Arc::new(ids);
    for clients in [1usize, 16, 64] {
        let run = timed(clients, args.seconds, {
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
        Phase::new(&format!("read-by-id c={clients}"), run).print();
    }
    for clients in [1usize, 16] {
        let run = timed(clients, args.seconds, {
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
        Phase::new(&format!("create c={clients}"), run).print();
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
            let run = counted(clients, n_bundles, {
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
            })
            .await;
            Phase::new(&format!("transaction {entries} c={clients}"), run).print();
        }
    }
    Ok(())
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
