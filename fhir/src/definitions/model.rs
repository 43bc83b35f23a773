//! The public, read-only structure model: types, backbone elements and their
//! child elements (cardinality, types, choice names), with hash lookups by
//! JSON property name. Built once by `build.rs`; shared by validation and,
//! later, by search and FHIRPath to learn element types.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Index of a [`TypeNode`] in the [`StructureModel`].
pub type NodeId = u32;

/// The FHIR primitive datatypes (datatypes.html#primitive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Primitive {
    Base64Binary,
    Boolean,
    Canonical,
    Code,
    Date,
    DateTime,
    Decimal,
    Id,
    Instant,
    Integer,
    Markdown,
    Oid,
    PositiveInt,
    String,
    Time,
    UnsignedInt,
    Uri,
    Url,
    Uuid,
    Xhtml,
}

impl Primitive {
    const ALL: [(Primitive, &'static str); 20] = [
        (Primitive::Base64Binary, "base64Binary"),
        (Primitive::Boolean, "boolean"),
        (Primitive::Canonical, "canonical"),
        (Primitive::Code, "code"),
        (Primitive::Date, "date"),
        (Primitive::DateTime, "dateTime"),
        (Primitive::Decimal, "decimal"),
        (Primitive::Id, "id"),
        (Primitive::Instant, "instant"),
        (Primitive::Integer, "integer"),
        (Primitive::Markdown, "markdown"),
        (Primitive::Oid, "oid"),
        (Primitive::PositiveInt, "positiveInt"),
        (Primitive::String, "string"),
        (Primitive::Time, "time"),
        (Primitive::UnsignedInt, "unsignedInt"),
        (Primitive::Uri, "uri"),
        (Primitive::Url, "url"),
        (Primitive::Uuid, "uuid"),
        (Primitive::Xhtml, "xhtml"),
    ];

    /// The primitive named by a FHIR type code (`dateTime`), if any.
    pub fn from_code(code: &str) -> Option<Primitive> {
        Self::ALL.iter().find(|(_, c)| *c == code).map(|(p, _)| *p)
    }

    /// The FHIR type code, e.g. `positiveInt`.
    pub fn code(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(p, _)| *p == self)
            .map_or("", |(_, c)| c)
    }
}

/// What a value of one element type looks like in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    /// A JSON primitive. `extension_node` is the primitive type's node (its
    /// `id` and `extension`), describing the `_name` companion property; it is
    /// `None` for elements that cannot carry extensions (`Element.id`,
    /// `Extension.url`, `Resource.id`: System types in the snapshots, and xhtml).
    Primitive {
        primitive: Primitive,
        extension_node: Option<NodeId>,
    },
    /// A JSON object described by the node (a datatype, or a backbone element
    /// keyed by its path, possibly reached through a `contentReference`).
    Complex(NodeId),
    /// A whole resource whose type is given by its own `resourceType`.
    Resource,
}

/// One permitted type of an element.
#[derive(Debug, Clone)]
pub struct ElementType {
    /// The FHIR type code (`Quantity`, `dateTime`, `BackboneElement`,
    /// `Resource`). Snapshot System types are mapped to their FHIR type
    /// through the `structuredefinition-fhir-type` extension.
    pub code: Box<str>,
    /// The JSON property name for this type: `valueQuantity` for a choice,
    /// the element name otherwise.
    pub json_name: Box<str>,
    pub kind: ValueKind,
}

/// One child element of a type or backbone element.
#[derive(Debug, Clone)]
pub struct ElementInfo {
    /// The element name without `[x]`: `birthDate`, `value`.
    pub name: Box<str>,
    /// The snapshot path: `Observation.value[x]`, `Patient.contact.name`.
    pub path: Box<str>,
    pub min: u32,
    /// `None` for `*`.
    pub max: Option<u32>,
    /// True for `name[x]` elements.
    pub choice: bool,
    pub types: Vec<ElementType>,
    /// The `contentReference` target path (`Questionnaire.item`), if any.
    pub content_reference: Option<Box<str>>,
    /// `ElementDefinition.isSummary`: included when a client asks for
    /// `_summary=true` (search.html#summary). In the R4 snapshots, the
    /// `id` and `extension` of every type and backbone element are not
    /// summary; backbone `modifierExtension` is.
    pub is_summary: bool,
}

impl ElementInfo {
    /// Whether the JSON form is an array (any max other than 1).
    pub fn is_array(&self) -> bool {
        self.max != Some(1)
    }
}

/// What a node describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    Resource,
    ComplexType,
    /// A primitive type; its elements are the `_name` companion's `id` and
    /// `extension` (the snapshot's `value` element is the JSON value itself).
    PrimitiveType(Primitive),
    /// A backbone element, named by its path (`Patient.contact`).
    Backbone,
}

/// A type or backbone element with its child elements.
#[derive(Debug)]
pub struct TypeNode {
    /// The type name (`Patient`, `HumanName`) or backbone path (`Patient.contact`).
    pub name: Box<str>,
    pub kind: NodeKind,
    pub is_abstract: bool,
    pub elements: Vec<ElementInfo>,
    /// Indexes of elements with `min > 0`.
    pub(crate) required: Vec<u16>,
    /// JSON property name → (element index, type index).
    pub(crate) index: FastMap<(u16, u16)>,
}

impl TypeNode {
    /// The element and type for a JSON property name (`valueQuantity`).
    pub fn lookup(&self, json_name: &str) -> Option<(&ElementInfo, &ElementType)> {
        let (e, t) = self.lookup_index(json_name)?;
        let element = self.elements.get(usize::from(e))?;
        Some((element, element.types.get(usize::from(t))?))
    }

    pub(crate) fn lookup_index(&self, json_name: &str) -> Option<(u16, u16)> {
        self.index.get(json_name).copied()
    }

    /// The element with this FHIR name (`value` for `value[x]`), as FHIRPath
    /// navigates it.
    pub fn element(&self, name: &str) -> Option<&ElementInfo> {
        self.elements.iter().find(|e| &*e.name == name)
    }
}

/// Every R4 resource, datatype, primitive and backbone element, by name.
#[derive(Debug)]
pub struct StructureModel {
    pub(crate) nodes: Vec<TypeNode>,
    pub(crate) by_name: FastMap<NodeId>,
}

impl StructureModel {
    pub fn node_id(&self, type_or_path: &str) -> Option<NodeId> {
        self.by_name.get(type_or_path).copied()
    }

    /// The node for a type name or backbone path.
    pub fn node_named(&self, type_or_path: &str) -> Option<&TypeNode> {
        self.node_id(type_or_path).and_then(|id| self.node(id))
    }

    pub fn node(&self, id: NodeId) -> Option<&TypeNode> {
        self.nodes.get(id as usize)
    }

    /// The element and type for a JSON property of a type or backbone path.
    pub fn element(
        &self,
        type_or_path: &str,
        json_name: &str,
    ) -> Option<(&ElementInfo, &ElementType)> {
        self.node_named(type_or_path)?.lookup(json_name)
    }

    /// The node of a concrete resource type.
    pub fn resource(&self, resource_type: &str) -> Option<&TypeNode> {
        self.node_named(resource_type)
            .filter(|n| n.kind == NodeKind::Resource && !n.is_abstract)
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
}

/// A small, fast, non-cryptographic hasher (the FxHash mix) for the short
/// element-name keys; the keys come from the compiled-in definitions, so
/// there is no HashDoS concern.
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher(u64);

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

pub(crate) type FastMap<V> = HashMap<Box<str>, V, BuildHasherDefault<FxHasher>>;
