//! Evaluates every FHIRPath invariant of the R4 resource StructureDefinitions
//! on every resource in a directory (an unpacked `hl7.fhir.r4.examples`
//! package), on each element the invariant is attached to, and reports the
//! evaluation errors (engine gaps) and the invariants found false.
//!
//! `cargo run --release -p fhir --example fhirpath_invariants -- <dir>`

use fhir::fhirpath::{Env, Expression, evaluate, evaluate_items};
use serde_json::Value;
use std::collections::HashMap;

/// (element path, [(constraint key, expression)]) per resource type.
type Invariants = HashMap<String, Vec<(Expression, Vec<(String, Expression)>)>>;

fn load_invariants() -> Invariants {
    let bundle = fhir::definitions::parse_gz_json(include_bytes!(
        "../definitions/profiles-resources.json.gz"
    ));
    let mut out = Invariants::new();
    let entries = bundle["entry"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    for sd in entries.iter().map(|e| &e["resource"]) {
        if sd["resourceType"] != "StructureDefinition" || sd["kind"] != "resource" {
            continue;
        }
        let Some(id) = sd["id"].as_str() else {
            continue;
        };
        let mut list = Vec::new();
        for element in sd["snapshot"]["element"].as_array().into_iter().flatten() {
            let path = element["path"].as_str().unwrap_or("").replace("[x]", "");
            let constraints: Vec<(String, Expression)> = element["constraint"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| {
                    let key = c["key"].as_str()?.to_owned();
                    Some((key, Expression::parse(c["expression"].as_str()?).ok()?))
                })
                .collect();
            if let (false, Ok(path)) = (constraints.is_empty(), Expression::parse(&path)) {
                list.push((path, constraints));
            }
        }
        out.insert(id.to_owned(), list);
    }
    out
}

fn main() {
    let Some(dir) = std::env::args().nth(1) else {
        eprintln!("usage: fhirpath_invariants <directory of R4 JSON resources>");
        return;
    };
    let Ok(entries) = std::fs::read_dir(&dir) else {
        eprintln!("cannot read {dir}");
        return;
    };
    let invariants = load_invariants();
    // R4's own invariants apply `as()` to collections (dom-3).
    let env = Env::new().with_lenient_as(true);
    let (mut resources, mut evaluations) = (0usize, 0usize);
    let mut errors: Vec<String> = Vec::new();
    let mut falses: HashMap<String, usize> = HashMap::new();
    for entry in entries.flatten() {
        let Ok(text) = std::fs::read_to_string(entry.path()) else {
            continue;
        };
        let Ok(resource) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        let Some(list) = resource["resourceType"]
            .as_str()
            .and_then(|rt| invariants.get(rt))
        else {
            continue;
        };
        resources += 1;
        for (path, constraints) in list {
            let Ok(context) = evaluate(path, &resource, &env) else {
                continue;
            };
            for item in &context {
                for (key, expr) in constraints {
                    evaluations += 1;
                    match evaluate_items(expr, &resource, vec![item.clone()], &env) {
                        Ok(out) if out.len() == 1 && out[0].as_bool() == Some(false) => {
                            *falses.entry(key.clone()).or_default() += 1;
                        }
                        Ok(_) => {}
                        Err(e) => errors.push(format!(
                            "{} {key}: {e}",
                            entry.file_name().to_string_lossy()
                        )),
                    }
                }
            }
        }
    }
    println!(
        "{resources} resources, {evaluations} invariant evaluations, {} errors",
        errors.len()
    );
    for e in errors.iter().take(20) {
        println!("  {e}");
    }
    let mut falses: Vec<(String, usize)> = falses.into_iter().collect();
    falses.sort_by_key(|f| std::cmp::Reverse(f.1));
    println!("false (key, count): {falses:?}");
}
