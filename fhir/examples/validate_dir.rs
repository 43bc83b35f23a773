//! Validates every `*.json` resource file in a directory (files without a
//! `resourceType`, such as `package.json`, are skipped) and prints pass/fail
//! counts and the first issues of each failing file.
//!
//! `cargo run --release -p fhir --example validate_dir -- /tmp/fhirex/package`

use fhir::validation::validate_resource;
use std::path::PathBuf;
use std::time::Instant;

fn main() {
    let Some(dir) = std::env::args().nth(1) else {
        eprintln!("usage: validate_dir <directory> [max-issues-per-file]");
        std::process::exit(2);
    };
    let max_issues: usize = std::env::args()
        .nth(2)
        .and_then(|n| n.parse().ok())
        .unwrap_or(5);
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect(),
        Err(e) => {
            eprintln!("cannot read {dir}: {e}");
            std::process::exit(2);
        }
    };
    files.sort();
    let started = Instant::now();
    fhir::definitions::structure_model();
    println!("definitions loaded in {:?}", started.elapsed());

    let (mut passed, mut failed, mut skipped, mut warnings) = (0usize, 0usize, 0usize, 0usize);
    let mut validating = std::time::Duration::ZERO;
    for path in &files {
        let parsed = std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|text| {
                serde_json::from_str::<serde_json::Value>(&text).map_err(|e| e.to_string())
            });
        let resource = match parsed {
            Ok(value) if value.get("resourceType").is_some() => value,
            Ok(_) => {
                skipped += 1;
                continue;
            }
            Err(e) => {
                println!("FAIL {}: not JSON: {e}", path.display());
                failed += 1;
                continue;
            }
        };
        let t = Instant::now();
        let issues = validate_resource(&resource);
        validating += t.elapsed();
        let errors: Vec<_> = issues.iter().filter(|i| i.is_error()).collect();
        warnings += issues.len() - errors.len();
        if errors.is_empty() {
            passed += 1;
            continue;
        }
        failed += 1;
        println!("FAIL {} ({} errors)", path.display(), errors.len());
        for issue in errors.iter().take(max_issues) {
            println!(
                "    {} [{}] {}",
                issue.expression.join(", "),
                issue.code.as_str(),
                issue.diagnostics
            );
        }
    }
    println!(
        "passed {passed}, failed {failed}, skipped {skipped} (no resourceType); {warnings} warnings"
    );
    println!("total validation time {validating:?} (includes first-use schema compiles)");
}
