//! Kafka (docs/events.md, "Kafka"), when BARAZA_KAFKA_BROKERS is set:
//!
//! - [`fanout`]: one more consumer of the outbox per tenant (`kafka`),
//!   delivered by the dispatcher under its lease like a Subscription; each
//!   change goes to `baraza.{tenant}.changes`, keyed by `Type/id` so that
//!   a resource's changes stay in order within their partition.
//! - [`ingest`]: consumes `ingest.{tenant}.{integrator}.in` in the HRI
//!   manner; results go to `.out`, refusals to `.invalid`, and the offset
//!   is committed only after the write committed.
//! - [`batches`]: publishes ingest batches' status changes to
//!   `ingest.{tenant}.{integrator}.notification`.
//!
//! librdkafka (the `rdkafka` crate) does the protocol: one producer and
//! one admin client per instance, and one consumer in the ingest group.

pub mod batches;
pub mod fanout;
pub mod ingest;

use crate::config::KafkaSettings;
use crate::error::ApiError;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

/// How long a produced message may wait for the brokers' acknowledgement.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);

/// One instance's Kafka clients.
pub struct Kafka {
    pub settings: KafkaSettings,
    producer: FutureProducer,
    admin: AdminClient<DefaultClientContext>,
    /// Topics known to exist (created here or found).
    topics: Mutex<HashSet<String>>,
}

impl std::fmt::Debug for Kafka {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kafka")
            .field("brokers", &self.settings.brokers)
            .finish_non_exhaustive()
    }
}

/// One message to produce.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Outgoing {
    pub topic: String,
    pub key: String,
    pub value: String,
    /// Headers (name, value).
    #[serde(default)]
    pub headers: Vec<(String, String)>,
}

fn kafka_error(what: &str, e: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        crate::error::Category::Unavailable,
        format!("Kafka: {what}: {e}"),
    )
}

impl Kafka {
    /// The clients; nothing connects until they are used.
    pub fn new(settings: &KafkaSettings) -> Result<Kafka, String> {
        let mut producer = client_config(settings);
        // Order per key: one request in flight per connection, retried in
        // place (librdkafka keeps the order of a partition's messages).
        producer
            .set("acks", "all")
            .set("max.in.flight.requests.per.connection", "1")
            .set("enable.idempotence", "false")
            .set(
                "message.timeout.ms",
                DELIVERY_TIMEOUT.as_millis().to_string(),
            )
            .set("linger.ms", "5");
        let producer: FutureProducer = producer
            .create()
            .map_err(|e| format!("cannot create the Kafka producer: {e}"))?;
        let admin = client_config(settings)
            .create()
            .map_err(|e| format!("cannot create the Kafka admin client: {e}"))?;
        Ok(Kafka {
            settings: settings.clone(),
            producer,
            admin,
            topics: Mutex::default(),
        })
    }

    /// Creates the topics that do not exist yet (the brokers may also
    /// create them on first use, or an operator ahead of time).
    pub async fn ensure_topics(&self, names: &[String]) -> Result<(), ApiError> {
        let missing: Vec<&String> = {
            let known = self
                .topics
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            names.iter().filter(|n| !known.contains(*n)).collect()
        };
        if missing.is_empty() {
            return Ok(());
        }
        let new: Vec<NewTopic<'_>> = missing
            .iter()
            .map(|name| {
                NewTopic::new(
                    name,
                    self.settings.partitions,
                    TopicReplication::Fixed(self.settings.replication),
                )
            })
            .collect();
        let options = AdminOptions::new()
            .operation_timeout(Some(Duration::from_secs(10)))
            .request_timeout(Some(Duration::from_secs(10)));
        let results = self
            .admin
            .create_topics(&new, &options)
            .await
            .map_err(|e| kafka_error("cannot create topics", e))?;
        let mut known = self
            .topics
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for result in results {
            match result {
                Ok(name) => {
                    known.insert(name);
                }
                Err((name, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)) => {
                    known.insert(name);
                }
                Err((name, code)) => {
                    return Err(kafka_error(&format!("cannot create topic {name}"), code));
                }
            }
        }
        Ok(())
    }

    /// Produces the messages, all at once, and waits until the brokers
    /// acknowledged every one; an error names the first that failed.
    pub async fn produce_all(&self, messages: &[Outgoing]) -> Result<(), ApiError> {
        let mut pending = Vec::with_capacity(messages.len());
        for message in messages {
            let mut headers = OwnedHeaders::new_with_capacity(message.headers.len());
            for (name, value) in &message.headers {
                headers = headers.insert(Header {
                    key: name,
                    value: Some(value.as_bytes()),
                });
            }
            let record = FutureRecord::to(&message.topic)
                .key(&message.key)
                .payload(&message.value)
                .headers(headers);
            let delivery = self
                .producer
                .send_result(record)
                .map_err(|(e, _)| kafka_error("cannot queue a message", e))?;
            pending.push(delivery);
        }
        for delivery in pending {
            match delivery.await {
                Ok(Ok(_)) => {}
                Ok(Err((e, _))) => return Err(kafka_error("a message was not delivered", e)),
                Err(_) => return Err(kafka_error("a message was dropped", "canceled")),
            }
        }
        Ok(())
    }
}

/// The properties every client of this instance shares.
fn client_config(settings: &KafkaSettings) -> ClientConfig {
    let mut config = ClientConfig::new();
    for (name, value) in settings.client_properties() {
        config.set(name, value);
    }
    config.set("client.id", "baraza");
    config
}

/// Starts this instance's Kafka work besides the fan-out (which the
/// dispatcher runs): the ingest consumer and the batch notifier.
pub fn spawn(state: crate::service::AppState, kafka: std::sync::Arc<Kafka>) {
    if kafka.settings.ingest {
        ingest::spawn(state.clone(), kafka.clone());
    }
    batches::spawn(state, kafka);
}

/// Whether a tenant or integrator name can be part of a topic name.
pub fn topic_safe(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}
