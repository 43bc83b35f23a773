//! The `_summary` and `_elements` result parameters (search.html#summary,
//! search.html#elements): pure functions that cut a resource down to the
//! requested subset, driven by the R4 StructureDefinitions
//! (`ElementDefinition.isSummary` and `min`).
//!
//! - `_summary=true` keeps the elements marked `isSummary`, recursively:
//!   inside a kept complex element only its summary children stay. R4 marks
//!   every datatype property except `Attachment.data`, `SampledData.data`,
//!   `Signature.targetFormat`/`sigFormat`/`data` (and `Extension.url`/`value`,
//!   `Narrative`) as summary, and the `id` and `extension` of types and
//!   backbone elements are not; `text`, `contained`, `extension` and (in the
//!   published R4 snapshots) the top-level `modifierExtension` are not either.
//! - `_summary=text` keeps `text`, `id`, `meta` and the top-level mandatory
//!   elements; `_summary=data` removes `text`; `_summary=false` changes
//!   nothing; `_summary=count` is for searches (no resources are returned).
//! - `_elements=a,b` keeps the listed top-level elements plus `id`, `meta`
//!   and the mandatory top-level elements ("servers SHOULD always return
//!   mandatory elements whether they are requested or not").
//!
//! A primitive's `_name` companion (its `id` and extensions, json.html) is
//! kept exactly when the primitive is. Whenever something is removed, the
//! result carries the `SUBSETTED` tag in `meta.tag` (once), so that it is not
//! mistaken for the complete resource. `resourceType` is always kept.

use crate::definitions::{
    ElementInfo, ElementType, StructureModel, TypeNode, ValueKind, structure_model,
};
use serde_json::{Map, Value, json};
use std::fmt;
use std::str::FromStr;

/// The system of the `SUBSETTED` tag (v3 ObservationValue code system).
pub const SUBSETTED_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/v3-ObservationValue";
/// The code marking a resource that is not complete.
pub const SUBSETTED_CODE: &str = "SUBSETTED";

/// The value of the `_summary` parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SummaryMode {
    /// Only the elements marked `isSummary`.
    True,
    /// Only `text`, `id`, `meta` and the top-level mandatory elements.
    Text,
    /// Everything but `text`.
    Data,
    /// Search only: the count of matches, without the resources.
    Count,
    /// The whole resource.
    False,
}

impl SummaryMode {
    const ALL: [(SummaryMode, &'static str); 5] = [
        (SummaryMode::True, "true"),
        (SummaryMode::Text, "text"),
        (SummaryMode::Data, "data"),
        (SummaryMode::Count, "count"),
        (SummaryMode::False, "false"),
    ];

    /// Parses a `_summary` value: exactly `true`, `text`, `data`, `count` or
    /// `false` (codes are case-sensitive).
    pub fn parse(value: &str) -> Result<SummaryMode, InvalidSummaryMode> {
        Self::ALL
            .iter()
            .find(|(_, code)| *code == value)
            .map(|(mode, _)| *mode)
            .ok_or_else(|| InvalidSummaryMode {
                value: value.to_owned(),
                message: format!(
                    "Invalid _summary value '{value}': expected one of true, text, data, count, false"
                ),
            })
    }

    /// The parameter value, e.g. `data`.
    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(mode, _)| *mode == self)
            .map_or("false", |(_, code)| code)
    }
}

impl FromStr for SummaryMode {
    type Err = InvalidSummaryMode;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        SummaryMode::parse(value)
    }
}

impl fmt::Display for SummaryMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `_summary` value that is not one of the five codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidSummaryMode {
    /// The rejected parameter value.
    pub value: String,
    /// A message for an OperationOutcome.
    pub message: String,
}

impl fmt::Display for InvalidSummaryMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for InvalidSummaryMode {}

/// The `_summary` form of a resource (search.html#summary).
///
/// `False` returns it unchanged. `Count` has no resource form (a search
/// returns no entries); should a resource still be rendered, it gets the
/// `True` form. A resource whose type is not an R4 resource type is returned
/// unchanged by `True`/`Text` (there is no definition to follow); `Data`
/// removes its `text` regardless. Nested resources (`Bundle.entry.resource`,
/// `Parameters.parameter.resource`) are kept whole when their element is
/// kept; `contained` is not a summary element.
pub fn summarize(resource: &Value, mode: SummaryMode) -> Value {
    let Some(object) = resource.as_object() else {
        return resource.clone();
    };
    let model = structure_model();
    let node = resource_node(model, object);
    let mut removed = false;
    let out = match (mode, node) {
        (SummaryMode::False, _)
        | (SummaryMode::True | SummaryMode::Count | SummaryMode::Text, None) => {
            return resource.clone();
        }
        (SummaryMode::Data, _) => {
            let mut out = Map::new();
            for (key, value) in object {
                if key == "text" {
                    removed = true;
                } else {
                    out.insert(key.clone(), value.clone());
                }
            }
            out
        }
        (SummaryMode::Text, Some(node)) => {
            filter_top(object, node, &mut removed, |key, element, _| {
                key == "text" || element.min > 0
            })
        }
        (SummaryMode::True | SummaryMode::Count, Some(node)) => {
            summary_object(model, object, node, true, &mut removed)
        }
    };
    finish(out, removed)
}

/// The `_elements` form of a resource (search.html#elements), and the
/// requested names that are not elements of its type (for a warning).
///
/// Each name is a top-level element name (`value` keeps whichever
/// `value[x]` is present) or the JSON name of one choice type
/// (`valueQuantity`). Names are trimmed; empty names are ignored; the
/// unknown list has no duplicates and keeps the request's order. `id`,
/// `meta`, `resourceType` and the mandatory (min > 0) elements are always
/// kept. A resource whose type is not an R4 resource type is returned
/// unchanged, with every name reported unknown.
pub fn select_elements(resource: &Value, elements: &[&str]) -> (Value, Vec<String>) {
    let mut unknown: Vec<String> = Vec::new();
    let mut by_element: Vec<&str> = Vec::new();
    let mut by_json_name: Vec<&str> = Vec::new();
    let model = structure_model();
    let node = resource
        .as_object()
        .and_then(|object| resource_node(model, object));
    for name in elements.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
        let found = node.and_then(|node| {
            if let Some(element) = node.element(name) {
                by_element.push(&element.path);
                Some(())
            } else if name.starts_with('_') {
                None
            } else {
                let (_, ty) = node.lookup(name)?;
                by_json_name.push(&ty.json_name);
                Some(())
            }
        });
        if found.is_none() && !unknown.iter().any(|u| u == name) {
            unknown.push(name.to_owned());
        }
    }
    let (Some(object), Some(node)) = (resource.as_object(), node) else {
        return (resource.clone(), unknown);
    };
    let mut removed = false;
    let out = filter_top(object, node, &mut removed, |_, element, ty| {
        element.min > 0
            || by_element.contains(&&*element.path)
            || by_json_name.contains(&&*ty.json_name)
    });
    (finish(out, removed), unknown)
}

/// The node of the resource's (concrete R4) type.
fn resource_node<'m>(
    model: &'m StructureModel,
    object: &Map<String, Value>,
) -> Option<&'m TypeNode> {
    model.resource(object.get("resourceType")?.as_str()?)
}

/// The element and type a JSON property names: `valueQuantity` and
/// `_birthDate` (a primitive's companion) name `value[x]` and `birthDate`.
fn lookup<'n>(node: &'n TypeNode, key: &str) -> Option<(&'n ElementInfo, &'n ElementType)> {
    node.lookup(key.strip_prefix('_').unwrap_or(key))
}

/// Keeps `resourceType`, `id`, `meta`, and the top-level properties whose
/// element `keep` accepts (whole values, with their `_name` companions).
fn filter_top(
    object: &Map<String, Value>,
    node: &TypeNode,
    removed: &mut bool,
    keep: impl Fn(&str, &ElementInfo, &ElementType) -> bool,
) -> Map<String, Value> {
    let mut out = Map::new();
    for (key, value) in object {
        let kept = matches!(key.as_str(), "resourceType" | "id" | "meta")
            || lookup(node, key).is_some_and(|(element, ty)| keep(key, element, ty));
        if kept {
            out.insert(key.clone(), value.clone());
        } else {
            *removed = true;
        }
    }
    out
}

/// The `_summary=true` form of one object described by `node`: its summary
/// elements, complex ones reduced recursively. At the top level
/// (`resource`), `resourceType`, `id` and `meta` are kept whole.
fn summary_object(
    model: &StructureModel,
    object: &Map<String, Value>,
    node: &TypeNode,
    resource: bool,
    removed: &mut bool,
) -> Map<String, Value> {
    let mut out = Map::new();
    for (key, value) in object {
        if resource && matches!(key.as_str(), "resourceType" | "id" | "meta") {
            out.insert(key.clone(), value.clone());
            continue;
        }
        let kept = match lookup(node, key) {
            Some((element, ty)) if element.is_summary => match ty.kind {
                // An extension (a backbone `modifierExtension`) is meaningful
                // only whole: its `url` and `value[x]` are not summary.
                ValueKind::Complex(id) if !key.starts_with('_') && &*ty.code != "Extension" => {
                    match model.node(id) {
                        Some(child) => summary_value(model, value, child, removed),
                        None => Some(value.clone()),
                    }
                }
                _ => Some(value.clone()),
            },
            _ => None,
        };
        match kept {
            Some(value) => {
                out.insert(key.clone(), value);
            }
            None => *removed = true,
        }
    }
    out
}

/// The summary form of a complex value (an object or an array of them);
/// `None` when nothing of it remains (objects may not be empty in FHIR JSON).
fn summary_value(
    model: &StructureModel,
    value: &Value,
    node: &TypeNode,
    removed: &mut bool,
) -> Option<Value> {
    match value {
        Value::Object(object) => {
            let out = summary_object(model, object, node, false, removed);
            (!out.is_empty()).then_some(Value::Object(out))
        }
        Value::Array(items) => {
            let kept: Vec<Value> = items
                .iter()
                .filter_map(|item| summary_value(model, item, node, removed))
                .collect();
            if kept.len() < items.len() {
                *removed = true;
            }
            (!kept.is_empty()).then_some(Value::Array(kept))
        }
        other => Some(other.clone()),
    }
}

/// Adds the `SUBSETTED` tag when something was removed.
fn finish(out: Map<String, Value>, removed: bool) -> Value {
    if removed {
        Value::Object(add_subsetted_tag(out))
    } else {
        Value::Object(out)
    }
}

/// Adds the `SUBSETTED` tag to `meta.tag` unless it is there already; a
/// missing `meta` is created after `id` (after `resourceType` without an
/// `id`). A `meta` or `meta.tag` of the wrong JSON type is left alone.
fn add_subsetted_tag(mut object: Map<String, Value>) -> Map<String, Value> {
    let tag = || json!({"system": SUBSETTED_SYSTEM, "code": SUBSETTED_CODE});
    if let Some(meta) = object.get_mut("meta") {
        if let Some(meta) = meta.as_object_mut() {
            match meta.get_mut("tag") {
                Some(Value::Array(tags)) => {
                    if !tags.iter().any(is_subsetted) {
                        tags.push(tag());
                    }
                }
                Some(_) => {}
                None => {
                    meta.insert("tag".to_owned(), Value::Array(vec![tag()]));
                }
            }
        }
        return object;
    }
    let anchor = if object.contains_key("id") {
        "id"
    } else {
        "resourceType"
    };
    let meta = json!({"tag": [tag()]});
    let mut out = Map::new();
    let mut placed = false;
    for (key, value) in object {
        let at_anchor = key == anchor;
        out.insert(key, value);
        if at_anchor && !placed {
            out.insert("meta".to_owned(), meta.clone());
            placed = true;
        }
    }
    if !placed {
        out.insert("meta".to_owned(), meta);
    }
    out
}

fn is_subsetted(tag: &Value) -> bool {
    tag.get("system").and_then(Value::as_str) == Some(SUBSETTED_SYSTEM)
        && tag.get("code").and_then(Value::as_str) == Some(SUBSETTED_CODE)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
