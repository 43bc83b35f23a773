//! Linking in the write path: [`before_store`] indexes every Patient of a
//! write (in the transaction that writes it) and sets the MPI's links on
//! the Patient being written, so that one version carries them;
//! [`after_store`] then writes what the linking changed elsewhere: golden
//! Patients created, rewritten or retired, and the links of other source
//! Patients (when two clusters become one, or a record leaves a cluster).
//!
//! Those follow-up writes are the MPI's own: they are stored without the
//! caller's integrator restriction (an integrator may link its record to
//! another integrator's) and are not linked again, as only MPI-managed
//! content changed.

use super::{SERVER_ACTOR, is_golden, linker, source_of, store_error};
use crate::error::{ApiError, Category};
use crate::store::write::{Method, WriteOp};
use crate::store::{TenantCtx, TenantTx, read};
use mpi::store::{GoldenChange, LinkOutcome, LinkType, PatientLink};
use serde_json::Value;
use std::collections::HashSet;

/// What linking a write decided, for [`after_store`].
#[derive(Debug, Default)]
pub struct LinkPlan {
    outcome: LinkOutcome,
    /// The Patients the write itself stores (their links are already set).
    written: HashSet<String>,
}

/// Indexes the Patients among `ops`, refusing writes of golden Patients,
/// and sets each written Patient's MPI links. `None` when nothing was to
/// link (no Patient, or the index is off).
pub async fn before_store(
    tx: &TenantTx<'_>,
    ctx: &TenantCtx,
    ops: &mut [WriteOp],
) -> Result<Option<LinkPlan>, ApiError> {
    if ctx.mpi.is_none() || !ops.iter().any(|op| op.resource_type == "Patient") {
        return Ok(None);
    }
    let linker = linker(ctx)?;
    if let Some(op) = ops
        .iter()
        .find(|op| op.resource_type == "Patient" && is_golden(&op.id))
    {
        return Err(ApiError::new(
            Category::Conflict,
            format!(
                "Patient/{} is a golden record: the master patient index maintains it; \
                 change its source records instead",
                op.id
            ),
        )
        .with_code(fhir::IssueCode::BusinessRule)
        .at("Patient.id"));
    }
    if ctx.mpi_queued {
        // The write's change events are the queue: the outbox consumer
        // `mpi` (`queue`) links these Patients once the write commits.
        return Ok(None);
    }
    let source = source_of(ctx);
    let mut plan = LinkPlan::default();
    let mut incoming = Vec::new();
    for op in ops.iter() {
        if op.resource_type != "Patient" {
            continue;
        }
        match (&op.method, &op.resource) {
            (Method::Delete, _) | (_, None) => {
                let outcome =
                    mpi::store::remove_patient(&**tx, linker, &ctx.tenant, &op.id, SERVER_ACTOR)
                        .await
                        .map_err(store_error)?;
                plan.outcome.absorb(outcome);
            }
            (_, Some(patient)) => incoming.push(mpi::store::Incoming {
                patient_id: &op.id,
                patient,
                source: &source,
            }),
        }
        plan.written.insert(op.id.clone());
    }
    // The write's Patients are linked as one batch: a transaction of many
    // Patients costs a handful of statements, not a handful per Patient.
    if !incoming.is_empty() {
        let outcome = mpi::store::index_batch(&**tx, linker, &ctx.tenant, &incoming)
            .await
            .map_err(store_error)?;
        plan.outcome.absorb(outcome);
    }
    for op in ops.iter_mut() {
        if op.resource_type != "Patient" {
            continue;
        }
        if let (Some(links), Some(patient)) = (plan.outcome.links_of(&op.id), op.resource.as_mut())
        {
            set_links(patient, links);
        }
    }
    Ok(Some(plan))
}

/// Stores the golden Patients and other sources' links `plan` calls for.
pub async fn after_store(
    tx: &TenantTx<'_>,
    ctx: &TenantCtx,
    plan: LinkPlan,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), ApiError> {
    apply_outcome(tx, ctx, &plan.outcome, &plan.written, None, now).await
}

/// A change to one source Patient's `active` besides its links (a merge
/// deactivates the source, an unmerge reactivates it).
#[derive(Debug, Clone, Copy)]
pub struct SetActive<'a> {
    pub patient_id: &'a str,
    pub active: bool,
}

/// Writes an outcome's golden Patients and the links of the source
/// Patients not in `skip`, as the MPI (no integrator restriction).
pub async fn apply_outcome(
    tx: &TenantTx<'_>,
    ctx: &TenantCtx,
    outcome: &LinkOutcome,
    skip: &HashSet<String>,
    set_active: Option<SetActive<'_>>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), ApiError> {
    let mut ops = Vec::new();
    for golden in &outcome.goldens {
        ops.push(match golden {
            GoldenChange::Write { id, patient } => WriteOp {
                resource_type: "Patient".to_owned(),
                id: id.clone(),
                method: Method::Put,
                resource: Some(patient.clone()),
                if_match: None,
                fresh_id: false,
            },
            GoldenChange::Retire { id } => WriteOp {
                resource_type: "Patient".to_owned(),
                id: id.clone(),
                method: Method::Delete,
                resource: None,
                if_match: None,
                fresh_id: false,
            },
        });
    }
    for links in &outcome.source_links {
        if skip.contains(&links.patient_id) {
            continue;
        }
        let Some(current) =
            read::read_current_for_update(tx, ctx, "Patient", &links.patient_id).await?
        else {
            continue;
        };
        let Some(mut patient) = current
            .content
            .as_deref()
            .and_then(|text| serde_json::from_str::<Value>(text).ok())
        else {
            continue;
        };
        let before = patient.clone();
        set_links(&mut patient, &links.links);
        if let (Some(change), Some(object)) = (set_active, patient.as_object_mut()) {
            if change.patient_id == links.patient_id {
                object.insert("active".into(), Value::Bool(change.active));
            }
        }
        if patient != before {
            ops.push(WriteOp {
                resource_type: "Patient".to_owned(),
                id: links.patient_id.clone(),
                method: Method::Put,
                resource: Some(patient),
                if_match: None,
                fresh_id: false,
            });
        }
    }
    if ops.is_empty() {
        return Ok(());
    }
    let as_mpi = TenantCtx {
        caller: None,
        rights: None,
        ..ctx.clone()
    };
    let results = crate::store::write::apply(tx, &as_mpi, ops, now).await?;
    // The links are changes like any other: they have their events.
    crate::events::record(tx, &as_mpi, &results).await?;
    Ok(())
}

/// Replaces the MPI-managed entries of `Patient.link` (those to golden
/// records, and merges' `replaced-by`/`replaces`) with `links`; other
/// links stay.
pub fn set_links(patient: &mut Value, links: &[PatientLink]) {
    let Some(object) = patient.as_object_mut() else {
        return;
    };
    let mut kept: Vec<Value> = object
        .get("link")
        .and_then(Value::as_array)
        .map(|all| all.iter().filter(|link| !managed(link)).cloned().collect())
        .unwrap_or_default();
    kept.extend(links.iter().map(PatientLink::to_fhir));
    if kept.is_empty() {
        object.remove("link");
    } else {
        object.insert("link".into(), Value::Array(kept));
    }
}

fn managed(link: &Value) -> bool {
    let kind = link.get("type").and_then(Value::as_str).unwrap_or_default();
    let other = link
        .pointer("/other/reference")
        .and_then(Value::as_str)
        .unwrap_or_default();
    kind == LinkType::ReplacedBy.code()
        || kind == LinkType::Replaces.code()
        || other.strip_prefix("Patient/").is_some_and(super::is_golden)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn managed_links_are_replaced_and_others_kept() {
        let mut patient = json!({"resourceType": "Patient", "link": [
            {"other": {"reference": "Patient/golden-old"}, "type": "refer"},
            {"other": {"reference": "RelatedPerson/r1"}, "type": "seealso"},
            {"other": {"reference": "Patient/p9"}, "type": "replaced-by"}
        ]});
        set_links(
            &mut patient,
            &[PatientLink {
                other: "golden-new".into(),
                link_type: LinkType::Refer,
            }],
        );
        assert_eq!(
            patient["link"],
            json!([
                {"other": {"reference": "RelatedPerson/r1"}, "type": "seealso"},
                {"other": {"reference": "Patient/golden-new"}, "type": "refer"}
            ])
        );
        set_links(&mut patient, &[]);
        assert_eq!(patient["link"].as_array().unwrap().len(), 1);
    }
}
