//! De-identified `$export` (issue 8, docs/deidentification.md): identifiers
//! of every Safe Harbor kind are planted in the data, and the test scans
//! the whole output for each of them; pseudonyms still join.

use crate::bulk_export::{download_all, kick_off, manifest};
use crate::harness::spawn_app;
use reqwest::Method;
use serde_json::{Value, json};

/// Each planted identifier, with the Safe Harbor kind it stands for.
const PLANTED: &[(&str, &str)] = &[
    ("Wanjiru", "1 name"),
    ("Kamau", "1 name (family)"),
    ("742 Evergreen", "2 street address"),
    ("Springfield", "2 city"),
    ("Shelbyville County", "2 county/district"),
    ("94110", "2 full ZIP code"),
    ("1961-08-04", "3 birth date"),
    ("2024-02-29", "3 admission date"),
    ("2024-03-07", "3 discharge date"),
    ("2025-11-11", "3 date of death"),
    ("+1-555-0100", "4 telephone"),
    ("+1-555-0199", "5 fax"),
    ("wanjiru@example.org", "6 email"),
    ("078-05-1120", "7 social security number"),
    ("MRN-448811", "8 medical record number"),
    ("PLAN-99-1234", "9 health plan beneficiary number"),
    ("ACCT-77123", "10 account number"),
    ("LIC-DL-5512", "11 licence number"),
    ("KBZ-123A", "12 vehicle plate"),
    ("SN-DEV-90817", "13 device serial number"),
    ("https://wanjiru.example.org", "14 URL"),
    ("10.20.30.40", "15 IP address"),
    ("iVBORw0KGgoFACE0", "17 photograph"),
    ("ZX-UNIQUE-77", "18 other unique code"),
    ("Njeri", "relative's name"),
    ("Grandmother-Maiden", "mother's maiden name"),
    ("pat-real-id-0042", "resource id"),
    ("enc-real-id-0042", "resource id"),
];

fn record() -> Vec<Value> {
    vec![
        json!({"resourceType": "Patient", "id": "pat-real-id-0042",
            "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">Wanjiru Kamau</div>"},
            "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName", "valueString": "Grandmother-Maiden"}],
            "identifier": [
                {"system": "http://hl7.org/fhir/sid/us-ssn", "value": "078-05-1120"},
                {"type": {"text": "MRN"}, "value": "MRN-448811"},
                {"type": {"text": "plan"}, "value": "PLAN-99-1234"},
                {"type": {"text": "driver licence"}, "value": "LIC-DL-5512"},
                {"type": {"text": "vehicle"}, "value": "KBZ-123A"}],
            "name": [{"family": "Kamau", "given": ["Wanjiru"]}],
            "telecom": [
                {"system": "phone", "value": "+1-555-0100"},
                {"system": "fax", "value": "+1-555-0199"},
                {"system": "email", "value": "wanjiru@example.org"},
                {"system": "url", "value": "https://wanjiru.example.org"}],
            "gender": "female", "birthDate": "1961-08-04", "deceasedDateTime": "2025-11-11",
            "address": [{"line": ["742 Evergreen Terrace"], "city": "Springfield",
                         "district": "Shelbyville County", "state": "CA", "postalCode": "94110", "country": "US"}],
            "photo": [{"contentType": "image/png", "data": "iVBORw0KGgoFACE0"}],
            "contact": [{"name": {"given": ["Njeri"]}, "telecom": [{"system": "phone", "value": "+1-555-0100"}]}]}),
        json!({"resourceType": "Patient", "id": "elder", "birthDate": "1920-01-01", "gender": "male"}),
        json!({"resourceType": "Encounter", "id": "enc-real-id-0042", "status": "finished", "class": {"code": "IMP"},
            "identifier": [{"value": "ACCT-77123"}],
            "subject": {"reference": "Patient/pat-real-id-0042", "display": "Wanjiru Kamau"},
            "period": {"start": "2024-02-29T08:00:00Z", "end": "2024-03-07"}}),
        json!({"resourceType": "Observation", "id": "obs-1", "status": "final", "code": {"text": "note"},
            "subject": {"reference": "Patient/pat-real-id-0042"},
            "encounter": {"reference": "Encounter/enc-real-id-0042"},
            "note": [{"text": "Patient Wanjiru called from 10.20.30.40, code ZX-UNIQUE-77"}],
            "effectiveDateTime": "2024-03-01T09:30:00+03:00", "issued": "2024-03-01T10:00:00Z"}),
        json!({"resourceType": "Device", "id": "dev-1", "serialNumber": "SN-DEV-90817",
            "patient": {"reference": "Patient/pat-real-id-0042"}}),
    ]
}

#[tokio::test]
async fn a_deidentified_export_holds_none_of_the_planted_identifiers() {
    let app = spawn_app().await;
    app.load(&record()).await;
    let url = kick_off(
        &app,
        None,
        Method::GET,
        "$export?_type=Patient,Encounter,Observation,Device&deidentify=safe-harbor",
        None,
    )
    .await;
    let manifest = manifest(&app, None, &url).await;
    assert_eq!(
        manifest["extension"]["https://baraza.dev/fhir/deidentified"],
        "safe-harbor"
    );
    let resources = download_all(&app, None, &manifest).await;
    assert_eq!(resources.len(), 5);
    let text: String = resources
        .iter()
        .map(|(_, r)| r.to_string())
        .collect::<Vec<_>>()
        .join("\n");
    for (planted, kind) in PLANTED {
        assert!(
            !text.contains(planted),
            "{kind} survived: {planted} in {text}"
        );
    }
    // Generalised, not removed: years, the ZIP's first three digits.
    let find = |t: &str, f: &dyn Fn(&Value) -> bool| {
        resources
            .iter()
            .find(|(rt, r)| rt == t && f(r))
            .map(|(_, r)| r.clone())
            .unwrap()
    };
    let patient = find("Patient", &|r| r["gender"] == "female");
    assert_eq!(patient["birthDate"], "1961");
    assert_eq!(patient["deceasedDateTime"], "2025");
    assert_eq!(
        patient["address"],
        json!([{"state": "CA", "postalCode": "941", "country": "US"}])
    );
    let elder = find("Patient", &|r| r["gender"] == "male");
    assert!(
        elder.get("birthDate").is_none(),
        "90 or older: no birth year"
    );
    assert_eq!(elder["extension"][0]["valueBoolean"], true);
    // Pseudonyms join: the Observation's subject and encounter are the
    // exported Patient and Encounter.
    let encounter = find("Encounter", &|_| true);
    let observation = find("Observation", &|_| true);
    assert_eq!(
        observation["subject"]["reference"],
        format!("Patient/{}", patient["id"].as_str().unwrap())
    );
    assert_eq!(
        observation["encounter"]["reference"],
        format!("Encounter/{}", encounter["id"].as_str().unwrap())
    );
    assert_eq!(encounter["period"], json!({"start": "2024", "end": "2024"}));
    assert_eq!(observation["issued"], "2024-01-01T00:00:00Z");
    // A second export has other pseudonyms (a key per export).
    let again = kick_off(
        &app,
        None,
        Method::GET,
        "$export?_type=Patient&deidentify=safe-harbor",
        None,
    )
    .await;
    let again = download_all(
        &app,
        None,
        &crate::bulk_export::manifest(&app, None, &again).await,
    )
    .await;
    assert!(again.iter().all(|(_, r)| r["id"] != patient["id"]));
}
