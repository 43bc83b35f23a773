//! Tests: the `check` helper, realistic valid resources that must pass, and
//! the shape of the issues (severity, code, diagnostics, schema merging).

use super::*;
use crate::outcome::{IssueCode, Severity};
use serde_json::json;

/// Validates `resource` and asserts that the error expressions are exactly
/// `expected` (in any order; one issue per expression).
pub(super) fn check(resource: Value, expected: &[&str]) {
    let issues = validate_resource(&resource);
    let mut got: Vec<String> = issues
        .iter()
        .filter(|i| i.is_error())
        .flat_map(|i| i.expression.clone())
        .collect();
    got.sort();
    let mut want: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    want.sort();
    let rendered: Vec<String> = issues
        .iter()
        .map(|i| {
            format!(
                "{} [{}] {}",
                i.expression.join(","),
                i.code.as_str(),
                i.diagnostics
            )
        })
        .collect();
    assert_eq!(
        got,
        want,
        "\nresource: {resource}\nissues:\n  {}",
        rendered.join("\n  ")
    );
}

fn patient() -> Value {
    json!({
        "resourceType": "Patient",
        "id": "pat-1",
        "meta": {"versionId": "1", "lastUpdated": "2024-05-01T10:00:00.000+03:00", "profile": ["http://example.org/fhir/StructureDefinition/ke-patient"]},
        "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>Amina Otieno</p></div>"},
        "extension": [
            {"url": "http://hl7.org/fhir/StructureDefinition/patient-birthPlace", "valueAddress": {"city": "Kisumu", "country": "KE"}},
            {"url": "http://example.org/fhir/StructureDefinition/complex", "extension": [
                {"url": "a", "valueCode": "x"},
                {"url": "b", "valueDecimal": 1.50}
            ]}
        ],
        "identifier": [{"use": "official", "system": "http://example.org/nid", "value": "12345678",
                        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "NI"}]},
                        "period": {"start": "2001-01-01"}}],
        "active": true,
        "name": [
            {"use": "official", "family": "Otieno", "given": ["Amina", "Wanjiru"], "prefix": ["Dr."]},
            {"use": "nickname", "given": ["Mina", null], "_given": [null, {"extension": [{"url": "http://example.org/x", "valueBoolean": true}]}]}
        ],
        "telecom": [{"system": "phone", "value": "+254 700 000000", "use": "mobile", "rank": 1}],
        "gender": "female",
        "birthDate": "1985-02-28",
        "_birthDate": {"id": "bd", "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/patient-birthTime", "valueDateTime": "1985-02-28T14:35:45-05:00"}]},
        "deceasedBoolean": false,
        "address": [{"use": "home", "line": ["P.O. Box 1", "Oginga Odinga St"], "city": "Kisumu", "postalCode": "40100", "country": "KE"}],
        "maritalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", "code": "M"}], "text": "Married"},
        "multipleBirthInteger": 2,
        "photo": [{"contentType": "image/png", "data": "iVBORw0KGgo=", "size": 8}],
        "contact": [{
            "relationship": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0131", "code": "N"}]}],
            "name": {"family": "Otieno", "given": ["Juma"]},
            "telecom": [{"system": "email", "value": "juma@example.org"}],
            "gender": "male",
            "period": {"start": "2020-01-01T00:00:00Z"}
        }],
        "communication": [{"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "sw"}]}, "preferred": true}],
        "generalPractitioner": [{"reference": "Practitioner/prac-1", "display": "Dr Kamau"}],
        "managingOrganization": {"reference": "https://hie.example.org/fhir/Organization/org-1"},
        "link": [{"other": {"reference": "Patient/pat-0"}, "type": "replaces"}]
    })
}

fn observation() -> Value {
    json!({
        "resourceType": "Observation",
        "id": "bp-1",
        "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9", "display": "Blood pressure panel"}]},
        "subject": {"reference": "Patient/pat-1"},
        "encounter": {"reference": "urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a"},
        "effectiveDateTime": "2024-05-01T09:30:00+03:00",
        "issued": "2024-05-01T09:35:12.123+03:00",
        "performer": [{"reference": "#prac"}],
        "contained": [{"resourceType": "Practitioner", "id": "prac", "name": [{"family": "Kamau"}]}],
        "interpretation": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "code": "N"}]}],
        "note": [{"text": "Seated, left arm", "time": "2024-05-01"}],
        "referenceRange": [{"low": {"value": 90, "unit": "mmHg"}, "high": {"value": 120, "unit": "mmHg"}, "text": "normal"}],
        "component": [
            {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
             "valueQuantity": {"value": 120.50, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}},
            {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
             "valueQuantity": {"value": 80, "comparator": "<", "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}}
        ]
    })
}

#[test]
fn full_patient_passes() {
    check(patient(), &[]);
}

#[test]
fn observation_with_components_passes() {
    check(observation(), &[]);
    let mut single = observation();
    single["valueQuantity"] =
        json!({"value": 1.50, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"});
    check(single, &[]);
}

#[test]
fn transaction_bundle_passes() {
    let bundle = json!({
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": "urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a", "resource": patient(),
             "request": {"method": "POST", "url": "Patient", "ifNoneExist": "identifier=http://example.org/nid|12345678"}},
            {"fullUrl": "urn:uuid:88f151c0-a954-468a-88bd-5ae15c08e059", "resource": observation(),
             "request": {"method": "PUT", "url": "Observation/bp-1"}},
            {"resource": {"resourceType": "Encounter", "status": "finished",
                          "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                          "subject": {"reference": "Patient?identifier=http://example.org/nid|12345678"}},
             "request": {"method": "POST", "url": "Encounter"}},
            {"request": {"method": "DELETE", "url": "Patient/old"}}
        ]
    });
    check(bundle, &[]);
}

#[test]
fn nested_questionnaire_items_pass() {
    let questionnaire = json!({
        "resourceType": "Questionnaire", "status": "active", "url": "http://example.org/q",
        "item": [{"linkId": "1", "type": "group", "text": "Vitals", "item": [
            {"linkId": "1.1", "type": "decimal", "text": "Weight", "initial": [{"valueDecimal": 70.0}]},
            {"linkId": "1.2", "type": "group", "item": [{"linkId": "1.2.1", "type": "boolean", "enableWhen": [
                {"question": "1.1", "operator": "exists", "answerBoolean": true}]}]}
        ]}]
    });
    check(questionnaire, &[]);
}

#[test]
fn issues_carry_severity_code_and_diagnostics() {
    let issues =
        validate_resource(&json!({"resourceType": "Patient", "birthDate": "2023-02-30", "foo": 1}));
    assert_eq!(issues.len(), 2, "{issues:?}");
    assert!(issues.iter().all(|i| i.severity == Severity::Error));
    let date = issues
        .iter()
        .find(|i| i.expression == ["Patient.birthDate"])
        .unwrap();
    assert_eq!(date.code, IssueCode::Value);
    assert!(
        date.diagnostics.contains("2023-02-30"),
        "{}",
        date.diagnostics
    );
    let unknown = issues
        .iter()
        .find(|i| i.expression == ["Patient.foo"])
        .unwrap();
    assert_eq!(unknown.code, IssueCode::Structure);
    assert!(unknown.diagnostics.contains("foo"));
}

#[test]
fn narrative_without_namespace_is_a_warning() {
    let issues = validate_resource(&json!({"resourceType": "Patient",
        "text": {"status": "generated", "div": "<div>Amina</div>"}}));
    assert_eq!(issues.len(), 1, "{issues:?}");
    assert_eq!(issues[0].severity, Severity::Warning);
    assert_eq!(issues[0].expression, ["Patient.text.div"]);
}

#[test]
fn schema_enum_errors_are_reported_once() {
    let resource = json!({"resourceType": "Patient", "gender": "mail"});
    let issues = validate_resource(&resource);
    assert_eq!(issues.len(), 1, "{issues:?}");
    assert_eq!(issues[0].code, IssueCode::CodeInvalid);
    assert_eq!(issues[0].expression, ["Patient.gender"]);
    let without_schema =
        validate_resource_with(&resource, ValidationOptions { json_schema: false });
    assert!(without_schema.is_empty(), "{without_schema:?}");
    // A malformed code is reported by the structure walk only (not again by the enum).
    let issues = validate_resource(&json!({"resourceType": "Patient", "gender": " male"}));
    assert_eq!(issues.len(), 1, "{issues:?}");
    assert_eq!(issues[0].code, IssueCode::Value);
}

#[test]
fn schema_enum_in_nested_resources() {
    check(
        json!({"resourceType": "Bundle", "type": "collection",
               "entry": [{"resource": {"resourceType": "Patient", "gender": "mail"}}]}),
        &["Bundle.entry[0].resource.gender"],
    );
    check(
        json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"},
               "contained": [{"resourceType": "Patient", "gender": "mail"}]}),
        &["Observation.contained[0].gender"],
    );
}

#[test]
fn decimals_keep_their_text_and_pass_the_schema() {
    let resource: Value = serde_json::from_str(
        r#"{"resourceType":"Observation","status":"final","code":{"text":"w"},
            "valueQuantity":{"value":1.50},"component":[{"code":{"text":"x"},"valueInteger":-7},
            {"code":{"text":"y"},"valueQuantity":{"value":12345678901234567890.123456789}}]}"#,
    )
    .unwrap();
    assert_eq!(resource["valueQuantity"]["value"].to_string(), "1.50");
    check(resource, &[]);
}

#[test]
fn every_resource_type_validates_minimally() {
    for t in crate::ResourceType::all() {
        let issues = validate_resource(&json!({"resourceType": t.as_str()}));
        assert!(
            issues.iter().all(|i| i.code == IssueCode::Required),
            "{t}: {issues:?}"
        );
    }
}
