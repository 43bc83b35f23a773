//! `$expunge` of linked Patients: a golden record copies its sources'
//! identifiers and demographics into every version, so erasing a source
//! also erases its golden Patient (every version and index row) and
//! builds it again, in the same transaction, from the records that
//! remain. Golden Patients themselves are never expunged directly: the
//! MPI maintains them.

use super::link::apply_outcome;
use super::{is_golden, linker, store_error};
use crate::error::ApiError;
use crate::store::expunge::{self, Removed};
use crate::store::{Db, TenantCtx, TenantTx, now};
use std::collections::HashSet;

/// Expunges `(types[i], ids[i])` as `store::expunge::expunge` does, with
/// the golden records of the Patients among them erased and rebuilt.
pub async fn expunge_linked(
    tx: &TenantTx<'_>,
    ctx: &TenantCtx,
    types: &[String],
    ids: &[String],
) -> Result<Removed, ApiError> {
    let (types, ids): (Vec<String>, Vec<String>) = types
        .iter()
        .zip(ids)
        .filter(|(t, id)| !(t.as_str() == "Patient" && is_golden(id)))
        .map(|(t, id)| (t.clone(), id.clone()))
        .unzip();
    let patients: Vec<String> = types
        .iter()
        .zip(&ids)
        .filter(|(t, _)| t.as_str() == "Patient")
        .map(|(_, id)| id.clone())
        .collect();
    if ctx.mpi.is_none() || patients.is_empty() {
        return expunge::expunge(tx, ctx, &types, &ids).await;
    }
    let goldens: Vec<String> = tx
        .query(
            "SELECT DISTINCT golden_id FROM mpi_links WHERE tenant = $1 AND patient_id = ANY($2)",
            &[&ctx.tenant, &patients],
        )
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let remaining: Vec<(String, String, serde_json::Value)> = tx
        .query(
            "SELECT l.patient_id, r.source, r.patient FROM mpi_links l \
             JOIN mpi_records r ON r.tenant = l.tenant AND r.patient_id = l.patient_id \
             WHERE l.tenant = $1 AND l.golden_id = ANY($2) AND NOT l.patient_id = ANY($3) \
             ORDER BY l.patient_id",
            &[&ctx.tenant, &goldens, &patients],
        )
        .await?
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2)))
        .collect();
    let removed = expunge::expunge(tx, ctx, &types, &ids).await?;
    redact_rules(tx, ctx, &patients).await?;
    let golden_types = vec!["Patient".to_owned(); goldens.len()];
    expunge::expunge(tx, ctx, &golden_types, &goldens).await?;
    // Forget the content handed out, so that the rebuilt golden record is
    // written even where it did not change.
    tx.execute(
        "UPDATE mpi_goldens SET content_hash = NULL WHERE tenant = $1 AND golden_id = ANY($2)",
        &[&ctx.tenant, &goldens],
    )
    .await?;
    let linker = linker(ctx)?;
    for (id, source, patient) in remaining {
        let outcome = mpi::store::index_patient(&**tx, linker, &ctx.tenant, &id, &patient, &source)
            .await
            .map_err(store_error)?;
        apply_outcome(tx, ctx, &outcome, &HashSet::new(), None, now()).await?;
    }
    Ok(removed)
}

/// Other records' links and link-log entries explain themselves with the
/// record they matched (`… with Patient/x`): an erased patient's id is
/// replaced there (migration V32 allows exactly this in an expunge).
async fn redact_rules(
    tx: &TenantTx<'_>,
    ctx: &TenantCtx,
    patients: &[String],
) -> Result<(), ApiError> {
    for table in ["mpi_links", "mpi_link_log"] {
        let sql = format!(
            "UPDATE {table} SET rule = regexp_replace(rule, \
               'Patient/' || replace(e.id, '.', '\\.') || '(?![A-Za-z0-9.-])', 'an erased record', 'g') \
             FROM unnest($2::text[]) AS e(id) \
             WHERE tenant = $1 AND strpos(rule, 'Patient/' || e.id) > 0"
        );
        tx.execute(&sql, &[&ctx.tenant, &patients]).await?;
    }
    Ok(())
}
