//! Validation on write and `$validate` (resource-operation-validate).

use crate::harness::{assert_outcome_names, spawn_app, status_json};
use serde_json::json;

#[tokio::test]
async fn unknown_elements_and_bad_values_are_rejected_all_at_once() {
    let app = spawn_app().await;
    let bad = json!({
        "resourceType": "Patient",
        "nickname": "Shiro",
        "birthDate": "1980-02-30",
        "gender": 7,
        "name": [{"family": "Ok", "given": ["A", ""]}]
    });
    let (status, body) = status_json(app.post("Patient", &bad).await).await;
    assert_eq!(status, 400, "{body}");
    assert_outcome_names(&body, "Patient.nickname");
    assert_outcome_names(&body, "Patient.birthDate");
    assert_outcome_names(&body, "Patient.gender");
    assert_outcome_names(&body, "Patient.name[0].given[1]");
    assert_eq!(app.count_rows("resource_history").await, 0);
}

#[tokio::test]
async fn missing_required_elements_are_422() {
    let app = spawn_app().await;
    // Observation.status and Observation.code are 1..1.
    let (status, body) = status_json(
        app.post("Observation", &json!({"resourceType": "Observation"}))
            .await,
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert_outcome_names(&body, "Observation.status");
    assert_outcome_names(&body, "Observation.code");
}

#[tokio::test]
async fn validate_operation_reports_without_writing() {
    let app = spawn_app().await;
    let bad = json!({"resourceType": "Patient", "birthDate": "yesterday"});
    let (status, body) = status_json(app.post("Patient/$validate", &bad).await).await;
    assert_eq!(status, 200);
    assert_outcome_names(&body, "Patient.birthDate");
    let good = json!({"resourceType": "Patient", "birthDate": "1990"});
    let (status, body) = status_json(app.post("Patient/$validate", &good).await).await;
    assert_eq!(status, 200);
    assert_eq!(body["issue"][0]["severity"], "information");
    let params = json!({"resourceType": "Parameters", "parameter": [
        {"name": "resource", "resource": {"resourceType": "Patient", "id": "other", "active": true}},
        {"name": "mode", "valueCode": "update"}
    ]});
    let (status, body) = status_json(app.post("Patient/p1/$validate", &params).await).await;
    assert_eq!(status, 200);
    assert_outcome_names(&body, "Patient.id");
    let delete = json!({"resourceType": "Parameters", "parameter": [{"name": "mode", "valueCode": "delete"}]});
    let (_, body) = status_json(app.post("Patient/p1/$validate", &delete).await).await;
    assert_eq!(body["issue"][0]["code"], "not-found", "{body}");
    assert_eq!(app.count_rows("resource_history").await, 0);
}
