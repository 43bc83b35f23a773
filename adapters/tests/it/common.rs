//! Shared helpers: the example config, fixtures, validation and look-ups.

use adapters::dhis2::{Config, Mapped, RecordError};
use serde_json::Value;
use std::path::PathBuf;

pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The shipped example config (`examples/dhis2-t1d.yaml`).
pub fn config() -> Config {
    Config::load(&crate_dir().join("examples/dhis2-t1d.yaml")).unwrap()
}

pub fn fixture(name: &str) -> Value {
    let path = crate_dir().join("tests/fixtures/dhis2").join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// Fails with every issue if Baraza's validator finds an error in the
/// Bundle (every entry's resource is validated with it).
pub fn assert_valid(mapped: &Mapped) {
    let issues = fhir::validation::validate_resource(&mapped.bundle);
    let errors: Vec<String> = issues
        .iter()
        .filter(|issue| issue.is_error())
        .map(|issue| format!("{:?}: {}", issue.expression, issue.diagnostics))
        .collect();
    assert!(errors.is_empty(), "invalid Bundle:\n{}", errors.join("\n"));
    for entry in mapped.entries() {
        let resource = &entry["resource"];
        let url = format!(
            "{}/{}",
            resource["resourceType"].as_str().unwrap(),
            resource["id"].as_str().unwrap()
        );
        assert_eq!(entry["request"]["method"], "PUT");
        assert_eq!(entry["request"]["url"], url.as_str());
        assert!(entry["fullUrl"].as_str().unwrap().starts_with("urn:uuid:"));
    }
}

/// The resource `Type/id` in the Bundle.
pub fn resource<'a>(mapped: &'a Mapped, resource_type: &str, id: &str) -> &'a Value {
    mapped
        .resources(resource_type)
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("{resource_type}/{id} is not in the Bundle"))
}

pub fn count(mapped: &Mapped, resource_type: &str) -> usize {
    mapped.resources(resource_type).count()
}

/// The one error at exactly `path`.
pub fn error_at<'a>(mapped: &'a Mapped, path: &str) -> &'a RecordError {
    let found: Vec<&RecordError> = mapped.errors.iter().filter(|e| e.path == path).collect();
    assert_eq!(found.len(), 1, "errors at {path}: {:#?}", mapped.errors);
    found[0]
}

/// Every `reference` of `type` in the Bundle's resources names an entry of
/// the Bundle.
pub fn assert_references_resolve(mapped: &Mapped, types: &[&str]) {
    let ids: Vec<String> = mapped
        .entries()
        .iter()
        .map(|e| e["request"]["url"].as_str().unwrap().to_owned())
        .collect();
    let mut references = Vec::new();
    for entry in mapped.entries() {
        collect_references(&entry["resource"], &mut references);
    }
    for reference in references {
        let target_type = reference.split('/').next().unwrap();
        if types.contains(&target_type) {
            assert!(
                ids.contains(&reference),
                "{reference} does not resolve inside the Bundle"
            );
        }
    }
}

fn collect_references(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, item) in map {
                if key == "reference" {
                    out.push(item.as_str().unwrap().to_owned());
                } else {
                    collect_references(item, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_references(item, out)),
        _ => {}
    }
}
