//! The CSV mapping config: which column identifies the patient, which
//! columns fill Patient elements, and which columns become Observations.
//! Read from YAML (or JSON) and checked at load like the DHIS2 config, with
//! the same building blocks (`element`s, `valueType`s, codings, units).

use crate::dhis2::config::{Attribute, ConfigError, DataElement, NonEmpty, Source, UniqueMap};
use serde::Deserialize;
use std::path::Path;

/// A CSV mapping config that passed every check.
#[derive(Debug, Clone)]
pub struct CsvConfig {
    pub source: Source,
    /// The field delimiter (default `,`).
    pub delimiter: u8,
    pub patient: Option<PatientColumns>,
    pub observations: Option<ObservationColumns>,
}

/// Columns that make the row's Patient.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PatientColumns {
    /// The column whose value identifies the patient (the Patient id and an
    /// identifier in `{systemBase}/patients`).
    pub id_column: NonEmpty,
    /// Column name → Patient element, as DHIS2 attributes are configured.
    #[serde(default)]
    pub columns: UniqueMap<String, Attribute>,
}

/// Columns that each become one Observation of the row.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ObservationColumns {
    /// The column naming the patient (`Patient/{idPrefix}{value}`).
    pub patient_column: NonEmpty,
    /// The column with the date or time of the observations.
    #[serde(default)]
    pub date_column: Option<NonEmpty>,
    /// The columns that identify a row (default: patient and date column),
    /// from which Observation ids are made.
    #[serde(default)]
    pub row_id_columns: Vec<NonEmpty>,
    /// Column name → code and value type, as DHIS2 data elements are configured.
    pub columns: UniqueMap<String, DataElement>,
}

impl ObservationColumns {
    /// The columns that identify a row.
    pub fn row_key_columns(&self) -> Vec<&str> {
        if !self.row_id_columns.is_empty() {
            return self.row_id_columns.iter().map(NonEmpty::as_str).collect();
        }
        std::iter::once(self.patient_column.as_str())
            .chain(self.date_column.as_ref().map(NonEmpty::as_str))
            .collect()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawCsvConfig {
    source: Source,
    #[serde(default)]
    delimiter: Option<NonEmpty>,
    #[serde(default)]
    patient: Option<PatientColumns>,
    #[serde(default)]
    observations: Option<ObservationColumns>,
}

impl TryFrom<RawCsvConfig> for CsvConfig {
    type Error = String;
    fn try_from(raw: RawCsvConfig) -> Result<Self, String> {
        if raw.patient.is_none() && raw.observations.is_none() {
            return Err("the config maps nothing: give `patient`, `observations` or both".into());
        }
        let delimiter = match raw.delimiter.as_ref().map(NonEmpty::as_str) {
            None => b',',
            Some("\\t" | "tab") => b'\t',
            Some(text) if text.len() == 1 && text.is_ascii() => text.as_bytes()[0],
            Some(text) => return Err(format!("delimiter {text:?} is not one ASCII character")),
        };
        if let Some(observations) = &raw.observations {
            if observations.columns.is_empty() {
                return Err("observations.columns names no column".into());
            }
        }
        Ok(CsvConfig {
            source: raw.source,
            delimiter,
            patient: raw.patient,
            observations: raw.observations,
        })
    }
}

impl<'de> Deserialize<'de> for CsvConfig {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        crate::dhis2::config::deserialize_checked::<D, RawCsvConfig, CsvConfig>(deserializer)
    }
}

impl CsvConfig {
    /// Reads and checks a YAML (or JSON) config.
    pub fn from_yaml(text: &str) -> Result<CsvConfig, ConfigError> {
        crate::dhis2::config::read_yaml(text)
    }

    /// Reads and checks the config file at `path`.
    pub fn load(path: &Path) -> Result<CsvConfig, ConfigError> {
        crate::dhis2::config::read_yaml_file(path)
    }

    /// Every column the config names (all must be in the header).
    pub fn named_columns(&self) -> Vec<&str> {
        let mut names = Vec::new();
        if let Some(patient) = &self.patient {
            names.push(patient.id_column.as_str());
            names.extend(patient.columns.iter().map(|(name, _)| name));
        }
        if let Some(observations) = &self.observations {
            names.push(observations.patient_column.as_str());
            names.extend(observations.date_column.as_ref().map(NonEmpty::as_str));
            names.extend(observations.row_key_columns());
            names.extend(observations.columns.iter().map(|(name, _)| name));
        }
        names.sort_unstable();
        names.dedup();
        names
    }
}
