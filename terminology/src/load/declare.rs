//! Declaring the properties a release's content uses but its header does
//! not (`CodeSystem.property`): SNOMED CT's attributes are known only once
//! the relationship file is read, a ClaML class's `Meta` names only once
//! the class is. The served CodeSystem of a loaded release then lists
//! every property `$lookup` can return and `$expand` can filter on. A
//! CodeSystem written through the API is served as written.

use crate::model::CodeSystemHeader;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};

#[derive(Debug)]
pub(super) struct Undeclared {
    /// The CodeSystem resource the load built from its header; `None` when
    /// the load stores a resource as it was written.
    resource: Option<Value>,
    declared: HashSet<String>,
    /// Found and not declared: code → type (of its first value).
    found: BTreeMap<String, &'static str>,
    uri: Option<String>,
}

impl Undeclared {
    pub(super) fn new(header: &CodeSystemHeader, resource: Option<Value>) -> Undeclared {
        Undeclared {
            resource,
            declared: header.properties.iter().map(|p| p.code.clone()).collect(),
            found: BTreeMap::new(),
            uri: header.property_uri.clone(),
        }
    }

    /// Notes a property value of type `kind`.
    pub(super) fn saw(&mut self, property: &str, kind: &'static str) {
        if self.resource.is_some()
            && !self.declared.contains(property)
            && !self.found.contains_key(property)
        {
            self.found.insert(property.to_owned(), kind);
        }
    }

    /// The resource with the found properties declared, if it changed.
    /// `describe` gives a property's description: the display of the
    /// concept of the same code, if there is one (SNOMED CT attributes
    /// are concepts).
    pub(super) fn finish(&self, describe: impl Fn(&str) -> Option<String>) -> Option<Value> {
        let mut resource = self.resource.clone()?;
        if self.found.is_empty() {
            return None;
        }
        let mut list = resource
            .get("property")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for (code, kind) in &self.found {
            let mut property = json!({"code": code, "type": kind});
            if let Some(prefix) = &self.uri {
                property["uri"] = json!(format!("{prefix}{code}"));
            }
            if let Some(description) = describe(code) {
                property["description"] = json!(description);
            }
            list.push(property);
        }
        resource["property"] = Value::Array(list);
        Some(resource)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::model::{PropertyDefinition, PropertyKind};

    #[test]
    fn found_properties_are_declared_once_with_uri_and_description() {
        let header = CodeSystemHeader {
            url: "http://snomed.info/sct".into(),
            properties: vec![PropertyDefinition {
                code: "inactive".into(),
                uri: None,
                description: None,
                kind: PropertyKind::Boolean,
            }],
            property_uri: Some("http://snomed.info/id/".into()),
            ..CodeSystemHeader::default()
        };
        let resource = json!({"resourceType": "CodeSystem", "property": [{"code": "inactive", "type": "boolean"}]});
        let mut undeclared = Undeclared::new(&header, Some(resource));
        undeclared.saw("inactive", "boolean");
        undeclared.saw("363698007", "code");
        undeclared.saw("363698007", "string");
        let out = undeclared
            .finish(|code| (code == "363698007").then(|| "Finding site".to_owned()))
            .unwrap();
        assert_eq!(
            out["property"],
            json!([
                {"code": "inactive", "type": "boolean"},
                {"code": "363698007", "type": "code", "uri": "http://snomed.info/id/363698007",
                 "description": "Finding site"}
            ])
        );
    }

    #[test]
    fn nothing_changes_without_new_properties_or_for_written_resources() {
        let header = CodeSystemHeader::default();
        let unchanged = Undeclared::new(&header, Some(json!({"resourceType": "CodeSystem"})));
        assert!(unchanged.finish(|_| None).is_none());
        let mut written = Undeclared::new(&header, None);
        written.saw("x", "string");
        assert!(written.finish(|_| None).is_none());
    }
}
