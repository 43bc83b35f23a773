//! Linking one record against the batch's [`Snapshot`]: the record
//! stays in its cluster while it matches one of its members, else joins
//! the best matching cluster that admits it, else gets a golden record of
//! its own; pairs that need a person are queued. `index_patient` is the
//! batch of one; `remove_patient` takes a record out.
//!
//! Hard rules on top of the scores: a record never joins a cluster holding
//! a record whose national id differs from its own, nor one holding a
//! record it was rejected with in review; links made by people (review,
//! `$merge`) are never undone automatically.

use serde_json::Value;

use super::batch::{Incoming, index_batch};
use super::db::Db;
use super::flush::Writes;
use super::golden::{self, write_change};
use super::outcome::{LinkAction, LinkChange, LinkKind, LinkOutcome, Pair, ReviewStatus};
use super::records::{self, Stored};
use super::snapshot::Snapshot;
use super::{Linker, MPI_ACTOR, StoreError};
use crate::config::Config;
use crate::features::Features;
use crate::model::Matcher;

/// Indexes (or re-indexes) the source Patient `patient_id` sent by
/// `source` and links it. Call it in the transaction that writes the
/// Patient; apply the returned outcome in the same transaction.
pub async fn index_patient(
    db: &impl Db,
    linker: &Linker,
    tenant: &str,
    patient_id: &str,
    patient: &Value,
    source: &str,
) -> Result<LinkOutcome, StoreError> {
    let incoming = Incoming {
        patient_id,
        patient,
        source,
    };
    index_batch(db, linker, tenant, &[incoming]).await
}

/// What linking decided for one record.
#[derive(Debug)]
enum Decision {
    /// It stays in its cluster (a person decided the link, it still
    /// matches a member, or it is alone there with nothing to join).
    Stays(String),
    /// It joins another cluster.
    Joins(Target),
    /// It gets a golden record of its own: why, whether it left a
    /// cluster, and its best candidate's score.
    Separate {
        rule: String,
        leaving: bool,
        best: Option<f64>,
    },
}

/// The cluster a record may join, and why.
#[derive(Debug)]
struct Target {
    golden: String,
    score: f64,
    /// The member that scored best.
    with: String,
}

/// Links the batch record `id` (stored, in the snapshot, keys `keys`):
/// decides, queues its review pairs and records the change in `writes`
/// and the snapshot. Returns its golden record.
pub(crate) fn link_record(
    snapshot: &mut Snapshot,
    matcher: &Matcher,
    tenant: &str,
    id: &str,
    keys: &[String],
    writes: &mut Writes,
) -> Option<String> {
    let record = snapshot.record(id)?;
    let current = record.golden_id.clone();
    let decision = match (&current, record.kind) {
        (Some(golden), Some(LinkKind::Manual | LinkKind::Merged)) => {
            // A person decided this link: it stands; the content may
            // change the golden record.
            Decision::Stays(golden.clone())
        }
        _ => decide(snapshot, matcher, record, keys, writes),
    };
    let golden = apply(snapshot, tenant, id, current.as_deref(), decision, writes);
    snapshot.done(id);
    Some(golden)
}

/// Scores the record's candidates, decides its link and queues its
/// review pairs.
fn decide(
    snapshot: &Snapshot,
    matcher: &Matcher,
    record: &Stored,
    keys: &[String],
    writes: &mut Writes,
) -> Decision {
    let id = record.patient_id.as_str();
    let candidates: Vec<(&Stored, f64)> = snapshot
        .candidates(id, keys)
        .into_iter()
        .map(|c| (c, matcher.score(&record.features, &c.features)))
        .collect();
    let auto_link = matcher.config().thresholds.auto_link;
    let current = record.golden_id.as_deref();
    let (mut target, leaving) = match current {
        Some(golden) => standing(snapshot, matcher, record, golden),
        None => (None, None),
    };
    let stays = target.is_some();
    if target.is_none() {
        target = best_cluster(snapshot, matcher, record, &candidates);
    }
    queue_reviews(
        snapshot,
        matcher,
        record,
        &candidates,
        target.as_ref().map(|t| t.golden.as_str()),
        writes,
    );
    match (target, current) {
        (Some(t), _) if stays => Decision::Stays(t.golden),
        (Some(t), _) => Decision::Joins(t),
        // Alone in its cluster, and nothing to join: it stays.
        (None, Some(golden)) if leaving.is_none() => Decision::Stays(golden.to_owned()),
        (None, _) => {
            let best = candidates.iter().map(|(_, s)| *s).reduce(f64::max);
            let rule = match (&leaving, best) {
                (Some(reason), _) => reason.clone(),
                (None, Some(best)) => format!(
                    "no cluster to join: best candidate score {best:.2} (auto_link {auto_link})"
                ),
                (None, None) => "no candidate shares a blocking key".to_owned(),
            };
            Decision::Separate {
                rule,
                leaving: leaving.is_some(),
                best,
            }
        }
    }
}

/// Whether a record in a cluster stays there (it matches one of its
/// other members: the target is its cluster) or leaves it (why). Alone
/// in its cluster: neither.
fn standing(
    snapshot: &Snapshot,
    matcher: &Matcher,
    record: &Stored,
    golden: &str,
) -> (Option<Target>, Option<String>) {
    let members = snapshot.members(golden, &record.patient_id);
    if members.is_empty() {
        return (None, None);
    }
    let auto_link = matcher.config().thresholds.auto_link;
    match best_in_cluster(snapshot, matcher, record, &members) {
        Ok((score, with)) if score >= auto_link => {
            let target = Target {
                golden: golden.to_owned(),
                score,
                with,
            };
            (Some(target), None)
        }
        Ok((score, with)) => (
            None,
            Some(format!(
                "no longer matches its cluster: best score {score:.2} < auto_link {auto_link} (Patient/{with})"
            )),
        ),
        Err(reason) => (None, Some(reason)),
    }
}

/// The best cluster (other than the record's own) whose members the
/// record matches at or above auto_link and that admits it.
fn best_cluster(
    snapshot: &Snapshot,
    matcher: &Matcher,
    record: &Stored,
    candidates: &[(&Stored, f64)],
) -> Option<Target> {
    let auto_link = matcher.config().thresholds.auto_link;
    let id = record.patient_id.as_str();
    let mut clusters: Vec<(f64, &str)> = Vec::new();
    for (c, score) in candidates {
        let Some(golden) = c.golden_id.as_deref() else {
            continue;
        };
        if *score < auto_link
            || Some(golden) == record.golden_id.as_deref()
            || snapshot.review(id, &c.patient_id) == Some(ReviewStatus::Rejected)
        {
            continue;
        }
        match clusters.iter_mut().find(|(_, g)| *g == golden) {
            Some(entry) => entry.0 = entry.0.max(*score),
            None => clusters.push((*score, golden)),
        }
    }
    clusters.sort_by(|x, y| y.0.total_cmp(&x.0).then_with(|| x.1.cmp(y.1)));
    clusters.into_iter().find_map(|(_, golden)| {
        let members = snapshot.members(golden, id);
        match best_in_cluster(snapshot, matcher, record, &members) {
            Ok((score, with)) if score >= auto_link => Some(Target {
                golden: golden.to_owned(),
                score,
                with,
            }),
            _ => None,
        }
    })
}

/// Pairs for review: the review band, and link-level pairs that the
/// record could not join (another cluster, or a hard rule). Pairs whose
/// national ids differ and pairs already decided are left out.
fn queue_reviews(
    snapshot: &Snapshot,
    matcher: &Matcher,
    record: &Stored,
    candidates: &[(&Stored, f64)],
    target: Option<&str>,
    writes: &mut Writes,
) {
    let thresholds = matcher.config().thresholds;
    let id = record.patient_id.as_str();
    let mut queued = Vec::new();
    for (c, score) in candidates {
        if c.golden_id.is_some() && c.golden_id.as_deref() == target {
            continue;
        }
        if *score < thresholds.review
            || matches!(
                snapshot.review(id, &c.patient_id),
                Some(ReviewStatus::Rejected | ReviewStatus::Accepted)
            )
            || national_ids_disagree(matcher.config(), &record.features, &c.features)
        {
            continue;
        }
        let reason = if *score >= thresholds.auto_link {
            "scored at or above auto_link, but linking would join another cluster"
        } else {
            "scored between review and auto_link"
        };
        let comparison = matcher.compare(&record.features, &c.features);
        let pair = Pair::new(id, &c.patient_id);
        writes.queue(pair.clone(), &comparison, reason);
        queued.push(pair);
    }
    writes.requeue(id, &queued);
}

/// Records the decision: the link change and its log entry, a new
/// golden record, the clusters whose golden records to settle. Returns
/// the record's golden record.
fn apply(
    snapshot: &mut Snapshot,
    tenant: &str,
    id: &str,
    current: Option<&str>,
    decision: Decision,
    writes: &mut Writes,
) -> String {
    let auto_link = writes.auto_link;
    let (golden, action, score, rule) = match decision {
        Decision::Stays(golden) => {
            writes.touched.insert(golden.clone());
            return golden;
        }
        Decision::Joins(t) => {
            let rule = format!(
                "score {:.2} ≥ auto_link {auto_link} with Patient/{}",
                t.score, t.with
            );
            (t.golden, LinkAction::Link, Some(t.score), rule)
        }
        Decision::Separate {
            rule,
            leaving,
            best,
        } => {
            let (golden, generation) = snapshot.next_golden(tenant, id);
            writes.found(&golden, id, generation);
            let action = if leaving {
                LinkAction::Unlink
            } else {
                LinkAction::Separate
            };
            (golden, action, best, rule)
        }
    };
    writes.change(LinkChange {
        patient_id: id.to_owned(),
        golden_before: current.map(str::to_owned),
        golden_after: Some(golden.clone()),
        action,
        kind: Some(LinkKind::Auto),
        score,
        rule,
        actor: MPI_ACTOR.into(),
    });
    snapshot.set_link(id, &golden);
    writes.touched.insert(golden.clone());
    if let Some(left) = current.filter(|c| *c != golden) {
        writes.touched.insert(left.to_owned());
    }
    golden
}

/// The best score of `record` against a cluster's members (and which
/// member), or why it may not join the cluster at all.
fn best_in_cluster(
    snapshot: &Snapshot,
    matcher: &Matcher,
    record: &Stored,
    members: &[&Stored],
) -> Result<(f64, String), String> {
    let mut best: Option<(f64, String)> = None;
    for member in members {
        if snapshot.review(&record.patient_id, &member.patient_id) == Some(ReviewStatus::Rejected) {
            return Err(format!(
                "a reviewer rejected the pair with Patient/{}",
                member.patient_id
            ));
        }
        if national_ids_disagree(matcher.config(), &record.features, &member.features) {
            return Err(format!(
                "national id differs from Patient/{}'s",
                member.patient_id
            ));
        }
        let score = matcher.score(&record.features, &member.features);
        if best.as_ref().is_none_or(|b| score > b.0) {
            best = Some((score, member.patient_id.clone()));
        }
    }
    best.ok_or_else(|| "the cluster has no other member".to_string())
}

/// Whether both records carry a national id (an identifier system
/// configured `national = true`) and share no value of it.
pub fn national_ids_disagree(cfg: &Config, a: &Features, b: &Features) -> bool {
    cfg.identifiers
        .iter()
        .enumerate()
        .filter(|(_, system)| system.national)
        .any(|(i, _)| {
            let values = |f: &'_ Features| -> Vec<String> {
                f.identifiers
                    .iter()
                    .filter(|id| id.configured == Some(i as u8))
                    .map(|id| id.value.clone())
                    .collect()
            };
            let (va, vb) = (values(a), values(b));
            !va.is_empty() && !vb.is_empty() && !va.iter().any(|v| vb.contains(v))
        })
}

/// Takes a record out of the index (its source Patient was deleted): its
/// keys, record and link go; its cluster's golden record is rebuilt or
/// retired.
pub async fn remove_patient(
    db: &impl Db,
    linker: &Linker,
    tenant: &str,
    patient_id: &str,
    actor: &str,
) -> Result<LinkOutcome, StoreError> {
    let Some(previous) = records::lock_previous(db, tenant, patient_id).await? else {
        return Ok(LinkOutcome::default());
    };
    records::delete_keys(db, tenant, patient_id, &previous.keys).await?;
    db.execute(
        "DELETE FROM mpi_records WHERE tenant = $1 AND patient_id = $2",
        &[&tenant, &patient_id],
    )
    .await?;
    let mut out = LinkOutcome::default();
    let change = LinkChange {
        patient_id: patient_id.to_string(),
        golden_before: previous.golden_id.clone(),
        golden_after: None,
        action: LinkAction::Remove,
        kind: None,
        score: None,
        rule: "the source Patient was deleted".into(),
        actor: actor.to_string(),
    };
    write_change(db, tenant, &change, None).await?;
    out.changes.push(change);
    if let Some(golden) = &previous.golden_id {
        out.goldens
            .extend(golden::refresh_golden(db, linker, tenant, golden).await?);
    }
    Ok(out)
}
