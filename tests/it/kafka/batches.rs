//! HRI batches over Kafka: an integrator opens a batch over the REST API,
//! sends its records to `.in` with the `batchId` header, completes it,
//! and hears every status change on `.notification`.

use super::broker::{Broker, read_until};
use super::ingest::create_topic;
use super::{LIMIT, kafka_settings};
use crate::batches::{create_batch, ingest, wait_final};
use crate::harness::{cluster, fresh_database, spawn_app_on, status_json};
use crate::oidc::OidcProvider;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn kafka_batch_records_and_notifications() {
    let broker = Broker::start().await;
    let topic = "ingest.acme.integrator-a.in";
    create_topic(&broker, topic, 1).await;
    let provider = OidcProvider::start().await;
    let dbname = fresh_database().await;
    let owner = baraza::db::connect(&cluster().config(&dbname))
        .await
        .unwrap();
    baraza::store::tenants::create(&owner, "acme", "")
        .await
        .unwrap();
    let oidc = provider.settings();
    let kafka = kafka_settings(&broker, &[]);
    let app = spawn_app_on(dbname, move |s| {
        s.oidc = Some(oidc);
        s.kafka = kafka;
        s.mpi = false;
    })
    .await;
    let notifications = broker.consumer(&["ingest.acme.integrator-a.notification"]);
    let token = provider.token("integrator-a").await;
    let batch = create_batch(
        &app,
        Some(&token),
        "acme",
        json!({"name": "kafka feed", "dataType": "fhir-bundle", "expectedRecordCount": 3}),
    )
    .await;
    let id = batch["id"].as_str().unwrap().to_owned();

    let records = [
        json!({"resourceType": "Patient", "id": "b1", "name": [{"family": "Achieng"}]}),
        json!({"resourceType": "Patient", "id": "b2", "name": [{"family": "Mwangi"}]}),
        json!({"resourceType": "Patient", "id": "b3", "gender": "man"}),
    ];
    for (i, record) in records.iter().enumerate() {
        broker
            .send(
                topic,
                &format!("r{i}"),
                record.to_string().as_bytes(),
                &[("batchId", &id)],
            )
            .await;
    }
    // A record for a batch that is not the integrator's goes to .invalid.
    broker
        .send(
            topic,
            "stray",
            records[0].to_string().as_bytes(),
            &[("batchId", "no-such-batch")],
        )
        .await;
    let invalid = broker.consumer(&["ingest.acme.integrator-a.invalid"]);
    let stray = read_until(&invalid, LIMIT, |g| !g.is_empty()).await;
    assert_eq!(stray.len(), 1);
    assert_eq!(stray[0].key, "stray");
    assert_eq!(stray[0].header("status"), Some("404"));

    // Every record arrived in the batch before it is completed.
    let deadline = std::time::Instant::now() + LIMIT;
    loop {
        let (_, now) = ingest(
            &app,
            Some(&token),
            Method::GET,
            &format!("acme/batches/{id}"),
            None,
        )
        .await;
        if now["counts"]["received"] == 3 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "records did not arrive: {now}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (status, _) = ingest(
        &app,
        Some(&token),
        Method::PUT,
        &format!("acme/batches/{id}/action/sendComplete"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let done = wait_final(&app, Some(&token), "acme", &id).await;
    assert_eq!(done["status"], "completed");

    let got = read_until(&notifications, LIMIT, |g| {
        g.iter().any(|m| m.header("status") == Some("completed"))
    })
    .await;
    let statuses: Vec<&str> = got.iter().filter_map(|m| m.header("status")).collect();
    assert_eq!(statuses.first(), Some(&"started"), "{statuses:?}");
    assert_eq!(statuses.last(), Some(&"completed"), "{statuses:?}");
    assert!(got.iter().all(|m| m.key == id));
    let last = got.last().unwrap().json();
    assert_eq!(last["counts"]["created"], 2, "{last}");
    assert_eq!(last["counts"]["failed"], 1, "{last}");
    assert_eq!(last["integrator"], "integrator-a");
    let (status, _) = status_json(
        app.request(Method::GET, "acme/Patient/b1")
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
}
