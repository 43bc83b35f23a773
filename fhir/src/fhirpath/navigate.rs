//! Model-driven navigation of the resource JSON (element names, choice
//! elements, primitive `_name` companions, contained resources), `children()`
//! and the type tests behind `is`, `as`, `ofType` and `type()`.

use super::EvalError;
use super::parser::TypeSpec;
use super::value::{FhirType, Item, Node, TypeInfo, is_quantity_type, node_type_name};
use crate::definitions::{
    ElementType, NodeKind, Primitive, StructureModel, TypeNode, ValueKind, structure_model,
};
use serde_json::Value as Json;

fn element_type(ty: &ElementType) -> Option<FhirType> {
    match ty.kind {
        ValueKind::Primitive { primitive, .. } => Some(FhirType::Primitive(primitive)),
        ValueKind::Complex(id) => Some(FhirType::Node(id)),
        ValueKind::Resource => None,
    }
}

/// Pushes the items for one JSON property (value and `_name` companion),
/// flattening arrays. `ty` `None` means "a resource, typed by itself".
fn push_values<'a>(
    value: Option<&'a Json>,
    ext: Option<&'a Json>,
    ty: Option<FhirType>,
    out: &mut Vec<Item<'a>>,
) {
    let make = |v: Option<&'a Json>, e: Option<&'a Json>| match (ty, v) {
        (None, Some(v)) => Some(Item::resource(v)),
        (None, None) => None,
        (Some(t), v) => {
            let v = v.filter(|v| !v.is_null());
            let e = e.filter(|e| !e.is_null());
            (v.is_some() || e.is_some()).then_some(Item::fhir(v, e, t))
        }
    };
    match (value, ext) {
        (Some(Json::Array(vs)), e) => {
            out.reserve(vs.len());
            let es = e.and_then(Json::as_array);
            for (k, v) in vs.iter().enumerate() {
                out.extend(make(Some(v), es.and_then(|es| es.get(k))));
            }
        }
        (None, Some(Json::Array(es))) => {
            for e in es {
                out.extend(make(None, Some(e)));
            }
        }
        (v, e) => out.extend(make(v, e)),
    }
}

fn infer_type(v: &Json) -> Option<FhirType> {
    if v.get("resourceType").is_some() {
        None
    } else {
        Some(FhirType::Unknown)
    }
}

/// The model node for an element type, with primitives mapped to their
/// type node (for `id` and `extension`).
fn node_of(model: &StructureModel, ty: FhirType) -> Option<&TypeNode> {
    match ty {
        FhirType::Node(id) => model.node(id),
        FhirType::Primitive(p) => model.node_named(p.code()),
        FhirType::Unknown => None,
    }
}

/// The properties `name` and (for primitives) `ext_name` of a JSON object.
/// FHIR objects are small, so one pass over the entries beats two hashed
/// lookups (serde_json's map hashes with SipHash).
fn get_with_companion<'a>(
    map: &'a serde_json::Map<String, Json>,
    name: &str,
    ext_name: &str,
    primitive: bool,
) -> (Option<&'a Json>, Option<&'a Json>) {
    if map.len() > 24 {
        let ext = if primitive { map.get(ext_name) } else { None };
        return (map.get(name), ext);
    }
    let (mut value, mut ext) = (None, None);
    for (k, v) in map {
        if k == name {
            value = Some(v);
            if !primitive {
                break;
            }
        } else if primitive && k == ext_name {
            ext = Some(v);
        }
    }
    (value, ext)
}

/// Navigates to the child element `name` of `item` (`ext_name` is `_name`).
pub fn child<'a>(item: &Item<'a>, name: &str, ext_name: &str, out: &mut Vec<Item<'a>>) {
    let node = match item {
        Item::Fhir(_) if name.starts_with(|c: char| c.is_ascii_uppercase()) => return,
        Item::Fhir(n) => n,
        Item::Type(t) => {
            match name {
                "name" => out.push(Item::String(t.name.clone().into())),
                "namespace" => out.push(Item::String(t.namespace.into())),
                _ => {}
            }
            return;
        }
        _ => return,
    };
    let model = structure_model();
    // Primitives keep their `id`/`extension` in the `_name` companion.
    let map = match node.ty {
        FhirType::Primitive(_) => node.ext.and_then(Json::as_object),
        _ => node.value.and_then(Json::as_object),
    };
    let Some(map) = map else { return };
    let Some(type_node) = node_of(model, node.ty) else {
        // Unknown structure: plain JSON navigation.
        if let Some(v) = map.get(name) {
            let ty = match v {
                Json::Array(a) => a.first().and_then(infer_type),
                v => infer_type(v),
            };
            push_values(Some(v), map.get(ext_name), ty, out);
        }
        return;
    };
    if let Some((element, ty)) = type_node.lookup(name) {
        if !element.choice {
            let primitive = matches!(ty.kind, ValueKind::Primitive { .. });
            let (value, ext) = get_with_companion(map, name, ext_name, primitive);
            push_values(value, ext, element_type(ty), out);
            return;
        }
    }
    // A choice element: find the `name<Type>` properties present.
    let Some(element) = type_node.element(name).filter(|e| e.choice) else {
        return;
    };
    for (key, value) in map {
        if key.len() <= name.len() || !key.starts_with(name) {
            continue;
        }
        if let Some(ty) = element.types.iter().find(|t| &*t.json_name == key) {
            let ext = match ty.kind {
                ValueKind::Primitive { .. } => map.get(&format!("_{key}")),
                _ => None,
            };
            push_values(Some(value), ext, element_type(ty), out);
        }
    }
    // A primitive choice present only through its `_valueX` companion.
    for (key, value) in map {
        if let Some(base) = key.strip_prefix('_') {
            if base.starts_with(name) && !map.contains_key(base) {
                if let Some(ty) = element.types.iter().find(|t| &*t.json_name == base) {
                    push_values(None, Some(value), element_type(ty), out);
                }
            }
        }
    }
}

/// All child elements of an item (`children()`), in JSON order.
pub fn children<'a>(item: &Item<'a>, out: &mut Vec<Item<'a>>) {
    let Item::Fhir(node) = item else { return };
    let map = match node.ty {
        FhirType::Primitive(_) => node.ext.and_then(Json::as_object),
        _ => node.value.and_then(Json::as_object),
    };
    let Some(map) = map else { return };
    let type_node = node_of(structure_model(), node.ty);
    for (key, value) in map {
        if key == "resourceType" {
            continue;
        }
        if let Some(base) = key.strip_prefix('_') {
            if map.contains_key(base) {
                continue;
            }
            // Only the extension companion exists.
            if let Some((_, ty)) = type_node.and_then(|n| n.lookup(base)) {
                push_values(None, Some(value), element_type(ty), out);
            }
            continue;
        }
        match type_node {
            Some(n) => {
                if let Some((_, ty)) = n.lookup(key) {
                    let ext = match ty.kind {
                        ValueKind::Primitive { .. } => map.get(&format!("_{key}")),
                        _ => None,
                    };
                    push_values(Some(value), ext, element_type(ty), out);
                }
            }
            None => {
                let ty = match value {
                    Json::Array(a) => a.first().and_then(infer_type),
                    v => infer_type(v),
                };
                push_values(Some(value), None, ty, out);
            }
        }
    }
}

/// What a type specifier names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeTarget {
    /// A System type (`Boolean`, `String`, ...), by its System name.
    System(&'static str),
    /// A FHIR type (`Patient`, `code`, `Quantity`).
    Fhir(&'static str),
    /// Unqualified `Quantity`: either the FHIR or the System type.
    AnyQuantity,
}

const SYSTEM_TYPES: [&str; 8] = [
    "Boolean", "String", "Integer", "Decimal", "Date", "DateTime", "Time", "Quantity",
];

/// Resolves a type specifier; an unknown type is an error.
pub fn resolve_type(spec: &TypeSpec) -> Result<TypeTarget, EvalError> {
    let system = || SYSTEM_TYPES.iter().find(|t| **t == spec.name).copied();
    let fhir = || {
        let model = structure_model();
        Primitive::from_code(&spec.name)
            .map(Primitive::code)
            .or_else(|| {
                model
                    .node_named(&spec.name)
                    .filter(|n| n.kind != NodeKind::Backbone)
                    .map(|n| &*n.name)
            })
            .or(match spec.name.as_str() {
                "BackboneElement" => Some("BackboneElement"),
                "Element" => Some("Element"),
                "Resource" => Some("Resource"),
                "DomainResource" => Some("DomainResource"),
                _ => None,
            })
    };
    let found = match spec.namespace.as_deref() {
        // An unknown System type matches nothing (`Patient.is(System.Patient)`).
        Some("System") => Some(TypeTarget::System(system().unwrap_or(""))),
        Some("FHIR") => fhir().map(TypeTarget::Fhir),
        Some(_) => None,
        None if spec.name == "Quantity" => Some(TypeTarget::AnyQuantity),
        None => fhir()
            .map(TypeTarget::Fhir)
            .or_else(|| system().map(TypeTarget::System)),
    };
    found.ok_or_else(|| EvalError::new(format!("unknown type '{}'", spec.name)))
}

/// The FHIR base type of a FHIR type name (`code` → `string`,
/// `Age` → `Quantity`, `Patient` → `DomainResource`).
fn base_type(name: &str) -> Option<&'static str> {
    Some(match name {
        "code" | "id" | "markdown" => "string",
        "url" | "canonical" | "uuid" | "oid" => "uri",
        "positiveInt" | "unsignedInt" => "integer",
        "Age" | "Count" | "Distance" | "Duration" | "MoneyQuantity" | "SimpleQuantity" => {
            "Quantity"
        }
        "DomainResource" | "Bundle" | "Binary" | "Parameters" => "Resource",
        "Resource" | "Element" => return None,
        "BackboneElement" => "Element",
        other => {
            let n = structure_model().node_named(other)?;
            match n.kind {
                NodeKind::Resource => "DomainResource",
                _ => "Element",
            }
        }
    })
}

/// Whether `item` is of the target type; `exact` (for `as`/`ofType`)
/// disallows primitive specializations (`code` is not `string`) but
/// still lets complex types and resources match their base types.
///
/// For `as`/`ofType` a System type also selects FHIR primitives of the
/// corresponding kind (`dateTime` for `DateTime`): the official R4
/// composite `Observation-code-value-date` filters with `value.as(DateTime)`,
/// which would otherwise never match. `is` keeps the strict distinction
/// (`Patient.active.is(Boolean)` is false).
pub fn is_type(item: &Item<'_>, target: TypeTarget, exact: bool) -> bool {
    match (item, target) {
        (Item::Fhir(n), TypeTarget::System(want)) => {
            exact
                && matches!(n.ty, FhirType::Primitive(_))
                && item.to_system().is_some_and(|v| v.type_name() == want)
        }
        (Item::Fhir(n), TypeTarget::Fhir(want)) => {
            let name = item.type_name();
            if exact && matches!(n.ty, FhirType::Primitive(_)) {
                return name == want;
            }
            type_name_matches(name, want)
        }
        (Item::Fhir(_), TypeTarget::AnyQuantity) => is_quantity_type(item.type_name()),
        (Item::Quantity(_), TypeTarget::AnyQuantity) => true,
        (_, TypeTarget::System(want)) => item.type_name() == want,
        _ => false,
    }
}

/// Whether a FHIR type named `actual` is `wanted` or derives from it
/// (`Patient` is a `DomainResource` and a `Resource`; `Age` a `Quantity`).
pub fn type_name_matches(actual: &str, wanted: &str) -> bool {
    if actual == wanted {
        return true;
    }
    // Only these types have FHIR subtypes; anything else needs equality.
    let has_subtypes = matches!(
        wanted,
        "Resource"
            | "DomainResource"
            | "Element"
            | "BackboneElement"
            | "Quantity"
            | "string"
            | "uri"
            | "integer"
    );
    if !has_subtypes {
        return false;
    }
    let mut name = actual;
    loop {
        if name == wanted {
            return true;
        }
        match base_type(name) {
            Some(base) => name = base,
            None => return false,
        }
    }
}

/// `type()` of an item.
pub fn type_info(item: &Item<'_>) -> TypeInfo {
    TypeInfo {
        namespace: item.namespace(),
        name: item.type_name().to_owned(),
    }
}

/// A typed stand-in for a resource known only by reference (`Patient/123`).
pub fn reference_stub<'a>(reference: &str) -> Option<Item<'a>> {
    let path = reference.split(['?', '#']).next()?;
    let path = match path.find("/_history/") {
        Some(k) => &path[..k],
        None => path,
    };
    let mut parts = path.rsplit('/');
    let _id = parts.next().filter(|id| !id.is_empty())?;
    let ty = parts.next()?;
    let model = structure_model();
    model.resource(ty)?;
    let id = model.node_id(ty)?;
    Some(Item::Fhir(Node {
        value: None,
        ext: None,
        ty: FhirType::Node(id),
    }))
}

/// The element type name used in error messages.
pub fn describe(item: &Item<'_>) -> String {
    match item {
        Item::Fhir(n) => match n.ty {
            FhirType::Node(id) => node_type_name(id).to_owned(),
            _ => item.type_name().to_owned(),
        },
        _ => format!("System.{}", item.type_name()),
    }
}
