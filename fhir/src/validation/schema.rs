//! The official R4 JSON Schema (`fhir.schema.json`) as a second opinion: one
//! compiled validator per resource type, built lazily and cached. Each
//! validator holds only the definitions reachable from its type, with
//! `ResourceList` made opaque: nested resources (contained, Bundle entries,
//! Parameters) are validated separately against their own type's validator.

use super::structure::FoundResource;
use crate::definitions::{JSON_SCHEMA_GZ, parse_gz_json};
use crate::id::RESOURCE_TYPES;
use crate::outcome::{Issue, IssueCode};
use jsonschema::Validator;
use jsonschema::error::ValidationErrorKind;
use jsonschema::paths::LocationSegment;
use serde_json::{Map, Value, json};
use std::collections::{HashMap, HashSet};
use std::fmt::Write;
use std::sync::OnceLock;

struct SchemaStore {
    /// `definitions` of the official schema, descriptions stripped.
    definitions: Map<String, Value>,
    /// Direct `$ref` targets of each definition.
    refs: HashMap<String, Vec<String>>,
    validators: [OnceLock<Option<Validator>>; RESOURCE_TYPES.len()],
}

fn store() -> &'static SchemaStore {
    static CELL: OnceLock<SchemaStore> = OnceLock::new();
    CELL.get_or_init(|| {
        let mut schema = parse_gz_json(JSON_SCHEMA_GZ);
        let mut definitions = match schema.get_mut("definitions").map(Value::take) {
            Some(Value::Object(map)) => map,
            _ => Map::new(),
        };
        // Nested resources get their own validator; see the module doc.
        definitions.insert("ResourceList".into(), json!({}));
        let mut refs = HashMap::new();
        for (name, definition) in definitions.iter_mut() {
            patch(definition);
            add_canonical_companions(definition);
            let mut targets = Vec::new();
            collect_refs(definition, &mut targets);
            refs.insert(name.clone(), targets);
        }
        SchemaStore {
            definitions,
            refs,
            validators: std::array::from_fn(|_| OnceLock::new()),
        }
    })
}

/// The published R4 schema omits the `_name` companion of canonical-typed
/// elements (json.html allows it for every primitive): add them.
fn add_canonical_companions(definition: &mut Value) {
    let Some(Value::Object(properties)) = definition.get_mut("properties") else {
        return;
    };
    let canonical = |schema: &Value| {
        schema
            .get("$ref")
            .is_some_and(|r| r == "#/definitions/canonical")
    };
    let missing: Vec<(String, bool)> = properties
        .iter()
        .filter(|(name, _)| !properties.contains_key(&format!("_{name}")))
        .filter_map(|(name, schema)| match schema.get("items") {
            Some(items) if canonical(items) => Some((name.clone(), true)),
            _ if canonical(schema) => Some((name.clone(), false)),
            _ => None,
        })
        .collect();
    for (name, is_array) in missing {
        let element = json!({"$ref": "#/definitions/Element"});
        let companion = if is_array {
            json!({"type": "array", "items": element})
        } else {
            element
        };
        properties.insert(format!("_{name}"), companion);
    }
}

/// ASCII whitespace, as `\s` means in the XML Schema and Java regexes the
/// FHIR patterns were written for (ECMA-262 and Rust `\s` include U+00A0,
/// which would reject strings and codes the spec accepts).
const WS: &str = r"[ \t\n\r\f\x0B]";
const NOT_WS: &str = r"[^ \t\n\r\f\x0B]";

/// Adjusts one schema definition: drops `description` annotations (not
/// properties named `description`), rewrites the whitespace classes of the
/// primitive patterns to ASCII, and adds `4.0.1` to the FHIRVersion enums
/// (the published R4 schema stops at `4.0.0`, rejecting every R4
/// `fhirVersion`).
fn patch(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if map.get("description").is_some_and(Value::is_string) {
                map.shift_remove("description");
            }
            if let Some(Value::String(pattern)) = map.get_mut("pattern") {
                let rewritten = match pattern.as_str() {
                    r"^\S*$" => Some(format!("^{NOT_WS}*$")),
                    r"^[^\s]+(\s[^\s]+)*$" => Some(format!("^{NOT_WS}+({WS}{NOT_WS}+)*$")),
                    r"^[ \r\n\t\S]+$" => Some(r"^[^\f\x0B]+$".to_owned()),
                    r"^(\s*([0-9a-zA-Z\+/=]){4}\s*)+$" => {
                        Some(format!("^({WS}*([0-9a-zA-Z+/=]){{4}}{WS}*)+$"))
                    }
                    _ => None,
                };
                if let Some(rewritten) = rewritten {
                    *pattern = rewritten;
                }
            }
            if let Some(Value::Array(options)) = map.get_mut("enum") {
                if options.iter().any(|o| o == "4.0.0") && !options.iter().any(|o| o == "4.0.1") {
                    options.push(Value::String("4.0.1".into()));
                }
            }
            map.values_mut().for_each(patch);
        }
        Value::Array(items) => items.iter_mut().for_each(patch),
        _ => {}
    }
}

fn collect_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                match (key.as_str(), child) {
                    ("$ref", Value::String(target)) => {
                        if let Some(name) = target.strip_prefix("#/definitions/") {
                            out.push(name.to_owned());
                        }
                    }
                    _ => collect_refs(child, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_refs(item, out)),
        _ => {}
    }
}

/// The cached validator of one resource type (compiled on first use).
fn validator(resource_type: &str) -> Option<&'static Validator> {
    let index = RESOURCE_TYPES.binary_search(&resource_type).ok()?;
    let store = store();
    store
        .validators
        .get(index)?
        .get_or_init(|| compile(store, resource_type))
        .as_ref()
}

fn compile(store: &SchemaStore, resource_type: &str) -> Option<Validator> {
    let mut reachable: HashSet<&str> = HashSet::new();
    let mut stack = vec![resource_type];
    while let Some(name) = stack.pop() {
        if reachable.insert(name) {
            if let Some(targets) = store.refs.get(name) {
                stack.extend(targets.iter().map(String::as_str));
            }
        }
    }
    let definitions: Map<String, Value> = store
        .definitions
        .iter()
        .filter(|(name, _)| reachable.contains(name.as_str()))
        .map(|(name, def)| (name.clone(), def.clone()))
        .collect();
    let schema = json!({
        "$schema": "http://json-schema.org/draft-06/schema#",
        "$ref": format!("#/definitions/{resource_type}"),
        "definitions": definitions,
    });
    jsonschema::draft6::options().build(&schema).ok()
}

/// Compiles the validators of the given resource types now (e.g. at server
/// start) instead of on first use.
pub fn warm_up<'a>(resource_types: impl IntoIterator<Item = &'a str>) {
    for resource_type in resource_types {
        let _ = validator(resource_type);
    }
}

/// Validates one found resource against its type's schema; issues carry
/// FHIRPath expressions under the resource's path.
pub(crate) fn validate(found: &FoundResource<'_>) -> Vec<Issue> {
    let Some(validator) = validator(found.resource_type) else {
        return Vec::new();
    };
    let mut issues = Vec::new();
    for error in validator.iter_errors(found.value) {
        let instance = error.instance();
        if instance.is_null() {
            continue; // nulls are judged by the structure walk (array alignment)
        }
        let code = match error.kind() {
            ValidationErrorKind::Required { property } => {
                let companion = property.as_str().map(|p| format!("_{p}"));
                if companion.is_some_and(|c| instance.get(&c).is_some()) {
                    continue; // a primitive with only extensions is present
                }
                IssueCode::Required
            }
            ValidationErrorKind::Enum { .. } | ValidationErrorKind::Constant { .. } => {
                IssueCode::CodeInvalid
            }
            ValidationErrorKind::AdditionalProperties { .. } => IssueCode::Structure,
            ValidationErrorKind::Type { .. } | ValidationErrorKind::Pattern { .. } => {
                IssueCode::Value
            }
            _ => IssueCode::Invalid,
        };
        let mut path = found.path.clone();
        for segment in error.instance_path().segments() {
            match segment {
                LocationSegment::Property(name) => {
                    path.push('.');
                    path.push_str(name.trim_start_matches('_'));
                }
                LocationSegment::Index(i) => {
                    let _ = write!(path, "[{i}]");
                }
            }
        }
        let mut message = error.to_string();
        if message.len() > 300 {
            let cut = (0..=300)
                .rev()
                .find(|i| message.is_char_boundary(*i))
                .unwrap_or(0);
            message.truncate(cut);
            message.push_str("...");
        }
        issues.push(Issue::error(code, format!("JSON schema: {message}")).at(path));
    }
    issues
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn schema_paths(value: &Value) -> Vec<String> {
        let found = FoundResource {
            path: "Observation".into(),
            resource_type: "Observation",
            value,
        };
        validate(&found)
            .into_iter()
            .flat_map(|i| i.expression)
            .collect()
    }

    #[test]
    fn numbers_work_with_arbitrary_precision() {
        let ok: Value = serde_json::from_str(
            r#"{"resourceType":"Observation","status":"final","code":{"text":"x"},
                "valueQuantity":{"value":1.50},"component":[{"code":{"text":"y"},
                "valueQuantity":{"value":123456789012345678901234567890.000000000000000001}}]}"#,
        )
        .unwrap();
        assert!(schema_paths(&ok).is_empty(), "{:?}", schema_paths(&ok));
        let bad = json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                         "valueQuantity": {"value": "1.50"}, "valueInteger": true});
        assert_eq!(
            schema_paths(&bad),
            [
                "Observation.valueQuantity.value",
                "Observation.valueInteger"
            ]
        );
    }

    #[test]
    fn schema_patches_apply() {
        let ok = json!({"resourceType": "Observation", "status": "final", "code": {"text": "CHEST\u{a0}"},
                        "instantiatesCanonical": ["http://x"], "_instantiatesCanonical": [{"id": "a"}]});
        // `instantiatesCanonical` is not an Observation element: only the
        // companion is known to be patched in, so check on a type that has one.
        let paths = schema_paths(&ok);
        assert!(paths.iter().all(|p| p == "Observation"), "{paths:?}");
        let found_cs = json!({"resourceType": "CapabilityStatement", "status": "active", "date": "2020",
                             "kind": "instance", "fhirVersion": "4.0.1", "format": ["json"],
                             "instantiates": ["http://x"], "_instantiates": [{"id": "i"}]});
        let found = FoundResource {
            path: "CapabilityStatement".into(),
            resource_type: "CapabilityStatement",
            value: &found_cs,
        };
        assert!(validate(&found).is_empty(), "{:?}", validate(&found));
    }
}
