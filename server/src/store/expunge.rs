//! Hard deletion (`$expunge`, retention policies): resources with every
//! version, their index rows, the terminology rows a CodeSystem, ValueSet
//! or ConceptMap put in the terminology tables, a Patient's rows in the
//! MPI tables, their change events in the outbox, the rows materialized
//! SQL-on-FHIR views hold for them, and
//! the unexpired `$export` files that contain them. The audit trail is not
//! touched: it keeps that a deletion happened (its event names the
//! operation and target), never the deleted content.

use super::index_tables::delete_rows;
use super::{Db, TenantCtx};
use crate::error::ApiError;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// Resources expunged, per type.
pub type Removed = BTreeMap<String, i64>;

/// Hard-deletes the resources `(types[i], ids[i])`, returning how many of
/// each type existed (deleted or not).
pub async fn expunge(
    db: &impl Db,
    ctx: &TenantCtx,
    types: &[String],
    ids: &[String],
) -> Result<Removed, ApiError> {
    let mut removed = Removed::new();
    if ids.is_empty() {
        return Ok(removed);
    }
    // Lets the MPI's append-only link log give up a patient's entries
    // (migration V27), in this transaction only.
    db.execute("SELECT set_config('baraza.expunge', 'on', true)", &[])
        .await?;
    let rows = db
        .query(
            "DELETE FROM resources r USING unnest($2::text[], $3::text[]) AS k(t, i) \
             WHERE r.tenant = $1 AND r.res_type = k.t AND r.id = k.i RETURNING r.res_type",
            &[&ctx.tenant, &types, &ids],
        )
        .await?;
    for row in rows {
        *removed.entry(row.get(0)).or_default() += 1;
    }
    db.execute(
        "DELETE FROM resource_history h USING unnest($2::text[], $3::text[]) AS k(t, i) \
         WHERE h.tenant = $1 AND h.res_type = k.t AND h.id = k.i",
        &[&ctx.tenant, &types, &ids],
    )
    .await?;
    // The change events of the outbox (V23) name them too.
    db.execute(
        "DELETE FROM events e USING unnest($2::text[], $3::text[]) AS k(t, i) \
         WHERE e.tenant = $1 AND e.res_type = k.t AND e.id = k.i",
        &[&ctx.tenant, &types, &ids],
    )
    .await?;
    delete_rows(db, ctx, types, ids).await?;
    for (t, id) in types.iter().zip(ids) {
        if terminology::mirror::mirrored(t) {
            terminology::mirror::remove(&db.term(), &ctx.tenant, t, id, "rest").await?;
        }
    }
    let patients: Vec<String> = types
        .iter()
        .zip(ids)
        .filter(|(t, _)| *t == "Patient")
        .map(|(_, id)| id.clone())
        .collect();
    if !patients.is_empty() {
        mpi_rows(db, ctx, &patients).await?;
    }
    super::views::delete_resources(db, ctx, types, ids).await?;
    export_files(db, ctx, ids).await?;
    Ok(removed)
}

/// A patient's rows in the MPI tables (migration V20): its record,
/// blocking keys, link and link history, review pairs; a golden record it
/// founded keeps its id (a hash) but no longer names it.
async fn mpi_rows(db: &impl Db, ctx: &TenantCtx, patients: &[String]) -> Result<(), ApiError> {
    for sql in [
        "DELETE FROM mpi_block_keys WHERE tenant = $1 AND patient_id = ANY($2)",
        "DELETE FROM mpi_records WHERE tenant = $1 AND patient_id = ANY($2)",
        "DELETE FROM mpi_links WHERE tenant = $1 AND patient_id = ANY($2)",
        "UPDATE mpi_links SET merged_into = NULL WHERE tenant = $1 AND merged_into = ANY($2)",
        "DELETE FROM mpi_link_log WHERE tenant = $1 AND patient_id = ANY($2)",
        "DELETE FROM mpi_review WHERE tenant = $1 AND (a = ANY($2) OR b = ANY($2))",
        "UPDATE mpi_goldens SET founder = 'expunged-' || md5(founder) \
         WHERE tenant = $1 AND founder = ANY($2)",
    ] {
        db.execute(sql, &[&ctx.tenant, &patients]).await?;
    }
    Ok(())
}

/// Jobs whose files hold one of the resources (as `"id":"…"`) are removed
/// with their files; de-identified files hold pseudonyms and stay.
async fn export_files(db: &impl Db, ctx: &TenantCtx, ids: &[String]) -> Result<(), ApiError> {
    let needles: Vec<String> = ids.iter().map(|id| format!("\"id\":\"{id}\"")).collect();
    db.execute(
        "DELETE FROM export_jobs j WHERE j.tenant = $1 AND EXISTS ( \
           SELECT 1 FROM export_chunks c, unnest($2::text[]) AS n(needle) \
           WHERE c.tenant = $1 AND c.job = j.id AND position(convert_to(n.needle, 'UTF8') IN c.data) > 0)",
        &[&ctx.tenant, &needles],
    )
    .await?;
    Ok(())
}

/// Deleted resources of `types` with a version that referred to
/// `target_type/id` (their index rows went with the deletion).
pub async fn deleted_referring(
    db: &impl Db,
    ctx: &TenantCtx,
    types: &[String],
    target_type: &str,
    id: &str,
) -> Result<(Vec<String>, Vec<String>), ApiError> {
    let exact = format!("%{target_type}/{id}\"%");
    let versioned = format!("%{target_type}/{id}/\\_history/%");
    let rows = db
        .query(
            "SELECT r.res_type, r.id FROM resources r WHERE r.tenant = $1 AND r.deleted              AND r.res_type = ANY($2) AND EXISTS (SELECT 1 FROM resource_history h                WHERE h.tenant = r.tenant AND h.res_type = r.res_type AND h.id = r.id                AND h.content IS NOT NULL AND (h.content::text LIKE $3 OR h.content::text LIKE $4))",
            &[&ctx.tenant, &types, &exact, &versioned],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| (r.get::<_, String>(0), r.get::<_, String>(1)))
        .unzip())
}

/// Up to `limit` resources of `types` (`None`: every type) whose current
/// version is older than `before`: the next batch of a date expunge.
/// Golden Patients are left out: the MPI maintains them, and they go with
/// their sources (`service::patient_index::expunge_linked`).
pub async fn older_than(
    db: &impl Db,
    ctx: &TenantCtx,
    types: Option<&[String]>,
    before: DateTime<Utc>,
    limit: i64,
) -> Result<(Vec<String>, Vec<String>), ApiError> {
    let rows = db
        .query(
            "SELECT res_type, id FROM resources WHERE tenant = $1 \
             AND ($2::text[] IS NULL OR res_type = ANY($2)) AND last_updated < $3 \
             AND NOT (res_type = 'Patient' AND id LIKE 'golden-%') \
             ORDER BY res_type, id LIMIT $4",
            &[&ctx.tenant, &types, &before, &limit],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| (r.get::<_, String>(0), r.get::<_, String>(1)))
        .unzip())
}

/// The tenant's retention policies: (type, days kept).
pub async fn policies(db: &impl Db, ctx: &TenantCtx) -> Result<Vec<(String, i32)>, ApiError> {
    let rows = db
        .query(
            "SELECT res_type, keep_days FROM retention_policies WHERE tenant = $1 ORDER BY res_type",
            &[&ctx.tenant],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Replaces the tenant's retention policies.
pub async fn set_policies(
    db: &impl Db,
    ctx: &TenantCtx,
    policies: &[(String, i32)],
) -> Result<(), ApiError> {
    let (types, days): (Vec<String>, Vec<i32>) = policies.iter().cloned().unzip();
    db.execute(
        "DELETE FROM retention_policies WHERE tenant = $1",
        &[&ctx.tenant],
    )
    .await?;
    db.execute(
        "INSERT INTO retention_policies (tenant, res_type, keep_days) \
         SELECT $1, t, d FROM unnest($2::text[], $3::int4[]) AS x(t, d)",
        &[&ctx.tenant, &types, &days],
    )
    .await?;
    Ok(())
}

/// Records what a run of the policies removed.
pub async fn record_run(db: &impl Db, ctx: &TenantCtx, removed: &Removed) -> Result<(), ApiError> {
    let removed = serde_json::to_string(removed).map_err(ApiError::fault)?;
    db.execute(
        "INSERT INTO retention_runs (tenant, ran_at, removed) VALUES ($1, clock_timestamp(), $2::text::json)",
        &[&ctx.tenant, &removed],
    )
    .await?;
    Ok(())
}

/// The tenant's last `limit` runs: when, and what each removed.
pub async fn runs(
    db: &impl Db,
    ctx: &TenantCtx,
    limit: i64,
) -> Result<Vec<(DateTime<Utc>, serde_json::Value)>, ApiError> {
    let rows = db
        .query(
            "SELECT ran_at, removed::text FROM retention_runs WHERE tenant = $1 \
             ORDER BY ran_at DESC LIMIT $2",
            &[&ctx.tenant, &limit],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let removed = serde_json::from_str(&r.get::<_, String>(1)).unwrap_or_default();
            (r.get(0), removed)
        })
        .collect())
}
