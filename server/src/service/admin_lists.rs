//! Read-only lists for the console's administration view (issue 11,
//! docs/console.md): the tenants a caller may open, with their names and
//! status, and a tenant's integrators with what their ingest batches
//! delivered. Tenants themselves are created, disabled and enabled with
//! `baraza tenant` as the schema owner: the request role may only read
//! the `tenants` table, so there is no HTTP way to change them.

use super::AppState;
use super::groups::AdminAnswer;
use super::overview::require_purpose;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::store::transaction::{Access, begin};
use crate::store::{TenantCtx, format_instant};
use actix_web::http::StatusCode;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

/// `GET /admin/tenants`: every tenant the caller belongs to (every tenant
/// with authentication off), active or not, with its name and creation
/// time. A caller learns nothing of tenants that are not its own.
pub async fn tenants(
    state: &AppState,
    caller: Option<&Principal>,
) -> Result<AdminAnswer, ApiError> {
    let client = state.pool.get().await?;
    let rows = client
        .query(
            "SELECT id, name, status, created_at FROM tenants ORDER BY id",
            &[],
        )
        .await?;
    let listed: Vec<Value> = rows
        .iter()
        .filter(|row| caller.is_none_or(|p| p.tenants.iter().any(|t| t == row.get::<_, &str>(0))))
        .map(|row| {
            json!({
                "id": row.get::<_, String>(0),
                "name": row.get::<_, String>(1),
                "status": row.get::<_, String>(2),
                "createdAt": format_instant(row.get::<_, DateTime<Utc>>(3)),
            })
        })
        .collect();
    Ok((StatusCode::OK, json!({ "tenants": listed })))
}

/// `GET /admin/{tenant}/integrators` (`tenant-admin`): each integrator that
/// opened a batch in the tenant, with its batch and record counts, open
/// batches, when it last sent and when a record of it last succeeded, and
/// how many source records it has delivered (their dedupe keys). Batches
/// opened by callers that are not integrators are listed as one row
/// without a name.
pub async fn integrators(state: &AppState, ctx: &TenantCtx) -> Result<AdminAnswer, ApiError> {
    require_purpose(ctx, &["tenant-admin"], "the list of integrators")?;
    let mut client = state.pool.get().await?;
    let tx = begin(&mut client, ctx, Access::ReadOnly).await?;
    let rows = tx
        .query(
            "SELECT b.integrator, count(*), \
                    count(*) FILTER (WHERE b.status IN ('started', 'sendCompleted', 'processing')), \
                    count(*) FILTER (WHERE b.status = 'failed'), \
                    sum(b.received)::bigint, sum(b.created)::bigint, sum(b.updated)::bigint, \
                    sum(b.unchanged)::bigint, sum(b.failed)::bigint, \
                    max(b.created_at), max(b.last_success_at), \
                    (SELECT count(*) FROM ingest_sources s \
                      WHERE s.tenant = $1 AND s.integrator = b.integrator) \
             FROM ingest_batches b WHERE b.tenant = $1 \
             GROUP BY b.integrator ORDER BY b.integrator NULLS LAST",
            &[&ctx.tenant],
        )
        .await?;
    tx.commit().await?;
    let instant = |at: Option<DateTime<Utc>>| at.map(format_instant);
    let listed: Vec<Value> = rows
        .iter()
        .map(|row| {
            json!({
                "integrator": row.get::<_, Option<String>>(0),
                "batches": row.get::<_, i64>(1),
                "openBatches": row.get::<_, i64>(2),
                "failedBatches": row.get::<_, i64>(3),
                "records": {
                    "received": row.get::<_, Option<i64>>(4).unwrap_or(0),
                    "created": row.get::<_, Option<i64>>(5).unwrap_or(0),
                    "updated": row.get::<_, Option<i64>>(6).unwrap_or(0),
                    "unchanged": row.get::<_, Option<i64>>(7).unwrap_or(0),
                    "failed": row.get::<_, Option<i64>>(8).unwrap_or(0),
                },
                "lastBatchAt": instant(row.get(9)),
                "lastSuccessAt": instant(row.get(10)),
                "sourceRecords": row.get::<_, i64>(11),
            })
        })
        .collect();
    Ok((
        StatusCode::OK,
        json!({ "tenant": ctx.tenant, "integrators": listed }),
    ))
}
