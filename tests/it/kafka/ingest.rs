//! The HRI-style Kafka ingest: `ingest.{tenant}.{integrator}.in` in,
//! results on `.out`, refusals and poison messages on `.invalid`, the
//! integrator's stamp on what was written, offsets committed after the
//! write, and a message delivered again not written twice.

use super::broker::{Broker, Got, read_until};
use super::{LIMIT, kafka_settings};
use crate::harness::{spawn_app_on, status_json};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::{Value, json};
use std::time::Duration;

const IN: &str = "ingest.default.lab-a.in";

/// Creates a topic (one partition keeps the order of a test's messages).
pub async fn create_topic(broker: &Broker, name: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &broker.address)
        .create()
        .unwrap();
    let results = admin
        .create_topics(
            &[NewTopic::new(name, partitions, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await
        .unwrap();
    for r in results {
        r.unwrap();
    }
}

/// The offset the group committed for partition 0 of the topic.
async fn committed(broker: &Broker, group: &str, topic: &str) -> Option<i64> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &broker.address)
        .set("group.id", group)
        .create()
        .unwrap();
    let mut list = TopicPartitionList::new();
    list.add_partition(topic, 0);
    let got = consumer
        .committed_offsets(list, Duration::from_secs(10))
        .unwrap();
    match got.find_partition(topic, 0)?.offset() {
        Offset::Offset(n) => Some(n),
        _ => None,
    }
}

fn messages() -> Vec<(&'static str, Vec<u8>)> {
    let patient = json!({"resourceType": "Patient", "id": "kp1", "gender": "female",
        "name": [{"family": "Wanjiru"}]});
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:0b3c2a7e-1d25-4f57-9a43-5b1c8e6f0a11",
         "resource": {"resourceType": "Patient", "name": [{"family": "Kamau"}]},
         "request": {"method": "POST", "url": "Patient"}},
        {"resource": {"resourceType": "Observation", "status": "final", "code": {"text": "weight"},
                      "subject": {"reference": "urn:uuid:0b3c2a7e-1d25-4f57-9a43-5b1c8e6f0a11"}},
         "request": {"method": "POST", "url": "Observation"}}]});
    let wrong = json!({"resourceType": "Patient", "gender": "man"});
    vec![
        ("m1", patient.to_string().into_bytes()),
        ("m2", bundle.to_string().into_bytes()),
        ("m3", b"this is not JSON".to_vec()),
        ("m4", wrong.to_string().into_bytes()),
        ("m5", br#"{"hello": "world"}"#.to_vec()),
    ]
}

fn by_key<'a>(got: &'a [Got], key: &str) -> &'a Got {
    got.iter()
        .find(|g| g.key == key)
        .unwrap_or_else(|| panic!("no message {key} in {got:?}"))
}

#[tokio::test]
async fn kafka_ingest_writes_answers_and_sets_poison_aside() {
    let broker = Broker::start().await;
    create_topic(&broker, IN, 1).await;
    let group = format!("g-{}", uuid::Uuid::new_v4());
    let settings = kafka_settings(&broker, &[("BARAZA_KAFKA_GROUP", &group)]);
    let dbname = crate::harness::fresh_database().await;
    let app = spawn_app_on(dbname.clone(), move |s| {
        s.kafka = settings;
        s.mpi = false;
    })
    .await;
    for (key, value) in messages() {
        broker.send(IN, key, &value, &[]).await;
    }
    let out = broker.consumer(&["ingest.default.lab-a.out"]);
    let invalid = broker.consumer(&["ingest.default.lab-a.invalid"]);
    let answers = read_until(&out, LIMIT, |g| g.len() >= 2).await;
    let refusals = read_until(&invalid, LIMIT, |g| g.len() >= 3).await;
    assert_eq!(answers.len(), 2, "{answers:?}");
    assert_eq!(refusals.len(), 3, "{refusals:?}");

    // m1: one resource, written with the integrator's stamp.
    let m1 = by_key(&answers, "m1").json();
    assert_eq!(m1["type"], "transaction-response");
    assert!(
        m1["entry"][0]["response"]["status"]
            .as_str()
            .unwrap()
            .starts_with("201")
    );
    assert!(m1["entry"][0].get("resource").is_none(), "no PHI on .out");
    let (status, patient) = status_json(app.get("Patient/kp1").await).await;
    assert_eq!(status, 200);
    let tags = patient["meta"]["tag"].to_string();
    assert!(tags.contains("lab-a"), "the integrator's stamp: {tags}");
    // m2: the transaction, both entries.
    let m2 = by_key(&answers, "m2").json();
    assert_eq!(m2["entry"].as_array().unwrap().len(), 2);
    let (_, found) = status_json(app.get("Observation?subject:Patient.family=Kamau").await).await;
    assert_eq!(
        found["total"], 1,
        "the Observation points at the new Patient"
    );

    // m3: poison (not JSON); m4: invalid code, named by its path; m5: no resourceType.
    let m3 = by_key(&refusals, "m3");
    assert_eq!(m3.json()["resourceType"], "OperationOutcome");
    assert_eq!(m3.header("status"), Some("400"));
    assert_eq!(m3.header("topic"), Some(IN));
    assert_eq!(m3.header("offset"), Some("2"));
    let m4 = by_key(&refusals, "m4").json();
    assert!(m4.to_string().contains("Patient.gender"), "{m4}");
    let m5 = by_key(&refusals, "m5").json();
    assert!(m5.to_string().contains("resourceType"), "{m5}");

    // The offsets are committed once each message was handled.
    let deadline = std::time::Instant::now() + LIMIT;
    while committed(&broker, &group, IN).await != Some(5) {
        assert!(
            std::time::Instant::now() < deadline,
            "offsets were not committed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The same messages delivered again (another group, from the start)
    // are recognised: nothing is written twice.
    let patients_before = count(&app, "Patient").await;
    let kp1_version = version(&app, "Patient/kp1").await;
    drop(app);
    let again = kafka_settings(&broker, &[]);
    let app = spawn_app_on(dbname, move |s| {
        s.kafka = again;
        s.mpi = false;
    })
    .await;
    // The last message is answered again (its results are kept); the
    // others were answered before and are only skipped.
    let refusals = read_until(&invalid, LIMIT, |g| g.iter().any(|m| m.key == "m5")).await;
    assert!(refusals.iter().any(|m| m.key == "m5"), "{refusals:?}");
    assert_eq!(count(&app, "Patient").await, patients_before);
    assert_eq!(version(&app, "Patient/kp1").await, kp1_version);
}

async fn count(app: &crate::harness::TestApp, t: &str) -> i64 {
    let (_, bundle) = status_json(app.get(&format!("{t}?_summary=count")).await).await;
    bundle["total"].as_i64().unwrap()
}

async fn version(app: &crate::harness::TestApp, path: &str) -> String {
    let (_, resource): (u16, Value) = status_json(app.get(path).await).await;
    resource["meta"]["versionId"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn kafka_ingest_for_an_unknown_tenant_is_refused_as_poison() {
    let broker = Broker::start().await;
    let topic = "ingest.nowhere.lab-a.in";
    create_topic(&broker, topic, 1).await;
    let settings = kafka_settings(&broker, &[]);
    let _app = crate::harness::spawn_app_with(move |s| s.kafka = settings).await;
    let patient = json!({"resourceType": "Patient", "id": "x1"});
    broker
        .send(topic, "k1", patient.to_string().as_bytes(), &[])
        .await;
    let invalid = broker.consumer(&["ingest.nowhere.lab-a.invalid"]);
    let got = read_until(&invalid, LIMIT, |g| !g.is_empty()).await;
    assert_eq!(got.len(), 1);
    assert!(got[0].value.contains("nowhere"), "{}", got[0].value);
    assert_eq!(got[0].header("status"), Some("404"));
}
