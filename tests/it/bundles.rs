//! batch and transaction Bundles (http.html#transaction, bundle.html).

use crate::harness::{assert_outcome_names, spawn_app, spawn_app_with, status_json};
use bench::synthetic;
use reqwest::Method;
use serde_json::{Value, json};

const PATIENT_URN: &str = "urn:uuid:3f2504e0-4f89-11d3-9a0c-0305e82c3301";
const OBS_URN: &str = "urn:uuid:3f2504e0-4f89-11d3-9a0c-0305e82c3302";

fn post_entry(full_url: &str, resource: Value) -> Value {
    let t = resource["resourceType"].as_str().unwrap().to_owned();
    json!({"fullUrl": full_url, "resource": resource, "request": {"method": "POST", "url": t}})
}

fn transaction(entries: Vec<Value>) -> Value {
    json!({"resourceType": "Bundle", "type": "transaction", "entry": entries})
}

#[tokio::test]
async fn transaction_rewrites_placeholders_everywhere() {
    let app = spawn_app().await;
    let bundle = transaction(vec![
        post_entry(
            OBS_URN,
            json!({
                "resourceType": "Observation", "status": "final",
                "code": {"text": "weight"},
                "subject": {"reference": PATIENT_URN},
                "extension": [{"url": "http://example.org/ext", "valueReference": {"reference": PATIENT_URN}}],
                "component": [{"code": {"text": "c"}, "valueString": "x",
                    "extension": [{"url": "http://example.org/nested", "valueReference": {"reference": PATIENT_URN}}]}]
            }),
        ),
        post_entry(
            PATIENT_URN,
            json!({"resourceType": "Patient", "active": true}),
        ),
    ]);
    let (status, response) = status_json(app.post("", &bundle).await).await;
    assert_eq!(status, 200, "{response}");
    assert_eq!(response["type"], "transaction-response");
    let entries = response["entry"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    for entry in entries {
        assert_eq!(entry["response"]["status"], "201 Created");
        assert!(
            entry["response"]["etag"]
                .as_str()
                .unwrap()
                .starts_with("W/")
        );
        assert!(entry["response"]["lastModified"].is_string());
    }
    let patient_location = entries[1]["response"]["location"].as_str().unwrap();
    let patient_ref = patient_location
        .split("/_history")
        .next()
        .unwrap()
        .to_owned();
    let observation_location = entries[0]["response"]["location"].as_str().unwrap();
    let observation_path = observation_location.split("/_history").next().unwrap();
    let (_, observation) = status_json(app.get(observation_path).await).await;
    assert_eq!(observation["subject"]["reference"], patient_ref.as_str());
    assert_eq!(
        observation["extension"][0]["valueReference"]["reference"],
        patient_ref.as_str()
    );
    assert_eq!(
        observation["component"][0]["extension"][0]["valueReference"]["reference"],
        patient_ref.as_str()
    );
}

#[tokio::test]
async fn transaction_processes_gets_after_writes() {
    let app = spawn_app().await;
    let bundle = transaction(vec![
        json!({"request": {"method": "GET", "url": "Patient?identifier=urn:t|order"}}),
        post_entry(
            PATIENT_URN,
            json!({"resourceType": "Patient", "identifier": [{"system": "urn:t", "value": "order"}]}),
        ),
    ]);
    let (status, response) = status_json(app.post("", &bundle).await).await;
    assert_eq!(status, 200, "{response}");
    let search = &response["entry"][0]["resource"];
    assert_eq!(search["type"], "searchset");
    assert_eq!(
        search["entry"].as_array().unwrap().len(),
        1,
        "the GET sees the POST of the same transaction"
    );
}

#[tokio::test]
async fn transaction_with_an_invalid_500th_entry_writes_nothing() {
    let app = spawn_app().await;
    let mut bundle = synthetic::observation_bundle(1, 600, "Patient/p1");
    bundle["entry"][499]["resource"]["valueQuantity"]["value"] = json!("not a number");
    bundle["entry"][499]["resource"]["bogus"] = json!(true);
    let (status, body) = status_json(app.post("", &bundle).await).await;
    assert_eq!(status, 400, "{body}");
    assert_outcome_names(&body, "Bundle.entry[499].resource.valueQuantity.value");
    assert_outcome_names(&body, "Bundle.entry[499].resource.bogus");
    assert_eq!(app.count_rows("resource_history").await, 0);
    assert_eq!(app.count_rows("resources").await, 0);
}

#[tokio::test]
async fn transaction_failing_in_the_database_rolls_back() {
    let app = spawn_app().await;
    let existing = app
        .create(&json!({"resourceType": "Patient", "active": true}))
        .await;
    let id = existing["id"].as_str().unwrap();
    let bundle = transaction(vec![
        post_entry(
            PATIENT_URN,
            json!({"resourceType": "Patient", "active": false}),
        ),
        json!({"resource": {"resourceType": "Patient", "id": id, "active": false},
               "request": {"method": "PUT", "url": format!("Patient/{id}"), "ifMatch": "W/\"9\""}}),
    ]);
    let (status, body) = status_json(app.post("", &bundle).await).await;
    assert_eq!(status, 412, "{body}");
    assert_eq!(app.count_rows("resources").await, 1);
    assert_eq!(app.count_rows("resource_history").await, 1);
}

#[tokio::test]
async fn transaction_resolves_conditional_references_and_creates() {
    let app = spawn_app().await;
    let patient = app.create(&json!({"resourceType": "Patient", "identifier": [{"system": "urn:nid", "value": "42"}]})).await;
    let bundle = transaction(vec![
        json!({"fullUrl": PATIENT_URN, "resource": {"resourceType": "Patient", "identifier": [{"system": "urn:nid", "value": "42"}]},
               "request": {"method": "POST", "url": "Patient", "ifNoneExist": "identifier=urn:nid|42"}}),
        post_entry(
            OBS_URN,
            json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"},
            "subject": {"reference": "Patient?identifier=urn:nid|42"},
            "focus": [{"reference": PATIENT_URN}]}),
        ),
    ]);
    let (status, response) = status_json(app.post("", &bundle).await).await;
    assert_eq!(status, 200, "{response}");
    assert_eq!(
        response["entry"][0]["response"]["status"], "200 OK",
        "conditional create matched"
    );
    let observation_path = response["entry"][1]["response"]["location"]
        .as_str()
        .unwrap()
        .split("/_history")
        .next()
        .unwrap()
        .to_owned();
    let (_, observation) = status_json(app.get(&observation_path).await).await;
    let expected = format!("Patient/{}", patient["id"].as_str().unwrap());
    assert_eq!(observation["subject"]["reference"], expected.as_str());
    assert_eq!(observation["focus"][0]["reference"], expected.as_str());
    assert_eq!(app.count_rows("resources").await, 2);

    // An ambiguous conditional reference fails the whole transaction.
    app.create(
        &json!({"resourceType": "Patient", "identifier": [{"system": "urn:nid", "value": "42"}]}),
    )
    .await;
    let ambiguous = transaction(vec![post_entry(
        OBS_URN,
        json!({"resourceType": "Observation", "status": "final",
        "code": {"text": "x"}, "subject": {"reference": "Patient?identifier=urn:nid|42"}}),
    )]);
    let (status, body) = status_json(app.post("", &ambiguous).await).await;
    assert_eq!(status, 412, "{body}");
    assert_outcome_names(&body, "Bundle.entry[0]");
    assert_eq!(app.count_rows("resources").await, 3);
}

#[tokio::test]
async fn transaction_rejects_dangling_placeholders_and_overlaps() {
    let app = spawn_app().await;
    let dangling = transaction(vec![post_entry(
        OBS_URN,
        json!({"resourceType": "Observation", "status": "final",
        "code": {"text": "x"}, "subject": {"reference": PATIENT_URN}}),
    )]);
    let (status, body) = status_json(app.post("", &dangling).await).await;
    assert_eq!(status, 400, "{body}");
    assert_outcome_names(&body, "Bundle.entry[0]");
    let overlap = transaction(vec![
        json!({"resource": {"resourceType": "Patient", "id": "a"}, "request": {"method": "PUT", "url": "Patient/a"}}),
        json!({"request": {"method": "DELETE", "url": "Patient/a"}}),
    ]);
    let (status, body) = status_json(app.post("", &overlap).await).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(app.count_rows("resource_history").await, 0);
}

#[tokio::test]
async fn transaction_supports_every_write_kind() {
    let app = spawn_app().await;
    app.create(&json!({"resourceType": "Patient", "id": "ignored", "identifier": [{"system": "urn:x", "value": "del"}]})).await;
    app.put(
        "Patient/to-patch",
        &json!({"resourceType": "Patient", "id": "to-patch", "active": true}),
    )
    .await;
    let patch = json!([{"op": "replace", "path": "/active", "value": false}]);
    let data = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        patch.to_string(),
    );
    let bundle = transaction(vec![
        json!({"request": {"method": "DELETE", "url": "Patient?identifier=urn:x|del"}}),
        json!({"resource": {"resourceType": "Patient", "id": "put-1", "active": true}, "request": {"method": "PUT", "url": "Patient/put-1"}}),
        json!({"resource": {"resourceType": "Binary", "contentType": "application/json-patch+json", "data": data},
               "request": {"method": "PATCH", "url": "Patient/to-patch"}}),
        json!({"request": {"method": "GET", "url": "Patient/to-patch"}}),
    ]);
    let (status, response) = status_json(app.post("", &bundle).await).await;
    assert_eq!(status, 200, "{response}");
    let statuses: Vec<&str> = response["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["response"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["204 No Content", "201 Created", "200 OK", "200 OK"]
    );
    assert_eq!(
        response["entry"][3]["resource"]["active"], false,
        "the GET sees the PATCH"
    );
}

#[tokio::test]
async fn batch_entries_succeed_or_fail_on_their_own() {
    let app = spawn_app().await;
    let bundle = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"resource": {"resourceType": "Patient", "active": true}, "request": {"method": "POST", "url": "Patient"}},
        {"resource": {"resourceType": "Patient", "birthDate": "never"}, "request": {"method": "POST", "url": "Patient"}},
        {"request": {"method": "GET", "url": "Patient/missing"}},
        {"request": {"method": "BREW", "url": "Patient"}},
    ]});
    let (status, response) = status_json(app.post("", &bundle).await).await;
    assert_eq!(status, 200, "{response}");
    assert_eq!(response["type"], "batch-response");
    let entries = response["entry"].as_array().unwrap();
    assert_eq!(entries.len(), 4);
    assert_eq!(entries[0]["response"]["status"], "201 Created");
    assert!(
        entries[1]["response"]["status"]
            .as_str()
            .unwrap()
            .starts_with("400")
    );
    assert_eq!(
        entries[1]["response"]["outcome"]["resourceType"],
        "OperationOutcome"
    );
    assert!(
        entries[2]["response"]["status"]
            .as_str()
            .unwrap()
            .starts_with("404")
    );
    assert!(
        entries[3]["response"]["status"]
            .as_str()
            .unwrap()
            .starts_with("400")
    );
    assert_eq!(app.count_rows("resources").await, 1);
}

#[tokio::test]
async fn bundles_over_the_entry_limit_are_413() {
    let app = spawn_app_with(|s| s.max_bundle_entries = 10).await;
    let bundle = synthetic::observation_bundle(2, 11, "Patient/p");
    let (status, body) = status_json(app.post("", &bundle).await).await;
    assert_eq!(status, 413);
    assert!(
        body["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("BARAZA_MAX_BUNDLE_ENTRIES")
    );
    let (status, _) = status_json(
        app.post("", &json!({"resourceType": "Bundle", "type": "collection"}))
            .await,
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn a_ten_thousand_entry_transaction_works() {
    let app = spawn_app().await;
    let bundle = synthetic::observation_bundle(3, 10_000, "Patient/p1");
    let response = app
        .request(Method::POST, "")
        .header("content-type", "application/fhir+json")
        .body(bundle.to_string())
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(response).await;
    assert_eq!(
        status,
        200,
        "{}",
        body.to_string().chars().take(500).collect::<String>()
    );
    assert_eq!(body["entry"].as_array().unwrap().len(), 10_000);
    assert_eq!(app.count_rows("resources").await, 10_000);
}

#[tokio::test]
async fn synthea_style_patient_bundles_load_unchanged() {
    let app = spawn_app().await;
    let bundle = synthetic::patient_bundle(7, 50);
    let n = bundle["entry"].as_array().unwrap().len();
    assert!(n > 300);
    let (status, response) = status_json(app.post("", &bundle).await).await;
    assert_eq!(
        status,
        200,
        "{}",
        response.to_string().chars().take(2000).collect::<String>()
    );
    assert_eq!(app.count_rows("resources").await, n as i64);
    // Every reference now points at a stored resource.
    let db = app.db().await;
    let rows = db
        .query("SELECT content::text FROM resource_history", &[])
        .await
        .unwrap();
    let mut n_references = 0;
    for row in rows {
        let resource: Value = serde_json::from_str(row.get::<_, &str>(0)).unwrap();
        let mut references = Vec::new();
        fhir::reference::for_each_reference(&resource, "", &mut |r, _| {
            references.push(r.to_owned())
        });
        for reference in references {
            n_references += 1;
            assert!(!reference.starts_with("urn:"), "{reference}");
            let (status, _) = status_json(app.get(&reference).await).await;
            assert_eq!(status, 200, "{reference}");
        }
    }
    assert!(n_references > 500);
}
