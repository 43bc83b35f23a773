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
