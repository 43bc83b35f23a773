//! Times the validator: the first-use definitions load, the per-type schema
//! compile, and the steady-state cost of validating a typical Patient and
//! Observation with and without the JSON-schema step.
//!
//! `cargo run --release -p fhir --example validate_bench`

use fhir::validation::{ValidationOptions, validate_resource_with};
use serde_json::{Value, json};
use std::hint::black_box;
use std::time::{Duration, Instant};

fn patient() -> Value {
    json!({
        "resourceType": "Patient", "id": "example",
        "meta": {"versionId": "3", "lastUpdated": "2024-05-01T10:00:00.000+03:00"},
        "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>Amina Otieno, F, 1985-02-28</p></div>"},
        "identifier": [{"use": "usual", "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]},
                        "system": "urn:oid:1.2.36.146.595.217.0.1", "value": "12345", "period": {"start": "2001-05-06"},
                        "assigner": {"display": "Acme Healthcare"}}],
        "active": true,
        "name": [{"use": "official", "family": "Otieno", "given": ["Amina", "Wanjiru"]},
                 {"use": "usual", "given": ["Mina"]}],
        "telecom": [{"use": "home"}, {"system": "phone", "value": "+254 700 000000", "use": "work", "rank": 1}],
        "gender": "female",
        "birthDate": "1985-02-28",
        "_birthDate": {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/patient-birthTime", "valueDateTime": "1985-02-28T14:35:45-05:00"}]},
        "deceasedBoolean": false,
        "address": [{"use": "home", "type": "both", "text": "534 Erewhon St, Kisumu", "line": ["534 Erewhon St"], "city": "Kisumu",
                     "postalCode": "40100", "period": {"start": "1974-12-25"}}],
        "contact": [{"relationship": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0131", "code": "N"}]}],
                     "name": {"family": "Otieno", "given": ["Juma"]},
                     "telecom": [{"system": "phone", "value": "+254 711 111111"}],
                     "gender": "male", "period": {"start": "2012"}}],
        "managingOrganization": {"reference": "Organization/1"}
    })
}

fn observation() -> Value {
    json!({
        "resourceType": "Observation", "id": "blood-pressure",
        "meta": {"profile": ["http://hl7.org/fhir/StructureDefinition/vitalsigns"]},
        "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs", "display": "Vital Signs"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9", "display": "Blood pressure panel"}], "text": "Blood pressure"},
        "subject": {"reference": "Patient/example"},
        "effectiveDateTime": "2012-09-17T09:30:00+03:00",
        "performer": [{"reference": "Practitioner/example"}],
        "interpretation": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "code": "L", "display": "low"}]}],
        "bodySite": {"coding": [{"system": "http://snomed.info/sct", "code": "368209003", "display": "Right arm"}]},
        "component": [
            {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6", "display": "Systolic blood pressure"}]},
             "valueQuantity": {"value": 107, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}},
            {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4", "display": "Diastolic blood pressure"}]},
             "valueQuantity": {"value": 60.5, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}}
        ]
    })
}

fn time_per_call(resource: &Value, options: ValidationOptions) -> Duration {
    for _ in 0..200 {
        black_box(validate_resource_with(black_box(resource), options));
    }
    let iterations = 20_000;
    let start = Instant::now();
    for _ in 0..iterations {
        let issues = validate_resource_with(black_box(resource), options);
        assert!(issues.is_empty(), "{issues:?}");
    }
    start.elapsed() / iterations
}

fn main() {
    let start = Instant::now();
    let model = fhir::definitions::structure_model();
    println!(
        "definitions load (first use): {:?} ({} nodes)",
        start.elapsed(),
        model.len()
    );

    let samples = [("Patient", patient()), ("Observation", observation())];
    for (name, _) in &samples {
        let start = Instant::now();
        fhir::validation::warm_up_schemas([*name]);
        println!("{name}: schema compile (first use): {:?}", start.elapsed());
    }
    for (name, resource) in &samples {
        let structure = time_per_call(resource, ValidationOptions { json_schema: false });
        let full = time_per_call(resource, ValidationOptions { json_schema: true });
        println!("{name}: structure only {structure:?}/call, with JSON schema {full:?}/call");
    }
}
