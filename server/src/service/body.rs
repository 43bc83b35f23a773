//! Checks on a resource a client wants written: shape, type, id and the
//! validator's verdict, reported all at once.
//!
//! Status: failures of the base spec's structural rules (unknown elements,
//! wrong JSON types, malformed primitives) are 400; content rules (missing
//! required elements, invariants, bindings, business rules) are 422
//! (http.html#2.21.0.14).

use crate::error::{ApiError, Category};
use fhir::{Issue, IssueCode, ResourceType};
use serde_json::Value;

/// What the id in the body must be.
#[derive(Debug, Clone, Copy)]
pub enum IdRule<'a> {
    /// create: the server assigns the id; a client id is ignored.
    Ignored,
    /// update: the body's id must equal the URL's.
    MustEqual(&'a str),
}

/// Checks `resource` for a write of type `expected`: identity, then the
/// validator. Returns the warnings.
pub fn check_resource(
    resource: &Value,
    expected: ResourceType,
    id_rule: IdRule<'_>,
    location: Option<&str>,
) -> Result<Vec<Issue>, ApiError> {
    check_identity(resource, expected, id_rule, location)?;
    let at = |path: &str| relocate(path, location);
    let issues: Vec<Issue> = fhir::validation::validate_resource(resource)
        .into_iter()
        .map(|mut issue| {
            issue.expression = issue.expression.iter().map(|e| at(e)).collect();
            issue
        })
        .collect();
    if issues.iter().any(Issue::is_error) {
        return Err(ApiError::from_issues(category_of(&issues), issues));
    }
    Ok(issues)
}

/// Checks shape, resourceType and id only. `location` prefixes expressions
/// for Bundle entries (e.g. `Bundle.entry[3].resource`).
pub fn check_identity(
    resource: &Value,
    expected: ResourceType,
    id_rule: IdRule<'_>,
    location: Option<&str>,
) -> Result<(), ApiError> {
    let at = |path: &str| relocate(path, location);
    let Value::Object(map) = resource else {
        return Err(
            ApiError::invalid("the body must be a JSON object holding one FHIR resource")
                .at(at(expected.as_str())),
        );
    };
    match map.get("resourceType").and_then(Value::as_str) {
        None => {
            return Err(
                ApiError::invalid("the resource has no resourceType").at(at("resourceType"))
            );
        }
        Some(found) if found != expected.as_str() => {
            return Err(ApiError::invalid(format!(
                "resourceType {found:?} does not match the URL's type {expected}"
            ))
            .at(at("resourceType")));
        }
        Some(_) => {}
    }
    if let IdRule::MustEqual(url_id) = id_rule {
        match map.get("id") {
            None => {
                return Err(ApiError::invalid(format!(
                    "an update must carry the id {url_id:?} of the URL in the resource"
                ))
                .at(at(&format!("{expected}.id"))));
            }
            Some(Value::String(body_id)) if body_id == url_id => {}
            Some(other) => {
                return Err(ApiError::invalid(format!(
                    "the resource id {other} does not match the URL's id {url_id:?}"
                ))
                .at(at(&format!("{expected}.id"))));
            }
        }
    }
    Ok(())
}

/// 422 when every error is a content rule, else 400.
pub fn category_of(issues: &[Issue]) -> Category {
    let content_rule = |code: IssueCode| {
        matches!(
            code,
            IssueCode::Required
                | IssueCode::Invariant
                | IssueCode::CodeInvalid
                | IssueCode::BusinessRule
                | IssueCode::Processing
        )
    };
    if issues
        .iter()
        .filter(|i| i.is_error())
        .all(|i| content_rule(i.code))
    {
        Category::Unprocessable
    } else {
        Category::Invalid
    }
}

/// Rewrites `Patient.name[0]` to `Bundle.entry[3].resource.name[0]`.
fn relocate(path: &str, location: Option<&str>) -> String {
    match location {
        None => path.to_owned(),
        Some(prefix) => match path.split_once('.') {
            Some((_, rest)) => format!("{prefix}.{rest}"),
            None if path == "resourceType" => format!("{prefix}.resourceType"),
            None => prefix.to_owned(),
        },
    }
}

/// Parses a request body as JSON, with a 400 that says where it broke.
pub fn parse_json(bytes: &[u8]) -> Result<Value, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::invalid("the request body is empty"));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        ApiError::invalid(format!("the body is not valid JSON: {e}"))
            .with_code(IssueCode::Structure)
    })
}
