//! The CodeSystem resource served for a loaded release (its header
//! without concepts) and the id it is read at.

use crate::model::{CodeSystemHeader, PropertyKind};
use serde_json::{Value, json};

/// An id for a loaded code system's CodeSystem resource.
pub fn derived_id(url: &str, version: &str) -> String {
    let last = url
        .trim_end_matches('/')
        .rsplit(['/', ':'])
        .next()
        .unwrap_or("cs");
    let mut id: String = format!("{last}-{version}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    id = id.trim_matches('-').to_owned();
    id.truncate(64);
    if id.is_empty() {
        "code-system".to_owned()
    } else {
        id
    }
}

/// The CodeSystem resource of a loaded release, without its concepts.
pub(super) fn header_resource(
    header: &CodeSystemHeader,
    id: &str,
    version: &str,
    content: &str,
) -> Value {
    let mut r = json!({
        "resourceType": "CodeSystem",
        "id": id,
        "url": header.url,
        "status": "active",
        "content": content,
    });
    let set = |r: &mut Value, key: &str, value: Option<&String>| {
        if let Some(v) = value {
            r[key] = json!(v);
        }
    };
    if !version.is_empty() {
        r["version"] = json!(version);
    }
    set(&mut r, "name", header.name.as_ref());
    set(&mut r, "title", header.title.as_ref());
    set(
        &mut r,
        "hierarchyMeaning",
        header.hierarchy_meaning.as_ref(),
    );
    if !header.properties.is_empty() {
        r["property"] = header
            .properties
            .iter()
            .map(|p| {
                let mut v = json!({"code": p.code, "type": kind_code(p.kind)});
                if let Some(uri) = &p.uri {
                    v["uri"] = json!(uri);
                }
                if let Some(d) = &p.description {
                    v["description"] = json!(d);
                }
                v
            })
            .collect();
    }
    r
}

pub fn kind_code(kind: PropertyKind) -> &'static str {
    match kind {
        PropertyKind::Code => "code",
        PropertyKind::Coding => "Coding",
        PropertyKind::String => "string",
        PropertyKind::Integer => "integer",
        PropertyKind::Boolean => "boolean",
        PropertyKind::DateTime => "dateTime",
        PropertyKind::Decimal => "decimal",
    }
}
