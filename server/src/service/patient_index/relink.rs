//! `Patient/$mpi-relink`: re-scores a tenant's whole index with the
//! server's configuration as a background job (docs/mpi.md). `POST`
//! starts it (`batch`, default 500) and answers 202 with
//! `Content-Location: [base]/Patient/$mpi-relink?job={id}`, which `GET`
//! answers with the job's progress (without `job`: the latest job).
//!
//! The job runs a batch per transaction (`mpi::store::relink_step`, which
//! also writes the golden Patients and links the batch changed) on the
//! instance holding its lease, renewed with every batch. An instance that
//! stops leaves the lease to run out; another instance (or this one's
//! next start) adopts the job and resumes it from its cursor
//! (`events::jobs` calls [`adopt`]). The name frequencies are refreshed
//! periodically ([`spawn_frequency_refresh`]).

use super::link::apply_outcome;
use super::{linker, store_error};
use crate::error::ApiError;
use crate::service::operations::Invocation;
use crate::service::{AppState, FhirRequest, FhirResponse, ResponseBody};
use crate::store::{Access, TenantCtx, begin, now};
use actix_web::http::StatusCode;
use futures_util::future::BoxFuture;
use mpi::store::{JobProgress, Lease};
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// How often each tenant's name frequencies are checked for drift.
const FREQUENCY_CHECK: Duration = Duration::from_secs(600);

pub fn relink_handler<'a>(
    state: &'a AppState,
    ctx: &'a TenantCtx,
    _: Invocation,
    req: FhirRequest,
) -> BoxFuture<'a, Result<FhirResponse, ApiError>> {
    Box::pin(relink(state, ctx, req))
}

async fn relink(
    state: &AppState,
    ctx: &TenantCtx,
    req: FhirRequest,
) -> Result<FhirResponse, ApiError> {
    linker(ctx)?;
    let params = crate::service::terminology::params(&req)?;
    if req.method == actix_web::http::Method::GET {
        params.only(&["job"])?;
        let job = params.text("job")?;
        let mut client = state.pool.get().await?;
        let tx = begin(&mut client, ctx, Access::ReadOnly).await?;
        let progress = match job {
            Some((id, at)) => mpi::store::job_progress(&**tx, &ctx.tenant, id)
                .await
                .map_err(|e| store_error(e).at(at))?,
            None => mpi::store::latest_relink(&**tx, &ctx.tenant, false)
                .await
                .map_err(store_error)?
                .ok_or_else(|| ApiError::not_found("no relink job was started"))?,
        };
        return Ok(answer(StatusCode::OK, &progress));
    }
    params.only(&["batch"])?;
    let batch = match params.count("batch")? {
        None => mpi::store::DEFAULT_RELINK_BATCH,
        Some(n) if (1..=10_000).contains(&n) => n as i32,
        Some(n) => {
            return Err(
                ApiError::invalid(format!("batch must be 1 to 10000 records, not {n}")).at("batch"),
            );
        }
    };
    let id = format!("relink-{}", uuid::Uuid::new_v4().simple());
    let interval = state.node.lease_interval();
    let lease = Lease {
        holder: &state.node.id,
        interval: &interval,
    };
    let mut client = state.pool.get().await?;
    let tx = begin(&mut client, ctx, Access::ReadWrite).await?;
    let progress = mpi::store::start_relink_job(&**tx, &ctx.tenant, &id, batch, Some(lease))
        .await
        .map_err(store_error)?;
    tx.commit().await?;
    spawn(state.clone(), ctx.tenant.clone(), id);
    Ok(answer(StatusCode::ACCEPTED, &progress))
}

/// The job's progress as Parameters, with its status URL.
fn answer(status: StatusCode, job: &JobProgress) -> FhirResponse {
    let mut parameters = vec![
        json!({"name": "job", "valueString": job.id}),
        json!({"name": "status", "valueCode": job.status}),
        json!({"name": "processed", "valueInteger": job.processed}),
        json!({"name": "total", "valueInteger": job.total}),
        json!({"name": "changed", "valueInteger": job.changed}),
        json!({"name": "batch", "valueInteger": job.batch}),
    ];
    if let Some(holder) = &job.leased_by {
        parameters.push(json!({"name": "instance", "valueString": holder}));
    }
    if let Some(error) = &job.error {
        parameters.push(json!({"name": "error", "valueString": error}));
    }
    FhirResponse {
        status,
        body: ResponseBody::Json(json!({"resourceType": "Parameters", "parameter": parameters})),
        location: Some(format!("Patient/$mpi-relink?job={}", job.id)),
        version_id: None,
        last_modified: None,
        touched: crate::audit::Touched::default(),
    }
}

/// Adopts the tenant's relink jobs whose holder's lease ran out and runs
/// them here from their cursors.
pub async fn adopt(state: &AppState, tenant: &str) -> Result<(), ApiError> {
    if state.mpi.is_none() {
        return Ok(());
    }
    let ctx = TenantCtx::new(tenant, &state.base_url, state.registries.clone());
    let interval = state.node.lease_interval();
    let lease = Lease {
        holder: &state.node.id,
        interval: &interval,
    };
    let mut client = state.pool.get().await?;
    let tx = begin(&mut client, &ctx, Access::ReadWrite).await?;
    let adopted = mpi::store::adopt_relinks(&**tx, tenant, lease)
        .await
        .map_err(store_error)?;
    tx.commit().await?;
    for job in adopted {
        tracing::info!(tenant, job, "running the MPI relink here");
        spawn(state.clone(), tenant.to_owned(), job);
    }
    Ok(())
}

fn spawn(state: AppState, tenant: String, job: String) {
    tokio::spawn(async move {
        if let Err(e) = run(&state, &tenant, &job).await {
            tracing::error!(tenant, job, error = %e, "the MPI relink failed");
            if let Err(e) = fail(&state, &tenant, &job, &e.to_string()).await {
                tracing::error!(tenant, job, error = %e, "cannot record the relink failure");
            }
        }
    });
}

/// Runs a job's batches while this instance holds its lease; stops when
/// the job is done, another instance took it over, or the server stops
/// (the lease then runs out and another instance adopts the job).
async fn run(state: &AppState, tenant: &str, job: &str) -> Result<(), ApiError> {
    let mut ctx = TenantCtx::new(tenant, &state.base_url, state.registries.clone());
    ctx.mpi = state.mpi.clone();
    let linker = linker(&ctx)?.clone();
    let interval = state.node.lease_interval();
    let lease = Lease {
        holder: &state.node.id,
        interval: &interval,
    };
    let mut first = true;
    loop {
        if state.node.is_stopped() {
            return Ok(());
        }
        if !first && !state.node.settings.job_throttle.is_zero() {
            tokio::time::sleep(state.node.settings.job_throttle).await;
        }
        first = false;
        let mut client = state.pool.get().await?;
        let tx = begin(&mut client, &ctx, Access::ReadWrite).await?;
        if !mpi::store::hold_lease(&**tx, tenant, job, lease)
            .await
            .map_err(store_error)?
        {
            tracing::info!(tenant, job, "the MPI relink is done or runs elsewhere");
            return Ok(());
        }
        let batch = mpi::store::job_progress(&**tx, tenant, job)
            .await
            .map_err(store_error)?
            .batch;
        let (progress, outcome) =
            mpi::store::relink_step(&**tx, &linker, tenant, job, batch.max(1) as usize)
                .await
                .map_err(store_error)?;
        apply_outcome(&tx, &ctx, &outcome, &HashSet::new(), None, now()).await?;
        tx.commit().await?;
        if progress.status != "running" {
            return Ok(());
        }
    }
}

async fn fail(state: &AppState, tenant: &str, job: &str, error: &str) -> Result<(), ApiError> {
    let ctx = TenantCtx::new(tenant, &state.base_url, state.registries.clone());
    let mut client = state.pool.get().await?;
    let tx = begin(&mut client, &ctx, Access::ReadWrite).await?;
    mpi::store::fail_job(&**tx, tenant, job, error)
        .await
        .map_err(store_error)?;
    tx.commit().await?;
    Ok(())
}

/// Refreshes each tenant's name frequencies when its record count has
/// drifted more than 1 % from the count they were computed from (checked
/// every ten minutes and at start): scores' term-frequency adjustment
/// follows the index as it grows without a refresh per write.
pub fn spawn_frequency_refresh(state: AppState) {
    if state.mpi.is_none() {
        return;
    }
    tokio::spawn(async move {
        let mut checked: HashMap<String, Instant> = HashMap::new();
        let every = (state.node.settings.lease / 2).max(Duration::from_millis(200));
        while !state.node.is_stopped() {
            for tenant in state.tenants.active() {
                let due = checked
                    .get(&tenant)
                    .is_none_or(|at| at.elapsed() >= FREQUENCY_CHECK);
                if !due {
                    continue;
                }
                checked.insert(tenant.clone(), Instant::now());
                if let Err(e) = refresh_if_drifted(&state, &tenant).await {
                    tracing::warn!(tenant, error = %e, "cannot refresh the MPI name frequencies");
                }
            }
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                () = state.node.stopped() => {}
            }
        }
    });
}

/// Refreshes a tenant's name frequencies if they drifted; returns whether
/// it did.
async fn refresh_if_drifted(state: &AppState, tenant: &str) -> Result<bool, ApiError> {
    let ctx = TenantCtx::new(tenant, &state.base_url, state.registries.clone());
    let mut client = state.pool.get().await?;
    let tx = begin(&mut client, &ctx, Access::ReadWrite).await?;
    let (counted, records) = mpi::store::name_frequency_drift(&**tx, tenant)
        .await
        .map_err(store_error)?;
    let drifted = records > 0 && (counted == 0 || (records - counted).abs() * 100 > records);
    if !drifted {
        return Ok(false);
    }
    mpi::store::refresh_name_frequencies(&**tx, tenant)
        .await
        .map_err(store_error)?;
    tx.commit().await?;
    tracing::info!(
        tenant,
        counted,
        records,
        "refreshed the MPI name frequencies"
    );
    Ok(true)
}
