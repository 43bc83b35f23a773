//! The transactional outbox: one event per stored version, written in the
//! write's transaction, ordered per resource as committed, pruned once
//! delivered and past the retention.

use crate::harness::{TestApp, spawn_app, spawn_app_with, status_json};
use reqwest::Method;
use serde_json::json;

/// `(type/id, version, action)` of every event, in position order.
async fn events(app: &TestApp) -> Vec<(String, i64, String)> {
    app.db()
        .await
        .query(
            "SELECT res_type || '/' || id, version_id, action FROM events ORDER BY seq",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

fn ev(key: &str, version: i64, action: &str) -> (String, i64, String) {
    (key.to_owned(), version, action.to_owned())
}

#[tokio::test]
async fn every_committed_version_has_one_event_and_nothing_else_has() {
    let app = spawn_app().await;
    let p = json!({"resourceType": "Patient", "id": "p1", "active": true});
    assert_eq!(app.put("Patient/p1", &p).await.status(), 201);
    assert_eq!(app.put("Patient/p1", &p).await.status(), 200);
    let patch = app
        .request(Method::PATCH, "Patient/p1")
        .header("content-type", "application/json-patch+json")
        .body(r#"[{"op": "replace", "path": "/active", "value": false}]"#)
        .send()
        .await
        .unwrap();
    assert_eq!(patch.status(), 200);
    assert_eq!(app.delete("Patient/p1").await.status(), 204);
    // Deleting what is already deleted stores nothing, and has no event.
    assert_eq!(app.delete("Patient/p1").await.status(), 204);
    assert_eq!(app.put("Patient/p1", &p).await.status(), 201);
    // A transaction: one event per entry.
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {"resourceType": "Patient", "id": "t1"}, "request": {"method": "PUT", "url": "Patient/t1"}},
        {"resource": {"resourceType": "Patient", "id": "t2"}, "request": {"method": "PUT", "url": "Patient/t2"}},
    ]});
    let (status, body) = status_json(app.post("", &bundle).await).await;
    assert_eq!(status, 200, "{body}");
    // A transaction that fails writes nothing, events included.
    let failing = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {"resourceType": "Patient", "id": "t3"}, "request": {"method": "PUT", "url": "Patient/t3"}},
        {"resource": {"resourceType": "Patient", "id": "t1"}, "request": {"method": "PUT", "url": "Patient/t1", "ifMatch": "W/\"9\""}},
    ]});
    let (status, _) = status_json(app.post("", &failing).await).await;
    assert_eq!(status, 412);
    assert_eq!(
        events(&app).await,
        vec![
            ev("Patient/p1", 1, "create"),
            ev("Patient/p1", 2, "update"),
            ev("Patient/p1", 3, "update"),
            ev("Patient/p1", 4, "delete"),
            ev("Patient/p1", 5, "create"),
            ev("Patient/t1", 1, "create"),
            ev("Patient/t2", 1, "create"),
        ]
    );
    // The request role sees only its own tenant's events.
    let db = app.request_db().await;
    let seen: i64 = db
        .query_one("SELECT count(*) FROM events", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(seen, 0, "without baraza.tenant no event is visible");
}

/// Concurrent updates of one resource: the events' positions (the order
/// consumers read them in) follow the versions.
#[tokio::test]
async fn positions_follow_commit_order_per_resource() {
    let app = spawn_app().await;
    let mut tasks = Vec::new();
    for writer in 0..8 {
        let client = app.client.clone();
        let base = app.base.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..10 {
                for id in ["a", "b"] {
                    let body = json!({"resourceType": "Patient", "id": id,
                                      "name": [{"family": format!("w{writer}-{i}")}]});
                    let r = client
                        .put(format!("{base}/Patient/{id}"))
                        .header("content-type", "application/fhir+json")
                        .body(body.to_string())
                        .send()
                        .await
                        .unwrap();
                    assert!(r.status().is_success());
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let all = events(&app).await;
    for key in ["Patient/a", "Patient/b"] {
        let versions: Vec<i64> = all
            .iter()
            .filter(|(k, _, _)| k == key)
            .map(|(_, v, _)| *v)
            .collect();
        assert_eq!(versions, (1..=80).collect::<Vec<i64>>(), "{key}");
    }
}

#[tokio::test]
async fn delivered_events_are_pruned_after_the_retention() {
    let receiver = super::receiver::Receiver::start().await;
    let app = spawn_app_with(super::fast).await;
    let id = super::subscribe(&app, &super::rest_hook("Patient", &receiver.url, None)).await;
    super::wait_subscription(&app, &id, std::time::Duration::from_secs(10), |s| {
        s["status"] == "active"
    })
    .await;
    for i in 0..5 {
        app.create(&json!({"resourceType": "Patient", "id": format!("x{i}")}))
            .await;
    }
    receiver
        .wait_for(std::time::Duration::from_secs(10), |r| r.len() >= 5)
        .await;
    // A consumer that is behind keeps what it has not had.
    let db = app.db().await;
    db.execute(
        "INSERT INTO event_consumers (tenant, consumer, last_seq) VALUES ('default', 'laggard', 0)",
        &[],
    )
    .await
    .unwrap();
    let pool = baraza::db::pool(crate::harness::cluster().request_config(&app.dbname), 1).unwrap();
    let ctx = baraza::store::TenantCtx::new("default", &app.base, std::sync::Arc::default());
    let prune = |retention: &'static str| async {
        let mut client = pool.get().await.unwrap();
        let tx = baraza::store::transaction::begin_for(
            &mut client,
            "default",
            baraza::store::Access::ReadWrite,
        )
        .await
        .unwrap();
        let n = baraza::events::outbox::prune(&tx, &ctx, retention)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        n
    };
    // Let the subscription's cursor be saved past the last delivery.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(prune("0 hours").await, 0);
    db.execute(
        "DELETE FROM event_consumers WHERE consumer = 'laggard'",
        &[],
    )
    .await
    .unwrap();
    // Within the retention nothing goes either.
    assert_eq!(prune("1 hour").await, 0);
    assert!(prune("0 hours").await >= 5);
    let left: i64 = db
        .query_one(
            "SELECT count(*) FROM events WHERE res_type = 'Patient'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0);
}
