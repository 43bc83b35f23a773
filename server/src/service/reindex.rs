//! `$reindex`: makes a tenant's SearchParameter resources searchable.
//!
//! `POST [base]/$reindex` (every type) or `POST [base]/Type/$reindex`
//! answers 202 with `Content-Location: [base]/$reindex/{job}`, which `GET`
//! polls (a Parameters resource: status, phase, processed, total). The job
//! runs in the background in batches, each its own short transaction that
//! locks only the batch's rows, so writes go on; its cursor is committed
//! with each batch. A job runs on the instance holding its lease and
//! moves to another when that instance stops (`events::jobs`).
//!
//! While the job runs, writes index the new parameters too (the tenant's
//! indexing registry has them). After a pass over every resource, a
//! catch-up pass re-indexes what was written since shortly before the job
//! started, then the parameters whose bases were all re-indexed become
//! active for search.
//!
//! Every batch, and the search for jobs to resume at start-up, runs in a
//! transaction for the job's tenant (`store::begin`): row-level security
//! holds for background work too.

use super::{AppState, FhirResponse, ResponseBody};
use crate::error::{ApiError, Category};
use crate::search::index::index_rows;
use crate::store::index_tables::{IndexBatch, delete_rows, insert_rows};
use crate::store::{Access, Db, TenantCtx, TenantTx, begin};
use actix_web::http::StatusCode;
use deadpool_postgres::Pool;
use fhir::ResourceType;
use serde_json::{Value, json};

const BATCH: i64 = 200;
/// Writes that began up to this long before a job started are caught up.
const CATCH_UP_MARGIN: &str = "5 minutes";

/// Starts a job for `t` (or every type) and returns 202.
pub async fn start(
    state: &AppState,
    ctx: &TenantCtx,
    t: Option<ResourceType>,
) -> Result<FhirResponse, ApiError> {
    let mut client = state.pool.get().await?;
    let tx = begin(&mut client, ctx, Access::ReadWrite).await?;
    // One job per tenant at a time.
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('reindex|' || $1, 0))",
        &[&ctx.tenant],
    )
    .await?;
    let running = tx
        .query(
            "SELECT id FROM reindex_jobs WHERE tenant = $1 AND status = 'running'",
            &[&ctx.tenant],
        )
        .await?;
    if let Some(row) = running.first() {
        let id: String = row.get(0);
        return Err(ApiError::new(
            Category::Conflict,
            format!(
                "a $reindex job is already running: {}/$reindex/{id}",
                ctx.base_url
            ),
        ));
    }
    let definitions: Vec<Value> = tx
        .query(
            "SELECT h.content::text FROM resources r JOIN resource_history h \
             ON h.tenant = r.tenant AND h.res_type = r.res_type AND h.id = r.id AND h.version_id = r.version_id \
             WHERE r.tenant = $1 AND r.res_type = 'SearchParameter' AND NOT r.deleted ORDER BY r.id",
            &[&ctx.tenant],
        )
        .await?
        .iter()
        .filter_map(|row| serde_json::from_str::<Value>(&row.get::<_, String>(0)).ok())
        .filter(|sp| sp["status"] != "retired")
        .collect();
    let types: Option<Vec<String>> = t.map(|t| vec![t.as_str().to_owned()]);
    let total: i64 = tx
        .query_one(
            "SELECT count(*) FROM resources WHERE tenant = $1 AND NOT deleted \
             AND ($2::text[] IS NULL OR res_type = ANY($2))",
            &[&ctx.tenant, &types],
        )
        .await?
        .get(0);
    let active = active_definitions(&tx, ctx).await?;
    let problems = ctx
        .registries
        .install(&ctx.tenant, &active, Some(&definitions));
    let pending = Value::Array(definitions);
    tx.execute(
        "INSERT INTO search_param_sets (tenant, pending) VALUES ($1, $2::text::json) \
         ON CONFLICT (tenant) DO UPDATE SET pending = excluded.pending",
        &[&ctx.tenant, &pending.to_string()],
    )
    .await?;
    let id = uuid::Uuid::new_v4().to_string();
    tx.execute(
        "INSERT INTO reindex_jobs (id, tenant, types, status, total, started_at, problems, leased_by, lease_until) \
         VALUES ($1, $2, $3, 'running', $4, now(), $5::text::json, $6, now() + $7::text::interval)",
        &[
            &id,
            &ctx.tenant,
            &types,
            &total,
            &Value::from(problems).to_string(),
            &state.node.id,
            &state.node.lease_interval(),
        ],
    )
    .await?;
    // The other instances index writes with the pending parameters too.
    crate::events::notify::send(
        &tx,
        crate::events::notify::Message::Registries(ctx.tenant.clone()),
    )
    .await?;
    let mut response = status_response(&tx, ctx, &id).await?;
    response.status = StatusCode::ACCEPTED;
    tx.commit().await?;
    spawn(state.clone(), ctx.clone(), id.clone());
    Ok(response)
}

/// `GET [base]/$reindex/{id}`.
pub async fn status(db: &impl Db, ctx: &TenantCtx, id: &str) -> Result<FhirResponse, ApiError> {
    status_response(db, ctx, id).await
}

async fn status_response(
    db: &impl Db,
    ctx: &TenantCtx,
    id: &str,
) -> Result<FhirResponse, ApiError> {
    let rows = db
        .query(
            "SELECT status, phase, processed, total, coalesce(array_to_string(types, ','), '*'), \
             to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), \
             to_char(finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), problems::text, error \
             FROM reindex_jobs WHERE tenant = $1 AND id = $2",
            &[&ctx.tenant, &id],
        )
        .await?;
    let Some(row) = rows.first() else {
        return Err(ApiError::not_found(format!("no $reindex job {id}")));
    };
    let mut parameters = vec![
        json!({"name": "job", "valueString": id}),
        json!({"name": "status", "valueCode": row.get::<_, String>(0)}),
        json!({"name": "phase", "valueCode": row.get::<_, String>(1)}),
        json!({"name": "processed", "valueInteger": row.get::<_, i64>(2)}),
        json!({"name": "total", "valueInteger": row.get::<_, i64>(3)}),
        json!({"name": "types", "valueString": row.get::<_, String>(4)}),
        json!({"name": "started", "valueInstant": row.get::<_, String>(5)}),
    ];
    if let Some(finished) = row.get::<_, Option<String>>(6) {
        parameters.push(json!({"name": "finished", "valueInstant": finished}));
    }
    let problems: Vec<String> = serde_json::from_str(&row.get::<_, String>(7)).unwrap_or_default();
    for problem in problems {
        parameters.push(json!({"name": "problem", "valueString": problem}));
    }
    if let Some(error) = row.get::<_, Option<String>>(8) {
        parameters.push(json!({"name": "error", "valueString": error}));
    }
    Ok(FhirResponse {
        status: StatusCode::OK,
        body: ResponseBody::Json(json!({"resourceType": "Parameters", "parameter": parameters})),
        location: Some(format!("$reindex/{id}")),
        version_id: None,
        last_modified: None,
        touched: crate::audit::Touched::default(),
    })
}

async fn active_definitions(db: &impl Db, ctx: &TenantCtx) -> Result<Vec<Value>, ApiError> {
    let rows = db
        .query(
            "SELECT active::text FROM search_param_sets WHERE tenant = $1",
            &[&ctx.tenant],
        )
        .await?;
    Ok(rows
        .first()
        .and_then(|row| serde_json::from_str(&row.get::<_, String>(0)).ok())
        .unwrap_or_default())
}

/// Adopts the tenant's running jobs that no instance holds (their lease
/// ran out: the instance died or stopped) and runs them here, from their
/// cursors (`events::jobs`). Runs in a transaction for the tenant.
pub async fn adopt(state: &AppState, tenant: &str) -> Result<(), ApiError> {
    let ctx = TenantCtx::new(tenant, &state.base_url, state.registries.clone());
    let mut client = state.pool.get().await?;
    let tx = begin(&mut client, &ctx, Access::ReadWrite).await?;
    let rows = tx
        .query(
            "UPDATE reindex_jobs SET leased_by = $2, lease_until = now() + $3::text::interval \
             WHERE tenant = $1 AND status = 'running' \
             AND (leased_by IS NULL OR lease_until IS NULL OR lease_until < now()) \
             RETURNING id",
            &[&ctx.tenant, &state.node.id, &state.node.lease_interval()],
        )
        .await?;
    tx.commit().await?;
    for row in rows {
        tracing::info!(
            tenant,
            job = row.get::<_, String>(0),
            "running $reindex here"
        );
        spawn(state.clone(), ctx.clone(), row.get(0));
    }
    Ok(())
}

async fn mark_failed(pool: &Pool, ctx: &TenantCtx, id: &str, error: &str) -> Result<(), ApiError> {
    let mut client = pool.get().await?;
    let tx = begin(&mut client, ctx, Access::ReadWrite).await?;
    tx.execute(
        "UPDATE reindex_jobs SET status = 'failed', error = $3, finished_at = now() \
         WHERE tenant = $1 AND id = $2",
        &[&ctx.tenant, &id, &error],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

fn spawn(state: AppState, ctx: TenantCtx, id: String) {
    tokio::spawn(async move {
        let pool = state.pool.clone();
        if let Err(e) = run(&state, &ctx, &id).await {
            tracing::error!(job = id, error = %e, "$reindex failed");
            if let Err(e) = mark_failed(&pool, &ctx, &id, &e.to_string()).await {
                tracing::error!(job = id, error = %e, "cannot record the $reindex failure");
            }
        }
    });
}

/// Runs (or resumes) a job to the end, while this instance holds its
/// lease: every batch checks and renews it, and stops if another instance
/// adopted the job.
async fn run(state: &AppState, ctx: &TenantCtx, id: &str) -> Result<(), ApiError> {
    let pool = &state.pool;
    let lease = state.node.lease_interval();
    let mut first = true;
    loop {
        if state.node.is_stopped() {
            // The lease runs out and another instance (or the next start)
            // adopts the job.
            return Ok(());
        }
        if !first && !state.node.settings.job_throttle.is_zero() {
            tokio::time::sleep(state.node.settings.job_throttle).await;
        }
        first = false;
        let mut client = pool.get().await?;
        let tx = begin(&mut client, ctx, Access::ReadWrite).await?;
        let job = tx
            .query_one(
                "SELECT types, phase, cursor_type, cursor_id, status, leased_by IS NOT DISTINCT FROM $3 \
                 FROM reindex_jobs WHERE id = $1 AND tenant = $2 FOR UPDATE",
                &[&id, &ctx.tenant, &state.node.id],
            )
            .await?;
        let types: Option<Vec<String>> = job.get(0);
        let phase: String = job.get(1);
        let (cursor_type, cursor_id): (String, String) = (job.get(2), job.get(3));
        if job.get::<_, String>(4) != "running" {
            return Ok(());
        }
        if !job.get::<_, bool>(5) {
            tracing::info!(job = id, "$reindex moved to another instance");
            return Ok(());
        }
        tx.execute(
            "UPDATE reindex_jobs SET lease_until = now() + $3::text::interval WHERE id = $1 AND tenant = $2",
            &[&id, &ctx.tenant, &lease],
        )
        .await?;
        let since = (phase == "catch-up").then_some(());
        let rows = tx
            .query(
                &format!(
                    "SELECT r.res_type, r.id, h.content::text FROM resources r JOIN resource_history h \
                     ON h.tenant = r.tenant AND h.res_type = r.res_type AND h.id = r.id AND h.version_id = r.version_id \
                     WHERE r.tenant = $1 AND NOT r.deleted AND ($2::text[] IS NULL OR r.res_type = ANY($2)) \
                     AND (r.res_type, r.id) > ($3, $4) {} \
                     ORDER BY r.res_type, r.id LIMIT {BATCH} FOR UPDATE OF r",
                    if since.is_some() {
                        format!(
                            "AND r.last_updated >= (SELECT started_at FROM reindex_jobs WHERE tenant = $1 AND id = $5) - interval '{CATCH_UP_MARGIN}'"
                        )
                    } else {
                        "AND $5::text IS NOT NULL".to_owned()
                    }
                ),
                &[&ctx.tenant, &types, &cursor_type, &cursor_id, &id],
            )
            .await?;
        let registry = ctx.index_registry();
        let mut batch = IndexBatch::default();
        let (mut res_types, mut ids) = (Vec::new(), Vec::new());
        for row in &rows {
            let (t, rid, text): (String, String, String) = (row.get(0), row.get(1), row.get(2));
            let resource: Value = serde_json::from_str(&text).map_err(ApiError::fault)?;
            batch.add(
                &t,
                &rid,
                index_rows(&registry, &t, &resource, &ctx.base_url),
            );
            res_types.push(t);
            ids.push(rid);
        }
        delete_rows(&tx, ctx, &res_types, &ids).await?;
        insert_rows(&tx, ctx, &batch).await?;
        match (res_types.last(), ids.last()) {
            (Some(t), Some(i)) => {
                tx.execute(
                    "UPDATE reindex_jobs SET cursor_type = $2, cursor_id = $3, processed = processed + $4 \
                     WHERE id = $1 AND tenant = $5",
                    &[&id, t, i, &(ids.len() as i64), &ctx.tenant],
                )
                .await?;
            }
            _ if phase == "pass" => {
                tx.execute(
                    "UPDATE reindex_jobs SET phase = 'catch-up', cursor_type = '', cursor_id = '' \
                     WHERE id = $1 AND tenant = $2",
                    &[&id, &ctx.tenant],
                )
                .await?;
            }
            _ => {
                let (active, pending) = finish(&tx, ctx, id, types.as_deref()).await?;
                crate::events::notify::send(
                    &tx,
                    crate::events::notify::Message::Registries(ctx.tenant.clone()),
                )
                .await?;
                tx.commit().await?;
                let pending = (!pending.is_empty()).then_some(pending.as_slice());
                ctx.registries.install(&ctx.tenant, &active, pending);
                return Ok(());
            }
        }
        tx.commit().await?;
    }
}

/// Activates the pending parameters whose bases the job re-indexed;
/// returns the new active and pending sets.
async fn finish(
    tx: &TenantTx<'_>,
    ctx: &TenantCtx,
    id: &str,
    types: Option<&[String]>,
) -> Result<(Vec<Value>, Vec<Value>), ApiError> {
    let row = tx
        .query_one(
            "SELECT active::text, pending::text FROM search_param_sets WHERE tenant = $1 FOR UPDATE",
            &[&ctx.tenant],
        )
        .await?;
    let active: Vec<Value> = serde_json::from_str(&row.get::<_, String>(0)).unwrap_or_default();
    let pending: Vec<Value> = row
        .get::<_, Option<String>>(1)
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    let covered = |sp: &Value| match types {
        None => true,
        Some(types) => sp["base"].as_array().is_some_and(|b| {
            b.iter()
                .all(|b| b.as_str().is_some_and(|b| types.iter().any(|t| t == b)))
        }),
    };
    let url = |sp: &Value| sp["url"].as_str().unwrap_or_default().to_owned();
    // New or changed definitions the job covered replace the active ones
    // with the same URL; deleted ones (no longer pending) go when the job
    // covered every type.
    let mut next: Vec<Value> = if types.is_none() {
        Vec::new()
    } else {
        active
            .into_iter()
            .filter(|a| !pending.iter().any(|p| url(p) == url(a) && covered(p)))
            .collect()
    };
    next.extend(pending.iter().filter(|p| covered(p)).cloned());
    let still_pending: Vec<Value> = pending.into_iter().filter(|p| !covered(p)).collect();
    let still =
        (!still_pending.is_empty()).then(|| Value::Array(still_pending.clone()).to_string());
    tx.execute(
        "UPDATE search_param_sets SET active = $2::text::json, pending = $3::text::json WHERE tenant = $1",
        &[&ctx.tenant, &Value::Array(next.clone()).to_string(), &still],
    )
    .await?;
    tx.execute(
        "UPDATE reindex_jobs SET status = 'done', finished_at = now() WHERE id = $1 AND tenant = $2",
        &[&id, &ctx.tenant],
    )
    .await?;
    Ok((next, still_pending))
}
