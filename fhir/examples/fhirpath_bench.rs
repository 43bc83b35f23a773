//! Times FHIRPath as search indexing uses it: every R4 search-parameter
//! expression that applies to Patient (base Patient, Resource or
//! DomainResource) evaluated against a typical Patient, the same for an
//! Observation, reported as time per resource.
//!
//! `cargo run --release -p fhir --example fhirpath_bench`
//!
//! With a directory argument (an unpacked `hl7.fhir.r4.examples` package)
//! it also evaluates, on every resource there, every search-parameter
//! expression for its type, and reports errors and the mean time:
//! `cargo run --release -p fhir --example fhirpath_bench -- <dir>`

use fhir::fhirpath::{Env, Expression, evaluate};
use serde_json::Value;
use std::hint::black_box;
use std::time::Instant;

const PATIENT: &str = include_str!("../tests/fhirpath/input/patient-example.json");
const OBSERVATION: &str = include_str!("../tests/fhirpath/input/observation-example.json");

/// Whether a search parameter with base `base` applies to resource type
/// `rt` (its own, or `Resource`/`DomainResource` for all types).
fn applies(base: Option<&str>, rt: &str) -> bool {
    match base {
        Some("Resource") => true,
        Some("DomainResource") => !matches!(rt, "Bundle" | "Binary" | "Parameters"),
        Some(b) => b == rt,
        None => false,
    }
}

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
                .is_some_and(|b| b.iter().any(|t| applies(t.as_str(), rt)))
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

/// Every applicable search expression on every resource in `dir`.
fn bench_dir(dir: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        eprintln!("cannot read {}", dir.display());
        return;
    };
    let mut by_type: std::collections::HashMap<String, Vec<Expression>> = Default::default();
    let env = Env::new();
    let (mut resources, mut evaluations, mut items) = (0usize, 0usize, 0usize);
    let mut errors = Vec::new();
    let mut elapsed = std::time::Duration::ZERO;
    let mut slowest: Vec<(std::time::Duration, String)> = Vec::new();
    for entry in entries.flatten() {
        let Ok(text) = std::fs::read_to_string(entry.path()) else {
            continue;
        };
        let Ok(resource) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        let Some(rt) = resource["resourceType"].as_str() else {
            continue;
        };
        let exprs = by_type
            .entry(rt.to_owned())
            .or_insert_with(|| expressions_for(rt));
        resources += 1;
        let start = Instant::now();
        for e in exprs.iter() {
            evaluations += 1;
            match evaluate(e, &resource, &env) {
                Ok(out) => items += out.len(),
                Err(err) => errors.push(format!(
                    "{}: {}: {err}",
                    entry.file_name().to_string_lossy(),
                    e.source()
                )),
            }
        }
        let took = start.elapsed();
        elapsed += took;
        slowest.push((took, entry.file_name().to_string_lossy().into_owned()));
    }
    slowest.sort_by_key(|s| std::cmp::Reverse(s.0));
    println!(
        "{resources} resources, {evaluations} evaluations, {items} index items, {} errors; {:.1} µs per resource",
        errors.len(),
        elapsed.as_secs_f64() * 1e6 / resources.max(1) as f64
    );
    for (took, name) in slowest.iter().take(3) {
        println!("  slowest: {name} {took:?}");
    }
    for e in errors.iter().take(20) {
        println!("  {e}");
    }
}

fn main() {
    let start = Instant::now();
    let _ = fhir::definitions::structure_model();
    let _ = fhir::definitions::search_parameters_bundle();
    println!("definitions loaded in {:?}", start.elapsed());
    bench("Patient", PATIENT);
    bench("Observation", OBSERVATION);
    if let Some(dir) = std::env::args().nth(1) {
        bench_dir(std::path::Path::new(&dir));
    }
}
