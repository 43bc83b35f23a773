//! Issue 8's benchmarks on the search benchmark's population (about 99
//! resources per patient, loaded once): `export` times a system-level Bulk
//! Data `$export` from kick-off to manifest and the download of its files;
//! `view` times materialising a 10-column Observation view.

use crate::cpu;
use crate::harness::{cpu_split, http_client, wait_until_up};
use crate::search::load::{already_loaded, load};
use anyhow::{Result, bail};
use bench::population::Population;
use clap::Args as ClapArgs;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, ClapArgs)]
pub struct Args {
    /// FHIR base URL of a running Baraza.
    #[arg(long, default_value = "http://127.0.0.1:8080/fhir")]
    base: String,
    /// Patients in the population (about 99 resources each); loaded unless
    /// the server holds it already.
    #[arg(long, default_value_t = 2_000)]
    patients: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Concurrent transactions while loading.
    #[arg(long, default_value_t = 2)]
    load_clients: usize,
    /// `export`: also a de-identified export.
    #[arg(long)]
    deidentify: bool,
}

async fn prepare(args: &Args) -> Result<reqwest::Client> {
    let client = http_client()?;
    wait_until_up(&client, &args.base).await?;
    let population = Population::new(args.seed, args.patients);
    if already_loaded(&client, &args.base).await? {
        println!("# the population is loaded already");
    } else {
        load(&client, &args.base, &population, args.load_clients).await?;
    }
    Ok(client)
}

/// `baraza-bench export`.
pub async fn export(args: Args) -> Result<()> {
    let client = prepare(&args).await?;
    export_once(&client, &args.base, "$export").await?;
    if args.deidentify {
        export_once(&client, &args.base, "$export?deidentify=safe-harbor").await?;
    }
    Ok(())
}

async fn export_once(client: &reqwest::Client, base: &str, kick_off: &str) -> Result<()> {
    let before = cpu::snapshot(cpu::GROUPS);
    let started = Instant::now();
    let response = client
        .get(format!("{base}/{kick_off}"))
        .header("accept", "application/fhir+json")
        .header("prefer", "respond-async")
        .send()
        .await?;
    if response.status() != 202 {
        bail!(
            "{kick_off} answered {}: {}",
            response.status(),
            response.text().await?
        );
    }
    let status_url = response
        .headers()
        .get("content-location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let manifest: Value = loop {
        let response = client.get(&status_url).send().await?;
        match response.status().as_u16() {
            202 => tokio::time::sleep(Duration::from_millis(200)).await,
            200 => break response.json().await?,
            other => bail!("{status_url} answered {other}: {}", response.text().await?),
        }
    };
    let job_secs = started.elapsed().as_secs_f64();
    let job_cpu = cpu::used(&before, &cpu::snapshot(cpu::GROUPS));
    let outputs = manifest["output"].as_array().cloned().unwrap_or_default();
    let resources: i64 = outputs.iter().filter_map(|o| o["count"].as_i64()).sum();
    println!(
        "{kick_off}: {resources} resources in {} files in {job_secs:.1} s: {:.0} resources/s  cpu[{}]",
        outputs.len(),
        resources as f64 / job_secs,
        cpu_split(&job_cpu)
    );
    let before = cpu::snapshot(cpu::GROUPS);
    let started = Instant::now();
    let (mut bytes, mut lines) = (0usize, 0usize);
    for output in &outputs {
        let mut response = client
            .get(output["url"].as_str().unwrap_or_default())
            .header("accept", "application/fhir+ndjson")
            .send()
            .await?;
        if !response.status().is_success() {
            bail!("{} answered {}", output["url"], response.status());
        }
        while let Some(chunk) = response.chunk().await? {
            bytes += chunk.len();
            lines += chunk.iter().filter(|b| **b == b'\n').count();
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "download: {lines} lines, {:.0} MB in {secs:.1} s: {:.0} resources/s, {:.0} MB/s  cpu[{}]",
        bytes as f64 / 1e6,
        lines as f64 / secs,
        bytes as f64 / 1e6 / secs,
        cpu_split(&cpu::used(&before, &cpu::snapshot(cpu::GROUPS)))
    );
    if lines as i64 != resources {
        bail!("the files hold {lines} lines, the manifest counts {resources}");
    }
    let _ = client.delete(&status_url).send().await;
    Ok(())
}

/// The 10-column Observation view of `baraza-bench view`.
fn observation_view() -> Value {
    json!({"resourceType": "ViewDefinition", "name": "bench_observations", "status": "active",
        "resource": "Observation",
        "select": [{"column": [
            {"name": "id", "path": "getResourceKey()", "type": "id"},
            {"name": "patient_id", "path": "subject.getReferenceKey(Patient)", "type": "id"},
            {"name": "encounter_id", "path": "encounter.getReferenceKey(Encounter)", "type": "id"},
            {"name": "status", "path": "status", "type": "code"},
            {"name": "category", "path": "category.coding.first().code", "type": "code"},
            {"name": "code_system", "path": "code.coding.first().system", "type": "uri"},
            {"name": "code", "path": "code.coding.first().code", "type": "code"},
            {"name": "effective", "path": "effective.ofType(dateTime)", "type": "dateTime"},
            {"name": "value", "path": "value.ofType(Quantity).value", "type": "decimal"},
            {"name": "unit", "path": "value.ofType(Quantity).code", "type": "code"}]}]})
}

/// `baraza-bench view`.
pub async fn view(args: Args) -> Result<()> {
    let client = prepare(&args).await?;
    let response = client
        .put(format!("{}/ViewDefinition/bench-observations", args.base))
        .header("content-type", "application/fhir+json")
        .body(observation_view().to_string())
        .send()
        .await?;
    if !response.status().is_success() {
        bail!(
            "storing the view answered {}: {}",
            response.status(),
            response.text().await?
        );
    }
    for round in 1..=2 {
        let before = cpu::snapshot(cpu::GROUPS);
        let started = Instant::now();
        let response = client
            .post(format!(
                "{}/ViewDefinition/bench-observations/$materialize",
                args.base
            ))
            .send()
            .await?;
        let secs = started.elapsed().as_secs_f64();
        let status = response.status();
        let body: Value = response.json().await?;
        if !status.is_success() {
            bail!("$materialize answered {status}: {body}");
        }
        let rows = body["parameter"][1]["valueInteger"].as_i64().unwrap_or(0);
        println!(
            "$materialize (round {round}) {}: {rows} rows in {secs:.1} s: {:.0} rows/s  cpu[{}]",
            body["parameter"][0]["valueString"]
                .as_str()
                .unwrap_or_default(),
            rows as f64 / secs,
            cpu_split(&cpu::used(&before, &cpu::snapshot(cpu::GROUPS)))
        );
    }
    Ok(())
}
