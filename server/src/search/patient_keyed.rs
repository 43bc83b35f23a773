//! Token rows keyed by their resource's Patient.
//!
//! "Patients with an Observation of this code"
//! (`Patient?_has:Observation:patient:code=…`) joins each matching
//! Observation's token row to its `patient` reference row, and at a
//! million resources that join dominates: 30,039 HbA1c Observations read
//! for 3,009 Patients. So a token row also carries, in `search_token.patient`,
//! the Patient its resource's `patient` search parameter refers to; an
//! index has it after the code (`search_token_patient`: tenant, type,
//! parameter, code, system, patient, for the rows that have one), and
//! "does this Patient have an Observation with this code" is one index
//! probe: 2.2 ms for a page of 51 such Patients (205 probes) instead of
//! about 25 ms.
//!
//! The column is exact only where a resource can refer to one Patient by
//! `patient`: the types whose R4 `patient` expression is one element of
//! at most one value (`Observation.subject.where(resolve() is Patient)`,
//! `Immunization.patient`; not Provenance's `target`, AuditEvent's two
//! paths or Account's `subject`, of many values). Only those types' rows
//! get it ([`patient_of`]), and only their `_has` searches use it. A
//! reference to a Patient on another server, or to a Group, leaves it
//! empty, as it leaves the reference row without a local Patient.
//! Custom search parameters cannot redefine `patient` (a code defined for
//! a base is refused), so the set is fixed.

use crate::search::index::ReferenceRow;
use std::collections::HashSet;
use std::sync::OnceLock;

/// The search parameter the column follows.
pub const PARAM: &str = "patient";

/// Whether a resource of `res_type` refers to at most one Patient by its
/// `patient` search parameter, by the R4 definitions.
pub fn single_patient(res_type: &str) -> bool {
    static CELL: OnceLock<HashSet<String>> = OnceLock::new();
    CELL.get_or_init(single_patient_types).contains(res_type)
}

/// The types of [`single_patient`], from the `patient` definitions'
/// expressions and the elements' cardinalities.
fn single_patient_types() -> HashSet<String> {
    let bundle = fhir::definitions::search_parameters_bundle();
    let mut types = HashSet::new();
    for entry in bundle["entry"].as_array().map_or(&[][..], Vec::as_slice) {
        let sp = &entry["resource"];
        if sp["code"] != PARAM {
            continue;
        }
        let expression = sp["expression"].as_str().unwrap_or_default();
        let paths: Vec<&str> = expression.split('|').map(str::trim).collect();
        for base in sp["base"].as_array().map_or(&[][..], Vec::as_slice) {
            let Some(base) = base.as_str() else { continue };
            let prefix = format!("{base}.");
            let own: Vec<&str> = paths
                .iter()
                .filter_map(|path| path.strip_prefix(&prefix))
                .collect();
            let [path] = own[..] else { continue };
            let element = path
                .strip_suffix(".where(resolve() is Patient)")
                .unwrap_or(path);
            let single = !element.contains(['.', '(']);
            if single
                && fhir::definitions::element_info(base, element)
                    .is_some_and(|info| info.max == Some(1))
            {
                types.insert(base.to_owned());
            }
        }
    }
    types
}

/// The `patient` column of `res_type`'s token rows, from its reference
/// rows: the one local Patient its `patient` parameter refers to.
pub fn patient_of(res_type: &str, references: &[ReferenceRow]) -> Option<String> {
    if !single_patient(res_type) {
        return None;
    }
    let mut targets = references.iter().filter(|r| {
        r.param == PARAM && r.target_type.as_deref() == Some("Patient") && r.target_id.is_some()
    });
    let first = targets.next()?.target_id.clone();
    // A valid resource has one; two would make the column wrong.
    targets.all(|r| r.target_id == first).then_some(first)?
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn single_patient_types_follow_the_definitions() {
        for t in [
            "Observation",
            "Encounter",
            "Condition",
            "Procedure",
            "MedicationRequest",
            "Immunization",
            "AllergyIntolerance",
            "DiagnosticReport",
            "Task",
            "Coverage",
        ] {
            assert!(single_patient(t), "{t}");
        }
        // Many values: target (0..*), two paths, subject (0..*),
        // participant.actor, link.target; and no `patient` at all.
        for t in [
            "Provenance",
            "AuditEvent",
            "Account",
            "Appointment",
            "Person",
            "Patient",
            "Group",
        ] {
            assert!(!single_patient(t), "{t}");
        }
    }

    #[test]
    fn the_migration_backfills_exactly_these_types() {
        let sql = include_str!("../../../migrations/V38__search_token_patient.sql");
        let listed: HashSet<String> = sql
            .split("res_type IN (")
            .nth(1)
            .and_then(|rest| rest.split(')').next())
            .unwrap()
            .split(',')
            .map(|t| t.trim().trim_matches('\'').to_owned())
            .collect();
        assert_eq!(listed, single_patient_types());
    }

    fn reference(param: &'static str, target_type: &str, id: Option<&str>) -> ReferenceRow {
        ReferenceRow {
            param: param.into(),
            target_type: Some(target_type.to_owned()),
            target_id: id.map(str::to_owned),
            url: None,
        }
    }

    #[test]
    fn the_column_is_the_one_local_patient() {
        let rows = [
            reference("subject", "Patient", Some("p1")),
            reference("patient", "Patient", Some("p1")),
            reference("performer", "Practitioner", Some("d1")),
        ];
        assert_eq!(patient_of("Observation", &rows), Some("p1".into()));
        // Not for a type of many Patients.
        assert_eq!(patient_of("Provenance", &rows), None);
        // A Group, or a Patient elsewhere, is no local Patient.
        let group = [reference("subject", "Group", Some("g1"))];
        assert_eq!(patient_of("Observation", &group), None);
        let remote = [reference("patient", "Patient", None)];
        assert_eq!(patient_of("Observation", &remote), None);
        let two = [
            reference("patient", "Patient", Some("p1")),
            reference("patient", "Patient", Some("p2")),
        ];
        assert_eq!(patient_of("Observation", &two), None);
    }
}
