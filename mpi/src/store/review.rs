//! The review queue: pairs scored between the review and auto-link
//! thresholds (or link-level pairs that linking could not follow) wait for
//! a person. Accepting links the two records' clusters (a manual link,
//! never undone automatically); rejecting marks the pair never to be
//! linked automatically again and separates it if it was linked;
//! deferring keeps it for later.

use serde::Serialize;
use serde_json::Value;

use super::db::Db;
use super::golden::{self, settle_golden, source_links, write_change};
use super::link::national_ids_disagree;
use super::outcome::{LinkAction, LinkChange, LinkKind, LinkOutcome, Pair, ReviewStatus};
use super::records::{self, Stored};
use super::{Linker, StoreError};

/// One entry of the review queue.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReviewItem {
    pub pair: Pair,
    pub score: f64,
    pub reason: String,
    pub status: ReviewStatus,
    /// Field-by-field: `model::Comparison` as JSON.
    pub comparison: Value,
    /// RFC 3339, UTC.
    pub created_at: String,
    pub decided_by: Option<String>,
    pub decided_at: Option<String>,
    /// The golden records of a and b now.
    pub golden_a: Option<String>,
    pub golden_b: Option<String>,
}

/// A page of the review queue and the cursor of the next one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReviewPage {
    pub items: Vec<ReviewItem>,
    pub next: Option<Pair>,
}

/// Pairs with `status`, in pair order, after `cursor` (keyset paging).
pub async fn list_review(
    db: &impl Db,
    tenant: &str,
    status: ReviewStatus,
    limit: usize,
    cursor: Option<&Pair>,
) -> Result<ReviewPage, StoreError> {
    let (after_a, after_b) = match cursor {
        Some(p) => (Some(p.a.as_str()), Some(p.b.as_str())),
        None => (None, None),
    };
    let limit = limit.clamp(1, 1000) as i64;
    let time = |column: &str| {
        format!("to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')")
    };
    let sql = format!(
        "SELECT v.a, v.b, v.score, v.reason, v.status, v.comparison, {}, v.decided_by, {}, \
           la.golden_id, lb.golden_id \
         FROM mpi_review v \
         LEFT JOIN mpi_links la ON la.tenant = $1 AND la.patient_id = v.a \
         LEFT JOIN mpi_links lb ON lb.tenant = $1 AND lb.patient_id = v.b \
         WHERE v.tenant = $1 AND v.status = $2 \
           AND ($3::text IS NULL OR (v.a, v.b) > ($3::text COLLATE \"C\", $4::text COLLATE \"C\")) \
         ORDER BY v.a, v.b LIMIT $5",
        time("v.created_at"),
        time("v.decided_at")
    );
    let rows = db
        .query(
            &sql,
            &[&tenant, &status.as_str(), &after_a, &after_b, &(limit + 1)],
        )
        .await?;
    let mut items: Vec<ReviewItem> = rows
        .iter()
        .map(|row| ReviewItem {
            pair: Pair {
                a: row.get(0),
                b: row.get(1),
            },
            score: row.get(2),
            reason: row.get(3),
            status: ReviewStatus::parse(row.get(4)),
            comparison: row.get(5),
            created_at: row.get(6),
            decided_by: row.get(7),
            decided_at: row.get(8),
            golden_a: row.get(9),
            golden_b: row.get(10),
        })
        .collect();
    let next = if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items.last().map(|i| i.pair.clone())
    } else {
        None
    };
    Ok(ReviewPage { items, next })
}

/// A reviewer's decision on a pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewDecision {
    Accept,
    Reject,
    Defer,
}

/// Records a reviewer's decision on a queued pair and applies it.
pub async fn decide(
    db: &impl Db,
    linker: &Linker,
    tenant: &str,
    pair: &Pair,
    decision: ReviewDecision,
    by: &str,
) -> Result<LinkOutcome, StoreError> {
    let status = match decision {
        ReviewDecision::Accept => ReviewStatus::Accepted,
        ReviewDecision::Reject => ReviewStatus::Rejected,
        ReviewDecision::Defer => ReviewStatus::Deferred,
    };
    let locked = db
        .query(
            "SELECT status FROM mpi_review WHERE tenant = $1 AND a = $2 AND b = $3 FOR UPDATE",
            &[&tenant, &pair.a, &pair.b],
        )
        .await?;
    if locked.is_empty() {
        return Err(StoreError::NotFound(format!(
            "no review pair (Patient/{}, Patient/{})",
            pair.a, pair.b
        )));
    }
    let out = match decision {
        ReviewDecision::Accept => accept(db, linker, tenant, pair, by).await?,
        ReviewDecision::Reject => reject(db, linker, tenant, pair, by).await?,
        ReviewDecision::Defer => LinkOutcome::default(),
    };
    db.execute(
        "UPDATE mpi_review SET status = $4, decided_by = $5, decided_at = now() \
         WHERE tenant = $1 AND a = $2 AND b = $3",
        &[&tenant, &pair.a, &pair.b, &status.as_str(), &by],
    )
    .await?;
    Ok(out)
}

/// Both records of a pair, with their links.
async fn pair_records(
    db: &impl Db,
    linker: &Linker,
    tenant: &str,
    pair: &Pair,
) -> Result<(Stored, Stored), StoreError> {
    let found = records::records(db, linker, tenant, &[&pair.a, &pair.b]).await?;
    let (mut a, mut b) = (None, None);
    for record in found {
        if record.patient_id == pair.a {
            a = Some(record);
        } else if record.patient_id == pair.b {
            b = Some(record);
        }
    }
    match (a, b) {
        (Some(a), Some(b)) => Ok((a, b)),
        _ => Err(StoreError::NotFound(format!(
            "Patient/{} or Patient/{} is not in the index",
            pair.a, pair.b
        ))),
    }
}

/// Accept: b's cluster joins a's (or the smaller joins the larger); a
/// and b become manual links.
async fn accept(
    db: &impl Db,
    linker: &Linker,
    tenant: &str,
    pair: &Pair,
    by: &str,
) -> Result<LinkOutcome, StoreError> {
    let (a, b) = pair_records(db, linker, tenant, pair).await?;
    let (Some(golden_a), Some(golden_b)) = (a.golden_id.clone(), b.golden_id.clone()) else {
        return Err(StoreError::Conflict(
            "a record of the pair has no link".into(),
        ));
    };
    let cluster_a = records::cluster(db, linker, tenant, &golden_a).await?;
    let cluster_b = if golden_a == golden_b {
        Vec::new()
    } else {
        records::cluster(db, linker, tenant, &golden_b).await?
    };
    for x in &cluster_a {
        for y in &cluster_b {
            if national_ids_disagree(linker.config(), &x.features, &y.features) {
                return Err(StoreError::Conflict(format!(
                    "Patient/{} and Patient/{} have different national ids: the clusters cannot be linked",
                    x.patient_id, y.patient_id
                )));
            }
        }
    }
    // The larger cluster keeps its golden record.
    let (keep, keep_members, gone, moving) = if cluster_b.len() > cluster_a.len() {
        (golden_b, cluster_b, golden_a, cluster_a)
    } else {
        (golden_a, cluster_a, golden_b, cluster_b)
    };
    let mut out = LinkOutcome::default();
    let rule = format!(
        "a reviewer accepted the pair (Patient/{}, Patient/{})",
        pair.a, pair.b
    );
    for member in keep_members.iter().chain(&moving) {
        let in_pair = member.patient_id == pair.a || member.patient_id == pair.b;
        let moves = member.golden_id.as_deref() != Some(keep.as_str());
        if !in_pair && !moves {
            continue;
        }
        let kind = if in_pair {
            LinkKind::Manual
        } else {
            member.kind.unwrap_or(LinkKind::Auto)
        };
        if !moves && member.kind == Some(kind) {
            continue;
        }
        let change = LinkChange {
            patient_id: member.patient_id.clone(),
            golden_before: member.golden_id.clone(),
            golden_after: Some(keep.clone()),
            action: LinkAction::Link,
            kind: Some(kind),
            score: None,
            rule: rule.clone(),
            actor: by.to_string(),
        };
        write_change(db, tenant, &change, member.merged_into.as_deref()).await?;
        out.changes.push(change);
    }
    let all: Vec<&Stored> = keep_members.iter().chain(&moving).collect();
    out.goldens
        .extend(settle_golden(db, linker, tenant, &keep, &all).await?);
    if !moving.is_empty() {
        out.goldens
            .extend(settle_golden(db, linker, tenant, &gone, &[]).await?);
    }
    let moved: Vec<&str> = moving.iter().map(|m| m.patient_id.as_str()).collect();
    let mut ids = vec![pair.a.as_str(), pair.b.as_str()];
    for id in moved {
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    out.source_links = source_links(db, tenant, &ids).await?;
    out.golden_id = keep;
    Ok(out)
}

/// Reject: if the pair is in one cluster, b leaves it for a golden record
/// of its own.
async fn reject(
    db: &impl Db,
    linker: &Linker,
    tenant: &str,
    pair: &Pair,
    by: &str,
) -> Result<LinkOutcome, StoreError> {
    let (a, b) = pair_records(db, linker, tenant, pair).await?;
    let mut out = LinkOutcome::default();
    if a.golden_id.is_none() || a.golden_id != b.golden_id {
        out.golden_id = b.golden_id.unwrap_or_default();
        return Ok(out);
    }
    let old = a.golden_id.clone().unwrap_or_default();
    let new = golden::new_golden(db, tenant, &b.patient_id).await?;
    let change = LinkChange {
        patient_id: b.patient_id.clone(),
        golden_before: Some(old.clone()),
        golden_after: Some(new.clone()),
        action: LinkAction::Unlink,
        kind: Some(LinkKind::Auto),
        score: None,
        rule: format!("a reviewer rejected the pair with Patient/{}", a.patient_id),
        actor: by.to_string(),
    };
    write_change(db, tenant, &change, None).await?;
    out.changes.push(change);
    out.goldens
        .extend(golden::refresh_golden(db, linker, tenant, &old).await?);
    out.goldens
        .extend(settle_golden(db, linker, tenant, &new, &[&b]).await?);
    out.source_links = source_links(db, tenant, &[&b.patient_id]).await?;
    out.golden_id = new;
    Ok(out)
}
