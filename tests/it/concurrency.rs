//! Concurrent writers (http.html#concurrency).

use crate::harness::spawn_app_with;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn sixteen_puts_with_the_same_if_match_let_exactly_one_win() {
    let app = spawn_app_with(|s| s.db_pool_size = 20).await;
    let created = app
        .create(&json!({"resourceType": "Patient", "active": true}))
        .await;
    let id = created["id"].as_str().unwrap().to_owned();
    let requests = (0..16).map(|i| {
        let mut body = created.clone();
        body["name"] = json!([{"family": format!("Writer{i}")}]);
        app.request(Method::PUT, &format!("Patient/{id}"))
            .header("content-type", "application/fhir+json")
            .header("if-match", "W/\"1\"")
            .body(body.to_string())
            .send()
    });
    let statuses: Vec<u16> = futures_util::future::join_all(requests)
        .await
        .into_iter()
        .map(|r| r.unwrap().status().as_u16())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 412).count(),
        15,
        "{statuses:?}"
    );
    let versions: Vec<i64> = app
        .db()
        .await
        .query(
            "SELECT version_id FROM resource_history WHERE id = $1 ORDER BY version_id",
            &[&id],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, [1, 2], "history has no gaps");
}

#[tokio::test]
async fn concurrent_update_as_create_of_one_id_serialises() {
    let app = spawn_app_with(|s| s.db_pool_size = 20).await;
    let requests = (0..8).map(|i| {
        app.request(Method::PUT, "Patient/same")
            .header("content-type", "application/fhir+json")
            .body(json!({"resourceType": "Patient", "id": "same", "name": [{"family": format!("W{i}")}]}).to_string())
            .send()
    });
    let statuses: Vec<u16> = futures_util::future::join_all(requests)
        .await
        .into_iter()
        .map(|r| r.unwrap().status().as_u16())
        .collect();
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 201),
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    let versions: Vec<i64> = app
        .db()
        .await
        .query(
            "SELECT version_id FROM resource_history WHERE id = 'same' ORDER BY version_id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, (1..=8).collect::<Vec<i64>>());
}

/// A deadlock between two real transactions becomes a 409 whose issue
/// code is `transient`, which background work (the ingest worker, Kafka
/// ingest) retries instead of recording the record as refused.
#[tokio::test]
async fn a_lost_deadlock_is_a_transient_conflict() {
    let dbname = crate::harness::fresh_database().await;
    let config = crate::harness::cluster().config(&dbname);
    let a = baraza::db::connect(&config).await.unwrap();
    let b = baraza::db::connect(&config).await.unwrap();
    a.batch_execute(
        "CREATE TABLE lock_order (id int PRIMARY KEY, n int); \
         INSERT INTO lock_order VALUES (1, 0), (2, 0)",
    )
    .await
    .unwrap();
    a.batch_execute("BEGIN; UPDATE lock_order SET n = 1 WHERE id = 1")
        .await
        .unwrap();
    b.batch_execute("BEGIN; UPDATE lock_order SET n = 1 WHERE id = 2")
        .await
        .unwrap();
    // Each now waits for the other's row: PostgreSQL aborts one of them.
    let (first, second) = tokio::join!(
        a.execute("UPDATE lock_order SET n = 2 WHERE id = 2", &[]),
        b.execute("UPDATE lock_order SET n = 2 WHERE id = 1", &[]),
    );
    let lost = match (first, second) {
        (Err(e), Ok(_)) | (Ok(_), Err(e)) => e,
        other => panic!("expected exactly one deadlock victim: {other:?}"),
    };
    let error = baraza::error::ApiError::from(lost);
    assert_eq!(error.status().as_u16(), 409);
    assert!(error.is_transient(), "{error}");
    assert_eq!(error.outcome()["issue"][0]["code"], "transient");
    // A refusal of the request itself is not transient.
    let refused = baraza::error::ApiError::invalid("bad");
    assert!(!refused.is_transient());
}
