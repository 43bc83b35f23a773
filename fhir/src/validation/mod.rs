//! Resource validation against the R4 definitions (being written).

use crate::outcome::{Issue, IssueCode};
use serde_json::Value;

/// Validates one resource; returns every problem found (errors and warnings).
pub fn validate_resource(resource: &Value) -> Vec<Issue> {
    match resource.get("resourceType").and_then(Value::as_str) {
        Some(name) if crate::ResourceType::parse(name).is_some() => Vec::new(),
        _ => vec![Issue::error(IssueCode::Structure, "unknown or missing resourceType").at("resourceType")],
    }
}
