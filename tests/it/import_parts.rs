//! The ingest worker's chunks written in two parts at once
//! (docs/ingest.md, "Processing"; `ingest::chunk_parts`): a chunk of plain
//! creates is written by two transactions, every record exactly once and
//! counted once, a record the database refuses fails alone in either part,
//! and a chunk of types whose checks lock other resources stays whole.
//!
//! A worker also waits, before it reads a batch's pending records, for any
//! part of an earlier chunk still running (the parts' advisory lock).
//!
//! Which transaction wrote a row is its `xmin`: each part writes its
//! records as one group behind one savepoint, so a chunk written in two
//! parts leaves two distinct `xmin`s on its rows, and a whole chunk one.

use crate::batches::{create_batch, ingest, wait_final};
use crate::harness::{TestApp, spawn_app};
use crate::import::{counts, error_lines, final_status, lines, start_import};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

fn allergy(i: usize, code: &str) -> Value {
    json!({"resourceType": "AllergyIntolerance", "id": format!("part-{i}"),
        "patient": {"reference": "Patient/x"},
        "clinicalStatus": {"coding": [{"system":
            "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "code": code}]}})
}

/// Imports `resources` as one upload and returns the final status.
async fn import(app: &TestApp, resources: &[Value]) -> Value {
    let (status, location, body) =
        start_import(app, None, "", "application/fhir+ndjson", lines(resources)).await;
    assert_eq!(status, 202, "{body}");
    final_status(app, None, &location.unwrap()).await
}

/// Checks the import's counts of created and failed records.
fn assert_created(done: &Value, created: u64, failed: u64) {
    let c = counts(done, 0);
    assert_eq!(
        (c["created"].as_u64(), c["failed"].as_u64()),
        (Some(created), Some(failed)),
        "{done}"
    );
}

/// How many transactions wrote the current rows of `res_type`.
async fn writers(app: &TestApp, res_type: &str) -> i64 {
    app.count_rows(&format!(
        "(SELECT DISTINCT xmin::text FROM resources WHERE res_type = '{res_type}') w"
    ))
    .await
}

/// Rows of `res_type` in the current, history and change-event tables.
async fn rows(app: &TestApp, res_type: &str) -> [i64; 3] {
    let mut counts = [0; 3];
    for (count, table) in counts
        .iter_mut()
        .zip(["resources", "resource_history", "events"])
    {
        *count = app
            .count_rows(&format!("{table} WHERE res_type = '{res_type}'"))
            .await;
    }
    counts
}

#[tokio::test]
async fn import_writes_a_chunk_of_plain_creates_in_two_parts_each_record_once() {
    let app = spawn_app().await;
    let resources: Vec<Value> = (1..=300).map(|i| allergy(i, "active")).collect();
    let done = import(&app, &resources).await;
    assert_created(&done, 300, 0);
    assert_eq!(writers(&app, "AllergyIntolerance").await, 2);
    assert_eq!(rows(&app, "AllergyIntolerance").await, [300, 300, 300]);
    for i in [1, 150, 151, 300] {
        let path = format!("AllergyIntolerance/part-{i}");
        assert_eq!(app.get(&path).await.status(), 200, "{path}");
    }
    // Every record is marked, in the part that wrote it.
    assert_eq!(
        app.count_rows("ingest_records WHERE state = 'created'")
            .await,
        300
    );
    assert_eq!(
        app.count_rows("ingest_records WHERE state <> 'created'")
            .await,
        0
    );

    // Sent again, the same lines are unchanged and write nothing.
    let again = import(&app, &resources).await;
    let c = counts(&again, 0);
    assert_eq!(
        (c["created"].clone(), c["updated"].clone()),
        (json!(0), json!(0)),
        "{again}"
    );
    assert_eq!(rows(&app, "AllergyIntolerance").await, [300, 300, 300]);
}

#[tokio::test]
async fn import_in_two_parts_fails_a_refused_record_alone_in_either_part() {
    let app = spawn_app().await;
    // Lines 17 and 250 (one in each half) have a code outside the required
    // value set, which only the write's binding check sees.
    let resources: Vec<Value> = (1..=300)
        .map(|i| {
            allergy(
                i,
                if i == 17 || i == 250 {
                    "bogus"
                } else {
                    "active"
                },
            )
        })
        .collect();
    let done = import(&app, &resources).await;
    assert_created(&done, 298, 2);
    let errors = error_lines(&app, None, done["error"][0]["url"].as_str().unwrap()).await;
    let ids: Vec<&str> = errors.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["line-17", "line-250"]);
    assert_eq!(rows(&app, "AllergyIntolerance").await, [298, 298, 298]);
    for (i, status) in [
        (16, 200),
        (17, 404),
        (18, 200),
        (249, 200),
        (250, 404),
        (251, 200),
    ] {
        let path = format!("AllergyIntolerance/part-{i}");
        assert_eq!(app.get(&path).await.status(), status, "{path}");
    }
}

#[tokio::test]
async fn import_keeps_a_chunk_whole_when_its_checks_lock_other_resources() {
    let app = spawn_app().await;
    // Organizations' facility codes are checked under a lock: one part.
    let resources: Vec<Value> = (1..=200)
        .map(|i| json!({"resourceType": "Organization", "id": format!("org-{i}"),
            "name": format!("Clinic {i}"),
            "identifier": [{"system": "https://facilities.example/code", "value": format!("F{i}")}]}))
        .collect();
    let done = import(&app, &resources).await;
    assert_created(&done, 200, 0);
    assert_eq!(writers(&app, "Organization").await, 1);
    assert_eq!(rows(&app, "Organization").await, [200, 200, 200]);
}

#[tokio::test]
async fn a_worker_waits_for_a_part_still_running_before_it_reads_pending_records() {
    let app = spawn_app().await;
    let batch = create_batch(
        &app,
        None,
        "default",
        json!({"name": "parts", "dataType": "ndjson"}),
    )
    .await;
    let id = batch["id"].as_str().unwrap();
    let resources: Vec<Value> = (1..=10).map(|i| allergy(i, "active")).collect();
    let path = format!("default/batches/{id}/records");
    let (status, body) = ingest(&app, None, Method::POST, &path, Some(lines(&resources))).await;
    assert_eq!(status, 200, "{body}");
    // A part of an earlier chunk, as a process that died mid-commit leaves
    // it: its transaction holds the parts lock shared.
    let mut db = app.db().await;
    let part = db.transaction().await.unwrap();
    part.execute(
        "SELECT pg_advisory_xact_lock_shared(hashtextextended($1, 0))",
        &[&format!("ingest-parts|default|{id}")],
    )
    .await
    .unwrap();
    let path = format!("default/batches/{id}/action/sendComplete");
    let (status, body) = ingest(&app, None, Method::PUT, &path, None).await;
    assert_eq!(status, 200, "{body}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(rows(&app, "AllergyIntolerance").await, [0, 0, 0]);
    let pending = app
        .count_rows(&format!(
            "ingest_records WHERE batch_id = '{id}' AND state = 'pending'"
        ))
        .await;
    assert_eq!(pending, 10);
    // Once the part has ended, the worker goes on.
    part.rollback().await.unwrap();
    let done = wait_final(&app, None, "default", id).await;
    assert_eq!(done["counts"]["created"], 10, "{done}");
    assert_eq!(rows(&app, "AllergyIntolerance").await, [10, 10, 10]);
}
