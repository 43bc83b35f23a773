//! The official R4 definitions, compiled into the binary (gzip-compressed) and
//! parsed once on first use: search parameters, the StructureDefinition
//! snapshots condensed into a [`StructureModel`], and the Patient
//! CompartmentDefinition (read by [`crate::compartment`]).

mod loader;
mod model;

pub use model::{
    ElementInfo, ElementType, NodeId, NodeKind, Primitive, StructureModel, TypeNode, ValueKind,
};

use flate2::read::GzDecoder;
use serde_json::Value;
use std::io::Read;
use std::sync::OnceLock;

static SEARCH_PARAMETERS_GZ: &[u8] = include_bytes!("../../definitions/search-parameters.json.gz");
pub(crate) static PROFILES_TYPES_GZ: &[u8] =
    include_bytes!("../../definitions/profiles-types.json.gz");
pub(crate) static PROFILES_RESOURCES_GZ: &[u8] =
    include_bytes!("../../definitions/profiles-resources.json.gz");
pub(crate) static JSON_SCHEMA_GZ: &[u8] = include_bytes!("../../definitions/fhir.schema.json.gz");
pub(crate) static COMPARTMENT_PATIENT_GZ: &[u8] =
    include_bytes!("../../definitions/compartmentdefinition-patient.json.gz");

/// Decompresses one embedded definitions file to text (empty on failure,
/// which the unit tests rule out for the compiled-in files).
pub(crate) fn gunzip(bytes: &[u8]) -> String {
    let mut text = String::new();
    if GzDecoder::new(bytes).read_to_string(&mut text).is_err() {
        text.clear();
    }
    text
}

/// The resources of a definitions Bundle, each read as `D` (only the
/// fields its reader needs). An unreadable Bundle reads as empty, which the
/// unit tests rule out for the compiled-in files.
pub(crate) fn bundle_resources<D: serde::de::DeserializeOwned>(json: &str) -> Vec<D> {
    #[derive(serde::Deserialize)]
    struct Bundle<D> {
        #[serde(default = "Vec::new")]
        entry: Vec<Entry<D>>,
    }
    #[derive(serde::Deserialize)]
    struct Entry<D> {
        resource: D,
    }
    serde_json::from_str::<Bundle<D>>(json)
        .map(|b| b.entry.into_iter().map(|e| e.resource).collect())
        .unwrap_or_default()
}

/// Decompresses and parses one embedded definitions file.
pub fn parse_gz_json(bytes: &[u8]) -> Value {
    // The files are compiled in and checked by unit tests, so a failure here
    // is a build defect; `Null` keeps callers total.
    serde_json::from_str(&gunzip(bytes)).unwrap_or(Value::Null)
}

/// The R4 SearchParameter Bundle (`search-parameters.json`).
pub fn search_parameters_bundle() -> &'static Value {
    static CELL: OnceLock<Value> = OnceLock::new();
    CELL.get_or_init(|| parse_gz_json(SEARCH_PARAMETERS_GZ))
}

/// The element model of every R4 resource, datatype and backbone element,
/// built from the snapshots in `profiles-types.json` and
/// `profiles-resources.json` on first use.
pub fn structure_model() -> &'static StructureModel {
    static CELL: OnceLock<StructureModel> = OnceLock::new();
    CELL.get_or_init(|| loader::build(&gunzip(PROFILES_TYPES_GZ), &gunzip(PROFILES_RESOURCES_GZ)))
}

/// The element named `json_name` (as spelled in JSON, so `valueQuantity` for
/// a choice) in the type or backbone path `type_or_path` (`Patient`,
/// `HumanName`, `Patient.contact`, `Questionnaire.item`).
pub fn element_info(type_or_path: &str, json_name: &str) -> Option<&'static ElementInfo> {
    structure_model()
        .element(type_or_path, json_name)
        .map(|(element, _)| element)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
