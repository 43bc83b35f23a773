//! `baraza-bench terminology`: the terminology service's latencies against
//! a running Baraza that holds a synthetic SNOMED CT release
//! (`bench/terminology.sh` writes it with `write-rf2`, loads it with
//! `baraza terminology load` and times the load): `$validate-code` against
//! a cached R4 value set and against an implicit is-a value set of the
//! 100,000-concept system, `$expand` with a text filter over that system,
//! `$subsumes` and `$lookup`, one client, every request checked.

use crate::harness::{Latencies, counted, http_client, wait_until_up};
use anyhow::{Result, bail};
use terminology::formats::rf2::synthetic;

const SCT: &str = "http://snomed.info/sct";

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Writes a synthetic RF2 snapshot of `concepts` concepts into `dir`.
    WriteRf2 {
        #[arg(long)]
        dir: std::path::PathBuf,
        #[arg(long, default_value_t = 100_000)]
        concepts: usize,
    },
    /// Times the operations against `base`.
    Run {
        #[arg(long, default_value = "http://127.0.0.1:18181/fhir")]
        base: String,
        /// The size of the loaded synthetic release.
        #[arg(long, default_value_t = 100_000)]
        concepts: usize,
        /// Requests per operation.
        #[arg(long, default_value_t = 1_000)]
        requests: usize,
    },
}

pub async fn run(args: Args) -> Result<()> {
    match args.command {
        Command::WriteRf2 { dir, concepts } => {
            let summary = synthetic::write(&dir, concepts)?;
            println!(
                "wrote {} concepts, {} descriptions, {} is-a relationships to {}",
                summary.concepts,
                summary.descriptions,
                summary.is_a,
                dir.display()
            );
            Ok(())
        }
        Command::Run {
            base,
            concepts,
            requests,
        } => time_operations(&base, concepts, requests).await,
    }
}

/// A deterministic spread of concept numbers (no randomness crate needed).
fn pick(n: usize, concepts: usize) -> usize {
    (n.wrapping_mul(7_919).wrapping_add(13)) % concepts.max(1)
}

async fn time_operations(base: &str, concepts: usize, requests: usize) -> Result<()> {
    let client = http_client()?;
    wait_until_up(&client, base).await?;
    let root = synthetic::concept_id(0);
    let gender = "http://hl7.org/fhir/ValueSet/administrative-gender";
    let isa = format!("{SCT}?fhir_vs=isa/{}", synthetic::concept_id(1));
    let all = format!("{SCT}?fhir_vs");
    type Query = Box<dyn Fn(usize) -> (String, Vec<(String, String)>) + Send + Sync>;
    let phases: Vec<(&str, Query)> = vec![
        (
            "$validate-code, administrative-gender (cached)",
            Box::new(move |n| {
                let code = ["male", "female", "other", "unknown", "bogus"][n % 5];
                (
                    "ValueSet/$validate-code".into(),
                    vec![
                        ("url".into(), gender.into()),
                        (
                            "system".into(),
                            "http://hl7.org/fhir/administrative-gender".into(),
                        ),
                        ("code".into(), code.into()),
                    ],
                )
            }),
        ),
        (
            "$validate-code, SNOMED is-a value set (100k concepts, in the database)",
            Box::new(move |n| {
                (
                    "ValueSet/$validate-code".into(),
                    vec![
                        ("url".into(), isa.clone()),
                        ("system".into(), SCT.into()),
                        ("code".into(), synthetic::concept_id(pick(n, concepts))),
                        ("display".into(), synthetic::display(pick(n, concepts))),
                    ],
                )
            }),
        ),
        (
            "$expand, text filter over 100k concepts, count 10",
            Box::new(move |n| {
                // "concept 4711": every display has "concept"; the number's
                // prefix selects ~10-1,000 concepts.
                let filter = format!("concept {}", 100 + pick(n, 9_900));
                (
                    "ValueSet/$expand".into(),
                    vec![
                        ("url".into(), all.clone()),
                        ("filter".into(), filter),
                        ("count".into(), "10".into()),
                    ],
                )
            }),
        ),
        (
            "$subsumes (ancestor, descendant)",
            Box::new(move |n| {
                let b = pick(n, concepts).max(1);
                let a = (b - 1) / 8;
                (
                    "CodeSystem/$subsumes".into(),
                    vec![
                        ("system".into(), SCT.into()),
                        ("codeA".into(), synthetic::concept_id(a)),
                        ("codeB".into(), synthetic::concept_id(b)),
                    ],
                )
            }),
        ),
        (
            "$lookup",
            Box::new(move |n| {
                (
                    "CodeSystem/$lookup".into(),
                    vec![
                        ("system".into(), SCT.into()),
                        ("code".into(), synthetic::concept_id(pick(n, concepts))),
                    ],
                )
            }),
        ),
    ];
    println!("# terminology operations, one client, {requests} requests each (root {root})");
    println!(
        "{:<72} {:>8} {:>8} {:>8}",
        "operation", "p50 ms", "p95 ms", "p99 ms"
    );
    for (name, query) in phases {
        let query = std::sync::Arc::new(query);
        // Warm-up: caches and prepared plans.
        for n in 0..20 {
            let (path, params) = query(n);
            client
                .get(format!("{base}/{path}"))
                .query(&params)
                .send()
                .await?;
        }
        let (client, base) = (client.clone(), base.to_owned());
        let run = counted(1, requests, move |n| {
            let (client, base, query) = (client.clone(), base.clone(), query.clone());
            async move {
                let (path, params) = query(n + 1_000);
                match client
                    .get(format!("{base}/{path}"))
                    .query(&params)
                    .send()
                    .await
                {
                    Ok(r) => r.status().as_u16(),
                    Err(_) => 0,
                }
            }
        })
        .await;
        if let Some(bad) = run.samples.iter().find(|s| s.outcome != 200) {
            bail!("{name}: request {} answered {}", bad.n, bad.outcome);
        }
        let l: Latencies = run.latencies();
        println!(
            "{name:<72} {:>8.2} {:>8.2} {:>8.2}",
            l.ms(0.5),
            l.ms(0.95),
            l.ms(0.99)
        );
    }
    Ok(())
}
