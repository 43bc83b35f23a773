//! The terminology service (issue 5): the R4 code systems and value sets
//! loaded at first start, and the operations `$expand`, `$validate-code`,
//! `$lookup`, `$subsumes`, `$translate` and `metadata?mode=terminology`
//! over HTTP, with their errors. Writes, bindings, search modifiers,
//! tenants and loads are in `terminology_content`.

use crate::harness::{TestApp, assert_outcome_names, spawn_app, spawn_app_with, status_json};
use serde_json::{Value, json};

pub const GENDER: &str = "http://hl7.org/fhir/ValueSet/administrative-gender";
pub const GENDER_CS: &str = "http://hl7.org/fhir/administrative-gender";
pub const ACT_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";

pub async fn get(app: &TestApp, path: &str) -> (u16, Value) {
    status_json(app.get(path).await).await
}

pub async fn post(app: &TestApp, path: &str, body: &Value) -> (u16, Value) {
    status_json(app.post(path, body).await).await
}

/// The value of output parameter `name`.
pub fn param<'v>(parameters: &'v Value, name: &str) -> &'v Value {
    parameters["parameter"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == name))
        .map(|p| {
            p.as_object()
                .and_then(|o| {
                    o.iter()
                        .find(|(k, _)| k.starts_with("value"))
                        .map(|(_, v)| v)
                })
                .unwrap_or(&Value::Null)
        })
        .unwrap_or(&Value::Null)
}

pub fn codes(expansion: &Value) -> Vec<String> {
    expansion["expansion"]["contains"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| c["code"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn administrative_gender_expands_and_validates() {
    let app = spawn_app().await;
    let (status, vs) = get(&app, &format!("ValueSet/$expand?url={GENDER}")).await;
    assert_eq!(status, 200, "{vs}");
    assert_eq!(vs["expansion"]["total"], 4);
    assert_eq!(codes(&vs), ["male", "female", "other", "unknown"]);

    let check = |q: String| {
        let app = &app;
        async move { get(app, &format!("ValueSet/$validate-code?url={GENDER}&{q}")).await }
    };
    let (status, ok) = check(format!("system={GENDER_CS}&code=female")).await;
    assert_eq!(status, 200);
    assert_eq!(param(&ok, "result"), true);
    assert_eq!(param(&ok, "display"), "Female");
    let (_, bad) = check(format!("system={GENDER_CS}&code=nonsense")).await;
    assert_eq!(param(&bad, "result"), false);
    assert!(
        param(&bad, "message")
            .as_str()
            .unwrap()
            .contains("nonsense"),
        "{bad}"
    );
    let (_, wrong_display) = check(format!("system={GENDER_CS}&code=male&display=Man")).await;
    assert_eq!(param(&wrong_display, "result"), false);
    assert_eq!(param(&wrong_display, "display"), "Male");
    let (_, case_only) = check(format!("system={GENDER_CS}&code=male&display=MALE")).await;
    assert_eq!(param(&case_only, "result"), true);

    // POST with a CodeableConcept: one good coding is enough.
    let body = json!({"resourceType": "Parameters", "parameter": [
        {"name": "url", "valueUri": GENDER},
        {"name": "codeableConcept", "valueCodeableConcept": {"coding": [
            {"system": "urn:other", "code": "x"},
            {"system": GENDER_CS, "code": "other"}]}}]});
    let (status, cc) = post(&app, "ValueSet/$validate-code", &body).await;
    assert_eq!((status, param(&cc, "result")), (200, &json!(true)), "{cc}");

    // Instance level, by the R4 id, and the CodeSystem's own validate-code.
    let (status, inst) = get(
        &app,
        &format!("ValueSet/administrative-gender/$validate-code?system={GENDER_CS}&code=male"),
    )
    .await;
    assert_eq!(
        (status, param(&inst, "result")),
        (200, &json!(true)),
        "{inst}"
    );
    let (_, cs) = get(
        &app,
        &format!("CodeSystem/$validate-code?url={GENDER_CS}&code=unknown"),
    )
    .await;
    assert_eq!(param(&cs, "result"), true, "{cs}");
    let (status, read) = get(&app, "CodeSystem/administrative-gender").await;
    assert_eq!(
        (status, read["url"].as_str()),
        (200, Some(GENDER_CS)),
        "global content is readable"
    );
}

#[tokio::test]
async fn v3_act_code_hierarchy_answers_is_a_subsumes_and_lookup() {
    let app = spawn_app().await;
    let inline = json!({"resourceType": "Parameters", "parameter": [{"name": "valueSet", "resource": {
        "resourceType": "ValueSet", "status": "active",
        "compose": {"include": [{"system": ACT_CODE,
            "filter": [{"property": "concept", "op": "is-a", "value": "_ActAccountCode"}]}]}}}]});
    let (status, vs) = post(&app, "ValueSet/$expand", &inline).await;
    assert_eq!(status, 200, "{vs}");
    let found = codes(&vs);
    assert!(
        found.contains(&"_ActAccountCode".to_owned()) && found.contains(&"CASH".to_owned()),
        "{found:?}"
    );
    assert!(!found.contains(&"AMB".to_owned()));

    for (a, b, outcome) in [
        ("_ActAccountCode", "CASH", "subsumes"),
        ("CASH", "_ActAccountCode", "subsumed-by"),
        ("CASH", "CASH", "equivalent"),
        ("CASH", "AMB", "not-subsumed"),
    ] {
        let (status, out) = get(
            &app,
            &format!("CodeSystem/$subsumes?system={ACT_CODE}&codeA={a}&codeB={b}"),
        )
        .await;
        assert_eq!(status, 200, "{out}");
        assert_eq!(param(&out, "outcome"), outcome, "{a} {b}");
    }
    let (status, lookup) = get(
        &app,
        &format!("CodeSystem/$lookup?system={ACT_CODE}&code=CASH"),
    )
    .await;
    assert_eq!(status, 200, "{lookup}");
    assert_eq!(param(&lookup, "display"), "Cash");
    let parent = lookup["parameter"].as_array().unwrap().iter().any(|p| {
        p["name"] == "property"
            && p["part"][0]["valueCode"] == "parent"
            && p["part"][1]["valueCode"] == "_ActAccountCode"
    });
    assert!(parent, "{lookup}");
    let (_, abstract_parent) = get(
        &app,
        &format!("CodeSystem/$lookup?system={ACT_CODE}&code=_ActAccountCode&property=child"),
    )
    .await;
    let children = abstract_parent["parameter"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"] == "property")
        .count();
    assert!(children >= 3, "{abstract_parent}");
}

#[tokio::test]
async fn v2_tables_and_concept_maps_are_loaded() {
    let app = spawn_app().await;
    let (status, lookup) = get(
        &app,
        "CodeSystem/$lookup?system=http://terminology.hl7.org/CodeSystem/v2-0203&code=MR",
    )
    .await;
    assert_eq!(status, 200, "{lookup}");
    assert_eq!(param(&lookup, "display"), "Medical record number");

    let (status, t) = get(
        &app,
        "ConceptMap/$translate?url=http://hl7.org/fhir/ConceptMap/cm-contact-point-use-v3\
         &system=http://hl7.org/fhir/contact-point-use&code=home",
    )
    .await;
    assert_eq!(status, 200, "{t}");
    assert_eq!(param(&t, "result"), true);
    let m = t["parameter"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "match")
        .unwrap();
    assert_eq!(m["part"][0]["valueCode"], "equal");
    assert_eq!(m["part"][1]["valueCoding"]["code"], "H");
    let (_, reverse) = get(
        &app,
        "ConceptMap/$translate?url=http://hl7.org/fhir/ConceptMap/cm-contact-point-use-v3\
         &system=http://terminology.hl7.org/CodeSystem/v3-AddressUse&code=H&reverse=true",
    )
    .await;
    assert_eq!(param(&reverse, "result"), true, "{reverse}");
    let (_, none) = get(&app, "ConceptMap/$translate?system=urn:nothing&code=zz").await;
    assert_eq!(param(&none, "result"), false);

    let (status, caps) = get(&app, "metadata?mode=terminology").await;
    assert_eq!(
        (status, caps["resourceType"].as_str()),
        (200, Some("TerminologyCapabilities"))
    );
    let act = caps["codeSystem"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["uri"] == ACT_CODE)
        .unwrap();
    assert_eq!(act["version"][0]["code"], "2018-08-12");
}

#[tokio::test]
async fn operation_errors_name_the_parameter() {
    let app = spawn_app_with(|s| s.terminology_max_expansion = 3).await;
    for (path, status, expression) in [
        (
            "ValueSet/$expand?url=http://example.org/nothing",
            404,
            "url",
        ),
        (
            &format!("ValueSet/$expand?url={GENDER}&valueSetVersion=9.9") as &str,
            404,
            "url",
        ),
        ("ValueSet/$expand", 400, "url"),
        (
            &format!("ValueSet/$expand?url={GENDER}&count=x"),
            400,
            "count",
        ),
        (
            &format!("ValueSet/$expand?url={GENDER}&bogus=1"),
            400,
            "bogus",
        ),
        (
            "CodeSystem/$lookup?system=urn:unknown&code=a",
            404,
            "system",
        ),
        (
            &format!("CodeSystem/$lookup?system={GENDER_CS}&code=zzz"),
            404,
            "code",
        ),
        (
            &format!("CodeSystem/$lookup?system={GENDER_CS}&version=0.1&code=male"),
            404,
            "system",
        ),
        (
            &format!("CodeSystem/$subsumes?system={ACT_CODE}&codeA=CASH&codeB=nope"),
            404,
            "codeB",
        ),
        (
            "ConceptMap/$translate?url=urn:no-map&code=a&system=b",
            404,
            "url",
        ),
    ] {
        let (got, body) = get(&app, path).await;
        assert_eq!(got, status, "{path}: {body}");
        assert_outcome_names(&body, expression);
    }
    // Larger than the limit without count: too-costly, never a partial answer.
    let (status, body) = get(&app, &format!("ValueSet/$expand?url={GENDER}")).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["issue"][0]["code"], "too-costly");
    // With count it pages: total, offset and past the end.
    let (status, page) = get(
        &app,
        &format!("ValueSet/$expand?url={GENDER}&count=2&offset=1"),
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(
        (page["expansion"]["total"].clone(), codes(&page)),
        (json!(4), vec!["female".to_owned(), "other".to_owned()])
    );
    let (_, past) = get(
        &app,
        &format!("ValueSet/$expand?url={GENDER}&count=2&offset=10"),
    )
    .await;
    assert_eq!(past["expansion"]["total"], 4);
    assert!(codes(&past).is_empty());
    // An include of an unknown code system.
    let unknown = json!({"resourceType": "Parameters", "parameter": [{"name": "valueSet", "resource": {
        "resourceType": "ValueSet", "status": "active",
        "compose": {"include": [{"system": "urn:not-loaded"}]}}}]});
    let (status, body) = post(&app, "ValueSet/$expand", &unknown).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("urn:not-loaded")
    );
    // An empty expansion is an answer, not an error.
    let empty = json!({"resourceType": "Parameters", "parameter": [{"name": "valueSet", "resource": {
        "resourceType": "ValueSet", "status": "active",
        "compose": {"include": [{"system": GENDER_CS, "filter": [{"property": "concept", "op": "=", "value": "none"}]}]}}}]});
    let (status, body) = post(&app, "ValueSet/$expand", &empty).await;
    assert_eq!(
        (status, body["expansion"]["total"].clone()),
        (200, json!(0)),
        "{body}"
    );
}
