//! A real server process killed with SIGKILL in the middle of an ingest
//! batch (issue 7): every record is either written and counted or neither,
//! and after a restart processing resumes where it stopped, so in the end
//! each record is written exactly once.

use crate::harness::{cluster, fresh_database};
use crate::processes::{baraza, free_port, wait_exit, wait_ready};
use serde_json::{Value, json};
use std::process::Stdio;
use std::time::{Duration, Instant};

const RECORDS: usize = 3000;

/// Source resources and versions (the golden Patients the MPI writes in
/// the same transactions are counted apart), records marked created, and
/// the batches' created counts.
async fn counts(db: &tokio_postgres::Client) -> (i64, i64, i64, i64) {
    let row = db
        .query_one(
            "SELECT (SELECT count(*) FROM resources WHERE id NOT LIKE 'golden-%'), \
             (SELECT count(*) FROM resource_history WHERE id NOT LIKE 'golden-%'), \
             (SELECT count(*) FROM ingest_records WHERE state = 'created'), \
             (SELECT coalesce(sum(created), 0)::bigint FROM ingest_batches)",
            &[],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1), row.get(2), row.get(3))
}

#[tokio::test]
async fn batch_killed_mid_processing_resumes_without_loss_or_duplicates() {
    let dbname = fresh_database().await;
    let url = cluster().request_url(&dbname);
    let db = baraza::db::connect(&cluster().config(&dbname))
        .await
        .unwrap();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let env = [
        ("BARAZA_DATABASE_URL", url.as_str()),
        ("BARAZA_LISTEN", listen.as_str()),
    ];
    let start = || {
        baraza(&["serve"], &env)
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut child = start();
    wait_ready(port, &mut child).await;
    let client = reqwest::Client::new();
    let api = format!("http://{listen}/ingest/default/batches");
    let batch: Value = client
        .post(&api)
        .body(
            json!({"name": "kill", "dataType": "ndjson", "expectedRecordCount": RECORDS})
                .to_string(),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = batch["id"].as_str().unwrap().to_owned();
    let lines: String = (0..RECORDS)
        .map(|i| {
            format!(
                "{}\n",
                json!({"resourceType": "Patient", "id": format!("k-{i}"), "active": true})
            )
        })
        .collect();
    let response = client
        .post(format!("{api}/{id}/records"))
        .body(lines)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let response = client
        .put(format!("{api}/{id}/action/sendComplete"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // Kill as soon as some records are written.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, _, created, _) = counts(&db).await;
        if created >= 20 {
            break;
        }
        assert!(Instant::now() < deadline, "processing did not start");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    wait_exit(&mut child, Duration::from_secs(10));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (resources, history, created, counted) = counts(&db).await;
    assert!(
        (resources as usize) < RECORDS,
        "the kill landed before the batch finished ({resources} written)"
    );
    assert_eq!(
        resources, created,
        "every written record is marked, and no other"
    );
    assert_eq!(resources, history);
    // Each record (a Patient without demographics, so matching nobody) got
    // its golden record in its own transaction: none without the other.
    let goldens: i64 = db
        .query_one(
            "SELECT count(*) FROM resources WHERE id LIKE 'golden-%'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(goldens, resources, "a golden record per linked record");
    assert_eq!(created, counted, "the batch counts agree with the records");

    let mut child = start();
    wait_ready(port, &mut child).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    let done = loop {
        let batch: Value = client
            .get(format!("{api}/{id}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if batch["status"] == "completed" {
            break batch;
        }
        assert!(
            Instant::now() < deadline,
            "the batch did not resume: {batch}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    crate::processes::terminate(&child);
    wait_exit(&mut child, Duration::from_secs(60));
    assert_eq!(
        done["counts"],
        json!({"received": RECORDS, "created": RECORDS, "updated": 0, "unchanged": 0, "failed": 0, "pending": 0})
    );
    let (resources, history, created, _) = counts(&db).await;
    assert_eq!(resources as usize, RECORDS);
    assert_eq!(history as usize, RECORDS, "no record was written twice");
    assert_eq!(created as usize, RECORDS);
}
