//! Splitting an upload into records. Every record is one transaction
//! Bundle (written all or nothing), a source id (what the integrator calls
//! it: `Type/id`, a Bundle identifier, a DHIS2 record's resources) and the
//! SHA-256 of its content, which together tell a re-sent record apart from
//! a changed one. Parts of an upload that cannot become a record (a line
//! that is not JSON, a DHIS2 record that does not map) become failed
//! records with their OperationOutcome, so the rest of the upload goes on.

use super::DataType;
use crate::error::{ApiError, Category};
use adapters::RecordError;
use fhir::outcome::operation_outcome;
use fhir::{Issue, IssueCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// One record of a batch.
#[derive(Debug, Clone)]
pub struct Record {
    pub source_id: String,
    pub content_hash: String,
    /// The transaction Bundle to write; `None` for a record that failed at
    /// upload.
    pub payload: Option<Value>,
    /// The OperationOutcome of a record that failed at upload.
    pub outcome: Option<Value>,
    /// Its line in an NDJSON upload (from 1), for the errors file.
    pub line: Option<i64>,
}

impl Record {
    fn pending(source_id: String, payload: Value) -> Record {
        Record {
            source_id,
            content_hash: hash(&payload.to_string()),
            payload: Some(payload),
            outcome: None,
            line: None,
        }
    }

    fn failed(source_id: String, content: &str, issue: Issue) -> Record {
        Record {
            source_id,
            content_hash: hash(content),
            payload: None,
            outcome: Some(operation_outcome(&[issue])),
            line: None,
        }
    }
}

/// An upload's records, and warnings about what was left out on purpose.
#[derive(Debug, Default)]
pub struct Split {
    pub records: Vec<Record>,
    pub warnings: Vec<Issue>,
}

pub fn hash(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn transaction(entries: Vec<Value>) -> Value {
    json!({"resourceType": "Bundle", "type": "transaction", "entry": entries})
}

/// A resource as a transaction entry: `PUT Type/id` when it has an id
/// (so a re-sent resource updates it), else `POST Type`; and its source id.
fn resource_entry(resource: Value) -> Result<(String, Value), String> {
    let Some(resource_type) = resource.get("resourceType").and_then(Value::as_str) else {
        return Err("the resource has no resourceType".into());
    };
    let resource_type = resource_type.to_owned();
    match resource.get("id").and_then(Value::as_str) {
        Some(id) => {
            let url = format!("{resource_type}/{id}");
            let entry = json!({"resource": resource, "request": {"method": "PUT", "url": url}});
            Ok((url, entry))
        }
        None => {
            let source = format!("{resource_type}#{}", &hash(&resource.to_string())[..32]);
            let entry =
                json!({"resource": resource, "request": {"method": "POST", "url": resource_type}});
            Ok((source, entry))
        }
    }
}

/// Records of one Kafka message (`events::kafka::ingest`): a Bundle as
/// [`of_bundle`] reads it, any other resource as one record.
pub fn of_message(message: Value) -> Result<Split, ApiError> {
    match message.get("resourceType").and_then(Value::as_str) {
        Some("Bundle") => of_bundle(message),
        Some(_) => {
            let (source, entry) =
                resource_entry(message).map_err(|e| ApiError::invalid(e).at("resourceType"))?;
            Ok(Split {
                records: vec![Record::pending(source, transaction(vec![entry]))],
                warnings: Vec::new(),
            })
        }
        None => Err(ApiError::invalid(
            "a message must be a FHIR resource or Bundle with a resourceType",
        )
        .at("resourceType")),
    }
}

/// Records of a FHIR Bundle: a transaction is one record (its identifier
/// or id names it); each entry of a batch is one record; each resource of
/// any other Bundle (a collection) is one record, as NDJSON lines are.
pub fn of_bundle(bundle: Value) -> Result<Split, ApiError> {
    if bundle.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
        return Err(ApiError::invalid("a fhir-bundle upload must be a Bundle").at("resourceType"));
    }
    let kind = bundle
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if kind == "transaction" {
        let identifier = &bundle["identifier"];
        let source = match (identifier["system"].as_str(), identifier["value"].as_str()) {
            (Some(system), Some(value)) => format!("{system}|{value}"),
            (None, Some(value)) => value.to_owned(),
            _ => match bundle.get("id").and_then(Value::as_str) {
                Some(id) => format!("Bundle/{id}"),
                None => format!("Bundle#{}", &hash(&bundle.to_string())[..32]),
            },
        };
        return Ok(Split {
            records: vec![Record::pending(source, bundle)],
            warnings: Vec::new(),
        });
    }
    let entries = match bundle.get("entry") {
        Some(Value::Array(entries)) => entries.clone(),
        None => Vec::new(),
        Some(_) => {
            return Err(ApiError::invalid("Bundle.entry must be an array").at("Bundle.entry"));
        }
    };
    let mut split = Split::default();
    for (i, mut entry) in entries.into_iter().enumerate() {
        let at = format!("Bundle.entry[{i}]");
        if kind == "batch" {
            let url = entry["request"]["url"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let method = entry["request"]["method"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let source = match (
                method.as_str(),
                entry.get("fullUrl").and_then(Value::as_str),
            ) {
                ("POST", Some(full_url)) => full_url.to_owned(),
                ("POST", None) => format!("{url}#{}", &hash(&entry.to_string())[..32]),
                _ => url,
            };
            split
                .records
                .push(Record::pending(source, transaction(vec![entry])));
            continue;
        }
        let resource = entry
            .as_object_mut()
            .and_then(|e| e.remove("resource"))
            .unwrap_or(Value::Null);
        match resource_entry(resource) {
            Ok((source, entry)) => split
                .records
                .push(Record::pending(source, transaction(vec![entry]))),
            Err(message) => split.records.push(Record::failed(
                at.clone(),
                &entry.to_string(),
                Issue::error(IssueCode::Invalid, message).at(format!("{at}.resource")),
            )),
        }
    }
    Ok(split)
}

/// Records of NDJSON: one resource per line (blank lines are skipped).
pub fn of_ndjson(text: &str) -> Split {
    of_ndjson_lines(text, 1, None)
}

/// Records of NDJSON whose first line is line `first_line` of its input
/// (an input read a slice at a time); with `expected_type`, a line of
/// another resource type fails.
pub fn of_ndjson_lines(text: &str, first_line: i64, expected_type: Option<&str>) -> Split {
    let mut split = Split::default();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let number = first_line + i as i64;
        let at = format!("line {number}");
        let parsed = serde_json::from_str::<Value>(line)
            .map_err(|e| format!("not JSON: {e}"))
            .and_then(
                |resource| match (expected_type, resource.get("resourceType")) {
                    (Some(expected), Some(Value::String(found))) if found != expected => Err(
                        format!("the input is of {expected}, but this line is a {found}"),
                    ),
                    _ => resource_entry(resource),
                },
            );
        let mut record = match parsed {
            Ok((source, entry)) => Record::pending(source, transaction(vec![entry])),
            Err(message) => Record::failed(
                at.clone(),
                line,
                Issue::error(IssueCode::Invalid, format!("{at}: {message}")).at(at),
            ),
        };
        record.line = Some(number);
        split.records.push(record);
    }
    split
}

/// Records of a DHIS2 payload of `data_type`, mapped with `cfg`
/// (`known_org_units`: the uids already imported, for parents outside the
/// payload). Each DHIS2 record (an org unit's pair; a tracked entity with
/// its enrollments, events and observations; a MeasureReport) is one
/// record; each mapping error is a failed record naming the DHIS2 uid.
pub fn of_dhis2(
    data_type: DataType,
    payload: &Value,
    cfg: &adapters::dhis2::Config,
    known_org_units: &std::collections::HashSet<String>,
) -> Result<Split, ApiError> {
    use adapters::dhis2;
    let has = |key: &str| payload.get(key).is_some();
    let mapped = match data_type {
        DataType::Dhis2Metadata if has("organisationUnits") => {
            dhis2::map_org_units(payload, cfg, known_org_units)
        }
        DataType::Dhis2DataValues if has("dataValues") || has("dataValueSets") => {
            dhis2::map_data_value_sets(payload, cfg)
        }
        DataType::Dhis2Tracker
            if [
                "trackedEntities",
                "trackedEntityInstances",
                "instances",
                "enrollments",
                "events",
            ]
            .iter()
            .any(|&key| has(key)) =>
        {
            dhis2::map_tracker(payload, cfg)
        }
        _ => {
            return Err(ApiError::new(
                Category::Unprocessable,
                format!(
                    "the payload is not {}: expected {}",
                    data_type.as_str(),
                    match data_type {
                        DataType::Dhis2Metadata => "organisationUnits",
                        DataType::Dhis2DataValues => "dataValues or dataValueSets",
                        _ => "trackedEntities, trackedEntityInstances, enrollments or events",
                    }
                ),
            ));
        }
    };
    Ok(of_mapped(mapped))
}

/// Records of an adapter's output: each mapped record one record, each
/// error a failed record, warnings kept for the upload's answer.
pub fn of_mapped(mapped: adapters::Mapped) -> Split {
    let mut split = Split::default();
    for bundle in mapped.chunks(1) {
        let source = bundle["entry"][0]["request"]["url"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        split.records.push(Record::pending(source, bundle));
    }
    for error in &mapped.errors {
        if error.is_error() {
            split.records.push(failed_mapping(error));
        } else {
            split.warnings.push(error.to_issue());
        }
    }
    split
}

fn failed_mapping(error: &RecordError) -> Record {
    let source = error.record.clone().unwrap_or_else(|| error.path.clone());
    Record::failed(source, &error.to_string(), error.to_issue())
}

/// The kind of a DHIS2 payload, told apart by its top-level keys.
pub fn detect_dhis2(payload: &Value) -> DataType {
    let has = |key: &str| payload.get(key).is_some();
    if has("organisationUnits") {
        DataType::Dhis2Metadata
    } else if has("dataValues") || has("dataValueSets") {
        DataType::Dhis2DataValues
    } else {
        DataType::Dhis2Tracker
    }
}

/// The parents an org-unit payload names outside itself: they must have
/// been imported before (checked by the caller against the database).
pub fn outside_parents(payload: &Value) -> Vec<String> {
    let units = payload["organisationUnits"]
        .as_array()
        .map_or(&[][..], Vec::as_slice);
    let inside: std::collections::HashSet<&str> =
        units.iter().filter_map(|u| u["id"].as_str()).collect();
    let mut outside: Vec<String> = units
        .iter()
        .filter_map(|u| u["parent"]["id"].as_str())
        .filter(|p| !inside.contains(p))
        .map(str::to_owned)
        .collect();
    outside.sort();
    outside.dedup();
    outside
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ndjson_lines_become_put_or_post_records_and_bad_lines_fail() {
        let text = "{\"resourceType\":\"Patient\",\"id\":\"a\"}\n\n{\"resourceType\":\"Patient\"}\nnot json\n{\"id\":\"x\"}\n";
        let split = of_ndjson(text);
        let sources: Vec<&str> = split.records.iter().map(|r| r.source_id.as_str()).collect();
        assert_eq!(sources[0], "Patient/a");
        assert!(sources[1].starts_with("Patient#"));
        assert_eq!(sources[2..], ["line 4", "line 5"]);
        let lines: Vec<Option<i64>> = split.records.iter().map(|r| r.line).collect();
        assert_eq!(lines, [Some(1), Some(3), Some(4), Some(5)]);
        assert_eq!(
            split.records[0].payload.as_ref().unwrap()["entry"][0]["request"]["method"],
            "PUT"
        );
        assert_eq!(
            split.records[1].payload.as_ref().unwrap()["entry"][0]["request"]["method"],
            "POST"
        );
        assert!(split.records[2].outcome.is_some() && split.records[2].payload.is_none());
        assert_eq!(
            split.records[3].outcome.as_ref().unwrap()["issue"][0]["expression"][0],
            "line 5"
        );
        // The same line hashes the same.
        assert_eq!(
            of_ndjson(text).records[0].content_hash,
            split.records[0].content_hash
        );
    }

    #[test]
    fn a_transaction_is_one_record_and_a_batch_one_per_entry() {
        let transaction = json!({"resourceType": "Bundle", "type": "transaction",
            "identifier": {"system": "urn:x", "value": "42"}, "entry": []});
        let split = of_bundle(transaction).unwrap();
        assert_eq!(split.records.len(), 1);
        assert_eq!(split.records[0].source_id, "urn:x|42");
        let batch = json!({"resourceType": "Bundle", "type": "batch", "entry": [
            {"resource": {"resourceType": "Patient", "id": "p"}, "request": {"method": "PUT", "url": "Patient/p"}},
            {"fullUrl": "urn:uuid:1", "resource": {"resourceType": "Patient"}, "request": {"method": "POST", "url": "Patient"}}
        ]});
        let split = of_bundle(batch).unwrap();
        let sources: Vec<&str> = split.records.iter().map(|r| r.source_id.as_str()).collect();
        assert_eq!(sources, ["Patient/p", "urn:uuid:1"]);
        assert!(of_bundle(json!({"resourceType": "Patient"})).is_err());
    }
}
