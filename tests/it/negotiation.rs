//! Formats, the CapabilityStatement and request-body limits.

use crate::harness::{spawn_app, spawn_app_with, status_json};
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn only_json_is_spoken() {
    let app = spawn_app().await;
    let (status, body) = status_json(app.get("metadata?_format=xml").await).await;
    assert_eq!(status, 406);
    assert!(
        body["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("JSON only"),
        "{body}"
    );
    let response = app
        .request(Method::GET, "metadata")
        .header("accept", "application/fhir+xml")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 406);
    for accept in [
        "application/fhir+json",
        "application/json",
        "*/*",
        "text/html, application/json;q=0.9",
    ] {
        let response = app
            .request(Method::GET, "metadata")
            .header("accept", accept)
            .send()
            .await
            .unwrap();
        let (status, body) = status_json(response).await;
        assert_eq!(status, 200, "{accept}: {body}");
    }
    for format in ["json", "application/json", "application/fhir+json"] {
        assert_eq!(
            app.get(&format!("metadata?_format={format}"))
                .await
                .status(),
            200,
            "{format}"
        );
    }
    let response = app
        .request(Method::POST, "Patient")
        .header("content-type", "application/fhir+xml")
        .body("<Patient xmlns=\"http://hl7.org/fhir\"/>")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
    let (_, body) = status_json(response).await;
    assert_eq!(body["resourceType"], "OperationOutcome");
}

#[tokio::test]
async fn pretty_output_on_request() {
    let app = spawn_app().await;
    let created = app
        .create(&json!({"resourceType": "Patient", "active": true}))
        .await;
    let id = created["id"].as_str().unwrap();
    let compact = app
        .get(&format!("Patient/{id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(!compact.contains('\n'));
    let pretty = app
        .get(&format!("Patient/{id}?_pretty=true"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        pretty.contains("\n  \"resourceType\": \"Patient\""),
        "{pretty}"
    );
    assert_eq!(
        serde_json::from_str::<Value>(&pretty).unwrap(),
        serde_json::from_str::<Value>(&compact).unwrap()
    );
}

#[tokio::test]
async fn capability_statement_is_truthful() {
    let app = spawn_app().await;
    let (status, cs) = status_json(app.get("metadata").await).await;
    assert_eq!(status, 200);
    assert_eq!(cs["resourceType"], "CapabilityStatement");
    assert_eq!(cs["fhirVersion"], "4.0.1");
    assert_eq!(cs["format"], json!(["application/fhir+json", "json"]));
    let rest = &cs["rest"][0];
    let system: Vec<&str> = rest["interaction"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        system,
        ["transaction", "batch", "history-system", "search-system"]
    );
    let patient = rest["resource"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "Patient")
        .unwrap();
    let params: Vec<&str> = patient["searchParam"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(params.contains(&"_id") && params.contains(&"identifier"));
    assert!(params.contains(&"name") && params.contains(&"birthdate"));
    let observation = rest["resource"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "Observation")
        .unwrap();
    let params: Vec<&str> = observation["searchParam"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(params.contains(&"subject") && params.contains(&"date"));
    assert!(params.contains(&"value-quantity"));
    assert!(params.contains(&"code-value-quantity"));
    let sequence = rest["resource"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "MolecularSequence")
        .unwrap();
    assert!(
        !sequence["searchParam"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "chromosome-window-coordinate"),
        "three-part composites are not supported and must not be advertised"
    );
    assert_eq!(rest["resource"].as_array().unwrap().len(), 146);
}

#[tokio::test]
async fn oversized_bodies_are_413() {
    let app = spawn_app_with(|s| s.max_body_bytes = 10_000).await;
    let big = json!({"resourceType": "Patient", "name": [{"family": "x".repeat(20_000)}]});
    let (status, body) = status_json(app.post("Patient", &big).await).await;
    assert_eq!(status, 413);
    assert_eq!(body["resourceType"], "OperationOutcome");
    assert_eq!(app.count_rows("resource_history").await, 0);
}

#[tokio::test]
async fn malformed_and_deeply_nested_json_is_400() {
    let app = spawn_app().await;
    let send = |body: String| {
        app.request(Method::POST, "Patient")
            .header("content-type", "application/fhir+json")
            .body(body)
            .send()
    };
    for body in [
        "{",
        "{\"resourceType\": \"Patient\",}",
        "[]",
        "42",
        "\"Patient\"",
    ] {
        let (status, outcome) = status_json(send(body.to_string()).await.unwrap()).await;
        assert_eq!(status, 400, "{body}: {outcome}");
        assert_eq!(outcome["resourceType"], "OperationOutcome");
    }
    let deep = format!("{}{}", "{\"extension\":[".repeat(5000), "]}".repeat(5000));
    let (status, outcome) = status_json(send(deep).await.unwrap()).await;
    assert_eq!(status, 400, "{outcome}");
    assert_eq!(app.count_rows("resource_history").await, 0);
}
