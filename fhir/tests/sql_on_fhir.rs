//! Runs the official SQL-on-FHIR v2 test suite (the JSON files copied
//! unmodified into `tests/sql-on-fhir/`) against `fhir::view`. Every test
//! must pass; failures are listed by file and title.
//!
//! Conventions, as the suite's own runners apply them: a test's view is
//! evaluated over all of the file's `resources`; `expectError` passes when
//! parsing or evaluating fails; `expect` rows are compared as JSON objects
//! (every column present, numbers by value) without regard to row order;
//! `expectColumns` is the exact ordered column list.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use fhir::view::ViewDefinition;
use serde_json::Value as Json;
use std::path::Path;

/// Runs one test; `Err` explains a failure.
fn run(test: &Json, resources: &[Json]) -> Result<(), String> {
    let expect_error = test.get("expectError").and_then(Json::as_bool) == Some(true);
    let outcome = ViewDefinition::parse(&test["view"]).and_then(|view| {
        let mut rows = Vec::new();
        for resource in resources {
            for row in view.evaluate(resource)? {
                rows.push(Json::Object(view.row_object(row)));
            }
        }
        Ok((view, rows))
    });
    let (view, rows) = match (outcome, expect_error) {
        (Err(_), true) => return Ok(()),
        (Ok(_), true) => return Err("expected an error, got none".into()),
        (Err(e), false) => return Err(format!("unexpected error: {e}")),
        (Ok(result), false) => result,
    };
    if let Some(expected) = test.get("expectColumns").and_then(Json::as_array) {
        let expected: Vec<&str> = expected.iter().filter_map(Json::as_str).collect();
        let actual: Vec<&str> = view.columns().iter().map(|c| c.name.as_str()).collect();
        if actual != expected {
            return Err(format!("columns {actual:?}, expected {expected:?}"));
        }
    }
    let Some(expected) = test.get("expect").and_then(Json::as_array) else {
        return match test.get("expectColumns") {
            Some(_) => Ok(()),
            None => Err("test has neither expect, expectColumns nor expectError".into()),
        };
    };
    let mut want: Vec<String> = expected.iter().map(canonical).collect();
    let mut got: Vec<String> = rows.iter().map(canonical).collect();
    want.sort();
    got.sort();
    if want == got {
        Ok(())
    } else {
        Err(format!(
            "rows differ\n      got:      {}\n      expected: {}",
            got.join(" "),
            want.join(" ")
        ))
    }
}

/// JSON text with object keys sorted and numbers normalised (`1.50` and
/// `1.5`, `5` and `5.0` are the same value).
fn canonical(v: &Json) -> String {
    match v {
        Json::Object(map) => {
            let mut entries: Vec<(&String, &Json)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let body: Vec<String> = entries
                .into_iter()
                .map(|(k, v)| format!("{}:{}", Json::String(k.clone()), canonical(v)))
                .collect();
            format!("{{{}}}", body.join(","))
        }
        Json::Array(items) => {
            let body: Vec<String> = items.iter().map(canonical).collect();
            format!("[{}]", body.join(","))
        }
        Json::Number(n) => {
            let text = n.to_string();
            if text.contains('.') {
                let t = text.trim_end_matches('0').trim_end_matches('.');
                if t == "-0" { "0".into() } else { t.to_owned() }
            } else {
                text
            }
        }
        other => other.to_string(),
    }
}

#[test]
fn sql_on_fhir_v2_suite() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sql-on-fhir");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("suite directory")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no suite files in {}", dir.display());
    let (mut total, mut passed) = (0, 0);
    let mut failures = Vec::new();
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let suite: Json = serde_json::from_str(&std::fs::read_to_string(file).unwrap())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let resources = suite["resources"].as_array().cloned().unwrap_or_default();
        let tests = suite["tests"].as_array().expect("tests array");
        let mut file_passed = 0;
        for test in tests {
            total += 1;
            let title = test["title"].as_str().unwrap_or("(untitled)");
            match run(test, &resources) {
                Ok(()) => file_passed += 1,
                Err(why) => failures.push(format!("{name} / {title}: {why}")),
            }
        }
        passed += file_passed;
        println!("{name}: {file_passed}/{}", tests.len());
    }
    println!("SQL-on-FHIR v2 suite: {passed}/{total} passed");
    for f in &failures {
        println!("FAIL {f}");
    }
    assert_eq!(
        passed,
        total,
        "{} of {total} tests failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
