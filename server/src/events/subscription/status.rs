//! A subscription's health: backoff after failed rounds, `status`
//! `error` after [`ERROR_AFTER`] in a row, and recovery to `active`.

use super::{ERROR_AFTER, Subscription};
use crate::error::{ApiError, Category};
use crate::events::Node;
use crate::events::outbox::{self, Consumer};
use crate::service::AppState;
use crate::store::write::{Method, WriteOp};
use crate::store::{Access, TenantCtx, begin};
use serde_json::Value;
use std::time::Duration;

/// The wait before retry `failures` (1 s, 2 s, 4 s, … up to the maximum).
pub fn backoff(failures: i32, max: Duration) -> Duration {
    let exponent = failures.clamp(1, 20) as u32 - 1;
    Duration::from_secs(1u64 << exponent).min(max)
}

pub(super) async fn round_failed(
    state: &AppState,
    node: &Node,
    ctx: &TenantCtx,
    consumer: &Consumer,
    subscription: Option<&Subscription>,
    reason: &str,
) -> Result<(), ApiError> {
    if let Some(subscription) = subscription {
        if consumer.failures.saturating_add(1) >= ERROR_AFTER && subscription.status != "error" {
            set_status(state, ctx, subscription, "error", Some(reason)).await?;
        }
    }
    back_off(
        state,
        node,
        ctx,
        consumer,
        reason,
        "subscription delivery failed",
    )
    .await
}

/// Records a failed round of any outbox consumer: one more failure, the
/// next attempt after [`backoff`], and the reason, in `event_consumers`.
pub async fn back_off(
    state: &AppState,
    node: &Node,
    ctx: &TenantCtx,
    consumer: &Consumer,
    reason: &str,
    what: &str,
) -> Result<(), ApiError> {
    let failures = consumer.failures.saturating_add(1);
    let wait = backoff(failures, node.settings.retry_max);
    tracing::warn!(
        tenant = ctx.tenant,
        consumer = consumer.name,
        failures,
        retry_in_ms = wait.as_millis() as u64,
        reason,
        "{what}"
    );
    let mut client = state.pool.get().await?;
    let tx = begin(&mut client, ctx, Access::ReadWrite).await?;
    outbox::failed(&tx, ctx, &node.id, &consumer.name, failures, wait, reason).await?;
    tx.commit().await?;
    Ok(())
}

pub(super) async fn recover(
    state: &AppState,
    ctx: &TenantCtx,
    consumer: &Consumer,
    subscription: &Subscription,
) -> Result<(), ApiError> {
    if subscription.status == "error" {
        set_status(state, ctx, subscription, "active", None).await?;
    }
    let mut client = state.pool.get().await?;
    let tx = begin(&mut client, ctx, Access::ReadWrite).await?;
    outbox::recovered(&tx, ctx, &consumer.name).await?;
    tx.commit().await?;
    Ok(())
}

/// Writes a new version of the Subscription with `status` (and `error`),
/// as the server, unless someone changed it meanwhile (If-Match).
pub(super) async fn set_status(
    state: &AppState,
    ctx: &TenantCtx,
    subscription: &Subscription,
    status: &str,
    error: Option<&str>,
) -> Result<(), ApiError> {
    let mut resource = subscription.resource.clone();
    let version = resource["meta"]["versionId"]
        .as_str()
        .and_then(|v| v.parse::<i64>().ok());
    if let Value::Object(map) = &mut resource {
        map.insert("status".into(), Value::String(status.to_owned()));
        match error {
            Some(reason) => {
                map.insert("error".into(), Value::String(reason.to_owned()));
            }
            None => {
                map.shift_remove("error");
            }
        }
    }
    let mut server = ctx.clone();
    server.caller = None;
    server.rights = None;
    let mut client = state.pool.get().await?;
    let tx = begin(&mut client, &server, Access::ReadWrite).await?;
    let op = WriteOp {
        resource_type: "Subscription".into(),
        id: subscription.id.clone(),
        method: Method::Put,
        resource: Some(resource),
        if_match: version,
        fresh_id: false,
    };
    match crate::service::write::apply(&tx, &server, vec![op], crate::store::now()).await {
        Ok(_) => {
            tx.commit().await?;
            tracing::info!(
                tenant = ctx.tenant,
                subscription = subscription.id,
                status,
                "subscription status changed"
            );
            Ok(())
        }
        // Changed by its owner meanwhile: the next round reads it again.
        Err(e) if e.category == Category::PreconditionFailed => Ok(()),
        Err(e) => Err(e),
    }
}
