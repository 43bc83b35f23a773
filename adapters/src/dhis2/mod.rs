//! DHIS2 Web API JSON → FHIR R4 transaction Bundles (docs/dhis2.md).
//!
//! - [`map_org_units`]: `organisationUnits` → Organization + Location (mCSD).
//! - [`map_tracker`]: tracked entities, enrollments, events (2.36+ and
//!   legacy) → Patient, EpisodeOfCare, Encounter, Observation.
//! - [`map_data_value_sets`]: `dataValueSets` → MeasureReport or Observation.
//! - [`map_payload`]: any of these, told apart by their top-level keys.
//!
//! Every entry is a `PUT` to an id derived from DHIS2 uids, so importing the
//! same data again updates instead of duplicating. Records that cannot be
//! mapped become [`RecordError`]s naming the uid and the JSON path; the rest
//! of the payload maps.

pub mod aggregate;
pub mod config;
pub(crate) mod fields;
mod hierarchy;
pub mod orgunits;

pub mod period;
pub mod tracker;
pub(crate) mod values;

pub use crate::output::{Mapped, RecordError};
pub use aggregate::map_data_value_sets;
pub use config::{Config, ConfigError};
pub use orgunits::map_org_units;
pub use period::{PeriodError, PeriodRange, parse_period};
pub use tracker::map_tracker;

use serde_json::Value;
use std::collections::HashSet;

/// Maps whichever kind of payload `payload` is: metadata with
/// `organisationUnits`, a tracker payload, or data value sets. `known_org_units`
/// are uids imported before (parents of units in this payload).
pub fn map_payload(payload: &Value, cfg: &Config, known_org_units: &HashSet<String>) -> Mapped {
    let has = |key: &str| payload.get(key).is_some();
    if has("organisationUnits") {
        map_org_units(payload, cfg, known_org_units)
    } else if has("dataValues") || has("dataValueSets") {
        map_data_value_sets(payload, cfg)
    } else {
        map_tracker(payload, cfg)
    }
}
