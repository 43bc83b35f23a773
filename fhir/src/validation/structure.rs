//! The StructureDefinition walk: every JSON property is looked up in the
//! [`StructureModel`] (unknown elements, choice variants, cardinality, JSON
//! array-vs-single, empty values, primitive `_name` companions), primitives are
//! checked by `primitives`, nested resources are validated as their own type,
//! and the Extension (ext-1), Reference and contained (dom-2) rules are applied.

use super::primitives;
use super::seen::Seen;
use crate::definitions::{
    ElementInfo, ElementType, NodeId, Primitive, StructureModel, TypeNode, ValueKind,
};
use crate::outcome::{Issue, IssueCode};
use serde_json::{Map, Value};
use std::fmt::Write;

/// A resource met during the walk (the root, contained, Bundle entries,
/// Parameters resources...), for the JSON-schema step.
pub(crate) struct FoundResource<'v> {
    /// FHIRPath of the resource itself: `Patient`, `Bundle.entry[2].resource`.
    pub path: String,
    pub resource_type: &'v str,
    pub value: &'v Value,
}

pub(crate) struct Walker<'m, 'v> {
    model: &'m StructureModel,
    extension_node: Option<NodeId>,
    reference_node: Option<NodeId>,
    path: String,
    pub issues: Vec<Issue>,
    pub resources: Vec<FoundResource<'v>>,
}

impl<'m, 'v> Walker<'m, 'v> {
    pub fn new(model: &'m StructureModel) -> Self {
        Walker {
            model,
            extension_node: model.node_id("Extension"),
            reference_node: model.node_id("Reference"),
            path: String::new(),
            issues: Vec::new(),
            resources: Vec::new(),
        }
    }

    fn report(&mut self, code: IssueCode, message: impl Into<String>) {
        let mut issue = Issue::error(code, message);
        if !self.path.is_empty() {
            issue = issue.at(self.path.clone());
        }
        self.issues.push(issue);
    }

    fn push_field(&mut self, name: &str) -> usize {
        let mark = self.path.len();
        if !self.path.is_empty() {
            self.path.push('.');
        }
        self.path.push_str(name);
        mark
    }

    fn push_index(&mut self, index: usize) -> usize {
        let mark = self.path.len();
        let _ = write!(self.path, "[{index}]");
        mark
    }

    /// Validates a resource at the current path (empty for the root).
    /// `contained` is true for `DomainResource.contained` entries.
    pub fn resource(&mut self, value: &'v Value, contained: bool) {
        let Value::Object(map) = value else {
            let found = primitives::describe(value);
            self.report(
                IssueCode::Structure,
                format!("a resource must be a JSON object, found {found}"),
            );
            return;
        };
        let resource_type = match map.get("resourceType") {
            Some(Value::String(name)) => name.as_str(),
            Some(other) => {
                let mark = self.push_field("resourceType");
                let found = primitives::describe(other);
                self.report(
                    IssueCode::Structure,
                    format!("resourceType must be a string, found {found}"),
                );
                self.path.truncate(mark);
                return;
            }
            None => {
                let mark = self.push_field("resourceType");
                self.report(IssueCode::Required, "missing resourceType");
                self.path.truncate(mark);
                return;
            }
        };
        let node = crate::ResourceType::parse(resource_type)
            .and_then(|_| self.model.node_id(resource_type));
        let Some(node) = node else {
            let mark = self.push_field("resourceType");
            self.report(
                IssueCode::Structure,
                format!("unknown resourceType '{resource_type}': not an R4 resource type"),
            );
            self.path.truncate(mark);
            return;
        };
        let root_mark = self.path.len();
        if self.path.is_empty() {
            self.path.push_str(resource_type);
        }
        self.resources.push(FoundResource {
            path: self.path.clone(),
            resource_type,
            value,
        });
        if contained && map.contains_key("contained") {
            let mark = self.push_field("contained");
            self.report(
                IssueCode::Invariant,
                "dom-2: a contained resource SHALL NOT contain nested contained resources",
            );
            self.path.truncate(mark);
        }
        self.object(node, map, Some(contained));
        self.path.truncate(root_mark);
    }

    /// Validates a JSON object against a node. `resource` is `Some(contained)`
    /// at a resource root.
    fn object(&mut self, node_id: NodeId, map: &'v Map<String, Value>, resource: Option<bool>) {
        let model = self.model;
        let Some(node) = model.node(node_id) else {
            return;
        };
        if map.is_empty() {
            self.report(
                IssueCode::Structure,
                "empty objects are not allowed; omit the element instead",
            );
            return;
        }
        let mut seen = Seen::default();
        for (key, value) in map {
            if resource.is_some() && key == "resourceType" {
                continue;
            }
            if let Some(base) = key.strip_prefix('_') {
                match node.lookup_index(base) {
                    Some((e, t)) => {
                        self.mark_seen(node, &mut seen, e, t, key);
                        self.companion(node, e, t, base, value, map.get(base));
                    }
                    None => self.unknown(node, key),
                }
                continue;
            }
            let Some((e, t)) = node.lookup_index(key) else {
                self.unknown(node, key);
                continue;
            };
            self.mark_seen(node, &mut seen, e, t, key);
            if resource == Some(true) && key == "contained" {
                continue; // dom-2, reported once by `resource`
            }
            self.element(node, e, t, key, value, map, resource.is_some());
        }
        for &e in &node.required {
            if !seen.has(e) {
                if let Some(element) = node.elements.get(usize::from(e)) {
                    let name = required_name(element);
                    let mark = self.push_field(&element.name);
                    let message = format!(
                        "missing required element '{name}' (minimum cardinality {} in {})",
                        element.min, node.name
                    );
                    self.report(IssueCode::Required, message);
                    self.path.truncate(mark);
                }
            }
        }
        if Some(node_id) == self.extension_node {
            self.extension_rule(map);
        } else if Some(node_id) == self.reference_node {
            self.reference_rule(map);
        }
    }

    fn mark_seen(&mut self, node: &TypeNode, seen: &mut Seen, e: u16, t: u16, key: &str) {
        let Some(previous) = seen.mark(e, t) else {
            return;
        };
        let Some(element) = node.elements.get(usize::from(e)) else {
            return;
        };
        if element.choice && previous != t {
            let other = element
                .types
                .get(usize::from(previous))
                .map_or("", |ty| &*ty.json_name);
            let mark = self.push_field(key.trim_start_matches('_'));
            let message = format!(
                "only one type of {}[x] may be present, found both '{other}' and '{}'",
                element.name,
                key.trim_start_matches('_')
            );
            self.report(IssueCode::Structure, message);
            self.path.truncate(mark);
        }
    }

    fn unknown(&mut self, node: &TypeNode, key: &str) {
        let base = key.trim_start_matches('_');
        let choice = node.elements.iter().find(|e| {
            e.choice
                && base.len() > e.name.len()
                && base.starts_with(&*e.name)
                && base[e.name.len()..].starts_with(|c: char| c.is_ascii_uppercase())
        });
        let message = match choice {
            Some(element) => {
                let allowed: Vec<&str> = element.types.iter().map(|t| &*t.json_name).collect();
                format!(
                    "'{base}' is not a permitted type for {}[x]; allowed: {}",
                    element.path.trim_end_matches("[x]"),
                    allowed.join(", ")
                )
            }
            None if key.starts_with('_') && node.lookup_index(base).is_none() => {
                format!(
                    "unknown element '{key}': '{base}' is not an element of {}",
                    node.name
                )
            }
            None => format!("unknown element '{key}' in {}", node.name),
        };
        let mark = self.push_field(key);
        self.report(IssueCode::Structure, message);
        self.path.truncate(mark);
    }

    #[allow(clippy::too_many_arguments)]
    fn element(
        &mut self,
        node: &'m TypeNode,
        e: u16,
        t: u16,
        key: &str,
        value: &'v Value,
        map: &'v Map<String, Value>,
        in_resource_root: bool,
    ) {
        let Some(element) = node.elements.get(usize::from(e)) else {
            return;
        };
        let Some(ty) = element.types.get(usize::from(t)) else {
            return;
        };
        let contained = in_resource_root && key == "contained";
        let mark = self.push_field(key);
        match (element.is_array(), value) {
            (true, Value::Array(items)) => self.array(element, ty, key, items, map, contained),
            (true, _) => {
                let max = element.max.map_or("*".to_owned(), |m| m.to_string());
                let message = format!(
                    "'{key}' has cardinality {}..{max} and must be a JSON array, found {}",
                    element.min,
                    primitives::describe(value)
                );
                self.report(IssueCode::Structure, message);
            }
            (false, Value::Array(_)) => {
                let message =
                    format!("'{key}' has maximum cardinality 1 and must not be a JSON array");
                self.report(IssueCode::Structure, message);
            }
            (false, Value::Null) => {
                self.report(
                    IssueCode::Structure,
                    "null is not allowed; omit the element instead",
                );
            }
            (false, _) => self.value(ty, value, contained),
        }
        self.path.truncate(mark);
    }

    fn array(
        &mut self,
        element: &ElementInfo,
        ty: &'m ElementType,
        key: &str,
        items: &'v [Value],
        map: &'v Map<String, Value>,
        contained: bool,
    ) {
        if items.is_empty() {
            self.report(
                IssueCode::Structure,
                "empty arrays are not allowed; omit the element instead",
            );
            return;
        }
        if let Some(max) = element.max {
            if items.len() > max as usize {
                let message = format!(
                    "'{key}' has {} items, more than the maximum of {max}",
                    items.len()
                );
                self.report(IssueCode::Structure, message);
            }
        }
        if items.len() < element.min as usize {
            let message = format!(
                "'{key}' has {} items, fewer than the minimum of {}",
                items.len(),
                element.min
            );
            self.report(IssueCode::Required, message);
        }
        let mut companion: Option<Option<&Value>> = None;
        for (i, item) in items.iter().enumerate() {
            let mark = self.push_index(i);
            if item.is_null() {
                let is_primitive = matches!(ty.kind, ValueKind::Primitive { .. });
                let companion = *companion.get_or_insert_with(|| map.get(&format!("_{key}")));
                let has_extension = companion
                    .and_then(Value::as_array)
                    .and_then(|c| c.get(i))
                    .is_some_and(|c| !c.is_null());
                if !(is_primitive && has_extension) {
                    let message = if is_primitive {
                        format!(
                            "null in '{key}' is only allowed where '_{key}' has an item at the same index"
                        )
                    } else {
                        "null is not allowed in an array of complex values".to_owned()
                    };
                    self.report(IssueCode::Structure, message);
                }
            } else {
                self.value(ty, item, contained);
            }
            self.path.truncate(mark);
        }
    }

    fn value(&mut self, ty: &'m ElementType, value: &'v Value, contained: bool) {
        match ty.kind {
            ValueKind::Primitive { primitive, .. } => {
                let checked = primitives::check(primitive, value);
                if checked.is_ok() && primitive == Primitive::Xhtml {
                    if let Some(warning) = primitives::xhtml_warning(value) {
                        self.issues
                            .push(Issue::warning(IssueCode::Value, warning).at(self.path.clone()));
                    }
                }
                if let Err(reason) = checked {
                    let code = if primitives::json_type_ok(primitive, value) {
                        IssueCode::Value
                    } else {
                        IssueCode::Structure
                    };
                    self.report(code, reason);
                }
            }
            ValueKind::Complex(node) => match value {
                Value::Object(map) => self.object(node, map, None),
                other => {
                    let found = primitives::describe(other);
                    self.report(
                        IssueCode::Structure,
                        format!("a {} must be a JSON object, found {found}", ty.code),
                    );
                }
            },
            ValueKind::Resource => self.resource(value, contained),
        }
    }

    /// The `_name` companion of a primitive: `{id, extension}`, or an array of
    /// those (or null) aligned with the value array.
    fn companion(
        &mut self,
        node: &TypeNode,
        e: u16,
        t: u16,
        base: &str,
        value: &'v Value,
        main: Option<&Value>,
    ) {
        let Some(element) = node.elements.get(usize::from(e)) else {
            return;
        };
        let kind = element.types.get(usize::from(t)).map(|ty| ty.kind);
        let Some(ValueKind::Primitive {
            extension_node: Some(ext_node),
            ..
        }) = kind
        else {
            let mark = self.push_field(&format!("_{base}"));
            let message = format!(
                "'_{base}' is not allowed: '{base}' is not a primitive element that can have extensions"
            );
            self.report(IssueCode::Structure, message);
            self.path.truncate(mark);
            return;
        };
        let mark = self.push_field(base);
        match (element.is_array(), value) {
            (true, Value::Array(items)) => {
                let main_items = main.and_then(Value::as_array);
                if items.is_empty() {
                    self.report(
                        IssueCode::Structure,
                        "empty arrays are not allowed; omit the element instead",
                    );
                } else if let Some(main_items) = main_items.filter(|m| m.len() != items.len()) {
                    let message = format!(
                        "'_{base}' has {} items but '{base}' has {}; the arrays must align",
                        items.len(),
                        main_items.len()
                    );
                    self.report(IssueCode::Structure, message);
                }
                for (i, item) in items.iter().enumerate() {
                    let index_mark = self.push_index(i);
                    match item {
                        Value::Null => {
                            // A null value item is reported by the value array's walk.
                            let main_item = main_items.and_then(|m| m.get(i));
                            if main_item.is_none() {
                                let message = format!(
                                    "'{base}' item {i} has neither a value nor extensions (null in both arrays)"
                                );
                                self.report(IssueCode::Structure, message);
                            }
                        }
                        Value::Object(map) => self.object(ext_node, map, None),
                        other => self.not_companion_object(base, other),
                    }
                    self.path.truncate(index_mark);
                }
            }
            (true, other) => {
                let found = primitives::describe(other);
                self.report(
                    IssueCode::Structure,
                    format!("'_{base}' must be a JSON array like '{base}', found {found}"),
                );
            }
            (false, Value::Object(map)) => self.object(ext_node, map, None),
            (false, other) => self.not_companion_object(base, other),
        }
        self.path.truncate(mark);
    }

    fn not_companion_object(&mut self, base: &str, value: &Value) {
        let found = primitives::describe(value);
        let message = format!("'_{base}' must hold JSON objects with id/extension, found {found}");
        self.report(IssueCode::Structure, message);
    }

    /// ext-1: an extension has either a value[x] or nested extensions, not both.
    fn extension_rule(&mut self, map: &Map<String, Value>) {
        let has_value = map
            .keys()
            .any(|k| k.trim_start_matches('_').starts_with("value"));
        let has_extensions = map.contains_key("extension");
        let message = match (has_value, has_extensions) {
            (true, true) => {
                "ext-1: an extension must have either a value[x] or nested extensions, not both"
            }
            (false, false) => {
                "ext-1: an extension must have either a value[x] or nested extensions"
            }
            _ => return,
        };
        self.report(IssueCode::Invariant, message);
    }

    /// `Reference.reference` must parse as one of the reference forms.
    fn reference_rule(&mut self, map: &Map<String, Value>) {
        let Some(Value::String(raw)) = map.get("reference") else {
            return;
        };
        if raw.is_empty() || crate::reference::parse_reference(raw, "").is_some() {
            return;
        }
        let mark = self.push_field("reference");
        let message = format!(
            "malformed reference '{raw}': expected Type/id, Type/id/_history/vid, an absolute URL, #id, urn:uuid:, urn:oid: or Type?query"
        );
        self.report(IssueCode::Value, message);
        self.path.truncate(mark);
    }
}

fn required_name(element: &ElementInfo) -> String {
    if element.choice {
        format!("{}[x]", element.name)
    } else {
        element.name.to_string()
    }
}
