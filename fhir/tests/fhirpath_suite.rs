//! Runs the official FHIRPath test suite for FHIR R4 (`tests-fhir-r4.xml`,
//! copied with its JSON inputs into `tests/fhirpath/`). Every test must pass
//! except those in [`KNOWN_FAILURES`]; a known failure that starts passing
//! fails the run too, so the list stays accurate.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use fhir::fhirpath::{Env, Expression, Item, evaluate};
use serde_json::Value as Json;
use std::collections::HashMap;
use std::path::Path;

/// Tests that are expected to fail, each with the reason.
/// (Empty: the whole suite passes. Add `("testName", "reason")` entries
/// only for tests that are genuinely out of scope.)
const KNOWN_FAILURES: &[(&str, &str)] = &[];

struct Case {
    name: String,
    input: Option<String>,
    expression: String,
    invalid: bool,
    predicate: bool,
    ordered: bool,
    outputs: Vec<(Option<String>, String)>,
}

fn load_cases(xml: &str) -> Vec<Case> {
    let doc = roxmltree::Document::parse(xml).expect("suite XML parses");
    doc.descendants()
        .filter(|n| n.has_tag_name("test"))
        .map(|t| {
            let expr = t
                .children()
                .find(|c| c.has_tag_name("expression"))
                .expect("test has an expression");
            Case {
                name: t.attribute("name").unwrap_or("(unnamed)").to_owned(),
                input: t.attribute("inputfile").map(str::to_owned),
                expression: expr.text().unwrap_or("").to_owned(),
                invalid: expr.attribute("invalid").is_some(),
                predicate: t.attribute("predicate") == Some("true"),
                ordered: t.attribute("ordered") != Some("false"),
                outputs: t
                    .children()
                    .filter(|c| c.has_tag_name("output"))
                    .map(|o| {
                        (
                            o.attribute("type").map(str::to_owned),
                            o.text().unwrap_or("").to_owned(),
                        )
                    })
                    .collect(),
            }
        })
        .collect()
}

fn matches_output(item: &Item<'_>, ty: Option<&str>, expected: &str) -> bool {
    match ty {
        Some("boolean") => item.as_bool().map(|b| b.to_string()).as_deref() == Some(expected),
        Some("integer") => item.as_integer().map(|i| i.to_string()).as_deref() == Some(expected),
        Some("decimal") => match (item.as_decimal(), fhir::fhirpath::Decimal::parse(expected)) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        },
        Some("string" | "code" | "id" | "uri") => {
            item.as_str() == Some(expected) || item.to_text().as_deref() == Some(expected)
        }
        _ => item.to_literal() == expected,
    }
}

/// Runs one case; `Err` explains a failure.
fn run(case: &Case, inputs: &HashMap<String, Json>) -> Result<(), String> {
    let resource = match &case.input {
        Some(file) => inputs
            .get(file)
            .ok_or_else(|| format!("missing input {file}"))?,
        None => &Json::Null,
    };
    let parsed = Expression::parse(&case.expression);
    // Strict mode: the static check against the input's resource type.
    let root_type = resource.get("resourceType").and_then(Json::as_str);
    let checked = match &parsed {
        Ok(expr) => expr.check(root_type).map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    let env = Env::new();
    let result = match &parsed {
        Ok(expr) => evaluate(expr, resource, &env).map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    if case.invalid && checked.is_err() {
        return Ok(());
    }
    if let (Err(e), Ok(_)) = (&checked, &result) {
        return Err(format!("static check rejects a valid expression: {e}"));
    }
    if case.invalid {
        return match result {
            Err(_) => Ok(()),
            Ok(out) => Err(format!(
                "expected an error, got {:?}",
                out.iter().map(Item::to_literal).collect::<Vec<_>>()
            )),
        };
    }
    let mut out = result?;
    if case.predicate {
        let b = match out.as_slice() {
            [] => false,
            [x] => x.as_bool().unwrap_or(true),
            _ => true,
        };
        out = vec![Item::Boolean(b)];
    }
    let shown = || out.iter().map(Item::to_literal).collect::<Vec<_>>();
    if out.len() != case.outputs.len() {
        return Err(format!(
            "expected {} items, got {:?}",
            case.outputs.len(),
            shown()
        ));
    }
    let ok = if case.ordered {
        out.iter()
            .zip(&case.outputs)
            .all(|(item, (ty, text))| matches_output(item, ty.as_deref(), text))
    } else {
        let mut used = vec![false; out.len()];
        case.outputs.iter().all(|(ty, text)| {
            let found = out
                .iter()
                .enumerate()
                .position(|(k, item)| !used[k] && matches_output(item, ty.as_deref(), text));
            found.map(|k| used[k] = true).is_some()
        })
    };
    if ok {
        Ok(())
    } else {
        Err(format!("expected {:?}, got {:?}", case.outputs, shown()))
    }
}

#[test]
fn official_fhirpath_suite() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fhirpath");
    let xml = std::fs::read_to_string(dir.join("tests-fhir-r4.xml")).unwrap();
    let cases = load_cases(&xml);
    assert_eq!(
        cases.len(),
        935,
        "tests in tests-fhir-r4.xml (outside comments)"
    );
    let mut inputs = HashMap::new();
    for case in &cases {
        if let Some(file) = &case.input {
            if !inputs.contains_key(file) {
                let json_name = file.replace(".xml", ".json");
                let text = std::fs::read_to_string(dir.join("input").join(&json_name))
                    .unwrap_or_else(|e| panic!("{json_name}: {e}"));
                inputs.insert(file.clone(), serde_json::from_str(&text).unwrap());
            }
        }
    }
    let known: HashMap<&str, &str> = KNOWN_FAILURES.iter().copied().collect();
    let (mut passed, mut failed) = (0, 0usize);
    let mut problems = Vec::new();
    for case in &cases {
        let outcome = run(case, &inputs);
        match (&outcome, known.contains_key(case.name.as_str())) {
            (Ok(()), false) => passed += 1,
            (Ok(()), true) => {
                passed += 1;
                problems.push(format!(
                    "{}: passes now; remove it from KNOWN_FAILURES",
                    case.name
                ));
            }
            (Err(_), true) => failed += 1,
            (Err(e), false) => {
                failed += 1;
                problems.push(format!("{} `{}`: {e}", case.name, case.expression.trim()));
            }
        }
    }
    println!(
        "FHIRPath R4 suite: {passed} passed, {failed} failed, of {} ({} known failures)",
        cases.len(),
        KNOWN_FAILURES.len()
    );
    for p in &problems {
        println!("  {p}");
    }
    assert!(problems.is_empty(), "{} unexpected results", problems.len());
}
