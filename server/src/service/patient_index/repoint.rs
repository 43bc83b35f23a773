//! `$merge` repoints references (R5 patient-operation-merge: "all
//! references pointing to the source patient are updated to point to the
//! target"): every resource that refers to the source Patient gets a new
//! version referring to the target instead, in the merge's transaction,
//! written as the MPI and recorded (audit, change events) like any write.
//!
//! Which resources: those the search index knows to refer to the source
//! (`search_reference`: every reference a search parameter covers, which
//! includes the whole Patient compartment). In each, every unversioned
//! reference to the source is rewritten, relative (`Patient/src`) or
//! absolute under this server's base, wherever it is. Versioned
//! references (`Patient/src/_history/2`) name a version that stays as it
//! was and are left alone, as are Patients: their links are the MPI's.

use crate::error::ApiError;
use crate::store::write::{Method, WriteOp, WriteResult};
use crate::store::{Db, Stored, TenantCtx, TenantTx, read};
use serde_json::Value;

/// Rewrites the references to `Patient/{source}` onto `Patient/{target}`
/// in the resources that hold them; returns the versions written.
pub async fn repoint_references(
    tx: &TenantTx<'_>,
    ctx: &TenantCtx,
    source: &str,
    target: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<Stored>, ApiError> {
    let referring = referring_resources(tx, ctx, source).await?;
    let mut ops = Vec::new();
    for (resource_type, id) in referring {
        let Some(current) = read::read_current_for_update(tx, ctx, &resource_type, &id).await?
        else {
            continue;
        };
        let Some(mut resource) = current
            .content
            .as_deref()
            .and_then(|text| serde_json::from_str::<Value>(text).ok())
        else {
            continue;
        };
        if rewrite(&mut resource, &ctx.base_url, source, target) == 0 {
            continue;
        }
        ops.push(WriteOp {
            resource_type,
            id,
            method: Method::Put,
            resource: Some(resource),
            if_match: None,
            fresh_id: false,
        });
    }
    if ops.is_empty() {
        return Ok(Vec::new());
    }
    let as_mpi = TenantCtx {
        caller: None,
        rights: None,
        ..ctx.clone()
    };
    let results = crate::store::write::apply(tx, &as_mpi, ops, now).await?;
    crate::events::record(tx, &as_mpi, &results).await?;
    Ok(results
        .into_iter()
        .filter_map(|r| match r {
            WriteResult::Stored { stored, .. } => Some(stored),
            WriteResult::NothingToDelete => None,
        })
        .collect())
}

/// The (type, id) of every current resource other than a Patient whose
/// index rows refer to `Patient/{source}`, in order.
async fn referring_resources(
    db: &impl Db,
    ctx: &TenantCtx,
    source: &str,
) -> Result<Vec<(String, String)>, ApiError> {
    let rows = db
        .query(
            "SELECT DISTINCT res_type, res_id FROM search_reference \
             WHERE tenant = $1 AND target_type = 'Patient' AND target_id = $2 \
               AND res_type <> 'Patient' ORDER BY res_type, res_id",
            &[&ctx.tenant, &source],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Rewrites, in place, every unversioned reference to `Patient/{source}`
/// (relative, or absolute under `base`) to `Patient/{target}`, keeping
/// its form; returns how many it rewrote.
pub fn rewrite(resource: &mut Value, base: &str, source: &str, target: &str) -> usize {
    let relative = format!("Patient/{source}");
    let absolute = format!("{}/{relative}", base.trim_end_matches('/'));
    let mut rewritten = 0;
    fhir::reference::for_each_reference_mut(resource, &mut |reference: &mut String| {
        let replacement = if *reference == relative {
            format!("Patient/{target}")
        } else if *reference == absolute {
            format!("{}/Patient/{target}", base.trim_end_matches('/'))
        } else {
            return;
        };
        *reference = replacement;
        rewritten += 1;
    });
    rewritten
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::rewrite;
    use serde_json::json;

    #[test]
    fn references_to_the_source_are_rewritten_and_others_kept() {
        let base = "https://hie.example.org/fhir";
        let mut observation = json!({"resourceType": "Observation",
            "subject": {"reference": "Patient/a", "display": "A"},
            "performer": [{"reference": "https://hie.example.org/fhir/Patient/a"},
                          {"reference": "Patient/ab"}],
            "focus": [{"reference": "Patient/a/_history/2"}],
            "extension": [{"url": "urn:x", "valueReference": {"reference": "Patient/a"}}]});
        assert_eq!(rewrite(&mut observation, base, "a", "b"), 3);
        assert_eq!(observation["subject"]["reference"], "Patient/b");
        assert_eq!(
            observation["performer"][0]["reference"],
            "https://hie.example.org/fhir/Patient/b"
        );
        assert_eq!(observation["performer"][1]["reference"], "Patient/ab");
        assert_eq!(observation["focus"][0]["reference"], "Patient/a/_history/2");
        assert_eq!(
            observation["extension"][0]["valueReference"]["reference"],
            "Patient/b"
        );
        assert_eq!(rewrite(&mut observation, base, "a", "b"), 0);
    }
}
