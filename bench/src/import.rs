//! `baraza-bench import`: Bulk Data `$import` throughput. Generates
//! `--observations` Observations (vital signs and glucose of `--patients`
//! patients, each with an id, so every line is an update-or-create as an
//! exporting server's NDJSON would be), uploads them as one NDJSON body and
//! times the kick-off (the upload stored as ingest records) and the
//! processing (from the 202 to the final status: validation, bindings,
//! index rows, events, the records' bookkeeping), with the CPU split.
//! `--rounds` repeats the import with changed values (updates).

use crate::cpu;
use crate::harness::{cpu_split, http_client, wait_until_up};
use anyhow::{Result, bail};
use clap::Args as ClapArgs;
use serde_json::{Value, json};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, ClapArgs)]
pub struct Args {
    /// FHIR base URL of a running Baraza.
    #[arg(long, default_value = "http://127.0.0.1:8080/fhir")]
    base: String,
    /// Observations per import.
    #[arg(long, default_value_t = 100_000)]
    observations: usize,
    /// Patients the Observations are about.
    #[arg(long, default_value_t = 2_000)]
    patients: usize,
    /// Imports in a row (the later ones update every Observation).
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// Every n-th line is invalid (0: none), to show the cost of failures.
    #[arg(long, default_value_t = 0)]
    bad_every: usize,
}

/// LOINC vital signs and glucose: code, display, UCUM unit, low, high.
const CODES: [(&str, &str, &str, f64, f64); 5] = [
    ("8867-4", "Heart rate", "/min", 50.0, 120.0),
    ("8310-5", "Body temperature", "Cel", 35.5, 39.5),
    ("29463-7", "Body weight", "kg", 3.0, 120.0),
    ("8302-2", "Body height", "cm", 50.0, 200.0),
    ("2339-0", "Glucose", "mg/dL", 60.0, 300.0),
];

/// The NDJSON of one round.
fn ndjson(args: &Args, round: usize) -> String {
    let mut text = String::with_capacity(args.observations * 520);
    for i in 0..args.observations {
        if args.bad_every > 0 && i % args.bad_every == args.bad_every - 1 {
            let bad = json!({"resourceType": "Observation", "id": format!("imp-{i}"),
                "status": "not-a-status", "code": {"text": "x"}});
            let _ = writeln!(text, "{bad}");
            continue;
        }
        let (code, display, unit, low, high) = CODES[i % CODES.len()];
        // A cheap, deterministic spread of values and dates.
        let fraction = ((i * 7919 + round * 104_729) % 1000) as f64 / 1000.0;
        let value = ((low + (high - low) * fraction) * 10.0).round() / 10.0;
        let day = 1 + (i % 28);
        let month = 1 + (i / 28) % 12;
        let observation = json!({
            "resourceType": "Observation",
            "id": format!("imp-{i}"),
            "status": "final",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                "code": if code == "2339-0" { "laboratory" } else { "vital-signs" }}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": code, "display": display}], "text": display},
            "subject": {"reference": format!("Patient/imp-p{}", i % args.patients.max(1))},
            "effectiveDateTime": format!("2024-{month:02}-{day:02}T08:30:00Z"),
            "issued": format!("2024-{month:02}-{day:02}T09:00:00.000Z"),
            "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}
        });
        let _ = writeln!(text, "{observation}");
    }
    text
}

/// `baraza-bench import`.
pub async fn run(args: Args) -> Result<()> {
    let client = http_client()?;
    wait_until_up(&client, &args.base).await?;
    for round in 0..args.rounds {
        let body = ndjson(&args, round);
        let megabytes = body.len() as f64 / 1e6;
        let before = cpu::snapshot(cpu::GROUPS);
        let started = Instant::now();
        let response = client
            .post(format!("{}/$import", args.base))
            .header("content-type", "application/fhir+ndjson")
            .header("prefer", "respond-async")
            .body(body)
            .send()
            .await?;
        if response.status() != 202 {
            bail!(
                "$import answered {}: {}",
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
        let kick_off = started.elapsed().as_secs_f64();
        let kick_off_cpu = cpu::used(&before, &cpu::snapshot(cpu::GROUPS));
        println!(
            "round {}: kick-off (upload of {megabytes:.0} MB stored as {} records) {kick_off:.1} s: {:.0} lines/s  cpu[{}]",
            round + 1,
            args.observations,
            args.observations as f64 / kick_off,
            cpu_split(&kick_off_cpu)
        );
        let before = cpu::snapshot(cpu::GROUPS);
        let processing = Instant::now();
        let mut last_report = Instant::now();
        let done: Value = loop {
            let response = client.get(&status_url).send().await?;
            match response.status().as_u16() {
                202 => {
                    if last_report.elapsed() > Duration::from_secs(10) {
                        let progress = response
                            .headers()
                            .get("x-progress")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned();
                        println!("  {:.0} s: {progress}", processing.elapsed().as_secs_f64());
                        last_report = Instant::now();
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                200 => break response.json().await?,
                other => bail!("{status_url} answered {other}: {}", response.text().await?),
            }
        };
        let secs = processing.elapsed().as_secs_f64();
        let cpu_used = cpu::used(&before, &cpu::snapshot(cpu::GROUPS));
        let counts = &done["output"][0]["extension"]["https://baraza.dev/fhir/StructureDefinition/import-counts"];
        let written =
            counts["created"].as_i64().unwrap_or(0) + counts["updated"].as_i64().unwrap_or(0);
        let failed = counts["failed"].as_i64().unwrap_or(0);
        println!(
            "round {}: processing {written} written + {failed} failed in {secs:.1} s: {:.0} resources/s  cpu[{}]",
            round + 1,
            (written + failed) as f64 / secs,
            cpu_split(&cpu_used)
        );
        println!(
            "round {}: end to end {:.1} s: {:.0} resources/s; counts {counts}",
            round + 1,
            kick_off + secs,
            (written + failed) as f64 / (kick_off + secs)
        );
    }
    Ok(())
}
