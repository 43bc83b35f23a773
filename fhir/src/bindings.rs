//! Terminology bindings of the R4 base definitions (`ElementDefinition.
//! binding`: strength and value set per element path), and the coded values
//! of a resource that fall under one: each `code`, `Coding` and
//! `CodeableConcept` element with a binding, with its FHIRPath location.
//! Whether a code is in the value set is the terminology service's
//! question; this module only finds what to ask.

use crate::definitions::{
    PROFILES_RESOURCES_GZ, PROFILES_TYPES_GZ, ValueKind, bundle_resources, gunzip, structure_model,
};
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strength {
    Required,
    Extensible,
    Preferred,
    Example,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub strength: Strength,
    /// The value set's canonical, possibly with `|version`.
    pub value_set: String,
}

#[derive(Deserialize)]
struct Definition {
    #[serde(rename = "resourceType")]
    resource_type: String,
    #[serde(default)]
    derivation: Option<String>,
    #[serde(default)]
    snapshot: Option<Snapshot>,
}

#[derive(Deserialize)]
struct Snapshot {
    element: Vec<RawElement>,
}

#[derive(Deserialize)]
struct RawElement {
    path: String,
    #[serde(default)]
    binding: Option<RawBinding>,
}

#[derive(Deserialize)]
struct RawBinding {
    strength: String,
    #[serde(rename = "valueSet", default)]
    value_set: Option<String>,
}

/// Every binding of the base resources and datatypes, by element path
/// (`Patient.gender`, `HumanName.use`, `Observation.value[x]`).
pub fn bindings() -> &'static HashMap<String, Binding> {
    static CELL: OnceLock<HashMap<String, Binding>> = OnceLock::new();
    CELL.get_or_init(|| {
        let mut map = HashMap::new();
        for text in [gunzip(PROFILES_TYPES_GZ), gunzip(PROFILES_RESOURCES_GZ)] {
            for def in bundle_resources::<Definition>(&text) {
                if def.resource_type != "StructureDefinition"
                    || def.derivation.as_deref() == Some("constraint")
                {
                    continue;
                }
                for element in def.snapshot.map(|s| s.element).unwrap_or_default() {
                    let Some(b) = element.binding else { continue };
                    let Some(value_set) = b.value_set else {
                        continue;
                    };
                    let strength = match b.strength.as_str() {
                        "required" => Strength::Required,
                        "extensible" => Strength::Extensible,
                        "preferred" => Strength::Preferred,
                        _ => Strength::Example,
                    };
                    map.entry(element.path).or_insert(Binding {
                        strength,
                        value_set,
                    });
                }
            }
        }
        map
    })
}

/// A code, with its system for Codings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Code {
    pub system: Option<String>,
    pub code: String,
    pub display: Option<String>,
}

/// One bound element of a resource.
#[derive(Debug, Clone)]
pub struct CodedValue {
    /// FHIRPath of the element: `Patient.contact[0].gender`.
    pub expression: String,
    pub binding: &'static Binding,
    /// A `code` element (its system is implied by the value set).
    pub bare_code: bool,
    /// The codes (one for `code` and `Coding`; each coding of a
    /// CodeableConcept, possibly none).
    pub codes: Vec<Code>,
}

/// The bound coded elements of `resource` whose binding is not `example`.
pub fn coded_values(resource: &Value) -> Vec<CodedValue> {
    let mut out = Vec::new();
    if let Some(t) = resource.get("resourceType").and_then(Value::as_str) {
        walk_node(t, resource, t, &mut out, 0);
    }
    out
}

fn walk_node(node_name: &str, value: &Value, path: &str, out: &mut Vec<CodedValue>, depth: usize) {
    let model = structure_model();
    let Some(node) = model.node_named(node_name) else {
        return;
    };
    let Some(object) = value.as_object() else {
        return;
    };
    if depth > 32 {
        return;
    }
    for (key, child) in object {
        let Some((element, ty)) = node.lookup(key) else {
            continue;
        };
        let items: Vec<(String, &Value)> = match child {
            Value::Array(list) => list
                .iter()
                .enumerate()
                .map(|(i, v)| (format!("{path}.{key}[{i}]"), v))
                .collect(),
            other => vec![(format!("{path}.{key}"), other)],
        };
        let binding = bindings()
            .get(&*element.path)
            .filter(|b| b.strength != Strength::Example);
        for (at, item) in items {
            match (ty.code.as_ref(), binding) {
                ("code", Some(binding)) => {
                    if let Some(code) = item.as_str() {
                        out.push(CodedValue {
                            expression: at,
                            binding,
                            bare_code: true,
                            codes: vec![Code {
                                system: None,
                                code: code.to_owned(),
                                display: None,
                            }],
                        });
                    }
                    continue;
                }
                ("Coding", Some(binding)) => {
                    out.push(CodedValue {
                        expression: at.clone(),
                        binding,
                        bare_code: false,
                        codes: coding(item).into_iter().collect(),
                    });
                }
                ("CodeableConcept", Some(binding)) => {
                    let codes = item
                        .get("coding")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(coding)
                        .collect();
                    out.push(CodedValue {
                        expression: at.clone(),
                        binding,
                        bare_code: false,
                        codes,
                    });
                }
                _ => {}
            }
            match ty.kind {
                ValueKind::Complex(id) => {
                    if let Some(child_node) = model.node(id) {
                        walk_node(&child_node.name, item, &at, out, depth + 1);
                    }
                }
                ValueKind::Resource => {
                    if let Some(t) = item.get("resourceType").and_then(Value::as_str) {
                        walk_node(t, item, &at, out, depth + 1);
                    }
                }
                ValueKind::Primitive { .. } => {}
            }
        }
    }
}

/// Rewords the JSON schema's complaint about a code outside its `enum`
/// (the schema lists the codes of required bindings to small value sets)
/// so that it names the value set, as the terminology check would.
pub fn explain_enum_issues(resource: &Value, issues: &mut [crate::outcome::Issue]) {
    if !issues
        .iter()
        .any(|i| i.diagnostics.contains("is not one of"))
    {
        return;
    }
    let values = coded_values(resource);
    for issue in issues
        .iter_mut()
        .filter(|i| i.diagnostics.contains("is not one of"))
    {
        let bound = values.iter().find(|v| {
            v.binding.strength == Strength::Required && issue.expression.contains(&v.expression)
        });
        if let Some(v) = bound {
            let code = v.codes.first().map_or("", |c| c.code.as_str());
            issue.diagnostics = format!(
                "the code {code:?} is not in the value set {} (required binding)",
                v.binding.value_set
            );
            issue.code = crate::outcome::IssueCode::CodeInvalid;
        }
    }
}

fn coding(v: &Value) -> Option<Code> {
    Some(Code {
        system: v.get("system").and_then(Value::as_str).map(str::to_owned),
        code: v.get("code")?.as_str()?.to_owned(),
        display: v.get("display").and_then(Value::as_str).map(str::to_owned),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn gender_has_a_required_binding() {
        let b = &bindings()["Patient.gender"];
        assert_eq!(b.strength, Strength::Required);
        assert!(
            b.value_set
                .starts_with("http://hl7.org/fhir/ValueSet/administrative-gender")
        );
    }

    #[test]
    fn finds_bound_values_with_their_paths() {
        let patient = json!({
            "resourceType": "Patient",
            "gender": "nonsense",
            "name": [{"use": "official", "family": "X"}],
            "contact": [{"gender": "male"}],
            "maritalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", "code": "M"}]}
        });
        let found = coded_values(&patient);
        let paths: Vec<&str> = found.iter().map(|v| v.expression.as_str()).collect();
        assert!(paths.contains(&"Patient.gender"), "{paths:?}");
        assert!(paths.contains(&"Patient.name[0].use"), "{paths:?}");
        assert!(paths.contains(&"Patient.contact[0].gender"), "{paths:?}");
        assert!(paths.contains(&"Patient.maritalStatus"), "{paths:?}");
        let gender = found
            .iter()
            .find(|v| v.expression == "Patient.gender")
            .unwrap();
        assert!(gender.bare_code);
        assert_eq!(gender.codes[0].code, "nonsense");
    }
}
