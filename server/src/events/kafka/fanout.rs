//! The Kafka fan-out: the outbox consumer `kafka` of every tenant,
//! delivered by the dispatcher on the instance holding its lease. Each
//! round reads up to [`BATCH`] events after the cursor (and, with
//! `BARAZA_KAFKA_PAYLOAD=resource`, their versions) in one snapshot,
//! produces them to `baraza.{tenant}.changes` keyed by `Type/id`, waits
//! for every acknowledgement, and only then moves the cursor. A crash in
//! between sends the round again: at least once, in order per resource.

use super::{Kafka, Outgoing};
use crate::config::KafkaPayload;
use crate::error::ApiError;
use crate::events::outbox::{self, Consumer, Event};
use crate::service::AppState;
use crate::store::{Access, TenantCtx, begin};
use serde_json::{Value, json};

/// The consumer name of the fan-out in `event_consumers`.
pub const CONSUMER: &str = "kafka";

/// Events produced per round.
const BATCH: i64 = 500;

/// The fan-out topic of a tenant.
pub fn topic(tenant: &str) -> String {
    format!("baraza.{tenant}.changes")
}

/// One round for the tenant's `kafka` consumer; returns whether more
/// events may be waiting.
pub async fn deliver(
    state: &AppState,
    kafka: &Kafka,
    ctx: &TenantCtx,
    consumer: &Consumer,
) -> Result<bool, ApiError> {
    if !consumer.due {
        return Ok(false);
    }
    let node = &state.node;
    let (messages, end, more) = {
        let mut client = state.pool.get().await?;
        let tx = begin(&mut client, ctx, Access::ReadOnly).await?;
        let (events, end) =
            outbox::read_after(&tx, ctx, consumer.cursor, node.watermark(), BATCH).await?;
        let more = events.len() as i64 == BATCH;
        let mut messages = Vec::with_capacity(events.len());
        for event in &events {
            let resource = match kafka.settings.payload {
                KafkaPayload::Resource if event.action != "delete" => {
                    crate::store::read::read_version(
                        &tx,
                        ctx,
                        &event.resource_type,
                        &event.id,
                        event.version_id,
                    )
                    .await?
                    .and_then(|stored| stored.content)
                }
                _ => None,
            };
            messages.push(message(&ctx.tenant, event, resource.as_deref())?);
        }
        (messages, end, more)
    };
    if messages.is_empty() && end == consumer.cursor {
        return Ok(false);
    }
    let lease = node.lease_interval();
    let produced = async {
        kafka.ensure_topics(&[topic(&ctx.tenant)]).await?;
        kafka.produce_all(&messages).await
    }
    .await;
    let mut client = state.pool.get().await?;
    let tx = begin(&mut client, ctx, Access::ReadWrite).await?;
    match produced {
        Ok(()) => {
            let held = outbox::advance(
                &tx,
                ctx,
                &node.id,
                CONSUMER,
                end,
                messages.len() as i64,
                &lease,
            )
            .await?;
            if held && consumer.failures > 0 {
                outbox::recovered(&tx, ctx, CONSUMER).await?;
            }
            tx.commit().await?;
            Ok(held && more)
        }
        Err(e) => {
            drop(tx);
            crate::events::builtin::failed_round(state, ctx, consumer, &e).await?;
            Ok(false)
        }
    }
}

/// The message of one event: keyed by `Type/id`; the event, the
/// version's reference and, when asked for, the resource.
fn message(tenant: &str, event: &Event, resource: Option<&str>) -> Result<Outgoing, ApiError> {
    let key = format!("{}/{}", event.resource_type, event.id);
    let mut value = json!({
        "tenant": tenant,
        "seq": event.position,
        "action": event.action,
        "resourceType": event.resource_type,
        "id": event.id,
        "versionId": event.version_id.to_string(),
        "reference": format!("{key}/_history/{}", event.version_id),
        "integrator": event.integrator,
    });
    if let Some(text) = resource {
        value["resource"] = serde_json::from_str::<Value>(text).map_err(ApiError::fault)?;
    }
    Ok(Outgoing {
        topic: topic(tenant),
        key,
        value: value.to_string(),
        headers: vec![("action".to_owned(), event.action.clone())],
    })
}
