//! Conditional create, update and delete (http.html#ccreate, #cond-update,
//! #cond-delete).

use crate::harness::{assert_outcome_names, spawn_app, status_json};
use reqwest::Method;
use serde_json::{Value, json};

fn patient(identifier: &str) -> Value {
    json!({"resourceType": "Patient", "identifier": [{"system": "urn:nid", "value": identifier}], "active": true})
}

#[tokio::test]
async fn conditional_create_creates_once_and_refuses_ambiguity() {
    let app = spawn_app().await;
    let create = |identifier: &'static str| {
        app.request(Method::POST, "Patient")
            .header("content-type", "application/fhir+json")
            .header("if-none-exist", format!("identifier=urn:nid|{identifier}"))
            .body(patient(identifier).to_string())
            .send()
    };
    let first = create("1").await.unwrap();
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    let second = create("1").await.unwrap();
    assert_eq!(second.status(), 200, "a match means nothing is created");
    let second: Value = second.json().await.unwrap();
    assert_eq!(first["id"], second["id"]);
    assert_eq!(app.count_rows("resources").await, 1);
    // Two resources with the same identifier make the condition ambiguous.
    app.create(&patient("2")).await;
    app.create(&patient("2")).await;
    let (status, body) = status_json(create("2").await.unwrap()).await;
    assert_eq!(status, 412);
    assert_eq!(body["issue"][0]["code"], "multiple-matches");
}

#[tokio::test]
async fn concurrent_conditional_creates_make_one_resource() {
    let app = spawn_app().await;
    let requests = (0..8).map(|_| {
        app.request(Method::POST, "Patient")
            .header("content-type", "application/fhir+json")
            .header("if-none-exist", "identifier=urn:nid|race")
            .body(patient("race").to_string())
            .send()
    });
    let statuses: Vec<u16> = futures_util::future::join_all(requests)
        .await
        .into_iter()
        .map(|r| r.unwrap().status().as_u16())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(app.count_rows("resources").await, 1);
}

#[tokio::test]
async fn conditional_update_creates_updates_or_refuses() {
    let app = spawn_app().await;
    let (status, created) =
        status_json(app.put("Patient?identifier=urn:nid|7", &patient("7")).await).await;
    assert_eq!(status, 201);
    let mut changed = patient("7");
    changed["active"] = json!(false);
    let (status, updated) =
        status_json(app.put("Patient?identifier=urn:nid|7", &changed).await).await;
    assert_eq!(status, 200);
    assert_eq!(updated["id"], created["id"]);
    assert_eq!(updated["meta"]["versionId"], "2");
    // One match, but the body names another id.
    let mut wrong = changed.clone();
    wrong["id"] = json!("someone-else");
    let (status, body) = status_json(app.put("Patient?identifier=urn:nid|7", &wrong).await).await;
    assert_eq!(status, 400);
    assert_outcome_names(&body, "Patient.id");
    app.create(&patient("8")).await;
    app.create(&patient("8")).await;
    let (status, _) =
        status_json(app.put("Patient?identifier=urn:nid|8", &patient("8")).await).await;
    assert_eq!(status, 412);
    // A criterion the server does not understand is never ignored here.
    let (status, body) = status_json(app.put("Patient?nonsense=1", &patient("9")).await).await;
    assert_eq!(status, 400);
    assert_outcome_names(&body, "nonsense");
}

#[tokio::test]
async fn conditional_delete_deletes_one_match_only() {
    let app = spawn_app().await;
    app.create(&patient("d1")).await;
    assert_eq!(
        app.delete("Patient?identifier=urn:nid|d1").await.status(),
        204
    );
    let (_, bundle) = status_json(app.get("Patient?identifier=urn:nid|d1").await).await;
    assert!(bundle.get("entry").is_none());
    assert_eq!(
        app.delete("Patient?identifier=urn:nid|none").await.status(),
        204
    );
    app.create(&patient("d2")).await;
    app.create(&patient("d2")).await;
    assert_eq!(
        app.delete("Patient?identifier=urn:nid|d2").await.status(),
        412
    );
    let (_, bundle) = status_json(app.get("Patient?identifier=urn:nid|d2").await).await;
    assert_eq!(bundle["entry"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn token_criteria_forms_and_id() {
    let app = spawn_app().await;
    let a = app
        .create(&json!({"resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]}}))
        .await;
    app.create(&json!({"resourceType": "Observation", "status": "final",
        "code": {"coding": [{"code": "8867-4"}]}}))
        .await;
    let count = |q: &'static str| {
        let app = &app;
        async move {
            let (status, bundle) = status_json(app.get(&format!("Observation?{q}")).await).await;
            assert_eq!(status, 200, "{q}: {bundle}");
            bundle["entry"].as_array().map_or(0, |e| {
                e.iter().filter(|x| x["search"]["mode"] == "match").count()
            })
        }
    };
    assert_eq!(count("code=8867-4").await, 2);
    assert_eq!(count("code=http://loinc.org|8867-4").await, 1);
    assert_eq!(count("code=|8867-4").await, 1);
    assert_eq!(count("code=http://loinc.org|").await, 1);
    assert_eq!(
        count("code=http://loinc.org|1,http://loinc.org|8867-4").await,
        1
    );
    assert_eq!(count("code=8867-4&status=final").await, 2);
    assert_eq!(count("code=8867-4&status=preliminary").await, 0);
    let id = a["id"].as_str().unwrap();
    assert_eq!(
        app.get(&format!("Observation?_id={id}"))
            .await
            .json::<Value>()
            .await
            .unwrap()["entry"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let (status, _) = status_json(app.get_strict("Observation?bogus=1").await).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn any_token_parameter_serves_conditional_interactions() {
    let app = spawn_app().await;
    // `phone` is `Patient.telecom.where(system='phone')`: not a plain path.
    let body = json!({"resourceType": "Patient", "telecom": [{"system": "phone", "value": "+254700000001"}, {"system": "email", "value": "x@y.ke"}]});
    let create = || {
        app.request(Method::POST, "Patient")
            .header("content-type", "application/fhir+json")
            .header("if-none-exist", "phone=%2B254700000001")
            .body(body.to_string())
            .send()
    };
    assert_eq!(create().await.unwrap().status(), 201);
    assert_eq!(create().await.unwrap().status(), 200);
    let (_, bundle) = status_json(app.get("Patient?phone=x@y.ke").await).await;
    assert!(
        bundle.get("entry").is_none(),
        "an email is not a phone: {bundle}"
    );
    // `value-concept` is `(Observation.value as CodeableConcept)`.
    let observation = json!({"resourceType": "Observation", "status": "final", "code": {"text": "smoking"},
        "valueCodeableConcept": {"coding": [{"system": "http://snomed.info/sct", "code": "266919005"}]}});
    let (status, _) = status_json(
        app.put(
            "Observation?value-concept=http://snomed.info/sct|266919005",
            &observation,
        )
        .await,
    )
    .await;
    assert_eq!(status, 201);
    let (status, _) = status_json(
        app.put(
            "Observation?value-concept=http://snomed.info/sct|266919005",
            &observation,
        )
        .await,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        app.delete("Observation?value-concept=266919005")
            .await
            .status(),
        204
    );
    assert_eq!(app.count_rows("resources WHERE NOT deleted").await, 1);
}
