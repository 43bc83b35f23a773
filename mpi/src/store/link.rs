//! Linking one record: `index_patient` stores a source Patient, finds its
//! candidates by blocking key, scores them and links the record to the
//! golden record of the best matching cluster (or keeps it, or gives it
//! one of its own), queues review pairs, and re-evaluates a changed
//! record against its cluster. `remove_patient` takes a record out.
//!
//! Hard rules on top of the scores: a record never joins a cluster holding
//! a record whose national id differs from its own, nor one holding a
//! record it was rejected with in review; links made by people (review,
//! `$merge`) are never undone automatically.

use super::db::Db;
use super::golden::{self, settle_golden, source_links, write_change};
use super::outcome::{LinkAction, LinkChange, LinkKind, LinkOutcome, Pair, ReviewStatus};
use super::records::{self, Previous, Stored};
use super::review::queue_pair;
use super::{Linker, MPI_ACTOR, StoreError};
use crate::config::Config;
use crate::features::Features;
use crate::model::Matcher;
use serde_json::Value;

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
    let copy = records::stored_copy(patient, patient_id);
    let mut features = Features::from_patient(&copy, source, linker.config());
    features.record_id = patient_id.to_string();
    let (keys, previous) = records::store_record(db, tenant, &features, &copy).await?;
    let record = Stored {
        patient_id: patient_id.to_string(),
        source: source.to_string(),
        patient: copy,
        features,
        golden_id: previous.as_ref().and_then(|p| p.golden_id.clone()),
        kind: previous.as_ref().and_then(|p| p.kind),
        merged_into: previous.as_ref().and_then(|p| p.merged_into.clone()),
        review: None,
    };
    link_record(db, linker, tenant, record, &keys, previous.as_ref()).await
}

/// Links a stored record (`record.golden_id`: its current golden record).
pub(crate) async fn link_record(
    db: &impl Db,
    linker: &Linker,
    tenant: &str,
    record: Stored,
    keys: &[String],
    previous: Option<&Previous>,
) -> Result<LinkOutcome, StoreError> {
    let id = record.patient_id.clone();
    let mut out = LinkOutcome::default();
    if let (Some(golden), Some(LinkKind::Manual | LinkKind::Merged)) =
        (&record.golden_id, record.kind)
    {
        // A person decided this link: it stands; the content may change
        // the golden record.
        let mut members = records::cluster(db, linker, tenant, golden, &id).await?;
        members.retain(|m| m.patient_id != id);
        let mut all: Vec<&Stored> = members.iter().collect();
        all.push(&record);
        out.goldens
            .extend(settle_golden(db, linker, tenant, golden, &all).await?);
        out.golden_id = golden.clone();
        out.source_links = source_links(db, tenant, &[&id]).await?;
        return Ok(out);
    }
    // Both statements go out together (tokio-postgres pipelines them).
    let (frequencies, candidates) = futures_util::future::try_join(
        records::frequencies_for(db, tenant, &record.features),
        records::candidates(db, linker, tenant, &id, keys),
    )
    .await?;
    let matcher = linker.matcher.clone().with_frequencies(frequencies);
    let scores: Vec<f64> = candidates
        .iter()
        .map(|c| matcher.score(&record.features, &c.features))
        .collect();
    let auto_link = linker.config().thresholds.auto_link;

    // 1. A record in a cluster stays while it matches one of its members.
    let current = record.golden_id.clone();
    let mut current_members: Vec<Stored> = Vec::new();
    let mut target: Option<Target> = None;
    let mut leaving: Option<String> = None;
    if let Some(golden) = &current {
        current_members = records::cluster(db, linker, tenant, golden, &id).await?;
        current_members.retain(|m| m.patient_id != id);
        if !current_members.is_empty() {
            match best_in_cluster(&matcher, &record.features, &current_members) {
                Ok(best) if best.score >= auto_link => {
                    target = Some(Target {
                        golden: golden.clone(),
                        members: Vec::new(),
                        ..best
                    });
                }
                Ok(best) => {
                    leaving = Some(format!(
                        "no longer matches its cluster: best score {:.2} < auto_link {auto_link} (Patient/{})",
                        best.score, best.with
                    ))
                }
                Err(reason) => leaving = Some(reason),
            }
        }
    }

    // 2. Otherwise it joins the best matching cluster that admits it.
    let mut link_level_elsewhere: Vec<usize> = Vec::new();
    if target.is_none() {
        let mut clusters: Vec<(f64, &str)> = Vec::new();
        for (i, c) in candidates.iter().enumerate() {
            let Some(golden) = c.golden_id.as_deref() else {
                continue;
            };
            if scores[i] < auto_link
                || Some(golden) == current.as_deref()
                || c.review == Some(ReviewStatus::Rejected)
            {
                continue;
            }
            match clusters.iter_mut().find(|(_, g)| *g == golden) {
                Some(entry) => entry.0 = entry.0.max(scores[i]),
                None => clusters.push((scores[i], golden)),
            }
        }
        clusters.sort_by(|x, y| y.0.total_cmp(&x.0).then_with(|| x.1.cmp(y.1)));
        for (_, golden) in clusters {
            let mut members = records::cluster(db, linker, tenant, golden, &id).await?;
            members.retain(|m| m.patient_id != id);
            if let Ok(best) = best_in_cluster(&matcher, &record.features, &members) {
                if best.score >= auto_link {
                    target = Some(Target {
                        golden: golden.to_string(),
                        members,
                        ..best
                    });
                    break;
                }
            }
        }
    }
    let target_golden = target.as_ref().map(|t| t.golden.clone());
    for (i, c) in candidates.iter().enumerate() {
        if scores[i] >= auto_link && c.golden_id != target_golden {
            link_level_elsewhere.push(i);
        }
    }

    // 3. Pairs for review: the review band, and link-level pairs that the
    //    record could not join (another cluster, or a hard rule).
    let review_threshold = linker.config().thresholds.review;
    for (i, c) in candidates.iter().enumerate() {
        if c.golden_id.is_some() && c.golden_id == target_golden {
            continue;
        }
        if scores[i] < review_threshold
            || matches!(
                c.review,
                Some(ReviewStatus::Rejected | ReviewStatus::Accepted)
            )
            || national_ids_disagree(linker.config(), &record.features, &c.features)
        {
            continue;
        }
        let reason = if link_level_elsewhere.contains(&i) {
            "scored at or above auto_link, but linking would join another cluster"
        } else {
            "scored between review and auto_link"
        };
        let comparison = matcher.compare(&record.features, &c.features);
        let pair = Pair::new(&id, &c.patient_id);
        out.reviews
            .push(queue_pair(db, tenant, &pair, &comparison, reason).await?);
    }

    // 4. The link itself.
    let (golden, members) = match target {
        Some(t) if Some(&t.golden) == current.as_ref() => {
            (t.golden, std::mem::take(&mut current_members))
        }
        Some(t) => {
            let change = LinkChange {
                patient_id: id.clone(),
                golden_before: current.clone(),
                golden_after: Some(t.golden.clone()),
                action: LinkAction::Link,
                kind: Some(LinkKind::Auto),
                score: Some(t.score),
                rule: format!(
                    "score {:.2} ≥ auto_link {auto_link} with Patient/{}",
                    t.score, t.with
                ),
                actor: MPI_ACTOR.into(),
            };
            write_change(db, tenant, &change, None).await?;
            out.changes.push(change);
            (t.golden, t.members)
        }
        None if current.is_some() && leaving.is_none() => {
            // Alone in its cluster, and nothing to join: it stays.
            (current.clone().unwrap_or_default(), Vec::new())
        }
        None => {
            let golden = golden::new_golden(db, tenant, &id).await?;
            let best = scores.iter().copied().reduce(f64::max);
            let rule = match (&leaving, best) {
                (Some(reason), _) => reason.clone(),
                (None, Some(best)) => format!(
                    "no cluster to join: best candidate score {best:.2} (auto_link {auto_link})"
                ),
                (None, None) => "no candidate shares a blocking key".to_string(),
            };
            let change = LinkChange {
                patient_id: id.clone(),
                golden_before: current.clone(),
                golden_after: Some(golden.clone()),
                action: if leaving.is_some() {
                    LinkAction::Unlink
                } else {
                    LinkAction::Separate
                },
                kind: Some(LinkKind::Auto),
                score: best,
                rule,
                actor: MPI_ACTOR.into(),
            };
            write_change(db, tenant, &change, None).await?;
            out.changes.push(change);
            (golden, Vec::new())
        }
    };

    // 5. Golden records: the record's, and the one it left.
    let mut all: Vec<&Stored> = members.iter().collect();
    all.push(&record);
    out.goldens
        .extend(settle_golden(db, linker, tenant, &golden, &all).await?);
    if let Some(left) = current.as_ref().filter(|c| **c != golden) {
        let rest: Vec<&Stored> = current_members.iter().collect();
        out.goldens
            .extend(settle_golden(db, linker, tenant, left, &rest).await?);
    }
    out.source_links = match previous {
        Some(_) => source_links(db, tenant, &[&id]).await?,
        None => vec![super::outcome::SourceLinks {
            patient_id: id.clone(),
            links: vec![super::outcome::PatientLink {
                other: golden.clone(),
                link_type: super::outcome::LinkType::Refer,
            }],
        }],
    };
    out.golden_id = golden;
    Ok(out)
}

/// The cluster a record may join, and why.
struct Target {
    golden: String,
    /// The cluster's members (other than the record), when read.
    members: Vec<Stored>,
    score: f64,
    /// The member that scored best.
    with: String,
}

/// The best score of `record` against a cluster's members, or why it may
/// not join the cluster at all.
fn best_in_cluster(
    matcher: &Matcher,
    record: &Features,
    members: &[Stored],
) -> Result<Target, String> {
    let mut best: Option<Target> = None;
    for member in members {
        if member.review == Some(ReviewStatus::Rejected) {
            return Err(format!(
                "a reviewer rejected the pair with Patient/{}",
                member.patient_id
            ));
        }
        if national_ids_disagree(matcher.config(), record, &member.features) {
            return Err(format!(
                "national id differs from Patient/{}'s",
                member.patient_id
            ));
        }
        let score = matcher.score(record, &member.features);
        if best.as_ref().is_none_or(|b| score > b.score) {
            best = Some(Target {
                golden: String::new(),
                members: Vec::new(),
                score,
                with: member.patient_id.clone(),
            });
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
