//! CodeSystem resources as loader input: the header and the records of a
//! CodeSystem's (nested) concepts. Nesting, and the `parent`, `child` and
//! `subsumedBy` properties, give the is-a edges; `inactive` and a `status`
//! of retired or inactive make a concept inactive.

use crate::model::{
    CodeSystemHeader, Designation, PropertyDefinition, PropertyKind, PropertyValue, Record,
};
use serde_json::Value;

/// The header, the records and `CodeSystem.content` of a CodeSystem.
pub fn code_system_records(resource: &Value) -> (CodeSystemHeader, Vec<Record>) {
    let s = |key: &str| resource.get(key).and_then(Value::as_str).map(str::to_owned);
    let properties: Vec<PropertyDefinition> = resource
        .get("property")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| {
            Some(PropertyDefinition {
                code: p.get("code")?.as_str()?.to_owned(),
                uri: p.get("uri").and_then(Value::as_str).map(str::to_owned),
                description: p
                    .get("description")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                kind: property_kind(p.get("type").and_then(Value::as_str).unwrap_or("string")),
            })
        })
        .collect();
    let header = CodeSystemHeader {
        url: s("url").unwrap_or_default(),
        version: s("version"),
        name: s("name"),
        title: s("title"),
        hierarchy_meaning: s("hierarchyMeaning"),
        properties,
        property_uri: None,
    };
    let mut records = Vec::new();
    if let Some(concepts) = resource.get("concept").and_then(Value::as_array) {
        for concept in concepts {
            walk(concept, None, &mut records);
        }
    }
    // Edges may name codes that are not concepts of this resource (a
    // fragment); those are dropped rather than failing the write.
    let defined: std::collections::HashSet<String> = records
        .iter()
        .filter_map(|r| match r {
            Record::Concept { code, .. } => Some(code.clone()),
            _ => None,
        })
        .collect();
    records.retain(|r| match r {
        Record::IsA { child, parent } => defined.contains(child) && defined.contains(parent),
        _ => true,
    });
    (header, records)
}

fn walk(concept: &Value, parent: Option<&str>, out: &mut Vec<Record>) {
    let Some(code) = concept.get("code").and_then(Value::as_str) else {
        return;
    };
    let text = |key: &str| concept.get(key).and_then(Value::as_str).map(str::to_owned);
    let mut active = true;
    let mut properties = Vec::new();
    for p in concept
        .get("property")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(name) = p.get("code").and_then(Value::as_str) else {
            continue;
        };
        let Some(value) = property_value(p) else {
            continue;
        };
        match (name, &value) {
            ("inactive", PropertyValue::Boolean(true)) => active = false,
            ("status", PropertyValue::Code(s)) if s == "retired" || s == "inactive" => {
                active = false
            }
            ("parent" | "subsumedBy", PropertyValue::Code(p)) => out.push(Record::IsA {
                child: code.to_owned(),
                parent: p.clone(),
            }),
            ("child", PropertyValue::Code(c)) => out.push(Record::IsA {
                child: c.clone(),
                parent: code.to_owned(),
            }),
            _ => {}
        }
        properties.push(Record::Property {
            code: code.to_owned(),
            property: name.to_owned(),
            value,
        });
    }
    out.push(Record::Concept {
        code: code.to_owned(),
        display: text("display"),
        definition: text("definition"),
        active,
    });
    out.extend(properties);
    if let Some(parent) = parent {
        out.push(Record::IsA {
            child: code.to_owned(),
            parent: parent.to_owned(),
        });
    }
    for d in concept
        .get("designation")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(value) = d.get("value").and_then(Value::as_str) else {
            continue;
        };
        let use_ = d.get("use").and_then(|u| {
            Some((
                u.get("system")?.as_str()?.to_owned(),
                u.get("code")?.as_str()?.to_owned(),
            ))
        });
        out.push(Record::Designation {
            code: code.to_owned(),
            designation: Designation {
                language: d.get("language").and_then(Value::as_str).map(str::to_owned),
                use_,
                value: value.to_owned(),
                preferred: false,
            },
        });
    }
    for child in concept
        .get("concept")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        walk(child, Some(code), out);
    }
}

fn property_kind(code: &str) -> PropertyKind {
    match code {
        "code" => PropertyKind::Code,
        "Coding" => PropertyKind::Coding,
        "integer" => PropertyKind::Integer,
        "boolean" => PropertyKind::Boolean,
        "dateTime" => PropertyKind::DateTime,
        "decimal" => PropertyKind::Decimal,
        _ => PropertyKind::String,
    }
}

fn property_value(p: &Value) -> Option<PropertyValue> {
    let obj = p.as_object()?;
    for (key, v) in obj {
        let value = match key.as_str() {
            "valueCode" => PropertyValue::Code(v.as_str()?.to_owned()),
            "valueString" => PropertyValue::String(v.as_str()?.to_owned()),
            "valueBoolean" => PropertyValue::Boolean(v.as_bool()?),
            "valueInteger" => PropertyValue::Integer(v.as_i64()?),
            "valueDateTime" => PropertyValue::DateTime(v.as_str()?.to_owned()),
            "valueDecimal" => PropertyValue::Decimal(v.to_string()),
            "valueCoding" => PropertyValue::Coding {
                system: v
                    .get("system")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
                code: v.get("code")?.as_str()?.to_owned(),
            },
            _ => continue,
        };
        return Some(value);
    }
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nesting_and_properties_give_edges_and_status() {
        let cs = json!({
            "resourceType": "CodeSystem", "url": "http://x", "version": "1",
            "concept": [
                {"code": "a", "display": "A", "concept": [
                    {"code": "b", "display": "B",
                     "property": [{"code": "status", "valueCode": "retired"}]}
                ]},
                {"code": "c", "property": [{"code": "parent", "valueCode": "b"}],
                 "designation": [{"language": "fr", "value": "Ce"}]},
                {"code": "d", "property": [{"code": "parent", "valueCode": "zz"}]}
            ]
        });
        let (header, records) = code_system_records(&cs);
        assert_eq!(header.url, "http://x");
        assert!(records.contains(&Record::IsA {
            child: "b".into(),
            parent: "a".into()
        }));
        assert!(records.contains(&Record::IsA {
            child: "c".into(),
            parent: "b".into()
        }));
        assert!(
            !records
                .iter()
                .any(|r| matches!(r, Record::IsA { parent, .. } if parent == "zz"))
        );
        assert!(records.contains(&Record::Concept {
            code: "b".into(),
            display: Some("B".into()),
            definition: None,
            active: false
        }));
        assert!(
            records
                .iter()
                .any(|r| matches!(r, Record::Designation { code, .. } if code == "c"))
        );
    }
}
