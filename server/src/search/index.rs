//! Index extraction: the token rows a resource produces, computed at write
//! time and stored in the same transaction.

use super::registry::Registry;
use fhir::fhirpath::{Env, Item, evaluate};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexRow {
    pub param: &'static str,
    pub system: Option<String>,
    pub code: String,
}

pub fn index_rows(resource_type: &str, resource: &Value) -> Vec<IndexRow> {
    let mut rows = Vec::new();
    let env = Env::new();
    for param in Registry::global().token_params(resource_type) {
        let items = match evaluate(&param.expression, resource, &env) {
            Ok(items) => items,
            Err(e) => {
                // A resource the expression cannot be evaluated on is not
                // indexed for that parameter; the write still succeeds.
                tracing::debug!(param = param.code, error = %e, "token expression failed");
                continue;
            }
        };
        for item in &items {
            tokens_of(item, &mut |system, code| {
                let row = IndexRow {
                    param: param.code,
                    system,
                    code,
                };
                if !rows.contains(&row) {
                    rows.push(row);
                }
            });
        }
    }
    rows
}

/// The (system, code) pairs of one value, by its FHIR type
/// (search.html#token).
fn tokens_of(item: &Item<'_>, emit: &mut dyn FnMut(Option<String>, String)) {
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
    let json = item.json();
    match item.type_name() {
        "Coding" => {
            if let Some(code) = text(json.and_then(|j| j.get("code"))) {
                emit(text(json.and_then(|j| j.get("system"))), code);
            }
        }
        "CodeableConcept" => {
            let codings = json.and_then(|j| j.get("coding")).and_then(Value::as_array);
            for coding in codings.into_iter().flatten() {
                if let Some(code) = text(coding.get("code")) {
                    emit(text(coding.get("system")), code);
                }
            }
        }
        "Identifier" => {
            if let Some(value) = text(json.and_then(|j| j.get("value"))) {
                emit(text(json.and_then(|j| j.get("system"))), value);
            }
        }
        // ContactPoint.system is a code (phone, email), not a URI: the
        // token is the value alone.
        "ContactPoint" => {
            if let Some(value) = text(json.and_then(|j| j.get("value"))) {
                emit(None, value);
            }
        }
        "boolean" | "Boolean" => {
            if let Some(b) = json.and_then(Value::as_bool).or_else(|| item.as_bool()) {
                emit(None, b.to_string());
            }
        }
        "code" | "string" | "uri" | "url" | "canonical" | "id" | "oid" | "uuid" | "String" => {
            if let Some(s) = item.to_text() {
                emit(None, s.into_owned());
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rows(resource_type: &str, resource: Value) -> Vec<(String, Option<String>, String)> {
        index_rows(resource_type, &resource)
            .into_iter()
            .map(|r| (r.param.to_string(), r.system, r.code))
            .collect()
    }

    #[test]
    fn identifiers_codes_and_tags_are_indexed() {
        let got = rows(
            "Patient",
            json!({"resourceType":"Patient","identifier":[{"system":"urn:sys","value":"42"}],
                   "gender":"female","meta":{"tag":[{"system":"urn:t","code":"x"}]}}),
        );
        assert!(got.contains(&("identifier".into(), Some("urn:sys".into()), "42".into())));
        assert!(got.contains(&("gender".into(), None, "female".into())));
        assert!(got.contains(&("_tag".into(), Some("urn:t".into()), "x".into())));
    }

    #[test]
    fn codeable_concepts_yield_each_coding() {
        let got = rows(
            "Observation",
            json!({"resourceType":"Observation","status":"final","code":{"coding":[
                {"system":"http://loinc.org","code":"8867-4"},{"system":"urn:local","code":"hr"}]}}),
        );
        assert!(got.contains(&(
            "code".into(),
            Some("http://loinc.org".into()),
            "8867-4".into()
        )));
        assert!(got.contains(&("code".into(), Some("urn:local".into()), "hr".into())));
        assert!(got.contains(&("status".into(), None, "final".into())));
    }

    #[test]
    fn contact_points_choice_types_and_filtered_expressions() {
        let got = rows(
            "Patient",
            json!({"resourceType":"Patient","telecom":[{"system":"phone","value":"+254700"},{"system":"email","value":"a@b.ke"}],
                   "active":true}),
        );
        assert!(got.contains(&("phone".into(), None, "+254700".into())));
        assert!(got.contains(&("email".into(), None, "a@b.ke".into())));
        assert!(!got.contains(&("phone".into(), None, "a@b.ke".into())));
        assert!(got.contains(&("telecom".into(), None, "+254700".into())));
        assert!(got.contains(&("active".into(), None, "true".into())));
        let got = rows(
            "Observation",
            json!({"resourceType":"Observation","status":"final","code":{"text":"x"},
                   "valueCodeableConcept":{"coding":[{"system":"http://snomed.info/sct","code":"260385009"}]}}),
        );
        assert!(got.contains(&(
            "value-concept".into(),
            Some("http://snomed.info/sct".into()),
            "260385009".into()
        )));
    }
}
