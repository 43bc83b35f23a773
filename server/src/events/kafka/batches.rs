//! Batch notifications: every change of an ingest batch's status (docs/
//! ingest.md) is published to `ingest.{tenant}.{integrator}.notification`
//! as the batch's JSON, keyed by the batch id, in the manner of HRI's
//! notification topic. Each round locks the batches whose status differs
//! from the one last published (other instances skip them), produces,
//! waits for the acknowledgements, and records the published status in
//! the same transaction: at least once. A batch that moved through
//! several states within one round is published once, in its latest.
//! Batches opened without an integrator have no topic and are skipped.

use super::Kafka;
use super::Outgoing;
use crate::error::ApiError;
use crate::ingest::store;
use crate::service::AppState;
use crate::store::Access;
use crate::store::transaction::begin_for;
use std::sync::Arc;
use std::time::Duration;

/// Batches published per tenant and round.
const ROUND: i64 = 100;

/// Starts the notifier.
pub fn spawn(state: AppState, kafka: Arc<Kafka>) {
    tokio::spawn(async move {
        let every = (state.node.settings.poll * 4).max(Duration::from_millis(500));
        while !state.node.is_stopped() {
            for tenant in state.tenants.active() {
                if let Err(e) = round(&state, &kafka, &tenant).await {
                    tracing::warn!(tenant, error = %e, "cannot publish batch notifications");
                }
            }
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                () = state.node.stopped() => {}
            }
        }
    });
}

/// Publishes one round of the tenant's batch changes.
pub async fn round(state: &AppState, kafka: &Kafka, tenant: &str) -> Result<usize, ApiError> {
    let mut client = state.pool.get().await?;
    let tx = begin_for(&mut client, tenant, Access::ReadWrite).await?;
    let batches = store::batches_to_notify(&tx, tenant, ROUND).await?;
    if batches.is_empty() {
        return Ok(0);
    }
    let mut messages = Vec::new();
    for batch in &batches {
        let Some(integrator) = batch.integrator.as_deref().filter(|i| super::topic_safe(i)) else {
            continue;
        };
        messages.push(Outgoing {
            topic: format!("ingest.{tenant}.{integrator}.notification"),
            key: batch.id.clone(),
            value: batch.to_json().to_string(),
            headers: vec![("status".to_owned(), batch.status.as_str().to_owned())],
        });
    }
    let mut topics: Vec<String> = messages.iter().map(|m| m.topic.clone()).collect();
    topics.sort();
    topics.dedup();
    kafka.ensure_topics(&topics).await?;
    kafka.produce_all(&messages).await?;
    for batch in &batches {
        store::notified(&tx, tenant, &batch.id, batch.status.as_str()).await?;
    }
    tx.commit().await?;
    Ok(batches.len())
}
