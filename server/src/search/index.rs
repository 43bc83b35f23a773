//! Index extraction: the token rows a resource produces, computed at write
//! time and stored in the same transaction.

use super::registry::Registry;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexRow {
    pub param: &'static str,
    pub system: Option<String>,
    pub code: String,
}

/// ContactPoint.system codes: a value with one of these is a ContactPoint,
/// whose token is its value without a system (search.html#token).
const CONTACT_POINT_SYSTEMS: [&str; 7] = ["phone", "fax", "email", "pager", "url", "sms", "other"];

pub fn index_rows(resource_type: &str, resource: &Value) -> Vec<IndexRow> {
    let mut rows = Vec::new();
    for param in Registry::global().token_params(resource_type) {
        for path in &param.paths {
            let mut values = Vec::new();
            collect(resource, path, &mut values);
            for value in values {
                tokens_of(value, &mut |system, code| {
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
    }
    rows
}

fn collect<'a>(value: &'a Value, path: &[String], out: &mut Vec<&'a Value>) {
    match value {
        Value::Array(items) => items.iter().for_each(|item| collect(item, path, out)),
        _ => match path.split_first() {
            None => out.push(value),
            Some((head, rest)) => {
                if let Some(child) = value.get(head.as_str()) {
                    collect(child, rest, out);
                }
            }
        },
    }
}

fn tokens_of(value: &Value, emit: &mut dyn FnMut(Option<String>, String)) {
    let text = |v: &Value| v.as_str().map(str::to_owned);
    match value {
        Value::String(s) => emit(None, s.clone()),
        Value::Bool(b) => emit(None, b.to_string()),
        Value::Object(map) => {
            if let Some(Value::Array(codings)) = map.get("coding") {
                for coding in codings {
                    tokens_of(coding, emit);
                }
            } else if let Some(code) = map.get("code").and_then(text) {
                emit(map.get("system").and_then(text), code);
            } else if let Some(value) = map.get("value").and_then(text) {
                let system = map.get("system").and_then(text);
                match system {
                    Some(s) if CONTACT_POINT_SYSTEMS.contains(&s.as_str()) => emit(None, value),
                    other => emit(other, value),
                }
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
}
