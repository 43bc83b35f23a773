//! The background worker: writes the records of batches sent complete,
//! a chunk of records per database transaction ([`super::chunk`]: checked
//! in parallel, written together behind a savepoint, halved on a refusal),
//! through the normal transaction
//! path (`service::transaction::prepare` and `execute`: validation,
//! terminology bindings, integrator stamps, references), and commits the
//! records' state and the batch counts in that same transaction. A crash
//! at any moment therefore leaves every record either written and marked
//! or neither; at start-up (and every few seconds, for batches another
//! process sent complete) the worker resumes at the first pending record.
//!
//! Each batch is processed with the rights of the caller that opened it,
//! and each record's write is audited as a transaction of that caller.

use super::caller;
use super::store::{self, Batch};
use super::{Status, caller::Reach};
use crate::error::ApiError;
use crate::service::AppState;
use crate::store::{Access, TenantCtx, begin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::Notify;

/// How often the worker looks for work nobody told it about (batches
/// sent complete by another process, such as `baraza dhis2 sync`).
const POLL: Duration = Duration::from_secs(2);

fn signal() -> &'static Notify {
    static WAKE: std::sync::OnceLock<Notify> = std::sync::OnceLock::new();
    WAKE.get_or_init(Notify::new)
}

/// Tells the workers of this process that a batch was sent complete.
pub fn wake() {
    signal().notify_waiters();
}

/// Stops the worker it was returned for.
#[derive(Debug, Clone, Default)]
pub struct Stopper(Arc<AtomicBool>);

impl Stopper {
    pub fn stop(&self) {
        self.0.store(true, Ordering::SeqCst);
        wake();
    }

    fn stopped(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Starts the worker of a running server.
pub fn spawn(state: AppState) -> Stopper {
    let stopper = Stopper::default();
    let stop = stopper.clone();
    tokio::spawn(async move {
        while !stop.stopped() {
            // Registered before the pass, so a wake during it is not lost.
            let notified = signal().notified();
            if let Err(e) = run_once(&state, &stop).await {
                tracing::warn!(error = %e, "ingest worker pass failed; retrying");
            }
            let _ = tokio::time::timeout(POLL, notified).await;
        }
    });
    stopper
}

/// One pass over every active tenant's batches to process.
async fn run_once(state: &AppState, stop: &Stopper) -> Result<(), ApiError> {
    for tenant in state.tenants.active() {
        let ids = {
            let mut client = state.pool.get().await?;
            let tx = crate::store::transaction::begin_for(&mut client, &tenant, Access::ReadOnly)
                .await?;
            store::batches_to_process(&tx, &tenant).await?
        };
        for id in ids {
            if stop.stopped() {
                return Ok(());
            }
            process_batch(state, &tenant, &id, stop).await?;
        }
    }
    Ok(())
}

/// Processes one batch until no record is pending, then completes it.
pub async fn process_batch(
    state: &AppState,
    tenant: &str,
    id: &str,
    stop: &Stopper,
) -> Result<(), ApiError> {
    let mut ctx = TenantCtx::new(tenant, &state.base_url, state.registries.clone());
    // Ingested Patients are linked like any other write.
    ctx.mpi = state.mpi.clone();
    ctx.mpi_queued = state.mpi_queued;
    let batch = {
        let mut client = state.pool.get().await?;
        let tx = begin(&mut client, &ctx, Access::ReadWrite).await?;
        let Some(batch) = store::find_batch(&tx, tenant, id, &Reach::All, true).await? else {
            return Ok(());
        };
        if batch.status == Status::SendCompleted {
            store::set_status(&tx, tenant, id, Status::Processing, None).await?;
        }
        tx.commit().await?;
        batch
    };
    if let Some(claims) = &batch.caller {
        ctx.caller = Some(Arc::new(caller::from_claims(claims)?));
        if let Err(refused) = crate::service::authorize::admit(state, &mut ctx).await {
            // The caller lost the tenant since: nothing of its batch is written.
            let message =
                format!("the batch's caller may no longer write to this tenant: {refused}");
            return fail_batch(state, &ctx, &batch, &message).await;
        }
    }
    let mut ahead = None;
    while !stop.stopped() {
        if !super::chunk::process_chunk(state, &ctx, id, &mut ahead).await? {
            break;
        }
    }
    Ok(())
}

async fn fail_batch(
    state: &AppState,
    ctx: &TenantCtx,
    batch: &Batch,
    message: &str,
) -> Result<(), ApiError> {
    let mut client = state.pool.get().await?;
    let tx = begin(&mut client, ctx, Access::ReadWrite).await?;
    store::set_status(&tx, &ctx.tenant, &batch.id, Status::Failed, Some(message)).await?;
    store::skip_pending(&tx, batch).await?;
    tx.commit().await?;
    Ok(())
}
