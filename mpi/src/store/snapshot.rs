//! What linking a batch needs to know, read once and then kept in memory:
//! the records sharing a selective blocking key with the batch, the
//! members of every cluster those records and the batch's records are
//! in, the review status of the batch's pairs, the name frequencies and
//! how many golden records each batch record founded before. Linking
//! (`link`) then reads and changes this snapshot instead of asking the
//! database record by record; `flush` writes what changed.
//!
//! Records new to the index are nobody's candidates until they are
//! linked, as if the batch's records arrived one by one; re-indexed
//! records are candidates all along, as they were in the index.

use std::collections::{BTreeSet, HashMap, HashSet};

use serde_json::Value;

use super::db::Db;
use super::outcome::{LinkKind, Pair, ReviewStatus};
use super::records::{self, Stored};
use super::{Linker, StoreError};
use crate::features::Features;
use crate::model::NameFrequencies;

/// The in-memory state of the part of the index a batch touches.
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    /// Every record read (candidates, cluster members) and the batch's
    /// own, by id; their links as linking changes them.
    records: HashMap<String, Stored>,
    /// Golden id → member ids, as linking changes them.
    clusters: HashMap<String, BTreeSet<String>>,
    /// Selective key → the records holding it.
    hits: HashMap<String, Vec<String>>,
    /// Review statuses of pairs with a batch record.
    reviews: HashMap<Pair, ReviewStatus>,
    /// Founder → the last generation it founded.
    generations: HashMap<String, i32>,
    /// Batch records new to the index and not linked yet.
    waiting: HashSet<String>,
    pub frequencies: NameFrequencies,
}

impl Snapshot {
    /// Reads what the batch needs, in four statements sent together.
    /// `batch`: the batch's records as stored (their links as they were);
    /// `keys`: every key of the batch.
    pub async fn load(
        db: &impl Db,
        linker: &Linker,
        tenant: &str,
        batch: Vec<Stored>,
        keys: &[&str],
    ) -> Result<Snapshot, StoreError> {
        let ids: Vec<&str> = batch.iter().map(|r| r.patient_id.as_str()).collect();
        let previous: Vec<&str> = batch
            .iter()
            .filter_map(|r| r.golden_id.as_deref())
            .collect();
        let (frequencies, rows, reviews, generations) = futures_util::future::try_join4(
            records::frequencies_for_all(db, tenant, batch.iter().map(|r| &r.features)),
            neighbourhood(db, linker, tenant, keys, &previous),
            review_statuses(db, tenant, &ids),
            generations(db, tenant, &ids),
        )
        .await?;
        let mut snapshot = Snapshot {
            frequencies,
            reviews,
            generations,
            ..Snapshot::default()
        };
        let own: HashSet<&str> = ids.iter().copied().collect();
        for row in &rows {
            let patient_id: String = row.get(1);
            if row.get::<_, &str>(0) == "h" {
                let key: String = row.get(2);
                snapshot.hits.entry(key).or_default().push(patient_id);
                continue;
            }
            if own.contains(patient_id.as_str()) || snapshot.records.contains_key(&patient_id) {
                continue;
            }
            let source: String = row.get(3);
            let patient: Value = row.get(4);
            let mut features = Features::from_patient(&patient, &source, linker.config());
            features.record_id = patient_id.clone();
            snapshot.insert(Stored {
                patient_id,
                source,
                patient,
                features,
                golden_id: row.get(5),
                kind: row.get::<_, Option<&str>>(6).map(LinkKind::parse),
                merged_into: row.get(7),
            });
        }
        for record in batch {
            // A record new to the index is nobody's candidate until it is
            // linked; one re-indexed was in the index all along.
            if record.golden_id.is_none() {
                snapshot.waiting.insert(record.patient_id.clone());
            }
            snapshot.insert(record);
        }
        Ok(snapshot)
    }

    fn insert(&mut self, record: Stored) {
        if let Some(golden) = &record.golden_id {
            self.clusters
                .entry(golden.clone())
                .or_default()
                .insert(record.patient_id.clone());
        }
        self.records.insert(record.patient_id.clone(), record);
    }

    pub fn record(&self, id: &str) -> Option<&Stored> {
        self.records.get(id)
    }

    /// The review status of the pair (a, b), if it was queued.
    pub fn review(&self, a: &str, b: &str) -> Option<ReviewStatus> {
        self.reviews.get(&Pair::new(a, b)).copied()
    }

    /// The candidates of `id`: records sharing one of its selective keys,
    /// other than itself, new batch records not linked yet and records
    /// merged away.
    pub fn candidates(&self, id: &str, keys: &[String]) -> Vec<&Stored> {
        let mut seen: HashSet<&str> = HashSet::new();
        let mut out = Vec::new();
        for key in keys {
            for other in self.hits.get(key).into_iter().flatten() {
                if other == id || self.waiting.contains(other) || !seen.insert(other) {
                    continue;
                }
                if let Some(record) = self.records.get(other) {
                    if record.merged_into.is_none() {
                        out.push(record);
                    }
                }
            }
        }
        // Id order, so that ties are broken as the database would.
        out.sort_by(|a, b| a.patient_id.cmp(&b.patient_id));
        out
    }

    /// A cluster's members other than `except`, in id order.
    pub fn members(&self, golden: &str, except: &str) -> Vec<&Stored> {
        self.clusters
            .get(golden)
            .into_iter()
            .flatten()
            .filter(|id| *id != except)
            .filter_map(|id| self.records.get(id))
            .collect()
    }

    /// Moves `id` to `golden` (an auto link) and marks it linked.
    pub fn set_link(&mut self, id: &str, golden: &str) {
        let Some(record) = self.records.get_mut(id) else {
            return;
        };
        if let Some(old) = record.golden_id.take() {
            if let Some(members) = self.clusters.get_mut(&old) {
                members.remove(id);
            }
        }
        record.golden_id = Some(golden.to_owned());
        record.kind = Some(LinkKind::Auto);
        self.clusters
            .entry(golden.to_owned())
            .or_default()
            .insert(id.to_owned());
    }

    /// Marks a batch record linked (a candidate of the records after it).
    pub fn done(&mut self, id: &str) {
        self.waiting.remove(id);
    }

    /// The id of the next golden record `founder` founds.
    pub fn next_golden(&mut self, tenant: &str, founder: &str) -> (String, i32) {
        let generation = self.generations.entry(founder.to_owned()).or_insert(0);
        *generation += 1;
        (
            super::golden::golden_id(tenant, founder, *generation),
            *generation,
        )
    }
}

/// In one statement: the selective keys' records (rows `h`: id, key) and
/// the records to know (rows `r`: id, source, patient, link): the
/// candidates, the members of their clusters and of the clusters
/// `goldens`. A key held by more than `max_block` records (the batch's
/// included) is not selective, as `records::candidates` has it.
async fn neighbourhood(
    db: &impl Db,
    linker: &Linker,
    tenant: &str,
    keys: &[&str],
    goldens: &[&str],
) -> Result<Vec<tokio_postgres::Row>, StoreError> {
    if keys.is_empty() && goldens.is_empty() {
        return Ok(Vec::new());
    }
    // The guards are literals: with parameters, the generic plan could
    // not know how many rows a key's lookup returns.
    let limit = linker.max_block();
    let sql = format!(
        "WITH q AS (SELECT DISTINCT unnest($2::text[]) AS key), \
         hits AS (SELECT q.key, b.patient_id FROM q CROSS JOIN LATERAL ( \
           SELECT k.patient_id FROM mpi_block_keys k WHERE k.tenant = $1 AND k.key = q.key \
           LIMIT {}) b), \
         sel AS (SELECT h.key, h.patient_id FROM hits h \
           WHERE h.key IN (SELECT key FROM hits GROUP BY key HAVING count(*) <= {limit})), \
         cand AS (SELECT DISTINCT patient_id FROM sel), \
         g AS (SELECT l.golden_id FROM cand JOIN mpi_links l \
                 ON l.tenant = $1 AND l.patient_id = cand.patient_id \
               UNION SELECT unnest($3::text[])), \
         c AS (SELECT patient_id FROM cand \
               UNION SELECT m.patient_id FROM g JOIN mpi_links m \
                 ON m.tenant = $1 AND m.golden_id = g.golden_id) \
         SELECT 'h', patient_id, key, NULL::text, NULL::json, NULL::text, NULL::text, NULL::text \
           FROM sel \
         UNION ALL \
         SELECT 'r', r.patient_id, NULL, r.source, r.patient, l.golden_id, l.kind, l.merged_into \
           FROM c JOIN mpi_records r ON r.tenant = $1 AND r.patient_id = c.patient_id \
           LEFT JOIN mpi_links l ON l.tenant = $1 AND l.patient_id = c.patient_id",
        limit + 1
    );
    Ok(db.query(&sql, &[&tenant, &keys, &goldens]).await?)
}

/// The review status of every pair with one of `ids`.
async fn review_statuses(
    db: &impl Db,
    tenant: &str,
    ids: &[&str],
) -> Result<HashMap<Pair, ReviewStatus>, StoreError> {
    let rows = db
        .query(
            "SELECT a, b, status FROM mpi_review WHERE tenant = $1 AND a = ANY($2) \
             UNION SELECT a, b, status FROM mpi_review WHERE tenant = $1 AND b = ANY($2)",
            &[&tenant, &ids],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| {
            let pair = Pair {
                a: row.get(0),
                b: row.get(1),
            };
            (pair, ReviewStatus::parse(row.get(2)))
        })
        .collect())
}

/// How many golden records each of `ids` founded (the last generation).
async fn generations(
    db: &impl Db,
    tenant: &str,
    ids: &[&str],
) -> Result<HashMap<String, i32>, StoreError> {
    let rows = db
        .query(
            "SELECT founder, max(generation) FROM mpi_goldens \
             WHERE tenant = $1 AND founder = ANY($2) GROUP BY founder",
            &[&tenant, &ids],
        )
        .await?;
    Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
}
