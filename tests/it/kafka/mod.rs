//! Kafka (issue 9), against a real Kafka-protocol broker (tansu) on
//! loopback: the fan-out of change events in order per resource, the
//! HRI-style ingest with `.out`, `.invalid` and poison messages, offsets
//! committed only after the write, redelivered messages not written twice,
//! batch notifications, and kill -9 of a delivering instance.

mod batches;
pub mod broker;
mod crash;
mod ingest;
mod tls;

use crate::harness::TestApp;
use baraza::config::Settings;
use broker::{Broker, read_until};
use serde_json::Value;
use std::collections::HashMap;
use std::time::{Duration, Instant};

pub const LIMIT: Duration = Duration::from_secs(60);

/// The Kafka settings of a test app: this broker, one partition per topic
/// Baraza creates unless `extra` says otherwise.
pub fn kafka_settings(
    broker: &Broker,
    extra: &[(&str, &str)],
) -> Option<baraza::config::KafkaSettings> {
    let mut vars = vec![
        ("BARAZA_KAFKA_BROKERS".to_owned(), broker.address.clone()),
        (
            "BARAZA_KAFKA_GROUP".to_owned(),
            format!("g-{}", uuid::Uuid::new_v4()),
        ),
    ];
    vars.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    Settings::from_vars(vars).unwrap().kafka
}

/// Waits until the tenant's fan-out consumer exists: changes from then on
/// are published.
pub async fn wait_fanout_ready(app: &TestApp, tenant: &str) {
    let db = app.db().await;
    let deadline = Instant::now() + LIMIT;
    loop {
        let rows = db
            .query(
                "SELECT 1 FROM event_consumers WHERE tenant = $1 AND consumer = 'kafka' AND enabled",
                &[&tenant],
            )
            .await
            .unwrap();
        if !rows.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the kafka consumer was not created"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Per key, the versions in the order they were received.
pub fn versions_by_key(messages: &[broker::Got]) -> HashMap<String, Vec<i64>> {
    let mut by_key: HashMap<String, Vec<i64>> = HashMap::new();
    for m in messages {
        let v: Value = m.json();
        let version: i64 = v["versionId"].as_str().unwrap().parse().unwrap();
        by_key.entry(m.key.clone()).or_default().push(version);
    }
    by_key
}

#[tokio::test]
async fn kafka_changes_fan_out_in_order_per_resource() {
    let broker = Broker::start().await;
    let settings = kafka_settings(&broker, &[("BARAZA_KAFKA_PARTITIONS", "3")]);
    let app = crate::harness::spawn_app_with(move |s| {
        s.kafka = settings;
        s.mpi = false;
    })
    .await;
    wait_fanout_ready(&app, "default").await;
    let consumer = broker.consumer(&["baraza.default.changes"]);

    let mut written = 0;
    for i in 0..5 {
        for j in 0..4 {
            let patient = serde_json::json!({"resourceType": "Patient", "id": format!("p{i}"),
                "name": [{"family": "Otieno", "given": [format!("v{j}")]}]});
            let status = app.put(&format!("Patient/p{i}"), &patient).await.status();
            assert!(status == 200 || status == 201, "{status}");
            written += 1;
        }
    }
    let obs = app
        .create(
            &serde_json::json!({"resourceType": "Observation", "status": "final",
            "code": {"text": "weight"}}),
        )
        .await;
    let obs_id = obs["id"].as_str().unwrap().to_owned();
    assert_eq!(
        app.delete(&format!("Observation/{obs_id}")).await.status(),
        204
    );
    written += 2;

    let got = read_until(&consumer, LIMIT, |g| g.len() >= written).await;
    assert_eq!(got.len(), written, "every change is published once");
    let by_key = versions_by_key(&got);
    for i in 0..5 {
        assert_eq!(
            by_key[&format!("Patient/p{i}")],
            vec![1, 2, 3, 4],
            "in order per resource"
        );
    }
    let obs_messages: Vec<Value> = got
        .iter()
        .filter(|m| m.key == format!("Observation/{obs_id}"))
        .map(broker::Got::json)
        .collect();
    assert_eq!(obs_messages[0]["action"], "create");
    assert_eq!(obs_messages[1]["action"], "delete");
    assert_eq!(
        obs_messages[1]["reference"],
        format!("Observation/{obs_id}/_history/2")
    );
    // The default payload is the reference: no PHI in the topic.
    assert!(got.iter().all(|m| m.json().get("resource").is_none()));
    assert!(got.iter().all(|m| m.json()["tenant"] == "default"));
    // The same resource always lands in the same partition.
    let mut partitions: HashMap<&str, i32> = HashMap::new();
    for m in &got {
        assert_eq!(
            *partitions.entry(&m.key).or_insert(m.partition),
            m.partition
        );
    }
}
