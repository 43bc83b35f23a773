//! Read replicas: with BARAZA_READ_DATABASE_URL, reads and searches
//! outside transactions use the replica; `Cache-Control: no-cache` and
//! every write use the primary.

use crate::harness::{cluster, fresh_database, spawn_app_on, spawn_app_with, status_json};
use serde_json::json;

#[tokio::test]
async fn reads_use_the_replica_unless_the_client_asks_for_the_primary() {
    // A stand-in for a replica that has not caught up: another database.
    let replica_db = fresh_database().await;
    let replica_url = cluster().request_url(&replica_db);
    let app = spawn_app_with(move |s| {
        s.read_database_url = Some(baraza::config::Secret::new(replica_url));
    })
    .await;
    let p1 = json!({"resourceType": "Patient", "id": "p1", "gender": "female"});
    assert_eq!(app.put("Patient/p1", &p1).await.status(), 201);
    // Not on the replica yet.
    assert_eq!(app.get("Patient/p1").await.status(), 404);
    let fresh = |path: &str| {
        app.request(reqwest::Method::GET, path)
            .header("cache-control", "no-cache")
            .send()
    };
    assert_eq!(fresh("Patient/p1").await.unwrap().status(), 200);
    let (_, bundle) = status_json(app.get("Patient?gender=female").await).await;
    assert!(
        bundle["entry"].as_array().is_none_or(|e| e.is_empty()),
        "{bundle}"
    );
    let (_, bundle) = status_json(fresh("Patient?gender=female").await.unwrap()).await;
    assert_eq!(bundle["entry"].as_array().unwrap().len(), 1);
    // An update needs the current version: writes read the primary.
    assert_eq!(app.put("Patient/p1", &p1).await.status(), 200);
    // Once "replicated", the replica serves it.
    let writer = spawn_app_on(replica_db, |_| {}).await;
    assert_eq!(writer.put("Patient/p1", &p1).await.status(), 201);
    assert_eq!(app.get("Patient/p1").await.status(), 200);
}
