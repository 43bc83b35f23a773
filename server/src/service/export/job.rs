//! Running `$export` jobs in the background. A job goes through its types
//! in order, a page at a time (keyset by id, so memory is bounded by one
//! page); each page is its own transaction that locks the job row, reads
//! the page, appends its NDJSON to the type's file and moves the cursor,
//! so a job killed at any moment resumes after its last committed page.
//! A job runs under a lease (`export_jobs.leased_by`, `lease_until`),
//! renewed by every page: one instance runs it at a time, and when that
//! instance dies or stops, another adopts it once the lease runs out
//! (`adopt`, called by the job adopter `events::jobs` at start-up and
//! every half lease). A cancel deletes the job row, which the next page
//! sees.
//!
//! Resources changed after the job's `transactionTime` are written as they
//! were at that instant (from their history), so the export is the data as
//! of `transactionTime` and a later `_since=transactionTime` export picks up
//! the changes.

use super::Exports;
use super::spec::Spec;
use crate::error::ApiError;
use crate::search::criteria::Criteria;
use crate::search::execute::{self, Query};
use crate::search::sort::Cursor;
use crate::store::{Access, TenantCtx, begin, export};
use deadpool_postgres::Pool;
use fhir::deidentify::Deidentifier;
use std::sync::Arc;

/// Starts (or resumes) job `id` in the background, unless it already runs
/// on this instance.
pub fn spawn(pool: Pool, exports: Arc<Exports>, ctx: TenantCtx, id: String) {
    {
        let mut active = exports
            .active
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !active.insert(id.clone()) {
            return;
        }
    }
    tokio::spawn(async move {
        // At most `concurrency` jobs read at once; the others wait here.
        if let Ok(_permit) = exports.running.acquire().await {
            if let Err(e) = run(&pool, &exports, &ctx, &id).await {
                tracing::error!(job = id, error = %e, "$export failed");
                if let Err(e) = fail(&pool, &exports, &ctx, &id, &e).await {
                    tracing::error!(job = id, error = %e, "cannot record the $export failure");
                }
            }
        }
        exports
            .active
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&id);
    });
}

/// Adopts the tenant's running jobs that no instance holds (new, or left
/// by an instance that died or stopped) and runs them here.
pub async fn adopt(pool: &Pool, exports: &Arc<Exports>, ctx: &TenantCtx) -> Result<(), ApiError> {
    let mut client = pool.get().await?;
    let tx = begin(&mut client, ctx, Access::ReadWrite).await?;
    let ids = export::adopt(&tx, ctx, &exports.node, &exports.lease).await?;
    tx.commit().await?;
    for id in ids {
        tracing::info!(job = id, tenant = ctx.tenant, "adopting $export");
        spawn(pool.clone(), exports.clone(), ctx.clone(), id);
    }
    Ok(())
}

async fn fail(
    pool: &Pool,
    exports: &Exports,
    ctx: &TenantCtx,
    id: &str,
    error: &ApiError,
) -> Result<(), ApiError> {
    let mut client = pool.get().await?;
    let tx = begin(&mut client, ctx, Access::ReadWrite).await?;
    let message = error
        .issues
        .first()
        .map_or_else(|| "the export failed".to_owned(), |i| i.diagnostics.clone());
    export::finish(&tx, ctx, id, "failed", Some(&message), exports.expiry()).await?;
    tx.commit().await?;
    Ok(())
}

/// What a running job keeps between pages.
struct State {
    spec: Spec,
    /// The criteria of the type at `.0`.
    criteria: Option<(usize, Criteria)>,
    deidentifier: Option<Deidentifier>,
}

async fn run(pool: &Pool, exports: &Exports, ctx: &TenantCtx, id: &str) -> Result<(), ApiError> {
    let mut state: Option<State> = None;
    loop {
        let mut client = pool.get().await?;
        let tx = begin(&mut client, ctx, Access::ReadWrite).await?;
        let Some(job) = export::lock_running(&tx, ctx, id).await? else {
            return Ok(()); // cancelled, or finished by another process
        };
        if !export::hold_lease(&tx, ctx, id, &exports.node, &exports.lease).await? {
            return Ok(()); // another instance holds it and runs it
        }
        let state = match &mut state {
            Some(state) => state,
            None => state.insert(State {
                spec: serde_json::from_value(job.spec.clone()).map_err(ApiError::fault)?,
                criteria: None,
                deidentifier: job.spec["deidentify"]
                    .as_bool()
                    .filter(|d| *d)
                    .map(|_| exports.deidentifier(job.pseudonym_key.as_deref())),
            }),
        };
        if job.total.is_none() {
            // Once, as the job starts: types without resources are dropped
            // (a Patient export names some seventy types), the rest counted.
            let present = export::present_types(&tx, ctx).await?;
            state
                .spec
                .types
                .retain(|plan| present.contains(&plan.res_type));
            let total = estimate_total(&tx, ctx, &state.spec).await?;
            let spec = serde_json::to_value(&state.spec).map_err(ApiError::fault)?;
            export::set_plan(&tx, ctx, id, &spec, total).await?;
            tx.commit().await?;
            continue;
        }
        let index = usize::try_from(job.type_index).unwrap_or(usize::MAX);
        let Some(plan) = state.spec.types.get(index) else {
            export::finish(&tx, ctx, id, "done", None, exports.expiry()).await?;
            tx.commit().await?;
            tracing::info!(job = id, resources = job.processed, "$export done");
            return Ok(());
        };
        if state.criteria.as_ref().is_none_or(|(i, _)| *i != index) {
            state.criteria = Some((index, plan.criteria(ctx, &state.spec)?));
        }
        let criteria = state
            .criteria
            .as_ref()
            .map(|(_, c)| c)
            .ok_or_else(|| ApiError::fault("no criteria"))?;
        let types = [plan.res_type.clone()];
        let after = Cursor {
            res_type: plan.res_type.clone(),
            id: job.cursor_id.clone(),
            keys: Vec::new(),
        };
        let query = Query {
            types: &types,
            criteria,
            sort: &[],
        };
        let found = execute::find(&tx, ctx, query, exports.page_size, Some(&after)).await?;
        let Some(last) = found.last().map(|f| f.stored.id.clone()) else {
            export::advance(&tx, ctx, id, job.type_index + 1, "", 0).await?;
            tx.commit().await?;
            continue;
        };
        let changed: Vec<String> = found
            .iter()
            .filter(|f| f.stored.last_updated > job.transaction_time)
            .map(|f| f.stored.id.clone())
            .collect();
        let as_of = if changed.is_empty() {
            Default::default()
        } else {
            export::versions_at(&tx, ctx, &plan.res_type, &changed, job.transaction_time).await?
        };
        let mut ndjson = Vec::with_capacity(found.len() * 1024);
        let mut count = 0i64;
        for f in &found {
            let content = match as_of.get(&f.stored.id) {
                Some(then) => then.as_deref(),
                None => f.stored.content.as_deref(),
            };
            let Some(content) = content else { continue };
            write_line(&mut ndjson, content, state.deidentifier.as_ref())?;
            count += 1;
        }
        if count > 0 {
            export::append(
                &tx,
                ctx,
                id,
                "output",
                &plan.res_type,
                &ndjson,
                count,
                exports.per_file,
            )
            .await?;
        }
        export::advance(&tx, ctx, id, job.type_index, &last, count).await?;
        tx.commit().await?;
    }
}

/// One resource as an NDJSON line: the stored JSON text as it is (the
/// server stores compact JSON), or de-identified.
fn write_line(
    out: &mut Vec<u8>,
    content: &str,
    deidentifier: Option<&Deidentifier>,
) -> Result<(), ApiError> {
    match deidentifier {
        None if !content.contains('\n') => out.extend_from_slice(content.as_bytes()),
        _ => {
            let mut resource: serde_json::Value =
                serde_json::from_str(content).map_err(ApiError::fault)?;
            if let Some(d) = deidentifier {
                d.resource(&mut resource);
            }
            serde_json::to_writer(&mut *out, &resource).map_err(ApiError::fault)?;
        }
    }
    out.push(b'\n');
    Ok(())
}

/// About how many resources the job will write, for `X-Progress`: exact
/// for small types, the planner's estimate for large ones.
async fn estimate_total(
    db: &impl crate::store::Db,
    ctx: &TenantCtx,
    spec: &Spec,
) -> Result<i64, ApiError> {
    let mut total = 0;
    for plan in &spec.types {
        let criteria = plan.criteria(ctx, spec)?;
        let types = [plan.res_type.clone()];
        let query = Query {
            types: &types,
            criteria: &criteria,
            sort: &[],
        };
        total += execute::estimate(db, ctx, query).await?;
    }
    Ok(total)
}
