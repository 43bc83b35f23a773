//! The dispatcher, one per instance: every poll interval (or at once when
//! a tenant's subscriptions change) it takes the leases of the consumers
//! nobody holds, and delivers for each consumer it holds, one task per
//! consumer so that a slow endpoint delays only its own subscription.
//! Every minute it prunes delivered events older than the retention.
//!
//! Each consumer is delivered by one instance at a time: the lease
//! (`outbox::claim`) names the instance, which renews it while it works;
//! every cursor move checks the lease, so an instance that lost it stops.
//! When an instance dies, its leases run out and another instance takes
//! its consumers over, from their last saved cursors: the events sent
//! after that save are sent again (at least once).

use super::builtin::Start;
use super::outbox;
use crate::service::AppState;
use crate::service::patient_index::queue;
use crate::store::transaction::begin_for;
use crate::store::{Access, TenantCtx};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often every tenant is checked for consumers (between the
/// notifications that announce new ones).
const SCAN_EVERY: Duration = Duration::from_secs(10);
const PRUNE_EVERY: Duration = Duration::from_secs(60);

type InFlight = Arc<Mutex<HashSet<(String, String)>>>;

/// Starts the dispatcher.
pub fn spawn(state: AppState) {
    let node = state.node.clone();
    let timeout =
        (node.settings.lease / 2).clamp(Duration::from_millis(500), Duration::from_secs(10));
    let http = match reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .build()
    {
        Ok(http) => http,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the notification client: no subscription is delivered");
            return;
        }
    };
    let in_flight: InFlight = Arc::default();
    tokio::spawn(async move {
        let mut scanned: Option<Instant> = None;
        let mut pruned = Instant::now();
        let mut watermark = outbox::Watermark::default();
        while !node.is_stopped() {
            match state.pool.get().await {
                Ok(client) => match watermark.advance(&client).await {
                    Ok(value) => node.set_watermark(value),
                    Err(e) => tracing::warn!(error = %e, "cannot advance the outbox watermark"),
                },
                Err(e) => tracing::warn!(error = %e, "cannot advance the outbox watermark"),
            }
            if scanned.is_none_or(|t| t.elapsed() >= SCAN_EVERY) {
                if let Err(e) = scan(&state).await {
                    tracing::warn!(error = %e, "cannot look for event consumers");
                }
                scanned = Some(Instant::now());
            }
            let tenants: Vec<String> = node
                .busy_tenants
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .iter()
                .cloned()
                .collect();
            for tenant in tenants {
                if let Err(e) = tick(&state, &http, &in_flight, &tenant).await {
                    tracing::warn!(tenant, error = %e, "event delivery round failed");
                }
            }
            if pruned.elapsed() >= PRUNE_EVERY {
                prune_all(&state).await;
                pruned = Instant::now();
            }
            tokio::select! {
                () = tokio::time::sleep(node.settings.poll) => {}
                () = node.wake.notified() => {}
                () = node.stopped() => {}
            }
        }
    });
}

fn context(state: &AppState, tenant: &str) -> TenantCtx {
    TenantCtx::new(tenant, &state.base_url, state.registries.clone())
}

/// Finds the tenants with consumers, tenant by tenant.
async fn scan(state: &AppState) -> Result<(), crate::error::ApiError> {
    if state.node.kafka.get().is_some() {
        super::builtin::enable(state, super::kafka::fanout::CONSUMER, Start::Now).await?;
    }
    if state.mpi_queued {
        // From the beginning: the Patients a tenant received before the
        // consumer existed are linked (those linked already are left as
        // they are).
        super::builtin::enable(state, queue::CONSUMER, Start::Beginning).await?;
    }
    let mut busy = HashSet::new();
    for tenant in state.tenants.active() {
        let ctx = context(state, &tenant);
        let mut client = state.pool.get().await?;
        let tx = begin_for(&mut client, &tenant, Access::ReadOnly).await?;
        if outbox::has_consumers(&tx, &ctx).await? {
            busy.insert(tenant);
        }
    }
    *state
        .node
        .busy_tenants
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = busy;
    Ok(())
}

/// Claims the tenant's free consumers and starts a delivery task for each
/// held one that has none running.
async fn tick(
    state: &AppState,
    http: &reqwest::Client,
    in_flight: &InFlight,
    tenant: &str,
) -> Result<(), crate::error::ApiError> {
    let ctx = context(state, tenant);
    let mut client = state.pool.get().await?;
    let tx = begin_for(&mut client, tenant, Access::ReadWrite).await?;
    let consumers = outbox::claim(
        &tx,
        &ctx,
        &state.node.id,
        &state.node.lease_interval(),
        &skipped(state),
    )
    .await?;
    tx.commit().await?;
    drop(client);
    for consumer in consumers {
        let name = consumer.name;
        let key = (tenant.to_owned(), name.clone());
        {
            let mut running = in_flight
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if !running.insert(key.clone()) {
                continue;
            }
        }
        let (state, http, ctx, in_flight) =
            (state.clone(), http.clone(), ctx.clone(), in_flight.clone());
        tokio::spawn(async move {
            while !state.node.is_stopped() {
                // The consumer as it is now: the claim above may predate
                // the previous task's last cursor move.
                let consumer = match reread(&state, &ctx, &name).await {
                    Ok(Some(consumer)) => consumer,
                    _ => break,
                };
                let round = match state.node.kafka.get() {
                    _ if consumer.name == queue::CONSUMER => {
                        queue::deliver(&state, &ctx, &consumer).await
                    }
                    Some(kafka) if consumer.name == super::kafka::fanout::CONSUMER => {
                        super::kafka::fanout::deliver(&state, kafka, &ctx, &consumer).await
                    }
                    _ => {
                        super::subscription::deliver(&state, &state.node, &http, &ctx, &consumer)
                            .await
                    }
                };
                match round {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(e) => {
                        tracing::warn!(
                            tenant = ctx.tenant,
                            consumer = consumer.name,
                            error = %e,
                            "event delivery failed"
                        );
                        break;
                    }
                }
            }
            in_flight
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(&key);
        });
    }
    Ok(())
}

/// The consumer's current state, while this instance holds it.
async fn reread(
    state: &AppState,
    ctx: &TenantCtx,
    name: &str,
) -> Result<Option<outbox::Consumer>, crate::error::ApiError> {
    let mut client = state.pool.get().await?;
    let tx = begin_for(&mut client, &ctx.tenant, Access::ReadWrite).await?;
    let held = outbox::claim(
        &tx,
        ctx,
        &state.node.id,
        &state.node.lease_interval(),
        &skipped(state),
    )
    .await?;
    tx.commit().await?;
    Ok(held.into_iter().find(|c| c.name == name))
}

/// The consumers this instance leaves to others: queued linking's, unless
/// it links that way.
fn skipped(state: &AppState) -> Vec<&'static str> {
    if state.mpi_queued {
        Vec::new()
    } else {
        vec![queue::CONSUMER]
    }
}

/// Prunes every tenant's delivered events past the retention.
async fn prune_all(state: &AppState) {
    let retention = format!("{} hours", state.node.settings.retention_hours);
    for tenant in state.tenants.active() {
        let ctx = context(state, &tenant);
        let pruned = async {
            let mut client = state.pool.get().await?;
            let tx = begin_for(&mut client, &tenant, Access::ReadWrite).await?;
            let n = outbox::prune(&tx, &ctx, &retention).await?;
            tx.commit().await?;
            Ok::<u64, crate::error::ApiError>(n)
        }
        .await;
        match pruned {
            Ok(0) => {}
            Ok(n) => tracing::info!(tenant, events = n, "pruned delivered change events"),
            Err(e) => tracing::warn!(tenant, error = %e, "cannot prune change events"),
        }
    }
}
