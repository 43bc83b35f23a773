//! Search (search.html): reference parameters. Expected results are written
//! by hand from the spec's rules.

use crate::harness::{spawn_app, status_json};
use serde_json::{Value, json};

async fn ids(app: &crate::harness::TestApp, query: &str) -> Vec<String> {
    let (status, bundle) = status_json(app.get(query).await).await;
    assert_eq!(status, 200, "{query}: {bundle}");
    let mut ids: Vec<String> = bundle["entry"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .filter(|e| e["search"]["mode"] == "match")
                .map(|e| e["resource"]["id"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

fn observation(id: &str, subject: &str) -> Value {
    json!({"resourceType": "Observation", "id": id, "status": "final", "code": {"text": "x"},
           "subject": {"reference": subject}})
}

#[tokio::test]
async fn reference_parameters_match_type_id_url_and_modifier() {
    let app = spawn_app().await;
    app.put(
        "Patient/p1",
        &json!({"resourceType": "Patient", "id": "p1"}),
    )
    .await;
    app.put(
        "Group/p1",
        &json!({"resourceType": "Group", "id": "p1", "type": "person", "actual": true}),
    )
    .await;
    app.put("Observation/o1", &observation("o1", "Patient/p1"))
        .await;
    app.put("Observation/o2", &observation("o2", &app.url("Patient/p1")))
        .await;
    app.put("Observation/o3", &observation("o3", "Group/p1"))
        .await;
    app.put(
        "Observation/o4",
        &observation("o4", "https://elsewhere.org/fhir/Patient/p1"),
    )
    .await;
    assert_eq!(
        ids(&app, "Observation?subject=Patient/p1").await,
        ["o1", "o2"],
        "absolute URLs on this server are local"
    );
    assert_eq!(
        ids(&app, "Observation?subject=p1").await,
        ["o1", "o2", "o3"],
        "a bare id matches any type"
    );
    assert_eq!(ids(&app, "Observation?subject:Group=p1").await, ["o3"]);
    assert_eq!(
        ids(
            &app,
            &format!("Observation?subject={}", app.url("Patient/p1"))
        )
        .await,
        ["o1", "o2"]
    );
    assert_eq!(
        ids(
            &app,
            "Observation?subject=https://elsewhere.org/fhir/Patient/p1"
        )
        .await,
        ["o4"]
    );
    assert_eq!(
        ids(&app, "Observation?patient=p1").await,
        ["o1", "o2"],
        "patient = subject.where(resolve() is Patient)"
    );
    assert_eq!(
        ids(&app, "Observation?subject=Patient/p1,Group/p1").await,
        ["o1", "o2", "o3"]
    );
    assert_eq!(
        ids(&app, "Observation?subject=Patient/p1&_id=o2").await,
        ["o2"]
    );
    let (status, body) = status_json(app.get("Observation?subject=Not/a/ref").await).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["issue"][0]["expression"][0], "subject");
    // Updating a reference moves the resource in the index.
    app.put("Observation/o1", &observation("o1", "Group/p1"))
        .await;
    assert_eq!(ids(&app, "Observation?subject=Patient/p1").await, ["o2"]);
    app.delete("Observation/o2").await;
    assert!(ids(&app, "Observation?subject=Patient/p1").await.is_empty());
}

#[tokio::test]
async fn conditional_references_in_transactions_may_use_reference_parameters() {
    let app = spawn_app().await;
    app.put(
        "Patient/p9",
        &json!({"resourceType": "Patient", "id": "p9"}),
    )
    .await;
    app.put(
        "Encounter/e9",
        &json!({"resourceType": "Encounter", "id": "e9", "status": "finished",
        "class": {"code": "AMB"}, "subject": {"reference": "Patient/p9"}}),
    )
    .await;
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                      "encounter": {"reference": "Encounter?subject=Patient/p9"}},
         "request": {"method": "POST", "url": "Observation"}}]});
    let (status, response) = status_json(app.post("", &bundle).await).await;
    assert_eq!(status, 200, "{response}");
    assert_eq!(
        ids(&app, "Observation?encounter=Encounter/e9").await.len(),
        1
    );
}

#[tokio::test]
async fn string_parameters_fold_case_and_accents() {
    let app = spawn_app().await;
    let patient = |id: &str, family: &str, given: &str| {
        json!({"resourceType": "Patient", "id": id, "name": [{"family": family, "given": [given]}],
               "address": [{"city": "Mombasa"}]})
    };
    app.put("Patient/a", &patient("a", "Müller", "Anna")).await;
    app.put("Patient/b", &patient("b", "Núñez", "José")).await;
    app.put("Patient/c", &patient("c", "Mullins", "Zawadi"))
        .await;
    assert_eq!(ids(&app, "Patient?family=müller").await, ["a"]);
    assert_eq!(ids(&app, "Patient?family=MULLER").await, ["a"]);
    assert_eq!(
        ids(&app, "Patient?family=mul").await,
        ["a", "c"],
        "starts-with by default"
    );
    assert_eq!(ids(&app, "Patient?family=nunez").await, ["b"]);
    assert_eq!(ids(&app, "Patient?family:exact=Núñez").await, ["b"]);
    assert!(
        ids(&app, "Patient?family:exact=nunez").await.is_empty(),
        ":exact keeps case and accents"
    );
    assert_eq!(ids(&app, "Patient?family:contains=LLIN").await, ["c"]);
    assert_eq!(
        ids(&app, "Patient?name=jose").await,
        ["b"],
        "name covers given names"
    );
    assert_eq!(ids(&app, "Patient?name=zawadi,anna").await, ["a", "c"]);
    assert_eq!(
        ids(&app, "Patient?address-city=momb&family=mu").await,
        ["a", "c"]
    );
    assert!(
        ids(&app, "Patient?family=50%25").await.is_empty(),
        "LIKE wildcards in the value are literal"
    );
}

#[tokio::test]
async fn date_parameters_follow_the_prefix_rules_at_every_precision() {
    let app = spawn_app().await;
    let born =
        |id: &str, date: &str| json!({"resourceType": "Patient", "id": id, "birthDate": date});
    app.put("Patient/y1980", &born("y1980", "1980")).await;
    app.put("Patient/d19800517", &born("d19800517", "1980-05-17"))
        .await;
    app.put("Patient/d19810101", &born("d19810101", "1981-01-01"))
        .await;
    app.put("Patient/d19791231", &born("d19791231", "1979-12-31"))
        .await;
    // eq: the search range contains the value's range.
    assert_eq!(
        ids(&app, "Patient?birthdate=1980").await,
        ["d19800517", "y1980"]
    );
    assert_eq!(
        ids(&app, "Patient?birthdate=1980-05-17").await,
        ["d19800517"],
        "the year 1980 is not within one day"
    );
    assert_eq!(
        ids(&app, "Patient?birthdate=eq1980-05").await,
        ["d19800517"]
    );
    // ne is the negation of eq.
    assert_eq!(
        ids(&app, "Patient?birthdate=ne1980").await,
        ["d19791231", "d19810101"]
    );
    // gt: some part of the value lies after the search range; lt before it.
    assert_eq!(
        ids(&app, "Patient?birthdate=gt1980-05-17").await,
        ["d19810101", "y1980"]
    );
    assert_eq!(
        ids(&app, "Patient?birthdate=lt1980-05-17").await,
        ["d19791231", "y1980"]
    );
    assert_eq!(
        ids(&app, "Patient?birthdate=ge1980-05-17").await,
        ["d19800517", "d19810101", "y1980"]
    );
    assert_eq!(
        ids(&app, "Patient?birthdate=le1979-12-31").await,
        ["d19791231"]
    );
    // sa / eb: entirely after / before.
    assert_eq!(
        ids(&app, "Patient?birthdate=sa1980-05-17").await,
        ["d19810101"]
    );
    assert_eq!(ids(&app, "Patient?birthdate=eb1980").await, ["d19791231"]);
    assert_eq!(
        ids(&app, "Patient?_lastUpdated=ge2020").await.len(),
        4,
        "_lastUpdated is the server's meta.lastUpdated"
    );
    assert!(ids(&app, "Patient?_lastUpdated=lt2020").await.is_empty());
    // Two occurrences are AND: a range.
    assert_eq!(
        ids(
            &app,
            "Patient?birthdate=ge1980-01-01&birthdate=lt1981-01-01"
        )
        .await,
        ["d19800517", "y1980"]
    );
    // Time zones: 1980-05-17T23:30-05:00 is 1980-05-18 in UTC.
    app.put(
        "Observation/late",
        &json!({"resourceType": "Observation", "id": "late", "status": "final",
        "code": {"text": "x"}, "effectiveDateTime": "1980-05-17T23:30:00-05:00"}),
    )
    .await;
    assert_eq!(ids(&app, "Observation?date=1980-05-18").await, ["late"]);
    assert!(ids(&app, "Observation?date=1980-05-17").await.is_empty());
    assert_eq!(
        ids(
            &app,
            "Observation?date=1980-05-17T23:30:00-05:00"
                .replace('+', "%2B")
                .as_str()
        )
        .await,
        ["late"]
    );
    // Malformed values are a 400 naming the parameter.
    let (status, body) = status_json(app.get("Patient?birthdate=1980-13").await).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["issue"][0]["expression"][0], "birthdate");
    let (status, _) = status_json(app.get("Patient?birthdate=xx1980").await).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn number_and_quantity_parameters_use_precision_and_units() {
    let app = spawn_app().await;
    let quantity = |id: &str, value: &str, code: &str| {
        let body = format!(
            r#"{{"resourceType":"Observation","id":"{id}","status":"final","code":{{"text":"x"}},
               "valueQuantity":{{"value":{value},"unit":"{code}","system":"http://unitsofmeasure.org","code":"{code}"}}}}"#
        );
        serde_json::from_str::<Value>(&body).unwrap()
    };
    app.put("Observation/o180", &quantity("o180", "180", "mg/dL"))
        .await;
    app.put("Observation/o150", &quantity("o150", "150", "mg/dL"))
        .await;
    app.put("Observation/o2", &quantity("o2", "2.0", "g/L"))
        .await;
    app.put("Observation/obpm", &quantity("obpm", "72", "/min"))
        .await;
    // 170 mg/dL is 1.7 g/L: 180 mg/dL (1.8 g/L) and 2.0 g/L are above it.
    assert_eq!(
        ids(
            &app,
            "Observation?value-quantity=gt170|http://unitsofmeasure.org|mg/dL"
        )
        .await,
        ["o180", "o2"]
    );
    // eq uses the implicit precision of the search value: 1.8 is [1.75, 1.85).
    assert_eq!(
        ids(
            &app,
            "Observation?value-quantity=1.8|http://unitsofmeasure.org|g/L"
        )
        .await,
        ["o180"]
    );
    // Without a system the code is matched as written.
    assert_eq!(
        ids(&app, "Observation?value-quantity=180||mg/dL").await,
        ["o180"]
    );
    // Without a unit any unit matches.
    assert_eq!(
        ids(&app, "Observation?value-quantity=lt100").await,
        ["o2", "obpm"]
    );
    assert_eq!(ids(&app, "Observation?value-quantity=ge150|http://unitsofmeasure.org|mg/dL&value-quantity=le180|http://unitsofmeasure.org|mg/dL").await, ["o150", "o180"]);

    let risk = |id: &str, p: &str| {
        serde_json::from_str::<Value>(&format!(
            r#"{{"resourceType":"RiskAssessment","id":"{id}","status":"final","subject":{{"reference":"Patient/x"}},
               "prediction":[{{"probabilityDecimal":{p}}}]}}"#
        ))
        .unwrap()
    };
    app.put("RiskAssessment/r25", &risk("r25", "0.25")).await;
    app.put("RiskAssessment/r70", &risk("r70", "0.70")).await;
    assert_eq!(ids(&app, "RiskAssessment?probability=gt0.5").await, ["r70"]);
    assert_eq!(ids(&app, "RiskAssessment?probability=0.25").await, ["r25"]);
    assert!(
        ids(&app, "RiskAssessment?probability=0.2").await.is_empty(),
        "0.2 means [0.15, 0.25)"
    );
    assert_eq!(
        ids(&app, "RiskAssessment?probability=0.7").await,
        ["r70"],
        "0.70 is within [0.65, 0.75)"
    );
    let (status, body) = status_json(app.get("RiskAssessment?probability=high").await).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["issue"][0]["expression"][0], "probability");
}

#[tokio::test]
async fn uri_parameters_match_exactly_below_and_above() {
    let app = spawn_app().await;
    let value_set = |id: &str, url: &str| json!({"resourceType": "ValueSet", "id": id, "status": "active", "url": url});
    app.put("ValueSet/root", &value_set("root", "http://acme.org/fhir"))
        .await;
    app.put(
        "ValueSet/vs",
        &value_set("vs", "http://acme.org/fhir/ValueSet/blood"),
    )
    .await;
    app.put(
        "ValueSet/other",
        &value_set("other", "http://acme.org/fhirish/ValueSet/x"),
    )
    .await;
    assert_eq!(
        ids(&app, "ValueSet?url=http://acme.org/fhir/ValueSet/blood").await,
        ["vs"]
    );
    assert!(
        ids(&app, "ValueSet?url=http://acme.org/fhir/ValueSet")
            .await
            .is_empty(),
        "uri matches exactly by default"
    );
    assert_eq!(
        ids(&app, "ValueSet?url:below=http://acme.org/fhir").await,
        ["root", "vs"],
        "not the sibling path /fhirish"
    );
    assert_eq!(
        ids(
            &app,
            "ValueSet?url:above=http://acme.org/fhir/ValueSet/blood/extra"
        )
        .await,
        ["root", "vs"]
    );
}

#[tokio::test]
async fn missing_selects_resources_with_or_without_a_value() {
    let app = spawn_app().await;
    app.put(
        "Patient/born",
        &json!({"resourceType": "Patient", "id": "born", "birthDate": "1990", "gender": "female"}),
    )
    .await;
    app.put(
        "Patient/unknown",
        &json!({"resourceType": "Patient", "id": "unknown", "name": [{"family": "X"}]}),
    )
    .await;
    assert_eq!(
        ids(&app, "Patient?birthdate:missing=true").await,
        ["unknown"]
    );
    assert_eq!(ids(&app, "Patient?birthdate:missing=false").await, ["born"]);
    assert_eq!(ids(&app, "Patient?gender:missing=true").await, ["unknown"]);
    assert_eq!(ids(&app, "Patient?family:missing=false").await, ["unknown"]);
    assert_eq!(
        ids(&app, "Patient?general-practitioner:missing=true").await,
        ["born", "unknown"]
    );
    let (status, body) = status_json(app.get("Patient?gender:missing=maybe").await).await;
    assert_eq!(status, 400, "{body}");
}
