//! Indexed records: storing a record and its blocking keys, reading
//! candidates (records sharing a selective key), the members of a cluster
//! and the name frequencies a pair's score needs.

use std::collections::HashMap;

use serde_json::Value;
use tokio_postgres::Row;

use super::db::Db;
use super::outcome::{LinkKind, ReviewStatus};
use super::{Linker, StoreError};
use crate::blocking::blocking_keys;
use crate::features::Features;
use crate::model::NameFrequencies;

/// An indexed record as read back, with its features and link.
#[derive(Debug, Clone)]
pub(crate) struct Stored {
    pub patient_id: String,
    pub source: String,
    pub patient: Value,
    pub features: Features,
    pub golden_id: Option<String>,
    pub kind: Option<LinkKind>,
    pub merged_into: Option<String>,
    /// The review status of the pair (this record, the record the query
    /// was relative to).
    pub review: Option<ReviewStatus>,
}

/// The columns `stored` reads, for a record `r` and its link `l`.
const STORED_COLUMNS: &str =
    "r.patient_id, r.source, r.patient, l.golden_id, l.kind, l.merged_into";

/// The joins of `STORED_COLUMNS` for a relation `c(patient_id)`. Review
/// statuses are read apart (`reviews_of`): joining them here made the
/// statement cost more to plan than to run.
const STORED_JOINS: &str = "JOIN mpi_records r ON r.tenant = $1 AND r.patient_id = c.patient_id \
     LEFT JOIN mpi_links l ON l.tenant = $1 AND l.patient_id = c.patient_id";

fn stored(linker: &Linker, row: &Row, reviews: &HashMap<String, ReviewStatus>) -> Stored {
    let patient_id: String = row.get(0);
    let source: String = row.get(1);
    let patient: Value = row.get(2);
    let mut features = Features::from_patient(&patient, &source, linker.config());
    features.record_id = patient_id.clone();
    Stored {
        review: reviews.get(&patient_id).copied(),
        patient_id,
        source,
        patient,
        features,
        golden_id: row.get(3),
        kind: row.get::<_, Option<&str>>(4).map(LinkKind::parse),
        merged_into: row.get(5),
    }
}

/// The review status of every pair `patient_id` is in, by the other
/// record's id (none for an empty id).
async fn reviews_of(
    db: &impl Db,
    tenant: &str,
    patient_id: &str,
) -> Result<HashMap<String, ReviewStatus>, tokio_postgres::Error> {
    if patient_id.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = db
        .query(
            "SELECT b, status FROM mpi_review WHERE tenant = $1 AND a = $2 \
             UNION ALL SELECT a, status FROM mpi_review WHERE tenant = $1 AND b = $2",
            &[&tenant, &patient_id],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| (row.get(0), ReviewStatus::parse(row.get(1))))
        .collect())
}

/// The stored copy of an incoming Patient: its `id` is the record's id
/// (golden records link to sources by it).
pub(crate) fn stored_copy(patient: &Value, patient_id: &str) -> Value {
    let mut copy = patient.clone();
    if let Some(object) = copy.as_object_mut() {
        object.insert("id".into(), Value::String(patient_id.to_string()));
    }
    copy
}

/// What a record was before a re-index: its keys and link.
#[derive(Debug, Clone, Default)]
pub(crate) struct Previous {
    pub keys: Vec<String>,
    pub golden_id: Option<String>,
    pub kind: Option<LinkKind>,
    pub merged_into: Option<String>,
}

/// Locks a record's row (if it exists) and reads its keys and link.
pub(crate) async fn lock_previous(
    db: &impl Db,
    tenant: &str,
    patient_id: &str,
) -> Result<Option<Previous>, StoreError> {
    let rows = db
        .query(
            "SELECT r.keys, l.golden_id, l.kind, l.merged_into FROM mpi_records r \
             LEFT JOIN mpi_links l ON l.tenant = r.tenant AND l.patient_id = r.patient_id \
             WHERE r.tenant = $1 AND r.patient_id = $2 FOR UPDATE OF r",
            &[&tenant, &patient_id],
        )
        .await?;
    Ok(rows.first().map(|row| Previous {
        keys: row.get(0),
        golden_id: row.get(1),
        kind: row.get::<_, Option<&str>>(2).map(LinkKind::parse),
        merged_into: row.get(3),
    }))
}

/// Stores the record and replaces its blocking keys, in one statement:
/// locks the record's row (if any), reads its keys and link as they were,
/// upserts it, deletes the keys it lost and inserts the ones it gained.
/// Returns the record's keys and what it was before.
pub(crate) async fn store_record(
    db: &impl Db,
    tenant: &str,
    record: &Features,
    patient: &Value,
) -> Result<(Vec<String>, Option<Previous>), StoreError> {
    let keys: Vec<String> = blocking_keys(record).into_iter().map(|k| k.0).collect();
    let given = record.given.as_ref().map(|g| g.first.as_str());
    let family = record.family.as_ref().map(|f| f.full.as_str());
    let rows = db
        .query(
            "WITH old AS ( \
               SELECT r.keys, l.golden_id, l.kind, l.merged_into FROM mpi_records r \
               LEFT JOIN mpi_links l ON l.tenant = r.tenant AND l.patient_id = r.patient_id \
               WHERE r.tenant = $1 AND r.patient_id = $2 FOR UPDATE OF r), \
             up AS ( \
               INSERT INTO mpi_records (tenant, patient_id, source, patient, keys, given_name, family_name) \
               VALUES ($1, $2, $3, $4, $5, $6, $7) \
               ON CONFLICT (tenant, patient_id) DO UPDATE SET source = EXCLUDED.source, \
                 patient = EXCLUDED.patient, keys = EXCLUDED.keys, given_name = EXCLUDED.given_name, \
                 family_name = EXCLUDED.family_name, updated_at = now()), \
             gone AS ( \
               DELETE FROM mpi_block_keys k USING old, unnest(old.keys) AS o(key) \
               WHERE k.tenant = $1 AND k.key = o.key AND k.patient_id = $2 \
                 AND o.key <> ALL($5)), \
             added AS ( \
               INSERT INTO mpi_block_keys (tenant, key, patient_id) \
               SELECT $1, k, $2 FROM unnest($5::text[]) AS k \
               WHERE k <> ALL(coalesce((SELECT keys FROM old), '{}')) ON CONFLICT DO NOTHING) \
             SELECT keys, golden_id, kind, merged_into FROM old",
            &[
                &tenant,
                &record.record_id,
                &record.source,
                patient,
                &keys,
                &given,
                &family,
            ],
        )
        .await?;
    let previous = rows.first().map(|row| Previous {
        keys: row.get(0),
        golden_id: row.get(1),
        kind: row.get::<_, Option<&str>>(2).map(LinkKind::parse),
        merged_into: row.get(3),
    });
    Ok((keys, previous))
}

/// Deletes a record's keys (it leaves the index).
pub(crate) async fn delete_keys(
    db: &impl Db,
    tenant: &str,
    patient_id: &str,
    keys: &[String],
) -> Result<(), StoreError> {
    db.execute(
        "DELETE FROM mpi_block_keys WHERE tenant = $1 AND patient_id = $2 AND key = ANY($3)",
        &[&tenant, &patient_id, &keys],
    )
    .await?;
    Ok(())
}

/// The records sharing a selective key with `keys` (a key held by
/// `max_block` or more other records is skipped, as
/// `blocking::candidate_pairs` skips it), other than `patient_id`.
/// Records merged into another keep their keys (their identifiers still
/// cross-reference) but are nobody's candidates: their target is.
pub(crate) async fn candidates(
    db: &impl Db,
    linker: &Linker,
    tenant: &str,
    patient_id: &str,
    keys: &[String],
) -> Result<Vec<Stored>, StoreError> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    // The guard is a literal: with a parameter, the generic plan could not
    // know how many rows a key's lookup returns.
    let limit = linker.max_block;
    let sql = format!(
        "WITH hits AS ( \
           SELECT q.key, b.patient_id FROM unnest($2::text[]) AS q(key) \
           CROSS JOIN LATERAL (SELECT k.patient_id FROM mpi_block_keys k \
             WHERE k.tenant = $1 AND k.key = q.key AND k.patient_id <> $3 LIMIT {limit}) b), \
         selective AS (SELECT key FROM hits GROUP BY key HAVING count(*) < {limit}), \
         c AS (SELECT DISTINCT h.patient_id FROM hits h JOIN selective s ON s.key = h.key) \
         SELECT {STORED_COLUMNS} FROM c {STORED_JOINS} \
         WHERE l.merged_into IS NULL"
    );
    let (rows, reviews) = futures_util::future::try_join(
        db.query(&sql, &[&tenant, &keys, &patient_id]),
        reviews_of(db, tenant, patient_id),
    )
    .await?;
    Ok(rows
        .iter()
        .map(|row| stored(linker, row, &reviews))
        .collect())
}

/// The members of a cluster, with their review status relative to
/// `relative_to`.
pub(crate) async fn cluster(
    db: &impl Db,
    linker: &Linker,
    tenant: &str,
    golden_id: &str,
    relative_to: &str,
) -> Result<Vec<Stored>, StoreError> {
    let sql = format!(
        "WITH c AS (SELECT patient_id FROM mpi_links WHERE tenant = $1 AND golden_id = $2) \
         SELECT {STORED_COLUMNS} FROM c {STORED_JOINS} ORDER BY r.patient_id"
    );
    let (rows, reviews) = futures_util::future::try_join(
        db.query(&sql, &[&tenant, &golden_id]),
        reviews_of(db, tenant, relative_to),
    )
    .await?;
    Ok(rows
        .iter()
        .map(|row| stored(linker, row, &reviews))
        .collect())
}

/// Some records by id (in any order), relative to `relative_to`.
pub(crate) async fn records(
    db: &impl Db,
    linker: &Linker,
    tenant: &str,
    ids: &[&str],
    relative_to: &str,
) -> Result<Vec<Stored>, StoreError> {
    let sql = format!(
        "WITH c AS (SELECT unnest($2::text[]) AS patient_id) \
         SELECT {STORED_COLUMNS} FROM c {STORED_JOINS}"
    );
    let (rows, reviews) = futures_util::future::try_join(
        db.query(&sql, &[&tenant, &ids]),
        reviews_of(db, tenant, relative_to),
    )
    .await?;
    Ok(rows
        .iter()
        .map(|row| stored(linker, row, &reviews))
        .collect())
}

/// The name frequencies a score of `record` against others needs: its
/// first given word and family name in both tables, and the total.
pub(crate) async fn frequencies_for(
    db: &impl Db,
    tenant: &str,
    record: &Features,
) -> Result<NameFrequencies, StoreError> {
    let mut names: Vec<&str> = vec![""];
    names.extend(record.given.as_ref().map(|g| g.first.as_str()));
    names.extend(record.family.as_ref().map(|f| f.full.as_str()));
    let rows = db
        .query(
            "SELECT kind, name, count FROM mpi_name_frequencies \
             WHERE tenant = $1 AND name = ANY($2)",
            &[&tenant, &names],
        )
        .await?;
    let mut table = NameFrequencies::default();
    for row in rows {
        let (kind, name, count): (&str, String, i64) = (row.get(0), row.get(1), row.get(2));
        let count32 = u32::try_from(count).unwrap_or(u32::MAX);
        match kind {
            "total" => table.total = u64::try_from(count).unwrap_or(0),
            "given" => {
                table.given.insert(name, count32);
            }
            "family" => {
                table.family.insert(name, count32);
            }
            _ => {}
        }
    }
    Ok(table)
}
