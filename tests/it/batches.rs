//! Ingest batches over HTTP (issue 7, docs/ingest.md): the lifecycle with
//! its illegal transitions, per-record outcomes, re-sent records counted
//! unchanged, the expected-count check, terminate, the FHIR status and the
//! metrics, integrators that see only their own batches, and a server
//! killed with SIGKILL in the middle of a batch that resumes after restart
//! without losing or duplicating a record.

use crate::harness::{TestApp, assert_outcome_names, spawn_app, status_json};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// The server's root (the ingest API lives beside `/fhir`).
pub fn root(base: &str) -> String {
    base.trim_end_matches("/fhir").to_owned()
}

/// A call to the ingest API, optionally with a bearer token.
pub async fn ingest(
    app: &TestApp,
    token: Option<&str>,
    method: Method,
    path: impl AsRef<str>,
    body: Option<String>,
) -> (u16, Value) {
    let path = path.as_ref();
    let mut request = app
        .client
        .request(method, format!("{}/ingest/{path}", root(&app.base)));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.body(body);
    }
    status_json(request.send().await.unwrap()).await
}

pub async fn create_batch(app: &TestApp, token: Option<&str>, tenant: &str, body: Value) -> Value {
    let (status, batch) = ingest(
        app,
        token,
        Method::POST,
        &format!("{tenant}/batches"),
        Some(body.to_string()),
    )
    .await;
    assert_eq!(status, 201, "{batch}");
    batch
}

/// Polls the batch until it reaches a final status.
pub async fn wait_final(app: &TestApp, token: Option<&str>, tenant: &str, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, batch) = ingest(
            app,
            token,
            Method::GET,
            &format!("{tenant}/batches/{id}"),
            None,
        )
        .await;
        assert_eq!(status, 200, "{batch}");
        if ["completed", "failed", "terminated"].contains(&batch["status"].as_str().unwrap()) {
            return batch;
        }
        assert!(Instant::now() < deadline, "batch did not finish: {batch}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn ndjson(resources: &[Value]) -> String {
    resources.iter().map(|r| format!("{r}\n")).collect()
}

/// Opens an NDJSON batch, uploads `lines`, sends it complete and waits.
pub async fn run_ndjson_batch(app: &TestApp, name: &str, lines: String) -> Value {
    let batch = create_batch(
        app,
        None,
        "default",
        json!({"name": name, "dataType": "ndjson"}),
    )
    .await;
    let id = batch["id"].as_str().unwrap();
    let (status, body) = ingest(
        app,
        None,
        Method::POST,
        &format!("default/batches/{id}/records"),
        Some(lines),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = ingest(
        app,
        None,
        Method::PUT,
        &format!("default/batches/{id}/action/sendComplete"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    wait_final(app, None, "default", id).await
}

#[tokio::test]
async fn batch_lifecycle_counts_records_and_refuses_illegal_transitions() {
    let app = spawn_app().await;
    let (status, body) = ingest(
        &app,
        None,
        Method::POST,
        "default/batches",
        Some(json!({"name": "x", "dataType": "hl7v2"}).to_string()),
    )
    .await;
    assert_eq!(status, 400);
    assert_outcome_names(&body, "dataType");
    let batch = create_batch(
        &app,
        None,
        "default",
        json!({"name": "clinic feed", "dataType": "ndjson", "expectedRecordCount": 4}),
    )
    .await;
    assert_eq!(batch["status"], "started");
    assert_eq!(batch["counts"]["received"], 0);
    let id = batch["id"].as_str().unwrap().to_owned();
    let records = |body: String| {
        ingest(
            &app,
            None,
            Method::POST,
            format!("default/batches/{id}/records"),
            Some(body),
        )
    };
    // Two uploads: a good Patient, an invalid one, a line that is not JSON;
    // then one more good Patient.
    let first = format!(
        "{}\n{}\nnot json at all\n",
        json!({"resourceType": "Patient", "id": "b-1", "active": true}),
        json!({"resourceType": "Patient", "id": "b-2", "gender": "man"}),
    );
    let (status, body) = records(first).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["upload"], json!({"records": 3, "failed": 1}));
    let (status, _) = records(ndjson(&[json!({"resourceType": "Patient", "id": "b-3"})])).await;
    assert_eq!(status, 200);
    let action = |name: &str| {
        ingest(
            &app,
            None,
            Method::PUT,
            format!("default/batches/{id}/action/{name}"),
            None,
        )
    };
    let (status, body) = action("processingComplete").await;
    assert_eq!(
        (status, body["resourceType"].as_str()),
        (404, Some("OperationOutcome"))
    );
    let (status, body) = action("sendComplete").await;
    assert_eq!(status, 200, "{body}");
    assert!(
        ["sendCompleted", "processing", "completed"].contains(&body["status"].as_str().unwrap())
    );
    // No uploads and no second sendComplete once sent.
    let (status, body) = records(ndjson(&[json!({"resourceType": "Patient", "id": "late"})])).await;
    assert_eq!(status, 409, "{body}");
    assert_outcome_names(&body, "status");
    let (status, _) = action("sendComplete").await;
    assert_eq!(status, 409);
    let done = wait_final(&app, None, "default", &id).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(
        done["counts"],
        json!({"received": 4, "created": 2, "updated": 0, "unchanged": 0, "failed": 2, "pending": 0})
    );
    let (status, _) = action("terminate").await;
    assert_eq!(status, 409, "a completed batch cannot be terminated");
    // The per-record outcomes, one OperationOutcome per line.
    let response = app
        .client
        .get(format!(
            "{}/ingest/default/batches/{id}/errors",
            root(&app.base)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    let outcomes: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(outcomes.len(), 2, "{text}");
    assert_eq!(outcomes[0]["id"], "rec-2");
    assert_eq!(outcomes[0]["extension"][0]["valueString"], "Patient/b-2");
    assert!(text.contains("gender"), "{text}");
    assert_outcome_names(&outcomes[1], "line 3");
    for id in ["b-1", "b-3"] {
        assert_eq!(app.get(&format!("Patient/{id}")).await.status(), 200);
    }
    assert_eq!(app.get("Patient/b-2").await.status(), 404);
    let (status, _) = ingest(&app, None, Method::GET, "default/batches/nope", None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn batch_resubmitted_records_are_unchanged_and_never_duplicated() {
    let app = spawn_app().await;
    let resources = [
        json!({"resourceType": "Patient", "id": "r-1", "active": true}),
        json!({"resourceType": "Patient", "id": "r-2", "active": true}),
        json!({"resourceType": "Patient", "name": [{"family": "Without-Id"}]}),
    ];
    let first = run_ndjson_batch(&app, "first", ndjson(&resources)).await;
    assert_eq!(first["counts"]["created"], 3, "{first}");
    let again = run_ndjson_batch(&app, "again", ndjson(&resources)).await;
    assert_eq!(
        again["counts"],
        json!({"received": 3, "created": 0, "updated": 0, "unchanged": 3, "failed": 0, "pending": 0})
    );
    let mut changed = resources.clone();
    changed[0]["active"] = json!(false);
    let third = run_ndjson_batch(&app, "third", ndjson(&changed)).await;
    assert_eq!(
        (
            third["counts"]["updated"].as_i64(),
            third["counts"]["unchanged"].as_i64()
        ),
        (Some(1), Some(2))
    );
    // Three Patients, r-2 never rewritten, r-1 at version 2.
    assert_eq!(app.count_rows("resources").await, 3);
    let (_, r2) = status_json(app.get("Patient/r-2").await).await;
    assert_eq!(r2["meta"]["versionId"], "1");
    let (_, r1) = status_json(app.get("Patient/r-1").await).await;
    assert_eq!(r1["meta"]["versionId"], "2");
}

#[tokio::test]
async fn batch_with_a_wrong_count_fails_and_a_terminated_batch_writes_nothing() {
    let app = spawn_app().await;
    let batch = create_batch(
        &app,
        None,
        "default",
        json!({"name": "short", "dataType": "fhir-bundle", "expectedRecordCount": 5}),
    )
    .await;
    let id = batch["id"].as_str().unwrap();
    let bundle = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"resource": {"resourceType": "Patient", "id": "t-1"}, "request": {"method": "PUT", "url": "Patient/t-1"}},
        {"resource": {"resourceType": "Patient", "id": "t-2"}, "request": {"method": "PUT", "url": "Patient/t-2"}}
    ]});
    let (status, body) = ingest(
        &app,
        None,
        Method::POST,
        &format!("default/batches/{id}/records"),
        Some(bundle.to_string()),
    )
    .await;
    assert_eq!(
        (status, &body["upload"]["records"]),
        (200, &json!(2)),
        "{body}"
    );
    let (status, body) = ingest(
        &app,
        None,
        Method::PUT,
        &format!("default/batches/{id}/action/sendComplete"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "failed");
    assert!(
        body["failureMessage"]
            .as_str()
            .unwrap()
            .contains("expectedRecordCount was 5")
    );
    let other = create_batch(
        &app,
        None,
        "default",
        json!({"name": "stopped", "dataType": "fhir-bundle"}),
    )
    .await;
    let other_id = other["id"].as_str().unwrap();
    let (status, _) = ingest(
        &app,
        None,
        Method::POST,
        &format!("default/batches/{other_id}/records"),
        Some(bundle.to_string()),
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = ingest(
        &app,
        None,
        Method::PUT,
        &format!("default/batches/{other_id}/action/terminate"),
        None,
    )
    .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("terminated")),
        "{body}"
    );
    let (status, _) = ingest(
        &app,
        None,
        Method::PUT,
        &format!("default/batches/{other_id}/action/sendComplete"),
        None,
    )
    .await;
    assert_eq!(status, 409);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        app.count_rows("resources").await,
        0,
        "nothing of either batch is written"
    );
    // Listing by status.
    let (status, list) = ingest(
        &app,
        None,
        Method::GET,
        "default/batches?status=terminated",
        None,
    )
    .await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = list["batches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [other_id]);
    let (status, body) = ingest(&app, None, Method::GET, "default/batches?status=done", None).await;
    assert_eq!(status, 400);
    assert_outcome_names(&body, "status");
}

#[tokio::test]
async fn batch_status_is_readable_as_fhir_and_in_the_metrics() {
    let app = spawn_app().await;
    let lines = format!(
        "{}\n{}\n",
        json!({"resourceType": "Patient", "id": "m-1"}),
        json!({"resourceType": "Patient", "id": "m-2", "birthDate": "yesterday"}),
    );
    let done = run_ndjson_batch(&app, "metrics", lines).await;
    assert_eq!(
        (
            done["counts"]["created"].as_i64(),
            done["counts"]["failed"].as_i64()
        ),
        (Some(1), Some(1))
    );
    let (status, parameters) = status_json(app.get("$ingest-status").await).await;
    assert_eq!(status, 200, "{parameters}");
    assert_eq!(parameters["resourceType"], "Parameters");
    let parts = parameters["parameter"][0]["part"].as_array().unwrap();
    let part = |name: &str| parts.iter().find(|p| p["name"] == name).cloned().unwrap();
    assert_eq!(part("integrator")["valueString"], "anonymous");
    assert_eq!(part("processed")["valueInteger"], 2);
    assert_eq!(part("errorRate")["valueDecimal"].as_f64(), Some(0.5));
    assert!(part("lastSuccess")["valueInstant"].is_string());
    let metrics = app
        .client
        .get(format!("{}/metrics", root(&app.base)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "baraza_ingest_records_total{tenant=\"default\",integrator=\"anonymous\",outcome=\"created\"} 1",
        "baraza_ingest_records_total{tenant=\"default\",integrator=\"anonymous\",outcome=\"failed\"} 1",
        "baraza_integrator_last_success_timestamp_seconds{tenant=\"default\",integrator=\"anonymous\"}",
    ] {
        assert!(metrics.contains(line), "{line} missing from:\n{metrics}");
    }
}

#[tokio::test]
async fn batch_of_csv_rows_writes_patients_and_observations() {
    let dir = env!("CARGO_MANIFEST_DIR");
    let config =
        std::path::PathBuf::from(format!("{dir}/../adapters/examples/csv-t1d-visits.yaml"));
    let app = crate::harness::spawn_app_with(|s| s.csv_config = Some(config)).await;
    let csv = std::fs::read_to_string(format!(
        "{dir}/../adapters/tests/fixtures/csv/t1d-visits.csv"
    ))
    .unwrap();
    let batch = create_batch(
        &app,
        None,
        "default",
        json!({"name": "visits", "dataType": "csv"}),
    )
    .await;
    let id = batch["id"].as_str().unwrap();
    let (status, body) = ingest(
        &app,
        None,
        Method::POST,
        format!("default/batches/{id}/records"),
        Some(csv),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // Four bad cells are failed records; a row whose patient differs is a warning.
    assert_eq!(body["upload"]["failed"], 4, "{body}");
    assert_eq!(body["outcome"]["issue"][0]["severity"], "warning", "{body}");
    let (status, _) = ingest(
        &app,
        None,
        Method::PUT,
        format!("default/batches/{id}/action/sendComplete"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let done = wait_final(&app, None, "default", id).await;
    assert_eq!(done["status"], "completed");
    assert_eq!(done["counts"]["failed"], 4, "{done}");
    assert_eq!(done["counts"]["pending"], 0);
    let count = |t: &'static str| {
        let app = &app;
        async move {
            let (_, bundle) = status_json(app.get(&format!("{t}?_summary=count")).await).await;
            bundle["total"].as_u64().unwrap()
        }
    };
    assert_eq!(
        (count("Patient").await, count("Observation").await),
        (3, 12)
    );
    // Without a CSV mapping config a csv batch is refused.
    let plain = spawn_app().await;
    let (status, body) = ingest(
        &plain,
        None,
        Method::POST,
        "default/batches",
        Some(json!({"name": "x", "dataType": "csv"}).to_string()),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert_outcome_names(&body, "dataType");
}
