//! Reference strings (references.html): parsing the forms a client may send,
//! and walking a resource to find or rewrite every `reference` it holds.

use crate::id::{ResourceType, is_valid_id};
use serde_json::Value;

/// What a `Reference.reference` string points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReferenceTarget<'a> {
    /// `Type/id` or `Type/id/_history/vid`, relative to this server (or an
    /// absolute URL under this server's base).
    Local {
        resource_type: ResourceType,
        id: &'a str,
        version: Option<&'a str>,
    },
    /// `#id`: a contained resource (or `#` for the container itself).
    Contained(&'a str),
    /// `urn:uuid:...` or `urn:oid:...`: a Bundle-internal placeholder.
    Urn(&'a str),
    /// `Type?criteria`: a conditional reference, only legal inside a transaction.
    Conditional {
        resource_type: ResourceType,
        query: &'a str,
    },
    /// An absolute URL on another server, or a logical/canonical URL.
    External(&'a str),
}

/// Parses a reference string. `local_base` is this server's base URL (for
/// example `https://hie.example.org/fhir`); absolute URLs under it are local.
/// Returns `None` when the string is not a well-formed reference.
pub fn parse_reference<'a>(raw: &'a str, local_base: &str) -> Option<ReferenceTarget<'a>> {
    if raw.is_empty() || raw.trim() != raw {
        return None;
    }
    if let Some(contained) = raw.strip_prefix('#') {
        return (contained.is_empty() || is_valid_id(contained))
            .then_some(ReferenceTarget::Contained(contained));
    }
    if let Some(rest) = raw.strip_prefix("urn:uuid:") {
        return is_uuid(rest).then_some(ReferenceTarget::Urn(raw));
    }
    if let Some(rest) = raw.strip_prefix("urn:oid:") {
        return is_oid(rest).then_some(ReferenceTarget::Urn(raw));
    }
    let base = local_base.trim_end_matches('/');
    let relative = match raw.strip_prefix(base) {
        Some(rest) if !base.is_empty() && rest.starts_with('/') => &rest[1..],
        _ if raw.contains("://") || raw.starts_with("urn:") => {
            return Some(ReferenceTarget::External(raw));
        }
        _ => raw,
    };
    if let Some((type_name, query)) = relative.split_once('?') {
        let resource_type = ResourceType::parse(type_name)?;
        return Some(ReferenceTarget::Conditional {
            resource_type,
            query,
        });
    }
    parse_relative(relative)
}

fn parse_relative(relative: &str) -> Option<ReferenceTarget<'_>> {
    let mut parts = relative.split('/');
    let resource_type = ResourceType::parse(parts.next()?)?;
    let id = parts.next().filter(|id| is_valid_id(id))?;
    let version = match (parts.next(), parts.next()) {
        (None, _) => None,
        (Some("_history"), Some(v)) if is_valid_id(v) => Some(v),
        _ => return None,
    };
    if parts.next().is_some() {
        return None;
    }
    Some(ReferenceTarget::Local {
        resource_type,
        id,
        version,
    })
}

fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn is_oid(s: &str) -> bool {
    // datatypes.html#oid: urn:oid:[0-2](\.(0|[1-9][0-9]*))+
    let mut arcs = s.split('.');
    let first_ok = matches!(arcs.next(), Some("0" | "1" | "2"));
    let mut n_rest = 0;
    let rest_ok = arcs.all(|arc| {
        n_rest += 1;
        !arc.is_empty()
            && arc.bytes().all(|b| b.is_ascii_digit())
            && (arc == "0" || !arc.starts_with('0'))
    });
    first_ok && rest_ok && n_rest > 0
}

/// Calls `visit` with every `reference` string in the resource, at any depth
/// (nested elements, extensions, contained resources), mutably so that
/// transaction processing can rewrite placeholders in place.
pub fn for_each_reference_mut(value: &mut Value, visit: &mut dyn FnMut(&mut String)) {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                if key == "reference" {
                    if let Value::String(s) = child {
                        visit(s);
                        continue;
                    }
                }
                for_each_reference_mut(child, visit);
            }
        }
        Value::Array(items) => {
            for item in items {
                for_each_reference_mut(item, visit);
            }
        }
        _ => {}
    }
}

/// Read-only variant of [`for_each_reference_mut`]. `path` is the FHIRPath-like
/// location of each reference, for error messages.
pub fn for_each_reference(value: &Value, path: &str, visit: &mut dyn FnMut(&str, &str)) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let child_path = format!("{path}.{key}");
                match child {
                    Value::String(s) if key == "reference" => visit(s, &child_path),
                    _ => for_each_reference(child, &child_path, visit),
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                for_each_reference(item, &format!("{path}[{i}]"), visit);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const BASE: &str = "https://hie.example.org/fhir";

    fn local(t: &str, id: &'static str, version: Option<&'static str>) -> ReferenceTarget<'static> {
        ReferenceTarget::Local {
            resource_type: ResourceType::parse(t).unwrap(),
            id,
            version,
        }
    }

    #[test]
    fn parses_each_form() {
        let cases: Vec<(&str, Option<ReferenceTarget>)> = vec![
            ("Patient/123", Some(local("Patient", "123", None))),
            (
                "Patient/123/_history/2",
                Some(local("Patient", "123", Some("2"))),
            ),
            (
                "https://hie.example.org/fhir/Patient/9",
                Some(local("Patient", "9", None)),
            ),
            (
                "http://other.org/fhir/Patient/9",
                Some(ReferenceTarget::External("http://other.org/fhir/Patient/9")),
            ),
            ("#p1", Some(ReferenceTarget::Contained("p1"))),
            (
                "urn:uuid:3f2504e0-4f89-11d3-9a0c-0305e82c3301",
                Some(ReferenceTarget::Urn(
                    "urn:uuid:3f2504e0-4f89-11d3-9a0c-0305e82c3301",
                )),
            ),
            (
                "urn:oid:1.2.840.113619",
                Some(ReferenceTarget::Urn("urn:oid:1.2.840.113619")),
            ),
            (
                "Patient?identifier=a|b",
                Some(ReferenceTarget::Conditional {
                    resource_type: ResourceType::parse("Patient").unwrap(),
                    query: "identifier=a|b",
                }),
            ),
            ("Patient", None),
            ("Nope/1", None),
            ("Patient/a b", None),
            ("Patient/1/_history", None),
            ("urn:uuid:not-a-uuid", None),
            ("urn:oid:1.02", None),
            (" Patient/1", None),
        ];
        for (raw, expected) in cases {
            assert_eq!(parse_reference(raw, BASE), expected, "{raw}");
        }
    }

    #[test]
    fn rewrites_nested_references() {
        let mut resource = serde_json::json!({
            "resourceType": "Observation",
            "subject": {"reference": "urn:uuid:a"},
            "extension": [{"url": "x", "valueReference": {"reference": "urn:uuid:a"}}],
            "note": [{"text": "reference"}]
        });
        for_each_reference_mut(&mut resource, &mut |s| {
            if s == "urn:uuid:a" {
                *s = "Patient/1".into();
            }
        });
        assert_eq!(resource["subject"]["reference"], "Patient/1");
        assert_eq!(
            resource["extension"][0]["valueReference"]["reference"],
            "Patient/1"
        );
        assert_eq!(resource["note"][0]["text"], "reference");
    }
}
