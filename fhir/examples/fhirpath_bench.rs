//! Times FHIRPath as search indexing uses it: every R4 search-parameter
//! expression whose base is Patient (or Observation) evaluated against a
//! typical Patient (or Observation), reported as time per resource.
//!
//! `cargo run --release -p fhir --example fhirpath_bench`

use fhir::fhirpath::{Env, Expression, evaluate};
use serde_json::Value;
use std::hint::black_box;
use std::time::Instant;

const PATIENT: &str = include_str!("../tests/fhirpath/input/patient-example.json");
const OBSERVATION: &str = include_str!("../tests/fhirpath/input/observation-example.json");

/// The parsed expressions of the search parameters that apply to `rt`.
fn expressions_for(rt: &str) -> Vec<Expression> {
    let bundle = fhir::definitions::search_parameters_bundle();
    let entries = bundle["entry"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    entries
        .iter()
        .map(|e| &e["resource"])
        .filter(|sp| {
            sp["base"]
                .as_array()
                .is_some_and(|b| b.iter().any(|t| t.as_str() == Some(rt)))
        })
        .filter_map(|sp| sp["expression"].as_str())
        .filter_map(|src| match Expression::parse(src) {
            Ok(e) => Some(e),
            Err(err) => {
                eprintln!("skipping `{src}`: {err}");
                None
            }
        })
        .collect()
}

fn bench(rt: &str, json: &str) {
    let resource: Value = match serde_json::from_str(json) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("{rt}: {e}");
            return;
        }
    };
    let exprs = expressions_for(rt);
    let env = Env::new();
    let (mut items, mut errors) = (0usize, 0usize);
    for e in &exprs {
        match evaluate(e, &resource, &env) {
            Ok(out) => items += out.len(),
            Err(_) => errors += 1,
        }
    }
    // Warm up, then time whole-resource passes.
    let pass = || {
        for e in &exprs {
            let _ = black_box(evaluate(e, black_box(&resource), &env));
        }
    };
    for _ in 0..200 {
        pass();
    }
    let rounds = 5_000;
    let start = Instant::now();
    for _ in 0..rounds {
        pass();
    }
    let per_resource = start.elapsed() / rounds;
    // The slowest expressions, to show where the time goes.
    let mut costs: Vec<(f64, &str)> = exprs
        .iter()
        .map(|e| {
            let t = Instant::now();
            for _ in 0..2_000 {
                let _ = black_box(evaluate(e, black_box(&resource), &env));
            }
            (t.elapsed().as_secs_f64() * 1e9 / 2_000.0, e.source())
        })
        .collect();
    costs.sort_by(|a, b| b.0.total_cmp(&a.0));
    for (ns, src) in costs.iter().take(3) {
        println!(
            "  {ns:>7.0} ns  {}",
            src.chars().take(100).collect::<String>()
        );
    }
    println!(
        "{rt}: {} expressions, {items} index items, {errors} errors; {:.1} µs per resource ({:.0} ns per expression)",
        exprs.len(),
        per_resource.as_secs_f64() * 1e6,
        per_resource.as_secs_f64() * 1e9 / exprs.len().max(1) as f64,
    );
}

fn main() {
    let start = Instant::now();
    let _ = fhir::definitions::structure_model();
    let _ = fhir::definitions::search_parameters_bundle();
    println!("definitions loaded in {:?}", start.elapsed());
    bench("Patient", PATIENT);
    bench("Observation", OBSERVATION);
}
