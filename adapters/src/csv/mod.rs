//! CSV rows → Patients and Observations, by a column mapping config
//! ([`CsvConfig`]; `docs/dhis2.md` has an example). Each row gives its
//! Patient (from the configured columns) and one Observation per configured
//! measurement column with a value. Ids come from the patient column and the
//! row's identifying columns, so loading the same file again updates.
//!
//! A patient on several rows is written once; a row whose patient columns
//! disagree with the first row of that patient gets a warning and the first
//! is kept. Cells that do not fit their column's type are per-record errors
//! at `rows[i].column`; the rest of the row maps.

mod config;

pub use config::{CsvConfig, ObservationColumns, PatientColumns};

use crate::dhis2::config::IdPrefix;
use crate::dhis2::fields;
use crate::dhis2::tracker::events::code;
use crate::dhis2::tracker::patient::PatientBuilder;
use crate::dhis2::values::observation_value;
use crate::output::{BundleBuilder, Mapped, RecordError, composite_id};
use fhir::IssueCode;
use serde_json::{Value, json};
use std::collections::HashMap;

/// Maps the CSV `text` (a header line, then one record per row).
pub fn map_csv(text: &str, cfg: &CsvConfig) -> Mapped {
    let mut out = BundleBuilder::default();
    let mut reader = ::csv::ReaderBuilder::new()
        .delimiter(cfg.delimiter)
        .trim(::csv::Trim::All)
        .from_reader(text.as_bytes());
    let header: Vec<String> = match reader.headers() {
        Ok(header) => header.iter().map(str::to_owned).collect(),
        Err(error) => {
            out.error(RecordError::error(
                None,
                "header",
                format!("unreadable CSV header: {error}"),
            ));
            return out.finish();
        }
    };
    let missing: Vec<&str> = cfg
        .named_columns()
        .into_iter()
        .filter(|name| !header.iter().any(|column| column == name))
        .collect();
    if !missing.is_empty() {
        out.error(RecordError::error(
            None,
            "header",
            format!(
                "the header lacks columns the config names: {}",
                missing.join(", ")
            ),
        ));
        return out.finish();
    }
    let mut patients: HashMap<String, (usize, Value)> = HashMap::new();
    for (index, record) in reader.records().enumerate() {
        let at = format!("rows[{index}]");
        match record {
            Ok(record) => {
                let line = record.position().map_or(0, ::csv::Position::line);
                let row = Row {
                    cells: header
                        .iter()
                        .map(String::as_str)
                        .zip(record.iter())
                        .collect(),
                    index,
                    line,
                };
                map_row(&row, cfg, &mut patients, &mut out);
            }
            Err(error) => out.error(RecordError::error(
                None,
                &at,
                format!("unreadable row: {error}"),
            )),
        }
        out.end_record();
    }
    out.finish()
}

/// One data row: cells by column name, its index and its line in the file.
struct Row<'a> {
    cells: HashMap<&'a str, &'a str>,
    index: usize,
    line: u64,
}

impl Row<'_> {
    /// A non-empty cell.
    fn cell(&self, column: &str) -> Option<&str> {
        self.cells
            .get(column)
            .copied()
            .filter(|value| !value.is_empty())
    }

    fn at(&self, column: &str) -> String {
        format!("rows[{}].{column}", self.index)
    }
}

/// The Patient id for a patient column value: the value itself when it is a
/// usable id, else a hash of it.
fn patient_id(prefix: &IdPrefix, value: &str) -> String {
    let plain = value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if plain && prefix.as_str().len() + value.len() <= 64 {
        prefix.id(value)
    } else {
        composite_id(&format!("{}p-", prefix.as_str()), &[value])
    }
}

fn map_row(
    row: &Row<'_>,
    cfg: &CsvConfig,
    patients: &mut HashMap<String, (usize, Value)>,
    out: &mut BundleBuilder,
) {
    if let Some(columns) = &cfg.patient {
        let id_column = columns.id_column.as_str();
        let Some(key) = row.cell(id_column) else {
            return out.error(RecordError::error(
                None,
                &row.at(id_column),
                format!(
                    "no patient id in column {id_column} (line {}); the row is left out",
                    row.line
                ),
            ));
        };
        let id = patient_id(&cfg.source.id_prefix, key);
        let mut builder = PatientBuilder::new(json!({
            "resourceType": "Patient",
            "id": id,
            "identifier": [{"system": cfg.source.system_base.join("patients"), "value": key}],
        }));
        for (column, mapping) in columns.columns.iter() {
            let Some(value) = row.cell(column) else {
                continue;
            };
            if let Err(message) = builder.fill(mapping, value) {
                out.error(RecordError::error(
                    Some(key),
                    &row.at(column),
                    format!("{message} (line {}); left out", row.line),
                ));
            }
        }
        let patient = builder.finish();
        match patients.get(&id) {
            None => {
                patients.insert(id, (row.index, patient.clone()));
                out.put(patient, Some(key), &format!("rows[{}]", row.index));
            }
            Some((_, first)) if *first == patient => {}
            Some((first_row, _)) => out.error(
                RecordError::error(
                    Some(key),
                    &format!("rows[{}]", row.index),
                    format!(
                        "patient {key} differs from rows[{first_row}] (line {}); the first is kept",
                        row.line
                    ),
                )
                .warning(),
            ),
        }
    }
    if let Some(columns) = &cfg.observations {
        observations(row, columns, cfg, out);
    }
}

/// One Observation per configured measurement column with a value.
fn observations(
    row: &Row<'_>,
    columns: &ObservationColumns,
    cfg: &CsvConfig,
    out: &mut BundleBuilder,
) {
    let offset = cfg.source.time_zone.as_str();
    let patient_column = columns.patient_column.as_str();
    let Some(patient) = row.cell(patient_column) else {
        return out.error(RecordError::error(
            None,
            &row.at(patient_column),
            format!(
                "no patient in column {patient_column} (line {}); its observations are left out",
                row.line
            ),
        ));
    };
    let effective = match &columns.date_column {
        None => None,
        Some(column) => match row
            .cell(column.as_str())
            .map(|text| fields::date_time(text, offset))
        {
            None => None,
            Some(Ok(date)) => Some(date),
            Some(Err(message)) => {
                return out.error(RecordError::error(
                    Some(patient),
                    &row.at(column.as_str()),
                    format!(
                        "{message} (line {}); the row's observations are left out",
                        row.line
                    ),
                ));
            }
        },
    };
    let mut keys: Vec<&str> = columns
        .row_key_columns()
        .into_iter()
        .map(|column| row.cell(column).unwrap_or(""))
        .collect();
    let prefix = format!("{}o-", cfg.source.id_prefix.as_str());
    for (column, element) in columns.columns.iter() {
        let Some(raw) = row.cell(column) else {
            continue;
        };
        let (value_key, value) = match observation_value(element, raw, offset) {
            Ok(value) => value,
            Err(message) => {
                out.error(
                    RecordError::error(
                        Some(patient),
                        &row.at(column),
                        format!("{message} (line {}); left out", row.line),
                    )
                    .with_code(IssueCode::Value),
                );
                continue;
            }
        };
        keys.push(column);
        let mut observation = json!({
            "resourceType": "Observation",
            "id": composite_id(&prefix, &keys),
            "status": "final",
            "code": code(element),
            "subject": {"reference": format!("Patient/{}", patient_id(&cfg.source.id_prefix, patient))},
        });
        keys.pop();
        if let Some(category) = &element.category {
            observation["category"] = json!([{"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                "code": category,
            }]}]);
        }
        if let Some(effective) = &effective {
            observation["effectiveDateTime"] = json!(effective);
        }
        observation[value_key] = value;
        out.put(observation, Some(patient), &row.at(column));
    }
}
