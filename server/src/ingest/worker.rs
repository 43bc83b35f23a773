//! The background worker: writes the records of batches sent complete,
//! one record per database transaction, through the normal transaction
//! path (`service::transaction::prepare` and `execute`: validation,
//! terminology bindings, integrator stamps, references), and commits the
//! record's state and the batch counts in that same transaction. A crash
//! at any moment therefore leaves every record either written and marked
//! or neither; at start-up (and every few seconds, for batches another
//! process sent complete) the worker resumes at the first pending record.
//!
//! Each batch is processed with the rights of the caller that opened it,
//! and each record's write is audited as a transaction of that caller.

use super::caller;
use super::store::{self, Batch, Done};
use super::{Status, caller::Reach};
use crate::error::{ApiError, Category};
use crate::service::{AppState, transaction};
use crate::store::{Access, TenantCtx, begin};
use actix_web::http::{Method, StatusCode};
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
    while !stop.stopped() {
        if !process_next(state, &ctx, id).await? {
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

/// Writes the batch's next pending record with its state, in one
/// transaction. Returns whether the batch may have more to do.
async fn process_next(state: &AppState, ctx: &TenantCtx, id: &str) -> Result<bool, ApiError> {
    let tenant = ctx.tenant.as_str();
    let mut client = state.pool.get().await?;
    let tx = begin(&mut client, ctx, Access::ReadWrite).await?;
    // The row lock orders this with terminate and with other workers.
    let Some(batch) = store::find_batch(&tx, tenant, id, &Reach::All, true).await? else {
        return Ok(false);
    };
    if batch.status != Status::Processing {
        return Ok(false);
    }
    let Some(record) = store::next_pending(&tx, &batch).await? else {
        store::set_status(&tx, tenant, id, Status::Completed, None).await?;
        tx.commit().await?;
        return Ok(false);
    };
    let integrator = batch.integrator.clone().unwrap_or_default();
    let previous = store::source_hash(&tx, tenant, &integrator, &record.source_id).await?;
    if previous.as_deref() == Some(record.content_hash.as_str()) {
        store::finish_record(&tx, &batch, record.seq, Done::Unchanged, None).await?;
        tx.commit().await?;
        state.metrics.ingest_record(
            tenant,
            &caller::label(batch.integrator.as_deref()),
            "unchanged",
        );
        return Ok(true);
    }
    let written = match transaction::prepare(ctx, record.payload) {
        Ok(prepared) => transaction::execute(&tx, state, ctx, prepared, None).await,
        Err(e) => Err(e),
    };
    let label = caller::label(batch.integrator.as_deref());
    match written {
        Ok(responses) => {
            let created = responses.iter().any(|r| r.status == StatusCode::CREATED);
            let done = if created {
                Done::Created
            } else {
                Done::Updated
            };
            store::remember_source(
                &tx,
                &batch,
                &integrator,
                &record.source_id,
                &record.content_hash,
            )
            .await?;
            store::finish_record(&tx, &batch, record.seq, done, None).await?;
            tx.commit().await?;
            let n = responses.len() as u64;
            let response = transaction::respond(responses)?;
            audit(state, ctx, StatusCode::OK, response.touched).await;
            state.metrics.ingest_record(tenant, &label, done.as_str());
            state.metrics.ingest_entries(tenant, &label, n, 0);
        }
        // The database is out of reach: the record stays pending and the
        // batch is tried again on the next pass.
        Err(refused) if refused.category == Category::Unavailable => return Err(refused),
        Err(refused) => {
            // The write's transaction may be unusable: roll it back and
            // record the failure in a fresh one.
            drop(tx);
            let tx = begin(&mut client, ctx, Access::ReadWrite).await?;
            let Some(batch) = store::find_batch(&tx, tenant, id, &Reach::All, true).await? else {
                return Ok(false);
            };
            if batch.status != Status::Processing {
                return Ok(false);
            }
            let outcome = refused.outcome();
            store::finish_record(&tx, &batch, record.seq, Done::Failed, Some(&outcome)).await?;
            tx.commit().await?;
            audit(
                state,
                ctx,
                refused.status(),
                crate::audit::Touched::default(),
            )
            .await;
            state.metrics.ingest_record(tenant, &label, "failed");
            state.metrics.ingest_entries(tenant, &label, 0, 1);
        }
    }
    Ok(true)
}

/// Audits one record's write as a transaction of the batch's caller.
async fn audit(
    state: &AppState,
    ctx: &TenantCtx,
    status: StatusCode,
    touched: crate::audit::Touched,
) {
    let mut pending = crate::audit::Pending::begin(&Method::POST, None);
    pending.path("", false);
    pending.context(ctx);
    pending.touched(touched);
    state.audit.record(pending, status).await;
}
