//! The Kafka ingest, after IBM's Health Record Ingestion convention: an
//! integrator writes one FHIR resource or Bundle per message to
//! `ingest.{tenant}.{integrator}.in`. Every instance runs one consumer in
//! the group BARAZA_KAFKA_GROUP, so each partition is read by one
//! instance at a time.
//!
//! Per message, in order:
//! 1. With a `batchId` header, its records are appended to that ingest
//!    batch of the integrator (docs/ingest.md), which the batch worker
//!    writes; the batch's notifications follow on `.notification`.
//! 2. Without one, its records are written at once, each all or nothing,
//!    with the integrator's rights and stamp, in one database transaction
//!    that also moves the partition's inbox offset (`kafka_inbox`). A
//!    message delivered again after a crash is recognised by that offset
//!    and not written twice.
//! 3. Results go to `.out` (a transaction-response Bundle without
//!    resources), refusals to `.invalid` (the OperationOutcome, with the
//!    source topic, partition and offset in headers).
//! 4. Only then is the offset committed to Kafka.
//!
//! A message that cannot be read (not JSON, no resourceType, an unknown
//! tenant) is a poison message: it goes to `.invalid` and is committed.
//! When the database is unavailable the message is retried with backoff
//! and nothing is committed.

use super::{Kafka, Outgoing};
use crate::error::{ApiError, Category};
use crate::ingest::caller::{self, Reach};
use crate::ingest::records::{self, Split};
use crate::service::AppState;
use crate::service::batch::response_entry;
use crate::service::bundle_out::Bundle;
use crate::service::transaction;
use crate::store::{Access, TenantCtx, TenantTx, begin};
use rdkafka::Message;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{CommitMode, Consumer, ConsumerContext, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Headers;
use rdkafka::types::RDKafkaErrorCode;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// The topics the consumers subscribe to (a librdkafka pattern).
const PATTERN: &str = r"^ingest\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.in$";

/// Tries of a message whose handling failed inside the server before it
/// goes to `.invalid` (an unavailable database is retried without end).
const FAULT_TRIES: u32 = 3;

/// The consumer's context: librdkafka's global errors in the server's
/// log, except that no ingest topic existing yet (a pattern subscription
/// with nothing to match) is not an error.
struct Context;

fn no_topic_yet(error: &KafkaError) -> bool {
    error.rdkafka_error_code() == Some(RDKafkaErrorCode::UnknownTopicOrPartition)
}

impl ClientContext for Context {
    fn error(&self, error: KafkaError, reason: &str) {
        if no_topic_yet(&error) {
            tracing::debug!(reason, "Kafka ingest: no ingest topic yet");
        } else {
            tracing::error!(error = %error, reason, "Kafka client error");
        }
    }
}

impl ConsumerContext for Context {}

/// One consumed message.
#[derive(Debug)]
struct Incoming {
    topic: String,
    partition: i32,
    offset: i64,
    key: Option<String>,
    payload: Vec<u8>,
    batch_id: Option<String>,
}

/// Starts the consumer.
pub fn spawn(state: AppState, kafka: Arc<Kafka>) {
    let mut config = super::client_config(&kafka.settings);
    config
        .set("group.id", &kafka.settings.group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("topic.metadata.refresh.interval.ms", "5000")
        .set("max.poll.interval.ms", "900000");
    let consumer: StreamConsumer<Context> = match config.create_with_context(Context) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot create the Kafka ingest consumer: nothing is ingested from Kafka");
            return;
        }
    };
    if let Err(e) = consumer.subscribe(&[PATTERN]) {
        tracing::error!(error = %e, "cannot subscribe to the Kafka ingest topics");
        return;
    }
    tokio::spawn(async move {
        let stopped = state.node.stopped();
        tokio::pin!(stopped);
        loop {
            let received = tokio::select! {
                m = consumer.recv() => m,
                () = &mut stopped => break,
            };
            let message = match received {
                Ok(m) => m,
                Err(e) => {
                    if !no_topic_yet(&e) {
                        tracing::warn!(error = %e, "Kafka ingest: cannot receive");
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            let incoming = Incoming {
                topic: message.topic().to_owned(),
                partition: message.partition(),
                offset: message.offset(),
                key: message
                    .key()
                    .map(|k| String::from_utf8_lossy(k).into_owned()),
                payload: message.payload().map(<[u8]>::to_vec).unwrap_or_default(),
                batch_id: message.headers().and_then(|headers| {
                    headers
                        .iter()
                        .find(|h| h.key == "batchId")
                        .and_then(|h| h.value)
                        .map(|v| String::from_utf8_lossy(v).into_owned())
                }),
            };
            if !handle_until_done(&state, &kafka, &incoming).await {
                break;
            }
            if let Err(e) = consumer.commit_message(&message, CommitMode::Sync) {
                // Handled and recorded: a redelivery is recognised.
                tracing::warn!(error = %e, topic = incoming.topic, "Kafka ingest: cannot commit an offset");
            }
        }
    });
}

/// Handles the message, retrying while the server cannot; `false` when
/// the server stopped first.
async fn handle_until_done(state: &AppState, kafka: &Kafka, incoming: &Incoming) -> bool {
    let mut tries = 0u32;
    loop {
        let outcome = match handle(state, incoming).await {
            Ok(out) => Ok(out),
            Err(e) if e.category == Category::Fault && tries + 1 >= FAULT_TRIES => {
                Ok(vec![invalid(incoming, &e)])
            }
            Err(e) => Err(e),
        };
        let produced = match outcome {
            Ok(out) => produce(kafka, &out).await,
            Err(e) => Err(e),
        };
        match produced {
            Ok(()) => return true,
            Err(e) => {
                tries += 1;
                let wait =
                    crate::events::subscription::backoff(tries as i32, Duration::from_secs(30));
                tracing::warn!(
                    topic = incoming.topic,
                    partition = incoming.partition,
                    offset = incoming.offset,
                    error = %crate::events::subscription::diagnostics(&e),
                    retry_in_ms = wait.as_millis() as u64,
                    "Kafka ingest: a message waits"
                );
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = state.node.stopped() => return false,
                }
            }
        }
    }
}

async fn produce(kafka: &Kafka, out: &[Outgoing]) -> Result<(), ApiError> {
    let mut topics: Vec<String> = out.iter().map(|m| m.topic.clone()).collect();
    topics.sort();
    topics.dedup();
    kafka.ensure_topics(&topics).await?;
    kafka.produce_all(out).await
}

/// The topic beside the message's with another suffix.
fn sibling(topic: &str, suffix: &str) -> String {
    let stem = topic.strip_suffix(".in").unwrap_or(topic);
    format!("{stem}.{suffix}")
}

fn headers(incoming: &Incoming, status: &str) -> Vec<(String, String)> {
    let mut h = vec![
        ("topic".to_owned(), incoming.topic.clone()),
        ("partition".to_owned(), incoming.partition.to_string()),
        ("offset".to_owned(), incoming.offset.to_string()),
        ("status".to_owned(), status.to_owned()),
    ];
    if let Some(batch) = &incoming.batch_id {
        h.push(("batchId".to_owned(), batch.clone()));
    }
    h
}

/// The `.invalid` message of a refusal.
fn invalid(incoming: &Incoming, e: &ApiError) -> Outgoing {
    invalid_outcome(incoming, None, e.status().as_u16(), e.outcome())
}

fn invalid_outcome(
    incoming: &Incoming,
    key: Option<&str>,
    status: u16,
    outcome: Value,
) -> Outgoing {
    Outgoing {
        topic: sibling(&incoming.topic, "invalid"),
        key: key
            .map(str::to_owned)
            .or_else(|| incoming.key.clone())
            .unwrap_or_else(|| format!("{}/{}", incoming.partition, incoming.offset)),
        value: outcome.to_string(),
        headers: headers(incoming, &status.to_string()),
    }
}

/// Reads and writes one message; returns what to produce. An error is
/// the server's (unavailable database, fault): the message is tried again.
async fn handle(state: &AppState, incoming: &Incoming) -> Result<Vec<Outgoing>, ApiError> {
    let parts: Vec<&str> = incoming.topic.split('.').collect();
    let (tenant, integrator) = match parts.as_slice() {
        ["ingest", tenant, integrator, "in"] => (*tenant, *integrator),
        _ => return Ok(Vec::new()),
    };
    if !state.tenants.active().iter().any(|t| t == tenant) {
        let e = ApiError::not_found(format!("there is no active tenant {tenant:?}"));
        return Ok(vec![invalid(incoming, &e)]);
    }
    let mut ctx = TenantCtx::new(tenant, &state.base_url, state.registries.clone());
    ctx.mpi = state.mpi.clone();
    ctx.mpi_queued = state.mpi_queued;
    let settings = &state
        .node
        .kafka
        .get()
        .ok_or_else(|| ApiError::fault("Kafka ingest without Kafka settings"))?
        .settings;
    let claims = json!({
        "sub": format!("kafka:{integrator}"),
        "client_id": "kafka",
        "scope": "system/*.cruds",
        "tenants": [tenant],
        "groups": settings.ingest_groups,
        "integrator": integrator,
    });
    ctx.caller = Some(Arc::new(caller::from_claims(&claims)?));
    if let Err(refused) = crate::service::authorize::admit(state, &mut ctx).await {
        return refused_or_retry(incoming, refused);
    }
    let message = match serde_json::from_slice::<Value>(&incoming.payload) {
        Ok(message) => message,
        Err(e) => {
            let e = ApiError::invalid(format!("the message is not JSON: {e}"));
            return Ok(vec![invalid(incoming, &e)]);
        }
    };
    // A lone resource's refusals name its own paths, not the Bundle's.
    let lone = message
        .get("resourceType")
        .and_then(Value::as_str)
        .filter(|t| *t != "Bundle")
        .map(str::to_owned);
    let split = match records::of_message(message) {
        Ok(split) => split,
        Err(e) => return Ok(vec![invalid(incoming, &e)]),
    };
    match &incoming.batch_id {
        Some(batch) => to_batch(state, &ctx, incoming, integrator, batch, split).await,
        None => write_now(state, &ctx, incoming, split, lone.as_deref()).await,
    }
}

fn refused_or_retry(incoming: &Incoming, e: ApiError) -> Result<Vec<Outgoing>, ApiError> {
    if e.is_transient() || e.category == Category::Fault {
        Err(e)
    } else {
        Ok(vec![invalid(incoming, &e)])
    }
}

/// Appends the records to the integrator's batch.
async fn to_batch(
    state: &AppState,
    ctx: &TenantCtx,
    incoming: &Incoming,
    integrator: &str,
    batch: &str,
    split: Split,
) -> Result<Vec<Outgoing>, ApiError> {
    let reach = Reach::Integrator(integrator.to_owned());
    if let Err(e) = crate::ingest::api::store_split(state, ctx, batch, &reach, &split).await {
        return refused_or_retry(incoming, e);
    }
    Ok(split
        .records
        .iter()
        .filter_map(|r| {
            r.outcome
                .clone()
                .map(|o| invalid_outcome(incoming, Some(&r.source_id), 400, o))
        })
        .collect())
}

/// Writes the records now, recording the offset with them.
async fn write_now(
    state: &AppState,
    ctx: &TenantCtx,
    incoming: &Incoming,
    split: Split,
    lone: Option<&str>,
) -> Result<Vec<Outgoing>, ApiError> {
    let mut client = state.pool.get().await?;
    let tx = begin(&mut client, ctx, Access::ReadWrite).await?;
    let row = tx
        .query_opt(
            "SELECT last_offset, results::text FROM kafka_inbox \
             WHERE tenant = $1 AND topic = $2 AND partition = $3 FOR UPDATE",
            &[&ctx.tenant, &incoming.topic, &incoming.partition],
        )
        .await?;
    if let Some(row) = row {
        let last: i64 = row.get(0);
        if incoming.offset < last {
            return Ok(Vec::new());
        }
        if incoming.offset == last {
            let text: String = row.get(1);
            return serde_json::from_str(&text).map_err(ApiError::fault);
        }
    }
    let mut out = Vec::new();
    let mut touched = crate::audit::Touched::default();
    let mut refusals = Vec::new();
    for record in split.records {
        let key = incoming
            .key
            .clone()
            .unwrap_or_else(|| record.source_id.clone());
        if let Some(outcome) = record.outcome {
            out.push(invalid_outcome(incoming, Some(&key), 400, outcome));
            continue;
        }
        let Some(payload) = record.payload else {
            continue;
        };
        match write_record(&tx, state, ctx, payload).await? {
            Ok(responses) => {
                let mut bundle = Bundle::new("transaction-response");
                for response in responses {
                    touched.merge(response.touched.clone());
                    bundle.entry.push(response_entry(response, false)?);
                }
                out.push(Outgoing {
                    topic: sibling(&incoming.topic, "out"),
                    key,
                    value: bundle.to_text()?,
                    headers: headers(incoming, "200"),
                });
            }
            Err(mut refused) => {
                if let Some(resource_type) = lone {
                    own_paths(&mut refused, resource_type);
                }
                refusals.push(refused.status());
                out.push(invalid_outcome(
                    incoming,
                    Some(&key),
                    refused.status().as_u16(),
                    refused.outcome(),
                ));
            }
        }
    }
    let results = serde_json::to_string(&out).map_err(ApiError::fault)?;
    tx.execute(
        "INSERT INTO kafka_inbox (tenant, topic, partition, last_offset, results) \
         VALUES ($1, $2, $3, $4, $5::text::jsonb) \
         ON CONFLICT (tenant, topic, partition) DO UPDATE SET \
           last_offset = excluded.last_offset, results = excluded.results, updated = now()",
        &[
            &ctx.tenant,
            &incoming.topic,
            &incoming.partition,
            &incoming.offset,
            &results,
        ],
    )
    .await?;
    tx.commit().await?;
    drop(client);
    if !touched.is_empty() {
        crate::ingest::chunk::audit(state, ctx, actix_web::http::StatusCode::OK, touched).await;
    }
    for status in refusals {
        crate::ingest::chunk::audit(state, ctx, status, crate::audit::Touched::default()).await;
    }
    Ok(out)
}

/// Writes one record behind a savepoint: its responses, or why it was
/// refused (the savepoint undone). The outer error is the server's.
async fn write_record(
    tx: &TenantTx<'_>,
    state: &AppState,
    ctx: &TenantCtx,
    payload: Value,
) -> Result<Result<Vec<crate::service::FhirResponse>, ApiError>, ApiError> {
    let prepared = match transaction::prepare(ctx, payload) {
        Ok(p) => p,
        Err(refused) => return Ok(Err(refused)),
    };
    tx.batch_execute("SAVEPOINT kafka_record").await?;
    match transaction::execute(tx, state, ctx, prepared, None).await {
        Ok(responses) => {
            tx.batch_execute("RELEASE SAVEPOINT kafka_record").await?;
            Ok(Ok(responses))
        }
        Err(e) if e.is_transient() || e.category == Category::Fault => Err(e),
        Err(refused) => {
            tx.batch_execute("ROLLBACK TO SAVEPOINT kafka_record; RELEASE SAVEPOINT kafka_record")
                .await?;
            Ok(Err(refused))
        }
    }
}

/// Rewrites `Bundle.entry[0].resource.x` to `Type.x` in a refusal of a
/// message that was one resource (wrapped in a transaction to be written).
fn own_paths(refused: &mut ApiError, resource_type: &str) {
    const WRAPPED: &str = "Bundle.entry[0].resource";
    for issue in &mut refused.issues {
        for expression in &mut issue.expression {
            if let Some(rest) = expression.strip_prefix(WRAPPED) {
                *expression = format!("{resource_type}{rest}");
            }
        }
    }
}
