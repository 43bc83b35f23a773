use super::*;
use serde_json::json;

fn rows(resource_type: &str, resource: Value) -> Vec<(String, Option<String>, String)> {
    index_rows(
        Registry::global(),
        resource_type,
        &resource,
        "http://local/fhir",
    )
    .tokens
    .into_iter()
    .map(|r| (r.param.to_string(), r.system, r.code))
    .collect()
}

#[test]
fn identifiers_codes_and_tags_are_indexed() {
    let got = rows(
        "Patient",
        json!({"resourceType":"Patient","identifier":[{"system":"urn:sys","value":"42"}],
               "gender":"female","meta":{"tag":[{"system":"urn:t","code":"x"}]}}),
    );
    assert!(got.contains(&("identifier".into(), Some("urn:sys".into()), "42".into())));
    assert!(got.contains(&("gender".into(), None, "female".into())));
    assert!(got.contains(&("_tag".into(), Some("urn:t".into()), "x".into())));
}

#[test]
fn codeable_concepts_yield_each_coding() {
    let got = rows(
        "Observation",
        json!({"resourceType":"Observation","status":"final","code":{"coding":[
            {"system":"http://loinc.org","code":"8867-4"},{"system":"urn:local","code":"hr"}]}}),
    );
    assert!(got.contains(&(
        "code".into(),
        Some("http://loinc.org".into()),
        "8867-4".into()
    )));
    assert!(got.contains(&("code".into(), Some("urn:local".into()), "hr".into())));
    assert!(got.contains(&("status".into(), None, "final".into())));
}

#[test]
fn numbers_and_quantities_are_indexed() {
    let rows = index_rows(
        Registry::global(),
        "Observation",
        &json!({"resourceType":"Observation","status":"final","code":{"text":"glucose"},
                "valueQuantity":{"value":180.0,"unit":"mg/dL","system":"http://unitsofmeasure.org","code":"mg/dL"}}),
        "http://local/fhir",
    );
    let q = rows
        .quantities
        .iter()
        .find(|q| q.param == "value-quantity")
        .unwrap();
    assert_eq!(q.value, "180.0", "the decimal keeps its written precision");
    assert_eq!(q.code.as_deref(), Some("mg/dL"));
    assert_eq!(q.canon_code.as_deref(), Some("g/L"));
    let canon = Decimal::parse(q.canon_value.as_deref().unwrap()).unwrap();
    assert_eq!(
        canon.cmp_value(Decimal::parse("1.8").unwrap()),
        std::cmp::Ordering::Equal
    );
    let rows = index_rows(
        Registry::global(),
        "RiskAssessment",
        &json!({"resourceType":"RiskAssessment","status":"final","subject":{"reference":"Patient/1"},
                "prediction":[{"probabilityDecimal":0.25}]}),
        "http://local/fhir",
    );
    assert!(rows.numbers.contains(&NumberRow {
        param: "probability".into(),
        value: "0.25".into()
    }));
}

#[test]
fn strings_and_dates_are_indexed() {
    let rows = index_rows(
        Registry::global(),
        "Patient",
        &json!({"resourceType":"Patient","name":[{"family":"Núñez","given":["José"]}],"birthDate":"1980"}),
        "http://local/fhir",
    );
    assert!(rows.strings.contains(&StringRow {
        param: "family".into(),
        folded: "nunez".into(),
        exact: "Núñez".into()
    }));
    assert!(rows.strings.contains(&StringRow {
        param: "name".into(),
        folded: "jose".into(),
        exact: "José".into()
    }));
    let birthdate = rows.dates.iter().find(|d| d.param == "birthdate").unwrap();
    // 1980-01-01T00:00Z .. 1981-01-01T00:00Z in microseconds.
    assert_eq!(
        (birthdate.lo, birthdate.hi),
        (315_532_800_000_000, 347_155_200_000_000)
    );
}

#[test]
fn references_are_indexed_local_or_by_url() {
    let resource = json!({"resourceType":"Observation","status":"final","code":{"text":"x"},
        "subject":{"reference":"Patient/p1"},
        "performer":[{"reference":"http://local/fhir/Practitioner/d1"},{"reference":"https://elsewhere.org/fhir/Practitioner/9"},
                     {"reference":"#contained"}]});
    let rows = index_rows(
        Registry::global(),
        "Observation",
        &resource,
        "http://local/fhir",
    )
    .references;
    let find = |param: &str| -> Vec<(Option<String>, Option<String>, Option<String>)> {
        rows.iter()
            .filter(|r| r.param == param)
            .map(|r| (r.target_type.clone(), r.target_id.clone(), r.url.clone()))
            .collect()
    };
    assert_eq!(
        find("subject"),
        vec![(Some("Patient".into()), Some("p1".into()), None)]
    );
    assert_eq!(
        find("patient"),
        vec![(Some("Patient".into()), Some("p1".into()), None)]
    );
    assert_eq!(
        find("performer"),
        vec![
            (Some("Practitioner".into()), Some("d1".into()), None),
            (
                None,
                None,
                Some("https://elsewhere.org/fhir/Practitioner/9".into())
            ),
        ]
    );
}

#[test]
fn contact_points_choice_types_and_filtered_expressions() {
    let got = rows(
        "Patient",
        json!({"resourceType":"Patient","telecom":[{"system":"phone","value":"+254700"},{"system":"email","value":"a@b.ke"}],
               "active":true}),
    );
    let phone = || Some("phone".to_owned());
    let email = || Some("email".to_owned());
    assert!(got.contains(&("phone".into(), phone(), "+254700".into())));
    assert!(got.contains(&("email".into(), email(), "a@b.ke".into())));
    assert!(!got.contains(&("phone".into(), email(), "a@b.ke".into())));
    assert!(got.contains(&("telecom".into(), phone(), "+254700".into())));
    assert!(got.contains(&("telecom".into(), email(), "a@b.ke".into())));
    assert!(got.contains(&("active".into(), None, "true".into())));
    let got = rows(
        "Observation",
        json!({"resourceType":"Observation","status":"final","code":{"text":"x"},
               "valueCodeableConcept":{"coding":[{"system":"http://snomed.info/sct","code":"260385009"}]}}),
    );
    assert!(got.contains(&(
        "value-concept".into(),
        Some("http://snomed.info/sct".into()),
        "260385009".into()
    )));
}

#[test]
fn derived_rows_for_text_of_type_and_reference_identifier() {
    let rows = index_rows(
        Registry::global(),
        "Patient",
        &json!({"resourceType":"Patient","identifier":[{"system":"urn:mrn","value":"446053",
            "type":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0203","code":"MR"}],"text":"Medical record"}}]}),
        "http://local/fhir",
    );
    assert!(rows.tokens.contains(&IndexRow {
        param: "identifier:of-type".into(),
        system: Some("http://terminology.hl7.org/CodeSystem/v2-0203".into()),
        code: "MR|446053".into()
    }));
    assert!(rows.strings.contains(&StringRow {
        param: "identifier:text".into(),
        folded: "medical record".into(),
        exact: "Medical record".into()
    }));
    let rows = index_rows(
        Registry::global(),
        "Observation",
        &json!({"resourceType":"Observation","status":"final",
            "code":{"coding":[{"system":"http://loinc.org","code":"8867-4","display":"Heart rate"}],"text":"Pulse"},
            "subject":{"identifier":{"system":"urn:nid","value":"N1"}}}),
        "http://local/fhir",
    );
    let texts: Vec<&str> = rows
        .strings
        .iter()
        .filter(|r| r.param == "code:text")
        .map(|r| r.folded.as_str())
        .collect();
    assert_eq!(texts, vec!["pulse", "heart rate"]);
    assert!(rows.tokens.contains(&IndexRow {
        param: "subject:identifier".into(),
        system: Some("urn:nid".into()),
        code: "N1".into()
    }));
    assert!(
        !rows.references.iter().any(|r| r.param == "subject"),
        "a reference with only an identifier has no literal target"
    );
}

#[test]
fn composites_pair_values_within_one_component() {
    let rows = index_rows(
        Registry::global(),
        "Observation",
        &json!({"resourceType":"Observation","status":"final","code":{"text":"BP"},
            "component":[
              {"code":{"coding":[{"system":"http://loinc.org","code":"8480-6"}]},
               "valueQuantity":{"value":120,"system":"http://unitsofmeasure.org","code":"mm[Hg]"}},
              {"code":{"coding":[{"system":"http://loinc.org","code":"8462-4"}]},
               "valueQuantity":{"value":80,"system":"http://unitsofmeasure.org","code":"mm[Hg]"}}]}),
        "http://local/fhir",
    );
    let mut got: Vec<(String, String)> = rows
        .quantities
        .iter()
        .filter(|q| q.param.starts_with("component-code-value-quantity$"))
        .map(|q| (q.param.to_string(), q.value.clone()))
        .collect();
    got.sort();
    let key = |k: &str| format!("component-code-value-quantity${k}");
    assert_eq!(
        got,
        vec![
            (key("8462-4"), "80".to_string()),
            (key("8480-6"), "120".to_string()),
            (key("http://loinc.org|8462-4"), "80".to_string()),
            (key("http://loinc.org|8480-6"), "120".to_string()),
        ]
    );
}

#[test]
fn location_positions() {
    let rows = index_rows(
        Registry::global(),
        "Location",
        &json!({"resourceType":"Location","position":{"latitude":-1.2921,"longitude":36.8219}}),
        "http://local/fhir",
    );
    assert_eq!(
        rows.positions,
        vec![PositionRow {
            param: "near".into(),
            latitude: -1.2921,
            longitude: 36.8219
        }]
    );
}
