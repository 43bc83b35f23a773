//! `$merge` and `$unmerge` (after the R5 Patient `$merge` design): the
//! source record is replaced by the target. It joins the target's cluster
//! as a `merged` link (`replaced-by` the target, which `replaces` it),
//! keeps its identifiers for cross-referencing and is nobody's candidate
//! any more. Unmerging gives it a golden record of its own again and
//! rejects the pair, so that matching does not merge it back.

use super::db::Db;
use super::golden::{self, settle_golden, source_links, write_change};
use super::link::national_ids_disagree;
use super::outcome::{LinkAction, LinkChange, LinkKind, LinkOutcome, Pair, ReviewStatus};
use super::records::{self, Stored};
use super::{Linker, StoreError};

async fn one_record(
    db: &impl Db,
    linker: &Linker,
    tenant: &str,
    id: &str,
) -> Result<Stored, StoreError> {
    records::records(db, linker, tenant, &[id])
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| StoreError::NotFound(format!("Patient/{id} is not in the index")))
}

/// Merges `source_id` into `target_id` on behalf of `by`.
pub async fn merge(
    db: &impl Db,
    linker: &Linker,
    tenant: &str,
    source_id: &str,
    target_id: &str,
    by: &str,
) -> Result<LinkOutcome, StoreError> {
    if source_id == target_id {
        return Err(StoreError::Invalid(
            "a Patient cannot be merged into itself".into(),
        ));
    }
    // Lock both records in a fixed order, so that two merges cannot
    // deadlock.
    let mut ids = [source_id, target_id];
    ids.sort_unstable();
    for id in ids {
        records::lock_previous(db, tenant, id).await?;
    }
    let source = one_record(db, linker, tenant, source_id).await?;
    let target = one_record(db, linker, tenant, target_id).await?;
    if let Some(into) = &source.merged_into {
        return Err(StoreError::Conflict(format!(
            "Patient/{source_id} was already merged into Patient/{into}"
        )));
    }
    if let Some(into) = &target.merged_into {
        return Err(StoreError::Conflict(format!(
            "Patient/{target_id} was merged into Patient/{into}: merge into that one"
        )));
    }
    if national_ids_disagree(linker.config(), &source.features, &target.features) {
        return Err(StoreError::Conflict(format!(
            "Patient/{source_id} and Patient/{target_id} have different national ids"
        )));
    }
    let Some(golden) = target.golden_id.clone() else {
        return Err(StoreError::Conflict(format!(
            "Patient/{target_id} has no golden record"
        )));
    };
    let mut out = LinkOutcome::default();
    let change = LinkChange {
        patient_id: source_id.to_string(),
        golden_before: source.golden_id.clone(),
        golden_after: Some(golden.clone()),
        action: LinkAction::Merge,
        kind: Some(LinkKind::Merged),
        score: None,
        rule: format!("merged into Patient/{target_id}"),
        actor: by.to_string(),
    };
    write_change(db, tenant, &change, Some(target_id)).await?;
    out.changes.push(change);
    out.goldens
        .extend(golden::refresh_golden(db, linker, tenant, &golden).await?);
    if let Some(left) = source.golden_id.as_ref().filter(|g| **g != golden) {
        out.goldens
            .extend(golden::refresh_golden(db, linker, tenant, left).await?);
    }
    out.source_links = source_links(db, tenant, &[source_id, target_id]).await?;
    out.golden_id = golden;
    Ok(out)
}

/// Undoes the merge of `source_id`: it gets a golden record of its own,
/// and the pair with the record it was merged into is rejected.
pub async fn unmerge(
    db: &impl Db,
    linker: &Linker,
    tenant: &str,
    source_id: &str,
    by: &str,
) -> Result<LinkOutcome, StoreError> {
    records::lock_previous(db, tenant, source_id).await?;
    let source = one_record(db, linker, tenant, source_id).await?;
    let Some(target_id) = source.merged_into.clone() else {
        return Err(StoreError::Conflict(format!(
            "Patient/{source_id} is not merged into another Patient"
        )));
    };
    let old_golden = source.golden_id.clone();
    let new = golden::new_golden(db, tenant, source_id).await?;
    let mut out = LinkOutcome::default();
    let change = LinkChange {
        patient_id: source_id.to_string(),
        golden_before: old_golden.clone(),
        golden_after: Some(new.clone()),
        action: LinkAction::Unmerge,
        kind: Some(LinkKind::Auto),
        score: None,
        rule: format!("merge into Patient/{target_id} undone"),
        actor: by.to_string(),
    };
    write_change(db, tenant, &change, None).await?;
    out.changes.push(change);
    let pair = Pair::new(source_id, &target_id);
    db.execute(
        "INSERT INTO mpi_review (tenant, a, b, score, comparison, reason, status, decided_by, decided_at) \
         VALUES ($1, $2, $3, 0, 'null', $4, $5, $6, now()) \
         ON CONFLICT (tenant, a, b) DO UPDATE SET status = EXCLUDED.status, \
           reason = EXCLUDED.reason, decided_by = EXCLUDED.decided_by, decided_at = now()",
        &[
            &tenant,
            &pair.a,
            &pair.b,
            &"a merge was undone",
            &ReviewStatus::Rejected.as_str(),
            &by,
        ],
    )
    .await?;
    let unmerged = Stored {
        golden_id: Some(new.clone()),
        merged_into: None,
        kind: Some(LinkKind::Auto),
        ..source
    };
    out.goldens
        .extend(settle_golden(db, linker, tenant, &new, &[&unmerged]).await?);
    if let Some(old) = &old_golden {
        out.goldens
            .extend(golden::refresh_golden(db, linker, tenant, old).await?);
    }
    out.source_links = source_links(db, tenant, &[source_id, &target_id]).await?;
    out.golden_id = new;
    Ok(out)
}
