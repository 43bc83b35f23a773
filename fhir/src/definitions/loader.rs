//! Builds the [`StructureModel`] from the StructureDefinition Bundles: typed
//! deserialization of only the snapshot fields we need, then two passes (name
//! every node, then resolve every element's types to nodes).

use super::model::{
    ElementInfo, ElementType, FastMap, NodeId, NodeKind, Primitive, StructureModel, TypeNode,
    ValueKind,
};
use serde::Deserialize;

/// Any resource in the Bundles; only StructureDefinitions are used. Fields
/// whose JSON type differs between resource types are ignored.
#[derive(Deserialize)]
struct Definition {
    #[serde(rename = "resourceType")]
    resource_type: String,
    #[serde(default)]
    kind: Option<String>,
    #[serde(rename = "abstract", default)]
    is_abstract: Option<bool>,
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
    min: u32,
    #[serde(default)]
    max: Option<String>,
    #[serde(rename = "type", default)]
    types: Vec<RawType>,
    #[serde(rename = "contentReference", default)]
    content_reference: Option<String>,
    #[serde(rename = "isSummary", default)]
    is_summary: bool,
}

#[derive(Deserialize)]
struct RawType {
    code: String,
    #[serde(default)]
    extension: Vec<RawExtension>,
}

#[derive(Deserialize)]
struct RawExtension {
    url: String,
    #[serde(rename = "valueUrl", default)]
    value_url: Option<String>,
}

const FHIR_TYPE_EXT: &str = "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type";
const SYSTEM_PREFIX: &str = "http://hl7.org/fhirpath/System.";

/// One usable StructureDefinition: a specialization (or base) of a primitive
/// type, complex type or resource. Constraints (SimpleQuantity, MoneyQuantity)
/// and logical models are skipped: elements use their base type's code.
struct Usable<'a> {
    kind: NodeKind,
    is_abstract: bool,
    elements: &'a [RawElement],
}

fn usable(definitions: &[Definition]) -> Vec<Usable<'_>> {
    definitions
        .iter()
        .filter(|d| d.resource_type == "StructureDefinition")
        .filter(|d| d.derivation.as_deref() != Some("constraint"))
        .filter_map(|d| {
            let elements = d.snapshot.as_ref()?.element.as_slice();
            let root = elements.first()?;
            let kind = match d.kind.as_deref()? {
                "resource" => NodeKind::Resource,
                "complex-type" => NodeKind::ComplexType,
                "primitive-type" => NodeKind::PrimitiveType(Primitive::from_code(&root.path)?),
                _ => return None,
            };
            Some(Usable {
                kind,
                is_abstract: d.is_abstract.unwrap_or(false),
                elements,
            })
        })
        .collect()
}

/// Builds the model from the text of `profiles-types.json` and
/// `profiles-resources.json`. Unparseable input yields an empty model (the
/// embedded files are checked by unit tests).
pub(super) fn build(types_json: &str, resources_json: &str) -> StructureModel {
    let types: Vec<Definition> = super::bundle_resources(types_json);
    let resources: Vec<Definition> = super::bundle_resources(resources_json);
    let defs: Vec<Usable> = usable(&types)
        .into_iter()
        .chain(usable(&resources))
        .collect();

    // Pass 1: a node for every definition root and every path with children.
    let mut model = StructureModel {
        nodes: Vec::new(),
        by_name: FastMap::default(),
    };
    for def in &defs {
        for (i, element) in def.elements.iter().enumerate() {
            let name = match (i, parent_of(&element.path)) {
                (0, _) => element.path.as_str(),
                (_, Some(parent)) => parent,
                _ => continue,
            };
            if model.by_name.contains_key(name) {
                continue;
            }
            let (kind, is_abstract) = if i == 0 {
                (def.kind, def.is_abstract)
            } else {
                (NodeKind::Backbone, false)
            };
            add_node(&mut model, name, kind, is_abstract);
        }
    }

    // Pass 2: resolve every element into its parent node.
    for def in &defs {
        let root = def.elements.first().map_or("", |e| e.path.as_str());
        for element in def.elements.iter().skip(1) {
            let Some(parent) = parent_of(&element.path) else {
                continue;
            };
            let is_primitive_value = matches!(def.kind, NodeKind::PrimitiveType(_))
                && element.path.strip_prefix(root) == Some(".value");
            if is_primitive_value {
                continue;
            }
            let info = resolve(&model, def.kind, parent == root, element);
            if let Some(id) = model.node_id(parent) {
                push_element(&mut model.nodes[id as usize], info);
            }
        }
    }
    model
}

fn add_node(model: &mut StructureModel, name: &str, kind: NodeKind, is_abstract: bool) {
    let id = model.nodes.len() as NodeId;
    model.nodes.push(TypeNode {
        name: name.into(),
        kind,
        is_abstract,
        elements: Vec::new(),
        required: Vec::new(),
        index: FastMap::default(),
    });
    model.by_name.insert(name.into(), id);
}

fn push_element(node: &mut TypeNode, info: ElementInfo) {
    let index = node.elements.len() as u16;
    for (t, ty) in info.types.iter().enumerate() {
        node.index.insert(ty.json_name.clone(), (index, t as u16));
    }
    if info.min > 0 {
        node.required.push(index);
    }
    node.elements.push(info);
}

fn parent_of(path: &str) -> Option<&str> {
    path.rsplit_once('.').map(|(parent, _)| parent)
}

/// The FHIR type code of a snapshot type: System types carry their FHIR type
/// in the `structuredefinition-fhir-type` extension. Returns the code and
/// whether it was a System type (an attribute-like value with no extensions).
fn effective_code(ty: &RawType) -> (&str, bool) {
    if !ty.code.starts_with(SYSTEM_PREFIX) {
        return (&ty.code, false);
    }
    let fhir_type = ty
        .extension
        .iter()
        .find(|e| e.url == FHIR_TYPE_EXT)
        .and_then(|e| e.value_url.as_deref());
    (fhir_type.unwrap_or("string"), true)
}

fn resolve(
    model: &StructureModel,
    def_kind: NodeKind,
    top_level: bool,
    raw: &RawElement,
) -> ElementInfo {
    let last = raw.path.rsplit('.').next().unwrap_or(&raw.path);
    let (name, choice) = match last.strip_suffix("[x]") {
        Some(base) => (base, true),
        None => (last, false),
    };
    let max = match raw.max.as_deref() {
        None | Some("*") => None,
        Some(n) => n.parse().ok(),
    };
    let content_reference = raw
        .content_reference
        .as_deref()
        .map(|r| r.rsplit_once('#').map_or(r, |(_, p)| p));
    let types = if let Some(target) = content_reference {
        vec![complex(
            model,
            "BackboneElement",
            name,
            model.node_id(target),
        )]
    } else if let Some(id) = model.node_id(&raw.path) {
        let code = raw
            .types
            .first()
            .map_or("BackboneElement", |t| effective_code(t).0);
        vec![complex(model, code, name, Some(id))]
    } else {
        raw.types
            .iter()
            .map(|ty| {
                let (mut code, system) = effective_code(ty);
                if def_kind == NodeKind::Resource && top_level && name == "id" {
                    code = "id";
                }
                let json_name = if choice {
                    choice_name(name, code)
                } else {
                    name.to_owned()
                };
                let kind = match Primitive::from_code(code) {
                    Some(primitive) => ValueKind::Primitive {
                        primitive,
                        extension_node: (!system && primitive != Primitive::Xhtml)
                            .then(|| model.node_id(code))
                            .flatten(),
                    },
                    None if code == "Resource" => ValueKind::Resource,
                    None => ValueKind::Complex(
                        model
                            .node_id(code)
                            .or_else(|| model.node_id("Element"))
                            .unwrap_or(0),
                    ),
                };
                ElementType {
                    code: code.into(),
                    json_name: json_name.into(),
                    kind,
                }
            })
            .collect()
    };
    ElementInfo {
        name: name.into(),
        path: raw.path.as_str().into(),
        min: raw.min,
        max,
        choice,
        types,
        content_reference: content_reference.map(Into::into),
        is_summary: raw.is_summary,
    }
}

fn complex(model: &StructureModel, code: &str, name: &str, id: Option<NodeId>) -> ElementType {
    let fallback = || model.node_id("Element").unwrap_or(0);
    ElementType {
        code: code.into(),
        json_name: name.into(),
        kind: ValueKind::Complex(id.unwrap_or_else(fallback)),
    }
}

/// `value` + `Quantity` → `valueQuantity`.
fn choice_name(base: &str, code: &str) -> String {
    let mut out = String::with_capacity(base.len() + code.len());
    out.push_str(base);
    let mut chars = code.chars();
    if let Some(first) = chars.next() {
        out.extend(first.to_uppercase());
        out.push_str(chars.as_str());
    }
    out
}
