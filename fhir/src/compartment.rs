//! Compartments (compartmentdefinition.html): which search parameters link a
//! resource type to a compartment, from the compiled-in R4
//! CompartmentDefinitions (`compartmentdefinition-patient.json`; Patient is
//! the only one shipped). A resource is in the compartment of patient `p`
//! when any of its type's parameters references `Patient/p`; a Patient is
//! also in its own compartment (compartmentdefinition.html#compartment).
//!
//! `GET [base]/Patient/[id]/[type]` searches `[type]` with these parameters
//! (search.html#compartments).

use crate::definitions::{COMPARTMENT_PATIENT_GZ, parse_gz_json};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::OnceLock;

/// One CompartmentDefinition: its `code` and, per resource type with at
/// least one parameter, the parameter codes in definition order.
struct Compartment {
    code: String,
    /// Resource types in definition order (alphabetical in R4).
    types: Vec<String>,
    params: HashMap<String, Vec<String>>,
}

fn compartments() -> &'static [Compartment] {
    static CELL: OnceLock<Vec<Compartment>> = OnceLock::new();
    CELL.get_or_init(|| {
        [COMPARTMENT_PATIENT_GZ]
            .into_iter()
            .filter_map(|bytes| parse_compartment(&parse_gz_json(bytes)))
            .collect()
    })
}

/// Reads one CompartmentDefinition; `None` if it is not one.
fn parse_compartment(definition: &Value) -> Option<Compartment> {
    if definition.get("resourceType")?.as_str()? != "CompartmentDefinition" {
        return None;
    }
    let code = definition.get("code")?.as_str()?.to_owned();
    let mut types = Vec::new();
    let mut params = HashMap::new();
    for resource in definition.get("resource")?.as_array()? {
        let Some(resource_type) = resource.get("code").and_then(Value::as_str) else {
            continue;
        };
        let codes: Vec<String> = resource
            .get("param")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect();
        if !codes.is_empty() {
            types.push(resource_type.to_owned());
            params.insert(resource_type.to_owned(), codes);
        }
    }
    Some(Compartment {
        code,
        types,
        params,
    })
}

/// The search parameter codes linking `resource_type` to the compartment
/// `compartment` (`Patient`): `Observation` → `subject`, `performer`.
/// `None` for an unknown compartment or a type that cannot be in it
/// (listed without parameters, like `Practitioner`, or not listed).
pub fn compartment_params(compartment: &str, resource_type: &str) -> Option<&'static [String]> {
    compartments()
        .iter()
        .find(|c| c.code == compartment)?
        .params
        .get(resource_type)
        .map(Vec::as_slice)
}

/// [`compartment_params`] for the Patient compartment.
pub fn patient_compartment_params(resource_type: &str) -> Option<&'static [String]> {
    compartment_params("Patient", resource_type)
}

/// The resource types that can be in the compartment (those with at least
/// one parameter), in definition order; empty for an unknown compartment.
pub fn compartment_types(compartment: &str) -> impl Iterator<Item = &'static str> {
    compartments()
        .iter()
        .filter(move |c| c.code == compartment)
        .flat_map(|c| c.types.iter().map(String::as_str))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn patient_compartment_from_the_definition() {
        // compartmentdefinition-patient.json, resource[].param:
        assert_eq!(
            patient_compartment_params("Observation").unwrap(),
            ["subject", "performer"]
        );
        assert_eq!(
            patient_compartment_params("Encounter").unwrap(),
            ["patient"]
        );
        assert_eq!(patient_compartment_params("Patient").unwrap(), ["link"]);
        assert_eq!(
            patient_compartment_params("Provenance").unwrap(),
            ["patient"]
        );
        assert_eq!(
            patient_compartment_params("AllergyIntolerance").unwrap(),
            ["patient", "recorder", "asserter"]
        );
        assert_eq!(
            compartment_params("Patient", "Observation"),
            patient_compartment_params("Observation")
        );
        // Listed without parameters, and not listed at all.
        assert_eq!(patient_compartment_params("Practitioner"), None);
        assert_eq!(patient_compartment_params("Organization"), None);
        assert_eq!(patient_compartment_params("NotAType"), None);
        // No other compartment definition is compiled in.
        assert_eq!(compartment_params("Encounter", "Observation"), None);
    }

    #[test]
    fn patient_compartment_types() {
        let types: Vec<&str> = compartment_types("Patient").collect();
        // 66 of the 145 listed types have a parameter.
        assert_eq!(types.len(), 66);
        assert_eq!(types.first(), Some(&"Account"));
        for listed in ["Observation", "Encounter", "Patient", "Provenance"] {
            assert!(types.contains(&listed), "{listed}");
        }
        assert!(!types.contains(&"Practitioner"));
        for t in &types {
            assert!(crate::ResourceType::parse(t).is_some(), "{t}");
            assert!(patient_compartment_params(t).is_some(), "{t}");
        }
        assert_eq!(compartment_types("Device").count(), 0);
    }
}
