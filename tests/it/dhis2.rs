//! DHIS2 pushed to `$dhis2-import` (issue 7, docs/ingest.md): each payload
//! becomes an ingest batch that the worker writes through the normal
//! transaction path. The fixtures are the adapters crate's, written from
//! the DHIS2 Web API documentation: a four-level org-unit tree with a closed
//! unit and a polygon, tracked entities, a data value set with several
//! period types, and malformed payloads whose bad records each fail on
//! their own while the rest is written.

use crate::batches::{root, wait_final};
use crate::harness::{TestApp, spawn_app_with, status_json};
use reqwest::Method;
use serde_json::Value;

pub fn fixture(name: &str) -> String {
    let path = format!(
        "{}/../adapters/tests/fixtures/dhis2/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

pub fn t1d_config() -> std::path::PathBuf {
    std::path::PathBuf::from(format!(
        "{}/../adapters/examples/dhis2-t1d.yaml",
        env!("CARGO_MANIFEST_DIR")
    ))
}

pub async fn dhis2_app() -> TestApp {
    spawn_app_with(|s| s.dhis2_config = Some(t1d_config())).await
}

/// Posts a DHIS2 payload to `$dhis2-import` and waits for its batch.
async fn import(app: &TestApp, query: &str, payload: &str) -> Value {
    let response = app
        .request(Method::POST, &format!("$dhis2-import{query}"))
        .header("content-type", "application/json")
        .body(payload.to_owned())
        .send()
        .await
        .unwrap();
    let (status, parameters) = status_json(response).await;
    assert_eq!(status, 202, "{parameters}");
    let batch = parameters["parameter"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "batch")
        .and_then(|p| p["valueString"].as_str())
        .unwrap()
        .to_owned();
    wait_final(app, None, "default", &batch).await
}

async fn errors(app: &TestApp, batch: &Value) -> String {
    let url = format!(
        "{}/ingest/default/batches/{}/errors",
        root(&app.base),
        batch["id"].as_str().unwrap()
    );
    app.client
        .get(url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn total(app: &TestApp, resource_type: &str) -> u64 {
    let (status, bundle) =
        status_json(app.get(&format!("{resource_type}?_summary=count")).await).await;
    assert_eq!(status, 200, "{bundle}");
    bundle["total"].as_u64().unwrap()
}

#[tokio::test]
async fn dhis2_org_units_tracker_and_data_values_are_imported_as_batches() {
    let app = dhis2_app().await;
    let tree = import(&app, "", &fixture("organisation-units.json")).await;
    assert_eq!(tree["status"], "completed", "{tree}");
    assert_eq!(tree["dataType"], "dhis2-metadata");
    assert_eq!(
        (
            tree["counts"]["created"].as_i64(),
            tree["counts"]["failed"].as_i64()
        ),
        (Some(9), Some(0))
    );
    assert_eq!(total(&app, "Location").await, 9);
    assert_eq!(total(&app, "Organization").await, 9);
    let (_, closed) = status_json(app.get("Location/t1d-E6PwZPf1Qh6").await).await;
    assert_eq!(closed["status"], "inactive");
    // The whole tree under the country, at any depth.
    let (status, below) = status_json(app.get("Location/t1d-HxjSI6bWHtP/$hierarchy").await).await;
    assert_eq!(status, 200, "{below}");
    assert_eq!(below["total"], 9);
    // The same payload again: every record unchanged, nothing rewritten.
    let again = import(&app, "?kind=metadata", &fixture("organisation-units.json")).await;
    assert_eq!(again["counts"]["unchanged"], 9, "{again}");
    let (_, hospital) = status_json(app.get("Location/t1d-wCZ7Uw9xfog").await).await;
    assert_eq!(hospital["meta"]["versionId"], "1");

    let tracker = import(
        &app,
        "?kind=tracker",
        &fixture("tracked-entities-2.40.json"),
    )
    .await;
    assert_eq!(tracker["status"], "completed", "{tracker}");
    assert_eq!(
        tracker["counts"]["failed"],
        0,
        "{}",
        errors(&app, &tracker).await
    );
    assert!(total(&app, "Patient").await >= 2);
    assert!(total(&app, "Encounter").await >= 1);
    let legacy = import(&app, "", &fixture("tracked-entity-instances-legacy.json")).await;
    assert_eq!(
        legacy["counts"]["failed"],
        0,
        "{}",
        errors(&app, &legacy).await
    );

    // Four bad data values (a week 54, an unknown data element, a bad
    // bi-monthly period, a non-numeric value) fail; the reports are written.
    let values = import(&app, "", &fixture("data-value-sets.json")).await;
    assert_eq!(values["status"], "completed");
    assert_eq!(values["counts"]["failed"], 4, "{values}");
    assert!(
        values["counts"]["created"].as_i64().unwrap() >= 6,
        "{values}"
    );
    let text = errors(&app, &values).await;
    for expected in [
        "2024W54",
        "unknown data element Zq8UnKnOwn2",
        "202402B",
        "must be numeric",
    ] {
        assert!(text.contains(expected), "{expected} missing from {text}");
    }
    assert!(
        text.contains("dataValueSets[0].dataValues[10].period"),
        "{text}"
    );
    assert_eq!(total(&app, "MeasureReport").await, 6);
}

#[tokio::test]
async fn dhis2_malformed_records_each_fail_while_the_rest_is_written() {
    let app = dhis2_app().await;
    import(&app, "", &fixture("organisation-units.json")).await;
    let bad = import(&app, "", &fixture("organisation-units-malformed.json")).await;
    assert_eq!(bad["status"], "completed", "{bad}");
    let text = errors(&app, &bad).await;
    for expected in [
        "missing parent: Zz9NotHere1",
        "cycle in the hierarchy",
        "duplicate organisation unit id aB3cD4eF5gH",
    ] {
        assert!(text.contains(expected), "{expected} missing from {text}");
    }
    // The district and its dispensary (the first copy) are written.
    assert_eq!(app.get("Location/t1d-pQ7rStUvWx1").await.status(), 200);
    let (_, dispensary) = status_json(app.get("Location/t1d-aB3cD4eF5gH").await).await;
    assert_eq!(dispensary["name"], "Upland Dispensary");
    for refused in ["mN8oP9qR0sT", "cY1cLeAaaa1", "cY1cLeBbbb2", "kL2mN3oP4qR"] {
        assert_eq!(
            app.get(&format!("Location/t1d-{refused}")).await.status(),
            404,
            "{refused}"
        );
    }
    let tracker = import(&app, "", &fixture("tracked-entities-malformed.json")).await;
    let text = errors(&app, &tracker).await;
    assert!(text.contains("unknown data element Xq0UnKnOwn1"), "{text}");
    assert!(
        tracker["counts"]["created"].as_i64().unwrap() >= 1,
        "{tracker}"
    );

    // Not DHIS2 at all, or an unknown kind: refused before any batch.
    let response = app
        .request(Method::POST, "$dhis2-import?kind=events")
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    let (status, outcome) = status_json(response).await;
    assert_eq!(status, 400, "{outcome}");
    let response = app
        .request(Method::POST, "$dhis2-import?kind=metadata")
        .header("content-type", "application/json")
        .body(r#"{"dataValues": []}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
}

#[tokio::test]
async fn dhis2_import_without_a_mapping_config_is_refused() {
    let app = crate::harness::spawn_app().await;
    let response = app
        .request(Method::POST, "$dhis2-import")
        .header("content-type", "application/json")
        .body(fixture("organisation-units.json"))
        .send()
        .await
        .unwrap();
    let (status, outcome) = status_json(response).await;
    assert_eq!(status, 422, "{outcome}");
    assert!(outcome.to_string().contains("BARAZA_DHIS2_CONFIG"));
}
