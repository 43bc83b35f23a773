//! The brokers over TLS: with BARAZA_KAFKA_SECURITY_PROTOCOL=ssl and the
//! brokers' CA, changes are published; with another CA the handshake is
//! refused and the fan-out backs off with the reason recorded, publishing
//! nothing.

use super::broker::{Broker, read_until};
use super::{LIMIT, kafka_settings, wait_fanout_ready};
use crate::harness::spawn_app_with;
use crate::tls::certs::{Authority, Dir};
use serde_json::json;
use std::time::{Duration, Instant};

#[tokio::test]
async fn kafka_over_tls_trusts_only_the_configured_ca() {
    let dir = Dir::new();
    let ca = Authority::new(&dir, "kafka");
    let server = ca.server(&dir, &["127.0.0.1", "localhost"]);
    let broker = Broker::start_tls(&server.cert_pem, &server.key_pem, &ca.pem_path).await;
    let ca_path = ca.pem_path.display().to_string();
    let settings = kafka_settings(
        &broker,
        &[
            ("BARAZA_KAFKA_SECURITY_PROTOCOL", "ssl"),
            ("BARAZA_KAFKA_SSL_CA", &ca_path),
            ("BARAZA_KAFKA_INGEST", "off"),
        ],
    );
    let app = spawn_app_with(move |s| s.kafka = settings).await;
    wait_fanout_ready(&app, "default").await;
    let consumer = broker.consumer(&["baraza.default.changes"]);
    app.create(&json!({"resourceType": "Organization", "name": "Kisumu County Hospital"}))
        .await;
    let got = read_until(&consumer, LIMIT, |g| !g.is_empty()).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].json()["resourceType"], "Organization");

    // Another CA: nothing is published, and the reason is on record.
    let other = Authority::new(&dir, "impostor");
    let other_path = other.pem_path.display().to_string();
    let settings = kafka_settings(
        &broker,
        &[
            ("BARAZA_KAFKA_SECURITY_PROTOCOL", "ssl"),
            ("BARAZA_KAFKA_SSL_CA", &other_path),
            ("BARAZA_KAFKA_INGEST", "off"),
        ],
    );
    let untrusting = spawn_app_with(move |s| s.kafka = settings).await;
    wait_fanout_ready(&untrusting, "default").await;
    untrusting
        .create(&json!({"resourceType": "Organization", "name": "Nakuru Level 5"}))
        .await;
    let db = untrusting.db().await;
    let deadline = Instant::now() + LIMIT;
    let error = loop {
        let row = db
            .query_one(
                "SELECT failures, last_error, delivered FROM event_consumers \
                 WHERE tenant = 'default' AND consumer = 'kafka'",
                &[],
            )
            .await
            .unwrap();
        let (failures, error, delivered): (i32, Option<String>, i64) =
            (row.get(0), row.get(1), row.get(2));
        assert_eq!(delivered, 0, "nothing reaches an untrusted broker");
        if failures > 0 {
            break error.unwrap_or_default();
        }
        assert!(Instant::now() < deadline, "the fan-out did not fail");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(error.contains("Kafka"), "{error}");
}
