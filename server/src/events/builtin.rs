//! The built-in outbox consumers every tenant gets when a feature is on:
//! the Kafka fan-out (`kafka`) and queued linking (`mpi`). The dispatcher
//! delivers them like Subscriptions; an instance started without the
//! feature disables them, so that they do not hold back the pruning of
//! delivered events.

use crate::error::ApiError;
use crate::service::AppState;
use crate::store::{Access, TenantCtx, begin};

/// Where a new built-in consumer's cursor starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// At the outbox's current end: the changes from now on.
    Now,
    /// At the beginning: every change still in the outbox.
    Beginning,
}

/// Makes sure every active tenant has the consumer `name`, enabled (again
/// if it was disabled, at its old cursor).
pub async fn enable(state: &AppState, name: &str, start: Start) -> Result<(), ApiError> {
    let from_beginning = start == Start::Beginning;
    for tenant in state.tenants.active() {
        let ctx = TenantCtx::new(&tenant, &state.base_url, state.registries.clone());
        let mut client = state.pool.get().await?;
        let tx = begin(&mut client, &ctx, Access::ReadWrite).await?;
        tx.execute(
            "INSERT INTO event_consumers (tenant, consumer, enabled, last_seq) \
             VALUES ($1, $2, true, CASE WHEN $3 THEN 0 ELSE \
               coalesce(pg_sequence_last_value(pg_get_serial_sequence('events', 'seq')), 0) END) \
             ON CONFLICT (tenant, consumer) DO UPDATE SET enabled = true \
             WHERE NOT event_consumers.enabled",
            &[&tenant, &name, &from_beginning],
        )
        .await?;
        tx.commit().await?;
    }
    Ok(())
}

/// Disables every active tenant's consumer `name`.
pub async fn disable(state: &AppState, name: &str) -> Result<(), ApiError> {
    for tenant in state.tenants.active() {
        let ctx = TenantCtx::new(&tenant, &state.base_url, state.registries.clone());
        let mut client = state.pool.get().await?;
        let tx = begin(&mut client, &ctx, Access::ReadWrite).await?;
        tx.execute(
            "UPDATE event_consumers SET enabled = false \
             WHERE tenant = $1 AND consumer = $2 AND enabled",
            &[&tenant, &name],
        )
        .await?;
        tx.commit().await?;
    }
    Ok(())
}

/// Records a failed round of a built-in consumer: it is tried again after
/// a back-off, as a Subscription is, and the reason is kept.
pub async fn failed_round(
    state: &AppState,
    ctx: &TenantCtx,
    consumer: &super::outbox::Consumer,
    error: &ApiError,
) -> Result<(), ApiError> {
    let reason = super::subscription::diagnostics(error);
    let what = format!("event consumer {} failed", consumer.name);
    super::subscription::back_off(state, &state.node, ctx, consumer, &reason, &what).await
}
