//! Writing what linking a batch decided, with one multi-row statement
//! per table whatever the batch's size: new golden records, link changes
//! with their log entries, review pairs (queued or refreshed, and the
//! pending pairs of re-indexed records that no longer qualify dropped),
//! then each touched cluster's golden content, computed once per batch
//! and handed to the server only when its hash changed.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::db::Db;
use super::golden::{content_hash, golden_patient, source_links};
use super::outcome::{
    GoldenChange, LinkChange, LinkOutcome, LinkType, Pair, PatientLink, ReviewPair, SourceLinks,
};
use super::snapshot::Snapshot;
use super::{Linker, StoreError};
use crate::model::Comparison;

/// What linking a batch decided, to write at the end.
#[derive(Debug)]
pub(crate) struct Writes {
    /// The auto-link threshold (for the rules' wording).
    pub auto_link: f64,
    /// Golden records whose content to settle.
    pub touched: BTreeSet<String>,
    changes: Vec<LinkChange>,
    /// New golden records: id → (founder, generation).
    founded: BTreeMap<String, (String, i32)>,
    /// Review pairs: pair → (score, comparison, reason); the later wins.
    reviews: BTreeMap<Pair, (f64, Value, String)>,
    /// Records whose pairs were evaluated (not those a person linked).
    evaluated: Vec<String>,
}

impl Writes {
    pub fn new(auto_link: f64) -> Writes {
        Writes {
            auto_link,
            touched: BTreeSet::new(),
            changes: Vec::new(),
            founded: BTreeMap::new(),
            reviews: BTreeMap::new(),
            evaluated: Vec::new(),
        }
    }

    pub fn change(&mut self, change: LinkChange) {
        self.changes.push(change);
    }

    pub fn found(&mut self, golden: &str, founder: &str, generation: i32) {
        self.founded
            .insert(golden.to_owned(), (founder.to_owned(), generation));
    }

    /// Forgets the pairs with `id` queued earlier in the batch but not
    /// `now`: as one by one, a record's last evaluation decides its pairs.
    pub fn requeue(&mut self, id: &str, now: &[Pair]) {
        self.evaluated.push(id.to_owned());
        self.reviews
            .retain(|pair, _| (pair.a != id && pair.b != id) || now.contains(pair));
    }

    pub fn queue(&mut self, pair: Pair, comparison: &Comparison, reason: &str) {
        let explained = serde_json::to_value(comparison).unwrap_or(Value::Null);
        self.reviews
            .insert(pair, (comparison.score, explained, reason.to_owned()));
    }
}

/// Writes `writes` and returns the outcome for the server. `reindexed`:
/// the batch's records that were in the index before (their links are
/// read back); `fresh`: the new ones (their only link is `refer` to their
/// golden record). The pending pairs of the records evaluated that they
/// no longer queue leave the queue.
pub(crate) async fn flush(
    db: &impl Db,
    linker: &Linker,
    tenant: &str,
    snapshot: &Snapshot,
    writes: Writes,
    reindexed: &[&str],
    fresh: &[&str],
) -> Result<LinkOutcome, StoreError> {
    let queued: Vec<&Pair> = writes.reviews.keys().collect();
    // Only records that were in the index can have pairs pending from
    // before (a new one's were all queued in this batch).
    let stale_candidates: Vec<&str> = writes
        .evaluated
        .iter()
        .map(String::as_str)
        .filter(|id| reindexed.contains(id))
        .collect();
    futures_util::future::try_join4(
        insert_goldens(db, tenant, &writes.founded),
        write_changes(db, tenant, &writes.changes),
        queue_reviews(db, tenant, &writes.reviews),
        drop_stale_reviews(db, tenant, &stale_candidates, &queued),
    )
    .await?;
    let mut out = LinkOutcome {
        goldens: settle(db, linker, tenant, snapshot, &writes.touched).await?,
        ..LinkOutcome::default()
    };
    if !reindexed.is_empty() {
        out.source_links = source_links(db, tenant, reindexed).await?;
    }
    for id in fresh {
        let Some(golden) = snapshot.record(id).and_then(|r| r.golden_id.clone()) else {
            continue;
        };
        out.source_links.push(SourceLinks {
            patient_id: (*id).to_owned(),
            links: vec![PatientLink {
                other: golden,
                link_type: LinkType::Refer,
            }],
        });
    }
    out.reviews = writes
        .reviews
        .into_iter()
        .map(|(pair, (score, _, reason))| ReviewPair {
            pair,
            score,
            reason,
        })
        .collect();
    out.changes = writes.changes;
    Ok(out)
}

async fn insert_goldens(
    db: &impl Db,
    tenant: &str,
    founded: &BTreeMap<String, (String, i32)>,
) -> Result<(), StoreError> {
    if founded.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = founded.keys().map(String::as_str).collect();
    let founders: Vec<&str> = founded.values().map(|(f, _)| f.as_str()).collect();
    let generations: Vec<i32> = founded.values().map(|(_, g)| *g).collect();
    db.execute(
        "INSERT INTO mpi_goldens (tenant, golden_id, founder, generation) \
         SELECT $1, g, f, n FROM unnest($2::text[], $3::text[], $4::int4[]) AS t(g, f, n)",
        &[&tenant, &ids, &founders, &generations],
    )
    .await?;
    Ok(())
}

/// The links (each record's last change) and every change's log entry,
/// in order, in one statement.
async fn write_changes(
    db: &impl Db,
    tenant: &str,
    changes: &[LinkChange],
) -> Result<(), StoreError> {
    if changes.is_empty() {
        return Ok(());
    }
    let column = |f: fn(&LinkChange) -> Option<&str>| -> Vec<Option<&str>> {
        changes.iter().map(f).collect()
    };
    let ids = column(|c| Some(c.patient_id.as_str()));
    let before = column(|c| c.golden_before.as_deref());
    let after = column(|c| c.golden_after.as_deref());
    let actions = column(|c| Some(c.action.as_str()));
    let kinds = column(|c| c.kind.map(|k| k.as_str()));
    let rules = column(|c| Some(c.rule.as_str()));
    let actors = column(|c| Some(c.actor.as_str()));
    let scores: Vec<Option<f64>> = changes.iter().map(|c| c.score).collect();
    db.execute(
        "WITH input AS ( \
           SELECT * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], \
             $7::float8[], $8::text[], $9::text[]) WITH ORDINALITY \
             AS t(patient_id, golden_before, golden_after, action, kind, score, rule, actor, n)), \
         last AS (SELECT DISTINCT ON (patient_id) * FROM input ORDER BY patient_id, n DESC), \
         link AS ( \
           INSERT INTO mpi_links (tenant, patient_id, golden_id, kind, score, rule, merged_into, decided_by) \
           SELECT $1, patient_id, golden_after, kind, score, rule, NULL, actor FROM last \
           WHERE golden_after IS NOT NULL \
           ON CONFLICT (tenant, patient_id) DO UPDATE SET golden_id = EXCLUDED.golden_id, \
             kind = EXCLUDED.kind, score = EXCLUDED.score, rule = EXCLUDED.rule, \
             merged_into = EXCLUDED.merged_into, decided_by = EXCLUDED.decided_by, \
             decided_at = now()) \
         INSERT INTO mpi_link_log \
           (tenant, patient_id, golden_before, golden_after, action, kind, score, rule, actor) \
         SELECT $1, patient_id, golden_before, golden_after, action, kind, score, rule, actor \
         FROM input ORDER BY n",
        &[
            &tenant, &ids, &before, &after, &actions, &kinds, &scores, &rules, &actors,
        ],
    )
    .await?;
    Ok(())
}

/// Queues the pairs, or refreshes the score and comparison of those
/// pending or deferred (a decided pair stays decided).
async fn queue_reviews(
    db: &impl Db,
    tenant: &str,
    reviews: &BTreeMap<Pair, (f64, Value, String)>,
) -> Result<(), StoreError> {
    if reviews.is_empty() {
        return Ok(());
    }
    let a: Vec<&str> = reviews.keys().map(|p| p.a.as_str()).collect();
    let b: Vec<&str> = reviews.keys().map(|p| p.b.as_str()).collect();
    let scores: Vec<f64> = reviews.values().map(|v| v.0).collect();
    let comparisons: Vec<&Value> = reviews.values().map(|v| &v.1).collect();
    let reasons: Vec<&str> = reviews.values().map(|v| v.2.as_str()).collect();
    db.execute(
        "INSERT INTO mpi_review (tenant, a, b, score, comparison, reason) \
         SELECT $1, a, b, s, c, r FROM unnest($2::text[], $3::text[], $4::float8[], $5::json[], \
           $6::text[]) AS t(a, b, s, c, r) ORDER BY a, b \
         ON CONFLICT (tenant, a, b) DO UPDATE SET score = EXCLUDED.score, \
           comparison = EXCLUDED.comparison, reason = EXCLUDED.reason \
         WHERE mpi_review.status IN ('pending', 'deferred')",
        &[&tenant, &a, &b, &scores, &comparisons, &reasons],
    )
    .await?;
    Ok(())
}

/// An evaluated record's pending pairs that it no longer queues (the pair
/// left the review band, or the records joined one cluster, or the other
/// record is nobody's candidate any more) leave the queue; pairs a person
/// deferred or decided stay.
async fn drop_stale_reviews(
    db: &impl Db,
    tenant: &str,
    evaluated: &[&str],
    queued: &[&Pair],
) -> Result<(), StoreError> {
    if evaluated.is_empty() {
        return Ok(());
    }
    let a: Vec<&str> = queued.iter().map(|p| p.a.as_str()).collect();
    let b: Vec<&str> = queued.iter().map(|p| p.b.as_str()).collect();
    db.execute(
        "DELETE FROM mpi_review v WHERE v.tenant = $1 AND v.status = 'pending' \
           AND (v.a = ANY($2) OR v.b = ANY($2)) \
           AND NOT EXISTS (SELECT 1 FROM unnest($3::text[], $4::text[]) AS q(a, b) \
                           WHERE q.a = v.a AND q.b = v.b)",
        &[&tenant, &evaluated, &a, &b],
    )
    .await?;
    Ok(())
}

/// Settles every touched cluster's golden record: its content (built once
/// from the members as linked now) is handed out when its hash differs
/// from the last one handed out; an emptied cluster's golden record is
/// retired. The golden rows are locked in id order first, so that two
/// batches touching the same clusters do not deadlock.
async fn settle(
    db: &impl Db,
    linker: &Linker,
    tenant: &str,
    snapshot: &Snapshot,
    touched: &BTreeSet<String>,
) -> Result<Vec<GoldenChange>, StoreError> {
    let mut contents: BTreeMap<&str, (Value, String)> = BTreeMap::new();
    let mut emptied: Vec<&str> = Vec::new();
    for golden in touched {
        let members = snapshot.members(golden, "");
        if members.is_empty() {
            emptied.push(golden);
        } else {
            let patient = golden_patient(linker, golden, &members);
            let hash = content_hash(&patient);
            contents.insert(golden, (patient, hash));
        }
    }
    if touched.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<&str> = touched.iter().map(String::as_str).collect();
    if ids.len() > 1 {
        db.query(
            "SELECT 1 FROM mpi_goldens WHERE tenant = $1 AND golden_id = ANY($2) \
             ORDER BY golden_id FOR UPDATE",
            &[&tenant, &ids],
        )
        .await?;
    }
    let written: Vec<&str> = contents.keys().copied().collect();
    let hashes: Vec<&str> = contents.values().map(|(_, h)| h.as_str()).collect();
    let rows = db
        .query(
            "WITH u AS (SELECT * FROM unnest($2::text[], $3::text[]) AS t(golden_id, hash)), \
             written AS ( \
               UPDATE mpi_goldens g SET content_hash = u.hash, active = true FROM u \
               WHERE g.tenant = $1 AND g.golden_id = u.golden_id \
                 AND g.content_hash IS DISTINCT FROM u.hash RETURNING g.golden_id), \
             retired AS ( \
               UPDATE mpi_goldens g SET active = false, content_hash = NULL \
               WHERE g.tenant = $1 AND g.golden_id = ANY($4) AND g.active RETURNING g.golden_id) \
             SELECT 'w', golden_id FROM written UNION ALL SELECT 'r', golden_id FROM retired",
            &[&tenant, &written, &hashes, &emptied],
        )
        .await?;
    let mut changes = Vec::with_capacity(rows.len());
    for row in &rows {
        let id: String = row.get(1);
        if row.get::<_, &str>(0) == "r" {
            changes.push(GoldenChange::Retire { id });
        } else if let Some((patient, _)) = contents.remove(id.as_str()) {
            changes.push(GoldenChange::Write { id, patient });
        }
    }
    Ok(changes)
}
