//! `ConceptMap/$translate` with the concept map given inline
//! (conceptmap-operation-translate, parameter `conceptMap`): matches in
//! both directions, the narrowing parameters, and the request's mistakes.

use crate::harness::{assert_outcome_names, spawn_app};
use crate::terminology::{get, param, post};
use serde_json::{Value, json};

const SOURCE: &str = "http://example.org/fhir/CodeSystem/district-facility-levels";
const TARGET: &str = "http://example.org/fhir/CodeSystem/national-facility-levels";

fn map() -> Value {
    json!({"resourceType": "ConceptMap", "status": "active",
        "url": "http://example.org/fhir/ConceptMap/levels",
        "sourceUri": "http://example.org/fhir/ValueSet/district-levels",
        "targetUri": "http://example.org/fhir/ValueSet/national-levels",
        "group": [{"source": SOURCE, "target": TARGET, "element": [
            {"code": "HC2", "display": "Health centre II", "target": [
                {"code": "L2", "display": "Level 2", "equivalence": "equivalent"}]},
            {"code": "HC3", "target": [
                {"code": "L3", "display": "Level 3", "equivalence": "wider", "comment": "includes maternity"},
                {"code": "L3M", "equivalence": "narrower"}]},
            {"code": "HC4", "target": [{"equivalence": "unmatched"}]}]}]})
}

fn request(mut parameters: Vec<Value>) -> Value {
    parameters.push(json!({"name": "conceptMap", "resource": map()}));
    json!({"resourceType": "Parameters", "parameter": parameters})
}

fn matches(out: &Value) -> Vec<(String, String)> {
    out["parameter"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"] == "match")
        .map(|m| {
            let part = |name: &str| {
                m["part"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|p| p["name"] == name)
                    .cloned()
                    .unwrap_or(Value::Null)
            };
            (
                part("equivalence")["valueCode"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
                part("concept")["valueCoding"]["code"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn translate_with_an_inline_concept_map() {
    let app = spawn_app().await;
    let translate = |parameters: Vec<Value>| {
        let app = &app;
        async move { post(app, "ConceptMap/$translate", &request(parameters)).await }
    };
    let (status, out) = translate(vec![
        json!({"name": "system", "valueUri": SOURCE}),
        json!({"name": "code", "valueCode": "HC3"}),
    ])
    .await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(param(&out, "result"), true);
    assert_eq!(
        matches(&out),
        [
            ("wider".to_owned(), "L3".to_owned()),
            ("narrower".to_owned(), "L3M".to_owned())
        ]
    );
    let first = &out["parameter"][1]["part"];
    assert_eq!(
        first[1]["valueCoding"],
        json!({"system": TARGET, "code": "L3", "display": "Level 3"})
    );
    assert_eq!(
        first[2]["valueUri"],
        "http://example.org/fhir/ConceptMap/levels"
    );
    assert_eq!(first[3]["valueString"], "includes maternity");

    // Reverse: from the target code back to the source, with a coding.
    let (_, back) = translate(vec![
        json!({"name": "coding", "valueCoding": {"system": TARGET, "code": "L2"}}),
        json!({"name": "reverse", "valueBoolean": true}),
    ])
    .await;
    assert_eq!(
        matches(&back),
        [("equivalent".to_owned(), "HC2".to_owned())]
    );
    assert_eq!(
        back["parameter"][1]["part"][1]["valueCoding"]["system"],
        SOURCE
    );

    // An element mapped to nothing: a match that is no translation.
    let (_, unmatched) = translate(vec![
        json!({"name": "system", "valueUri": SOURCE}),
        json!({"name": "code", "valueCode": "HC4"}),
    ])
    .await;
    assert_eq!(param(&unmatched, "result"), false);
    assert_eq!(
        matches(&unmatched),
        [("unmatched".to_owned(), String::new())]
    );

    // Narrowing: another system, target system or target value set.
    for narrowing in [
        vec![json!({"name": "system", "valueUri": "urn:other"})],
        vec![
            json!({"name": "system", "valueUri": SOURCE}),
            json!({"name": "targetsystem", "valueUri": "urn:other"}),
        ],
        vec![
            json!({"name": "system", "valueUri": SOURCE}),
            json!({"name": "target", "valueUri": "http://example.org/fhir/ValueSet/other"}),
        ],
    ] {
        let mut parameters = narrowing;
        parameters.push(json!({"name": "code", "valueCode": "HC2"}));
        let (status, none) = translate(parameters).await;
        assert_eq!(
            (status, param(&none, "result")),
            (200, &json!(false)),
            "{none}"
        );
        assert!(matches(&none).is_empty());
    }
    let (_, narrowed) = translate(vec![
        json!({"name": "code", "valueCode": "HC2"}),
        json!({"name": "source", "valueUri": "http://example.org/fhir/ValueSet/district-levels"}),
        json!({"name": "targetsystem", "valueUri": TARGET}),
    ])
    .await;
    assert_eq!(
        matches(&narrowed),
        [("equivalent".to_owned(), "L2".to_owned())]
    );
}

#[tokio::test]
async fn translate_refuses_a_malformed_inline_concept_map() {
    let app = spawn_app().await;
    let not_a_map = json!({"resourceType": "Parameters", "parameter": [
        {"name": "code", "valueCode": "HC2"},
        {"name": "conceptMap", "resource": {"resourceType": "ValueSet", "status": "active"}}]});
    let (status, body) = post(&app, "ConceptMap/$translate", &not_a_map).await;
    assert_eq!(status, 400, "{body}");
    assert_outcome_names(&body, "Parameters.parameter[1]");

    let both = json!({"resourceType": "Parameters", "parameter": [
        {"name": "url", "valueUri": "http://hl7.org/fhir/ConceptMap/cm-contact-point-use-v3"},
        {"name": "code", "valueCode": "home"},
        {"name": "conceptMap", "resource": map()}]});
    let (status, body) = post(&app, "ConceptMap/$translate", &both).await;
    assert_eq!(status, 400, "{body}");
    assert_outcome_names(&body, "Parameters.parameter[2]");

    let (status, body) = get(&app, "ConceptMap/$translate?code=HC2&conceptMap=levels").await;
    assert_eq!(status, 400, "{body}");
    assert_outcome_names(&body, "conceptMap");
}
