//! The DHIS2 mapping config: one YAML (or JSON, which YAML reads too) file
//! per source. It is checked completely while it is read; every error names
//! the line and column, and the key path (`dataElements.vANAXwtLwcT.unit`).
//! `docs/dhis2.md` describes each key; `adapters/examples/dhis2-t1d.yaml` is
//! a full example.

mod data_elements;
mod scalars;

pub use data_elements::{AggregateAs, DataElement, Unit, ValueType};
pub(crate) use scalars::deserialize_checked;

pub use scalars::{
    Coding, IdPrefix, MapKey, NonEmpty, SystemUri, Uid, UidMap, UniqueMap, UtcOffset, is_uid,
};

use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

/// A mapping config that passed every check.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Config {
    pub source: Source,
    #[serde(default)]
    pub org_units: OrgUnits,
    #[serde(default)]
    pub tracker: Tracker,
    /// Data elements of tracker events and of data value sets.
    #[serde(default)]
    pub data_elements: UidMap<DataElement>,
    #[serde(default)]
    pub aggregate: Aggregate,
}

/// Where the data comes from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Source {
    /// The DHIS2 instance's API base (`https://dhis2.example.org/api`):
    /// identifier systems are this plus `/organisationUnits`,
    /// `/trackedEntities`, `/enrollments`, `/events`, `/dataSets`, ...
    pub system_base: SystemUri,
    /// Put before every DHIS2 uid to make a resource id.
    #[serde(default)]
    pub id_prefix: IdPrefix,
    /// The offset of the DHIS2 server's local time, given to timestamps that
    /// have a time of day.
    #[serde(default)]
    pub time_zone: UtcOffset,
}

/// Organisation units → Organization + Location (mCSD).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OrgUnits {
    /// The identifier system for org unit uids (default:
    /// `{systemBase}/organisationUnits`).
    #[serde(default)]
    pub identifier_system: Option<SystemUri>,
    /// The identifier system for org unit codes (default:
    /// `{systemBase}/organisationUnits/code`).
    #[serde(default)]
    pub code_system: Option<SystemUri>,
    /// Units at this level and below are facilities; those above are
    /// jurisdictions.
    #[serde(default = "default_facility_level")]
    pub facility_level: u32,
    /// Organisation unit group uid → types added to Organization.type and
    /// Location.type.
    #[serde(default)]
    pub groups: UidMap<GroupTypes>,
}

fn default_facility_level() -> u32 {
    4
}

impl Default for OrgUnits {
    fn default() -> Self {
        OrgUnits {
            identifier_system: None,
            code_system: None,
            facility_level: default_facility_level(),
            groups: UidMap::default(),
        }
    }
}

/// The types one organisation unit group gives.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GroupTypes {
    #[serde(default)]
    pub organization_type: Option<Coding>,
    #[serde(default)]
    pub location_type: Option<Coding>,
}

/// What to do with a uid the config does not name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Unknown {
    /// A per-record error; the element is left out.
    Error,
    /// A per-record warning; the element is left out.
    Skip,
}

/// Tracker programs: tracked entities, enrollments, events.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Tracker {
    /// Tracked entity attribute uid → Patient element.
    #[serde(default)]
    pub attributes: UidMap<Attribute>,
    /// Program uid → names used as EpisodeOfCare.type and Encounter.type text.
    #[serde(default)]
    pub programs: UidMap<Program>,
    #[serde(default = "unknown_error")]
    pub unknown_data_elements: Unknown,
    #[serde(default = "unknown_skip")]
    pub unknown_attributes: Unknown,
    /// Encounter.class (default v3 ActCode `AMB`).
    #[serde(default)]
    pub encounter_class: Option<Coding>,
}

fn unknown_error() -> Unknown {
    Unknown::Error
}

fn unknown_skip() -> Unknown {
    Unknown::Skip
}

impl Default for Tracker {
    fn default() -> Self {
        Tracker {
            attributes: UidMap::default(),
            programs: UidMap::default(),
            unknown_data_elements: Unknown::Error,
            unknown_attributes: Unknown::Skip,
            encounter_class: None,
        }
    }
}

/// A program and its stages.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Program {
    pub name: NonEmpty,
    /// Optional EpisodeOfCare.type coding; the name is its text.
    #[serde(default)]
    pub code: Option<Coding>,
    /// Program stage uid → name (Encounter.type text).
    #[serde(default)]
    pub stages: UidMap<NonEmpty>,
}

/// The Patient element a tracked entity attribute fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum PatientElement {
    #[serde(rename = "identifier")]
    Identifier,
    #[serde(rename = "name.family")]
    NameFamily,
    #[serde(rename = "name.given")]
    NameGiven,
    #[serde(rename = "name.text")]
    NameText,
    #[serde(rename = "birthDate")]
    BirthDate,
    #[serde(rename = "gender")]
    Gender,
    #[serde(rename = "telecom.phone")]
    Phone,
    #[serde(rename = "telecom.email")]
    Email,
    #[serde(rename = "address.line")]
    AddressLine,
    #[serde(rename = "address.city")]
    AddressCity,
    #[serde(rename = "address.district")]
    AddressDistrict,
    #[serde(rename = "address.state")]
    AddressState,
    #[serde(rename = "address.postalCode")]
    AddressPostalCode,
    #[serde(rename = "address.country")]
    AddressCountry,
    #[serde(rename = "address.text")]
    AddressText,
}

/// One tracked entity attribute.
#[derive(Debug, Clone)]
pub struct Attribute {
    pub name: Option<NonEmpty>,
    pub element: PatientElement,
    /// Identifier.system (identifiers only).
    pub system: Option<SystemUri>,
    /// Identifier.type text (identifiers only).
    pub type_text: Option<NonEmpty>,
    /// DHIS2 value → FHIR value (gender: male, female, other, unknown).
    pub value_map: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawAttribute {
    #[serde(default)]
    name: Option<NonEmpty>,
    element: PatientElement,
    #[serde(default)]
    system: Option<SystemUri>,
    #[serde(default)]
    type_text: Option<NonEmpty>,
    #[serde(default)]
    value_map: BTreeMap<String, String>,
}

impl<'de> Deserialize<'de> for Attribute {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        scalars::deserialize_checked::<D, RawAttribute, Attribute>(deserializer)
    }
}

const GENDERS: [&str; 4] = ["male", "female", "other", "unknown"];

impl TryFrom<RawAttribute> for Attribute {
    type Error = String;
    fn try_from(raw: RawAttribute) -> Result<Self, String> {
        let identifier = raw.element == PatientElement::Identifier;
        if identifier && raw.system.is_none() {
            return Err("an identifier attribute needs `system`".into());
        }
        if !identifier && (raw.system.is_some() || raw.type_text.is_some()) {
            return Err("`system` and `typeText` are for identifier attributes only".into());
        }
        if raw.element == PatientElement::Gender {
            if let Some((from, to)) = raw
                .value_map
                .iter()
                .find(|(_, to)| !GENDERS.contains(&to.as_str()))
            {
                return Err(format!(
                    "valueMap maps {from:?} to {to:?}, which is not a FHIR gender (male, female, other, unknown)"
                ));
            }
        }
        Ok(Attribute {
            name: raw.name,
            element: raw.element,
            system: raw.system,
            type_text: raw.type_text,
            value_map: raw.value_map,
        })
    }
}

/// Data value sets → MeasureReport (or Observation).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Aggregate {
    /// MeasureReport.type: `summary` (default) or `data-collection`.
    #[serde(default)]
    pub report_type: ReportType,
    #[serde(default = "unknown_error")]
    pub unknown_data_elements: Unknown,
    /// Category option combo uid → coding of its stratum (default: the uid
    /// in `{systemBase}/categoryOptionCombos`).
    #[serde(default)]
    pub category_option_combos: UidMap<Coding>,
}

impl Default for Aggregate {
    fn default() -> Self {
        Aggregate {
            report_type: ReportType::Summary,
            unknown_data_elements: Unknown::Error,
            category_option_combos: UidMap::default(),
        }
    }
}

/// MeasureReport.type for data value sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum ReportType {
    #[default]
    #[serde(rename = "summary")]
    Summary,
    #[serde(rename = "data-collection")]
    DataCollection,
}

impl ReportType {
    pub fn as_str(self) -> &'static str {
        match self {
            ReportType::Summary => "summary",
            ReportType::DataCollection => "data-collection",
        }
    }
}

/// A config that could not be read or failed a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// 1-based line and column of the offending value, when known.
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// The message, starting with the key path when there is one.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Reads and checks any mapping config from YAML (or JSON) text.
pub(crate) fn read_yaml<T: DeserializeOwned>(text: &str) -> Result<T, ConfigError> {
    serde_yaml_ng::from_str(text).map_err(|error| {
        let Some(location) = error.location() else {
            return ConfigError {
                line: None,
                column: None,
                message: format!("mapping config: {error}"),
            };
        };
        let (line, column) = (location.line(), location.column());
        // serde_yaml_ng appends the position itself (except at 1:1); it is
        // put first here, the same way for every error.
        let text = error.to_string();
        let suffix = format!(" at line {line} column {column}");
        let message = text.strip_suffix(&suffix).unwrap_or(&text);
        ConfigError {
            line: Some(line),
            column: Some(column),
            message: format!("mapping config line {line} column {column}: {message}"),
        }
    })
}

/// Reads and checks the mapping config file at `path`.
pub(crate) fn read_yaml_file<T: DeserializeOwned>(path: &Path) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|error| ConfigError {
        line: None,
        column: None,
        message: format!("mapping config {}: {error}", path.display()),
    })?;
    read_yaml(&text).map_err(|mut error| {
        error.message = format!("{}: {}", path.display(), error.message);
        error
    })
}

impl Config {
    /// Reads and checks a YAML (or JSON) config.
    pub fn from_yaml(text: &str) -> Result<Config, ConfigError> {
        read_yaml(text)
    }

    /// Reads and checks the config file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        read_yaml_file(path)
    }

    /// The identifier system of org unit uids.
    pub fn org_unit_system(&self) -> String {
        match &self.org_units.identifier_system {
            Some(system) => system.as_str().to_owned(),
            None => self.source.system_base.join("organisationUnits"),
        }
    }

    /// The identifier system of org unit codes.
    pub fn org_unit_code_system(&self) -> String {
        match &self.org_units.code_system {
            Some(system) => system.as_str().to_owned(),
            None => self.source.system_base.join("organisationUnits/code"),
        }
    }

    /// The resource id for a DHIS2 uid.
    pub fn id(&self, uid: &str) -> String {
        self.source.id_prefix.id(uid)
    }
}
