//! kill -9 of a `baraza serve` process while it writes and publishes:
//! after a restart every committed change is in the topic (duplicates
//! only as at-least-once allows), in order per resource, with the
//! resource when the payload asks for it. And two instances on one
//! database publish each change once and share the ingest partitions.

use super::broker::{Broker, read_until};
use super::{LIMIT, versions_by_key};
use crate::harness::{cluster, fresh_database};
use crate::processes::{serve, wait_ready};
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::process::Child;
use std::time::{Duration, Instant};

fn start(dbname: &str, broker: &Broker) -> (Child, u16) {
    start_with(dbname, broker, &[("BARAZA_KAFKA_INGEST", "off")])
}

fn start_with(dbname: &str, broker: &Broker, extra: &[(&str, &str)]) -> (Child, u16) {
    let mut env = vec![
        ("BARAZA_MPI", "off"),
        ("BARAZA_KAFKA_BROKERS", broker.address.as_str()),
        ("BARAZA_KAFKA_PAYLOAD", "resource"),
    ];
    env.extend_from_slice(extra);
    serve(dbname, &env)
}

/// Writes versions of patients `c0..c9` one request at a time until told
/// to stop; returns how many writes were answered.
async fn write_loop(port: u16, rounds: usize) -> usize {
    let client = reqwest::Client::new();
    let mut answered = 0;
    for round in 0..rounds {
        let i = round % 10;
        let patient = json!({"resourceType": "Patient", "id": format!("c{i}"),
            "name": [{"family": "Njoroge", "given": [format!("r{round}")]}]});
        if !crate::processes::put_ok(&client, port, &format!("Patient/c{i}"), &patient).await {
            break;
        }
        answered += 1;
    }
    answered
}

/// The database as its owner, once an instance created the fan-out's
/// consumer (changes from then on are published).
async fn owner_when_fanout_ready(dbname: &str) -> tokio_postgres::Client {
    let owner = baraza::db::connect(&cluster().config(dbname))
        .await
        .unwrap();
    let deadline = Instant::now() + LIMIT;
    while owner
        .query(
            "SELECT 1 FROM event_consumers WHERE consumer = 'kafka'",
            &[],
        )
        .await
        .unwrap()
        .is_empty()
    {
        assert!(Instant::now() < deadline, "no kafka consumer");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    owner
}

#[tokio::test]
async fn kafka_fanout_survives_kill_9_of_the_delivering_instance() {
    let broker = Broker::start().await;
    let dbname = fresh_database().await;
    let (mut first, port) = start(&dbname, &broker);
    wait_ready(port, &mut first).await;
    let owner = owner_when_fanout_ready(&dbname).await;
    // Writes go on while the instance is killed in the middle of them.
    let writer = tokio::spawn(write_loop(port, 100_000));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(first.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let _ = first.wait();
    let before_kill = writer.await.unwrap();
    assert!(
        before_kill > 10,
        "writes happened before the kill: {before_kill}"
    );

    let (mut second, port) = start(&dbname, &broker);
    wait_ready(port, &mut second).await;
    let after = write_loop(port, 50).await;
    assert_eq!(after, 50);

    // Every committed version, from the database itself.
    owner
        .batch_execute("SELECT set_config('baraza.tenant', 'default', false)")
        .await
        .unwrap();
    let rows = owner
        .query(
            "SELECT res_type || '/' || id, version_id FROM events WHERE tenant = 'default'",
            &[],
        )
        .await
        .unwrap();
    let committed: HashSet<(String, i64)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert!(
        committed.len() >= 50 + before_kill,
        "{} events",
        committed.len()
    );
    let consumer = broker.consumer(&["baraza.default.changes"]);
    let got = read_until(&consumer, LIMIT, |g| {
        let seen: HashSet<(String, i64)> = g
            .iter()
            .map(|m| {
                (
                    m.key.clone(),
                    m.json()["versionId"].as_str().unwrap().parse().unwrap(),
                )
            })
            .collect();
        committed.is_subset(&seen)
    })
    .await;
    let seen: HashSet<(String, i64)> = got
        .iter()
        .map(|m| {
            (
                m.key.clone(),
                m.json()["versionId"].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect();
    let missing: Vec<_> = committed.difference(&seen).collect();
    assert!(missing.is_empty(), "lost: {missing:?}");
    // Nothing was published that did not commit.
    assert!(seen.is_subset(&committed), "published but never committed");
    // In order per resource, counting each version at its first arrival
    // (a round re-sent after the kill repeats a run of versions).
    let by_key: HashMap<String, Vec<i64>> = versions_by_key(&got);
    for (key, versions) in by_key {
        let mut first_seen = Vec::new();
        for v in versions {
            if !first_seen.contains(&v) {
                first_seen.push(v);
            }
        }
        let mut sorted = first_seen.clone();
        sorted.sort_unstable();
        assert_eq!(first_seen, sorted, "{key} out of order");
    }
    // The payload carries each version's resource.
    let sample = got.last().unwrap().json();
    assert_eq!(sample["resource"]["resourceType"], "Patient", "{sample}");
    assert_eq!(
        sample["resource"]["meta"]["versionId"].as_str(),
        sample["versionId"].as_str()
    );
    let _ = second.kill();
    let _ = second.wait();
}

#[tokio::test]
async fn kafka_two_instances_publish_once_and_share_the_ingest() {
    let broker = Broker::start().await;
    let topic = "ingest.default.lab-b.in";
    super::ingest::create_topic(&broker, topic, 2).await;
    let dbname = fresh_database().await;
    let group = format!("g-{}", uuid::Uuid::new_v4());
    let shared = [("BARAZA_KAFKA_GROUP", group.as_str())];
    let (mut a, port_a) = start_with(&dbname, &broker, &shared);
    let (mut b, port_b) = start_with(&dbname, &broker, &shared);
    wait_ready(port_a, &mut a).await;
    wait_ready(port_b, &mut b).await;
    owner_when_fanout_ready(&dbname).await;
    // 20 writes through each instance, and 20 records through Kafka.
    assert_eq!(write_loop(port_a, 20).await, 20);
    assert_eq!(write_loop(port_b, 20).await, 20);
    for i in 0..20 {
        let patient = json!({"resourceType": "Patient", "id": format!("k{i}")});
        broker
            .send(topic, &format!("k{i}"), patient.to_string().as_bytes(), &[])
            .await;
    }
    let out = broker.consumer(&["ingest.default.lab-b.out"]);
    let answers = read_until(&out, LIMIT, |g| g.len() >= 20).await;
    let keys: HashSet<&str> = answers.iter().map(|m| m.key.as_str()).collect();
    assert_eq!(keys.len(), 20, "every record answered: {}", answers.len());

    let changes = broker.consumer(&["baraza.default.changes"]);
    let got = read_until(&changes, LIMIT, |g| g.len() >= 60).await;
    // A moment longer: a second instance publishing too would show now.
    let more = read_until(&changes, Duration::from_secs(3), |_| false).await;
    let all: Vec<(String, String)> = got
        .iter()
        .chain(more.iter())
        .map(|m| {
            (
                m.key.clone(),
                m.json()["versionId"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let distinct: HashSet<&(String, String)> = all.iter().collect();
    assert_eq!(distinct.len(), 60, "40 writes and 20 ingested records");
    assert_eq!(all.len(), 60, "each change once, not once per instance");
    assert_eq!(answers.len(), 20, "each record once");
    for child in [&mut a, &mut b] {
        let _ = child.kill();
        let _ = child.wait();
    }
}
