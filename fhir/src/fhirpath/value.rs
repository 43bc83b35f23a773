//! The items FHIRPath collections hold: FHIR elements borrowed from the JSON
//! resource (typed through the structure model) and System values computed
//! by the engine, with their type names and primitive conversions.

use super::datetime::PartialDateTime;
use super::decimal::Decimal;
use super::ucum::Quantity;
use crate::definitions::{NodeId, NodeKind, Primitive, structure_model};
use serde_json::Value as Json;
use std::borrow::Cow;

/// The FHIR type of an element.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FhirType {
    /// A primitive datatype (`code`, `dateTime`).
    Primitive(Primitive),
    /// A complex datatype, resource or backbone element of the model.
    Node(NodeId),
    /// JSON the model does not describe; types are inferred from JSON.
    Unknown,
}

/// A FHIR element inside the resource JSON. For primitives `value` is the
/// JSON value and `ext` the `_name` companion (`id`, `extension`); for a
/// resource reached through `resolve()` that is not available, `value` is
/// `None` and only the type is known.
#[derive(Clone, Copy, Debug)]
pub struct Node<'a> {
    pub value: Option<&'a Json>,
    pub ext: Option<&'a Json>,
    pub ty: FhirType,
}

/// A type as `type()` reports it.
#[derive(Clone, Debug, PartialEq)]
pub struct TypeInfo {
    pub namespace: &'static str,
    pub name: String,
}

/// One item of a FHIRPath collection.
#[derive(Clone, Debug)]
pub enum Item<'a> {
    Fhir(Node<'a>),
    Boolean(bool),
    Integer(i64),
    Decimal(Decimal),
    String(Cow<'a, str>),
    Date(PartialDateTime),
    DateTime(PartialDateTime),
    Time(PartialDateTime),
    Quantity(Box<Quantity>),
    Type(Box<TypeInfo>),
}

/// A FHIRPath collection.
pub type Collection<'a> = Vec<Item<'a>>;

/// The FHIR type name of a model node (`BackboneElement` for backbones).
pub fn node_type_name(id: NodeId) -> &'static str {
    match structure_model().node(id) {
        Some(n) if n.kind == NodeKind::Backbone => "BackboneElement",
        Some(n) => &n.name,
        None => "Element",
    }
}

impl<'a> Item<'a> {
    /// An item for a FHIR element value of a known type.
    pub fn fhir(value: Option<&'a Json>, ext: Option<&'a Json>, ty: FhirType) -> Item<'a> {
        Item::Fhir(Node { value, ext, ty })
    }

    /// An item for a whole resource, typed by its `resourceType`.
    pub fn resource(json: &'a Json) -> Item<'a> {
        // `resourceType` is almost always the first property: scanning
        // beats hashing the key.
        let ty = json
            .as_object()
            .and_then(|m| m.iter().find(|(k, _)| *k == "resourceType"))
            .and_then(|(_, v)| v.as_str())
            .and_then(|rt| structure_model().node_id(rt))
            .map_or(FhirType::Unknown, FhirType::Node);
        Item::fhir(Some(json), None, ty)
    }

    /// The JSON node this item points into, if it is a FHIR element.
    pub fn json(&self) -> Option<&'a Json> {
        match self {
            Item::Fhir(n) => n.value,
            _ => None,
        }
    }

    /// The FHIR type name (`Quantity`, `code`, `Patient`) of an element, or
    /// the System type name (`String`, `Integer`) of a computed value.
    pub fn type_name(&self) -> &str {
        match self {
            Item::Fhir(n) => match n.ty {
                FhirType::Primitive(p) => p.code(),
                FhirType::Node(id) => node_type_name(id),
                FhirType::Unknown => match n.value {
                    Some(Json::Bool(_)) => "boolean",
                    Some(Json::Number(_)) => "decimal",
                    Some(Json::String(_)) => "string",
                    _ => "Element",
                },
            },
            Item::Boolean(_) => "Boolean",
            Item::Integer(_) => "Integer",
            Item::Decimal(_) => "Decimal",
            Item::String(_) => "String",
            Item::Date(_) => "Date",
            Item::DateTime(_) => "DateTime",
            Item::Time(_) => "Time",
            Item::Quantity(_) => "Quantity",
            Item::Type(_) => "TypeInfo",
        }
    }

    /// `System` for computed values, `FHIR` for elements.
    pub fn namespace(&self) -> &'static str {
        match self {
            Item::Fhir(_) => "FHIR",
            _ => "System",
        }
    }

    /// The System value of a FHIR primitive (or Quantity) element; computed
    /// values are returned as they are. `None` for complex elements and
    /// primitives without a value.
    pub fn to_system(&self) -> Option<Item<'a>> {
        let Item::Fhir(node) = self else {
            return Some(self.clone());
        };
        match node.ty {
            FhirType::Primitive(p) => primitive_value(p, node.value?),
            FhirType::Node(id) => {
                if is_quantity_node(id) {
                    fhir_quantity(node.value?).map(|q| Item::Quantity(Box::new(q)))
                } else {
                    None
                }
            }
            FhirType::Unknown => match node.value? {
                Json::Bool(b) => Some(Item::Boolean(*b)),
                Json::Number(n) => number_value(n.as_str(), false),
                Json::String(s) => Some(Item::String(Cow::Borrowed(s))),
                _ => None,
            },
        }
    }

    /// The string value (System String or a FHIR string-like primitive).
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Item::String(s) => Some(s),
            Item::Fhir(Node {
                value: Some(Json::String(s)),
                ..
            }) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self.to_system()? {
            Item::Boolean(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_integer(&self) -> Option<i64> {
        match self.to_system()? {
            Item::Integer(i) => Some(i),
            _ => None,
        }
    }

    pub fn as_decimal(&self) -> Option<Decimal> {
        match self.to_system()? {
            Item::Decimal(d) => Some(d),
            Item::Integer(i) => Some(Decimal::from_i64(i)),
            _ => None,
        }
    }

    pub fn as_quantity(&self) -> Option<Quantity> {
        match self.to_system()? {
            Item::Quantity(q) => Some(*q),
            _ => None,
        }
    }

    /// A date, date-time (or instant) value.
    pub fn as_date_time(&self) -> Option<PartialDateTime> {
        match self.to_system()? {
            Item::Date(d) | Item::DateTime(d) => Some(d),
            _ => None,
        }
    }

    /// Text as FHIRPath `toString()` renders it, for primitive values.
    pub fn to_text(&self) -> Option<Cow<'a, str>> {
        Some(match self.to_system()? {
            Item::Boolean(b) => Cow::Borrowed(if b { "true" } else { "false" }),
            Item::Integer(i) => Cow::Owned(i.to_string()),
            Item::Decimal(d) => Cow::Owned(d.to_string()),
            Item::String(s) => s,
            Item::Date(d) | Item::DateTime(d) => Cow::Owned(d.format_date_time()),
            Item::Time(t) => Cow::Owned(t.format_time()),
            Item::Quantity(q) => Cow::Owned(q.format()),
            Item::Fhir(_) | Item::Type(_) => return None,
        })
    }

    /// A FHIRPath literal for the value (`@2014-01`, `1.5 'mg'`, `'text'`
    /// as plain text); used in messages and tests.
    pub fn to_literal(&self) -> String {
        match self.to_system() {
            Some(Item::Date(d)) | Some(Item::DateTime(d)) => format!("@{}", d.format_date_time()),
            Some(Item::Time(t)) => format!("@T{}", t.format_time()),
            Some(other) => other.to_text().map(Cow::into_owned).unwrap_or_default(),
            None => match self {
                Item::Type(t) => format!("{}.{}", t.namespace, t.name),
                _ => self.json().map(Json::to_string).unwrap_or_default(),
            },
        }
    }

    /// Whether the item is a FHIR element with a primitive value.
    pub fn has_value(&self) -> bool {
        match self {
            Item::Fhir(n) => match n.ty {
                FhirType::Primitive(_) => n.value.is_some_and(|v| !v.is_null()),
                FhirType::Unknown => n.value.is_some_and(|v| !v.is_object() && !v.is_null()),
                FhirType::Node(_) => false,
            },
            _ => true,
        }
    }
}

/// Whether a model node is Quantity or one of its specializations (the
/// ids are looked up once).
pub fn is_quantity_node(id: NodeId) -> bool {
    static IDS: std::sync::OnceLock<Vec<NodeId>> = std::sync::OnceLock::new();
    IDS.get_or_init(|| {
        let model = structure_model();
        [
            "Quantity",
            "Age",
            "Count",
            "Distance",
            "Duration",
            "MoneyQuantity",
            "SimpleQuantity",
        ]
        .iter()
        .filter_map(|n| model.node_id(n))
        .collect()
    })
    .contains(&id)
}

/// Whether a FHIR type name is Quantity or one of its specializations.
pub fn is_quantity_type(name: &str) -> bool {
    matches!(
        name,
        "Quantity" | "Age" | "Count" | "Distance" | "Duration" | "MoneyQuantity" | "SimpleQuantity"
    )
}

fn number_value<'a>(text: &str, integer: bool) -> Option<Item<'a>> {
    if integer {
        if let Ok(i) = text.parse::<i64>() {
            return Some(Item::Integer(i));
        }
    }
    Decimal::parse(text).map(Item::Decimal)
}

fn primitive_value(p: Primitive, json: &Json) -> Option<Item<'_>> {
    match (p, json) {
        (Primitive::Boolean, Json::Bool(b)) => Some(Item::Boolean(*b)),
        (Primitive::Integer | Primitive::PositiveInt | Primitive::UnsignedInt, Json::Number(n)) => {
            number_value(n.as_str(), true)
        }
        (Primitive::Decimal, Json::Number(n)) => number_value(n.as_str(), false),
        (Primitive::Date, Json::String(s)) => {
            PartialDateTime::parse_date_time(s, false).map(Item::Date)
        }
        (Primitive::DateTime | Primitive::Instant, Json::String(s)) => {
            PartialDateTime::parse_date_time(s, true).map(Item::DateTime)
        }
        (Primitive::Time, Json::String(s)) => PartialDateTime::parse_time(s).map(Item::Time),
        (_, Json::String(s)) => Some(Item::String(Cow::Borrowed(s))),
        (_, Json::Bool(b)) => Some(Item::Boolean(*b)),
        (_, Json::Number(n)) => number_value(n.as_str(), true),
        _ => None,
    }
}

/// A FHIR Quantity element as a System Quantity: the UCUM `code` when the
/// system is UCUM (or absent), else the `unit` text.
fn fhir_quantity(json: &Json) -> Option<Quantity> {
    let value = Decimal::parse(json.get("value")?.as_number()?.as_str())?;
    let system = json.get("system").and_then(Json::as_str);
    let code = json.get("code").and_then(Json::as_str);
    let unit = match (system, code) {
        (Some("http://unitsofmeasure.org") | None, Some(code)) => code,
        _ => json.get("unit").and_then(Json::as_str).unwrap_or("1"),
    };
    Some(Quantity::new(value, unit))
}
