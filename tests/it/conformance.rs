//! Conformance: every resource of the official R4 examples package
//! (`hl7.fhir.r4.examples` 4.0.1, CC0, committed unmodified under
//! tests/data) is stored with update-as-create under its own id and read
//! back equal apart from `meta`.

use crate::harness::{spawn_app_with, status_json};
use futures_util::StreamExt;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Read;

const PACKAGE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/data/hl7.fhir.r4.examples-4.0.1.tgz"
);

/// Examples that the specification's own rules reject, with the reason.
/// Everything else must load.
const KNOWN_INVALID: &[(&str, &str)] = &[
    (
        "SearchParameter/codesystem-extensions-CodeSystem-author",
        "SearchParameter.base (1..*) is missing",
    ),
    (
        "SearchParameter/codesystem-extensions-CodeSystem-effective",
        "SearchParameter.base (1..*) is missing",
    ),
    (
        "SearchParameter/codesystem-extensions-CodeSystem-end",
        "SearchParameter.base (1..*) is missing",
    ),
    (
        "SearchParameter/codesystem-extensions-CodeSystem-keyword",
        "SearchParameter.base (1..*) is missing",
    ),
    (
        "SearchParameter/codesystem-extensions-CodeSystem-workflow",
        "SearchParameter.base (1..*) is missing",
    ),
    (
        "SearchParameter/valueset-extensions-ValueSet-author",
        "SearchParameter.base (1..*) is missing",
    ),
    (
        "SearchParameter/valueset-extensions-ValueSet-effective",
        "SearchParameter.base (1..*) is missing",
    ),
    (
        "SearchParameter/valueset-extensions-ValueSet-end",
        "SearchParameter.base (1..*) is missing",
    ),
    (
        "SearchParameter/valueset-extensions-ValueSet-keyword",
        "SearchParameter.base (1..*) is missing",
    ),
    (
        "SearchParameter/valueset-extensions-ValueSet-workflow",
        "SearchParameter.base (1..*) is missing",
    ),
    (
        "SearchParameter/questionnaireresponse-extensions-QuestionnaireResponse-item-subject",
        "the id has 68 characters; the id datatype allows at most 64",
    ),
    (
        "ImplementationGuide/fhir",
        "name and status (1..1) are missing, and a manifest reference names the 68-character id above",
    ),
    ("Questionnaire/qs1", "32 nested items have no linkId (1..1)"),
];

fn examples() -> BTreeMap<(String, String), Value> {
    let file =
        std::fs::File::open(PACKAGE).expect("the examples package is committed under tests/data");
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut out = BTreeMap::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        if !path.ends_with(".json") {
            continue;
        }
        let mut text = String::new();
        entry.read_to_string(&mut text).unwrap();
        let Ok(resource) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        let (Some(t), Some(id)) = (resource["resourceType"].as_str(), resource["id"].as_str())
        else {
            continue;
        };
        out.insert((t.to_owned(), id.to_owned()), resource);
    }
    out
}

/// The resource as compact JSON text without `meta`, with `resourceType`
/// and `id` first (where the server puts them): comparing text also checks
/// that the order of every other key and the spelling of decimals survive
/// the round trip.
fn without_meta(v: Value) -> String {
    let Value::Object(mut map) = v else {
        return v.to_string();
    };
    map.shift_remove("meta");
    // The server owns a Subscription's status (requested → active, error).
    if map.get("resourceType").and_then(Value::as_str) == Some("Subscription") {
        map.shift_remove("status");
        map.shift_remove("error");
    }
    let mut ordered = serde_json::Map::new();
    for key in ["resourceType", "id"] {
        if let Some(value) = map.shift_remove(key) {
            ordered.insert(key.to_owned(), value);
        }
    }
    ordered.extend(map);
    Value::Object(ordered).to_string()
}

#[tokio::test]
async fn every_official_example_loads_and_reads_back() {
    let examples = examples();
    assert!(
        examples.len() > 5000,
        "found only {} examples",
        examples.len()
    );
    let app = spawn_app_with(|s| s.db_pool_size = 8).await;
    let app = &app;
    let results: Vec<(String, Result<(), String>)> =
        futures_util::stream::iter(examples.into_iter())
            .map(|((t, id), resource)| async move {
                let key = format!("{t}/{id}");
                let (status, body) = status_json(app.put(&key, &resource).await).await;
                // AuditEvent is Baraza's own audit trail, read-only over
                // FHIR (docs/audit.md): a client's AuditEvent is refused.
                if t == "AuditEvent" {
                    return match status {
                        405 => (key, Ok(())),
                        _ => (
                            key,
                            Err(format!("an AuditEvent write gave {status}: {body}")),
                        ),
                    };
                }
                if status != 201 && status != 200 {
                    return (key, Err(format!("{status}: {body}")));
                }
                let (status, read) = status_json(app.get(&key).await).await;
                if status != 200 {
                    return (key, Err(format!("read {status}: {read}")));
                }
                if without_meta(read) != without_meta(resource) {
                    return (key, Err("read back differs".to_string()));
                }
                (key, Ok(()))
            })
            .buffer_unordered(8)
            .collect()
            .await;
    let failures: Vec<&(String, Result<(), String>)> =
        results.iter().filter(|(_, r)| r.is_err()).collect();
    let n_pass = results.len() - failures.len();
    println!(
        "official R4 examples: {n_pass} of {} load and read back",
        results.len()
    );
    let unexpected: Vec<String> = failures
        .iter()
        .filter(|(key, _)| !KNOWN_INVALID.iter().any(|(k, _)| k == key))
        .map(|(key, r)| {
            format!(
                "{key}: {}",
                r.as_ref()
                    .err()
                    .map(|e| e.chars().take(600).collect::<String>())
                    .unwrap_or_default()
            )
        })
        .collect();
    assert!(
        unexpected.is_empty(),
        "{} examples failed:\n{}",
        unexpected.len(),
        unexpected.join("\n")
    );
    let stale: Vec<&str> = KNOWN_INVALID
        .iter()
        .filter(|(k, _)| !failures.iter().any(|(key, _)| key == k))
        .map(|(k, _)| *k)
        .collect();
    assert!(stale.is_empty(), "listed as invalid but loaded: {stale:?}");
}
