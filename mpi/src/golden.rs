//! Survivorship: the golden Patient of a cluster of linked source
//! Patients. Each element is taken whole from one source, chosen by source
//! priority, then the most recent `meta.lastUpdated`, then the most
//! complete; identifiers are the union of all sources. Provenance says
//! which source gave each element and by which rule.

use std::cmp::Ordering;

use serde::Serialize;
use serde_json::{Map, Value, json};

/// The code system of the MPI's tags.
pub const MPI_TAG_SYSTEM: &str = "http://baraza.health/fhir/CodeSystem/mpi";
/// The tag code of golden records.
pub const GOLDEN_CODE: &str = "golden";

/// Elements taken whole from one source.
const SINGLE_ELEMENTS: &[&str] = &[
    "name",
    "gender",
    "birthDate",
    "telecom",
    "address",
    "maritalStatus",
    "deceasedBoolean",
    "deceasedDateTime",
    "multipleBirthBoolean",
    "multipleBirthInteger",
    "communication",
    "contact",
    "generalPractitioner",
    "managingOrganization",
    "photo",
];

/// One source Patient of a cluster.
#[derive(Debug, Clone, Copy)]
pub struct SourceRecord<'a> {
    /// The source (facility, integrator) that sent it.
    pub source: &'a str,
    pub patient: &'a Value,
}

/// Where one golden element came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Provenance {
    /// The element ("birthDate", or "identifier[2]").
    pub element: String,
    pub source: String,
    /// The source Patient's `id`.
    pub record_id: String,
    /// "source priority", "most recent", "most complete" or "only source".
    pub rule: String,
}

/// A golden record with its provenance.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Golden {
    pub patient: Value,
    pub provenance: Vec<Provenance>,
}

/// Builds the golden Patient `golden_id` of `records`; `priority` lists
/// sources from most to least trusted (unlisted ones come after).
pub fn build_golden(golden_id: &str, records: &[SourceRecord<'_>], priority: &[String]) -> Golden {
    let mut patient = Map::new();
    patient.insert("resourceType".into(), json!("Patient"));
    patient.insert("id".into(), json!(golden_id));
    patient.insert(
        "meta".into(),
        json!({"tag": [{"system": MPI_TAG_SYSTEM, "code": GOLDEN_CODE}]}),
    );
    let mut provenance = Vec::new();
    let identifiers = union_identifiers(records, &mut provenance);
    if !identifiers.is_empty() {
        patient.insert("identifier".into(), Value::Array(identifiers));
    }
    patient.insert("active".into(), json!(true));
    for element in SINGLE_ELEMENTS {
        let holders: Vec<&SourceRecord<'_>> = records
            .iter()
            .filter(|r| r.patient.get(*element).is_some_and(|v| !is_empty(v)))
            .collect();
        let Some((best, rule)) = choose(&holders, element, priority) else {
            continue;
        };
        if let Some(value) = best.patient.get(*element) {
            patient.insert((*element).into(), value.clone());
            provenance.push(Provenance {
                element: (*element).into(),
                source: best.source.into(),
                record_id: record_id(best),
                rule: rule.into(),
            });
        }
    }
    let links: Vec<Value> = records
        .iter()
        .filter_map(|r| r.patient.get("id").and_then(Value::as_str))
        .map(|id| json!({"other": {"reference": format!("Patient/{id}")}, "type": "seealso"}))
        .collect();
    if !links.is_empty() {
        patient.insert("link".into(), Value::Array(links));
    }
    Golden {
        patient: Value::Object(patient),
        provenance,
    }
}

fn record_id(record: &SourceRecord<'_>) -> String {
    record
        .patient
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        Value::Array(a) => a.iter().all(is_empty),
        Value::Object(o) => o.values().all(is_empty),
        _ => false,
    }
}

/// The number of non-empty leaf values (a full date counts its parts).
fn completeness(value: &Value) -> usize {
    match value {
        Value::Null => 0,
        Value::String(s) if s.trim().is_empty() => 0,
        Value::String(s) => 1 + s.matches('-').count(),
        Value::Array(a) => a.iter().map(completeness).sum(),
        Value::Object(o) => o.values().map(completeness).sum(),
        _ => 1,
    }
}

fn rank(source: &str, priority: &[String]) -> usize {
    priority
        .iter()
        .position(|p| p == source)
        .unwrap_or(priority.len())
}

fn last_updated<'a>(record: &SourceRecord<'a>) -> &'a str {
    record
        .patient
        .pointer("/meta/lastUpdated")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// The best holder of an element and the rule that decided.
fn choose<'r, 'a>(
    holders: &[&'r SourceRecord<'a>],
    element: &str,
    priority: &[String],
) -> Option<(&'r SourceRecord<'a>, &'static str)> {
    let key = |r: &SourceRecord<'_>| {
        (
            rank(r.source, priority),
            last_updated(r).to_string(),
            completeness(r.patient.get(element).unwrap_or(&Value::Null)),
        )
    };
    let compare = |a: &&SourceRecord<'_>, b: &&SourceRecord<'_>| -> Ordering {
        let (ka, kb) = (key(a), key(b));
        kb.0.cmp(&ka.0)
            .then_with(|| ka.1.cmp(&kb.1))
            .then_with(|| ka.2.cmp(&kb.2))
    };
    let mut sorted: Vec<&&SourceRecord<'a>> = holders.iter().collect();
    sorted.sort_by(|a, b| compare(b, a));
    let best: &'r SourceRecord<'a> = sorted.first()?;
    let rule = match sorted.get(1) {
        None => "only source",
        Some(second) => {
            let (kb, ks) = (key(best), key(second));
            if kb.0 != ks.0 {
                "source priority"
            } else if kb.1 != ks.1 {
                "most recent"
            } else {
                "most complete"
            }
        }
    };
    Some((best, rule))
}

/// Every distinct identifier (by system and value) of every source.
fn union_identifiers(records: &[SourceRecord<'_>], provenance: &mut Vec<Provenance>) -> Vec<Value> {
    let mut seen: Vec<(String, String)> = Vec::new();
    let mut out = Vec::new();
    for record in records {
        let identifiers = record
            .patient
            .get("identifier")
            .and_then(Value::as_array)
            .into_iter()
            .flatten();
        for identifier in identifiers {
            let system = identifier
                .get("system")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .trim()
                .to_string();
            let value = identifier
                .get("value")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let value = crate::normalize::identifier_value(value, true);
            if value.is_empty() || seen.contains(&(system.clone(), value.clone())) {
                continue;
            }
            seen.push((system, value));
            provenance.push(Provenance {
                element: format!("identifier[{}]", out.len()),
                source: record.source.into(),
                record_id: record_id(record),
                rule: "union".into(),
            });
            out.push(identifier.clone());
        }
    }
    out
}
