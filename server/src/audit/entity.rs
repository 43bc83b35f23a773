//! What an interaction touched, as the service layer reports it in
//! `FhirResponse::touched`: the resources (with their versions), the
//! patients they are about, and for a batch each entry on its own.

use super::event::Interaction;
use crate::json_members::members;
use crate::store::Stored;
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

/// A resource an interaction read or wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntityRef {
    /// `Type/id`.
    pub reference: String,
    pub version: Option<i64>,
}

/// The resources and patients one interaction touched.
#[derive(Debug, Clone, Default)]
pub struct Touched {
    pub entities: Vec<EntityRef>,
    /// Bare ids of the Patients touched.
    pub patients: Vec<String>,
    /// A batch's entries, each audited as an event of its own.
    pub entries: Vec<EntryAudit>,
}

/// One batch entry: its interaction, HTTP status and what it touched.
#[derive(Debug, Clone)]
pub struct EntryAudit {
    /// `None` for an interaction that is not audited (capabilities).
    pub interaction: Option<Interaction>,
    pub status: u16,
    pub touched: Touched,
}

impl Touched {
    /// One stored version and the patients it is about.
    pub fn of_stored(stored: &Stored) -> Touched {
        let mut touched = Touched::default();
        touched.add_stored(stored);
        touched
    }

    /// Adds one stored version (a read, a search match, a history entry, a
    /// write) and the patients it is about.
    pub fn add_stored(&mut self, stored: &Stored) {
        self.add_version(
            &stored.resource_type,
            &stored.id,
            stored.version_id,
            stored.content.as_deref(),
        );
    }

    /// Adds one version (`content` is `None` for a deletion).
    pub fn add_version(
        &mut self,
        resource_type: &str,
        id: &str,
        version: i64,
        content: Option<&str>,
    ) {
        self.entities.push(EntityRef {
            reference: format!("{resource_type}/{id}"),
            version: Some(version),
        });
        patients_of(resource_type, id, content, &mut self.patients);
    }

    /// Adds everything `other` touched.
    pub fn merge(&mut self, other: Touched) {
        self.entities.extend(other.entities);
        self.patients.extend(other.patients);
        self.entries.extend(other.entries);
    }

    pub fn is_empty(&self) -> bool {
        self.entities.is_empty() && self.patients.is_empty() && self.entries.is_empty()
    }
}

/// The two top-level elements that name the patient a resource is about in
/// most clinical resources (`Observation.subject`,
/// `AllergyIntolerance.patient`, ...).
const PATIENT_ELEMENTS: [&str; 2] = ["subject", "patient"];

/// The same elements for serde, when [`members`] does not follow a text.
/// Everything else is skipped without being parsed into a tree.
#[derive(Deserialize)]
struct PatientElements<'a> {
    #[serde(borrow, default)]
    subject: Option<&'a RawValue>,
    #[serde(borrow, default)]
    patient: Option<&'a RawValue>,
}

/// Adds the patients a resource is about to `out`: itself when it is a
/// Patient, else the Patients its top-level `subject` or `patient`
/// references point at (one Reference or an array of them). Deliberately
/// cheap: deeper references (`Encounter.participant`, `Provenance.target`)
/// are not followed, and the elements are found by [`members`], which
/// parses nothing but them.
pub fn patients_of(resource_type: &str, id: &str, content: Option<&str>, out: &mut Vec<String>) {
    if resource_type == "Patient" {
        out.push(id.to_owned());
        return;
    }
    let Some(text) = content else {
        return;
    };
    let mut values: Vec<&str> = Vec::new();
    if members(text, &PATIENT_ELEMENTS, |_, value| values.push(value)).is_none() {
        let Ok(elements) = serde_json::from_str::<PatientElements<'_>>(text) else {
            return;
        };
        values = [elements.subject, elements.patient]
            .into_iter()
            .flatten()
            .map(RawValue::get)
            .collect();
    }
    for raw in values {
        match serde_json::from_str::<Value>(raw) {
            Ok(Value::Array(items)) => items.iter().for_each(|r| push_patient(r, out)),
            Ok(reference) => push_patient(&reference, out),
            Err(_) => {}
        }
    }
}

fn push_patient(reference: &Value, out: &mut Vec<String>) {
    let Some(text) = reference.get("reference").and_then(Value::as_str) else {
        return;
    };
    if let Some(fhir::reference::ReferenceTarget::Local {
        resource_type, id, ..
    }) = fhir::reference::parse_reference(text, "")
    {
        if resource_type.as_str() == "Patient" {
            out.push(id.to_owned());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::patients_of;

    fn check(resource_type: &str, content: &str, expected: &[&str]) {
        let mut out = Vec::new();
        patients_of(resource_type, "self", Some(content), &mut out);
        assert_eq!(out, expected, "{content}");
    }

    #[test]
    fn finds_the_patient_a_resource_is_about() {
        check("Patient", "{}", &["self"]);
        check(
            "Observation",
            r#"{"resourceType":"Observation","status":"final","subject":{"reference":"Patient/p1"}}"#,
            &["p1"],
        );
        check(
            "AllergyIntolerance",
            r#"{"patient":{"reference":"Patient/p2/_history/3"},"note":[{"text":"subject"}]}"#,
            &["p2"],
        );
        check(
            "Contract",
            r#"{"subject":[{"reference":"Patient/a"},{"reference":"Group/g"},{"reference":"Patient/b"}]}"#,
            &["a", "b"],
        );
        check(
            "Observation",
            r#"{"subject":{"reference":"Group/g"},"value":1.50}"#,
            &[],
        );
        check(
            "Observation",
            r#"{"subject":{"display":"no reference"}}"#,
            &[],
        );
        check(
            "Encounter",
            r#"{"participant":[{"individual":{"reference":"Patient/x"}}]}"#,
            &[],
        );
        check("Observation", "not json", &[]);
        // A key the scanner does not follow: serde reads it.
        check(
            "Observation",
            r#"{"subj\u0065ct":{"reference":"Patient/e"}}"#,
            &["e"],
        );
    }
}
