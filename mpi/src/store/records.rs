//! Indexed records: storing a record and its blocking keys, reading
//! candidates (records sharing a selective key), the members of a cluster
//! and the name frequencies a pair's score needs.

use std::collections::HashMap;

use serde_json::Value;
use tokio_postgres::Row;

use super::db::Db;
use super::outcome::LinkKind;
use super::{Linker, StoreError};
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
}

/// The columns `stored` reads, for a record `r` and its link `l`.
const STORED_COLUMNS: &str =
    "r.patient_id, r.source, r.patient, l.golden_id, l.kind, l.merged_into";

/// The joins of `STORED_COLUMNS` for a relation `c(patient_id)`.
const STORED_JOINS: &str = "JOIN mpi_records r ON r.tenant = $1 AND r.patient_id = c.patient_id \
     LEFT JOIN mpi_links l ON l.tenant = $1 AND l.patient_id = c.patient_id";

fn stored(linker: &Linker, row: &Row) -> Stored {
    let patient_id: String = row.get(0);
    let source: String = row.get(1);
    let patient: Value = row.get(2);
    let mut features = Features::from_patient(&patient, &source, linker.config());
    features.record_id = patient_id.clone();
    Stored {
        patient_id,
        source,
        patient,
        features,
        golden_id: row.get(3),
        kind: row.get::<_, Option<&str>>(4).map(LinkKind::parse),
        merged_into: row.get(5),
    }
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

/// One record of a batch to store: its features (with `record_id` and
/// `source` set), the stored copy and its blocking keys.
pub(crate) struct ToStore<'a> {
    pub features: &'a Features,
    pub patient: &'a Value,
    pub keys: &'a [String],
}

/// Separates the keys of one record in the text the store statement
/// splits (keys never contain control characters).
const KEY_SEPARATOR: char = '\u{1f}';

/// Stores a batch of records and replaces their blocking keys, in one
/// statement whatever the batch's size: locks the records' rows that
/// exist (in id order, so concurrent batches do not deadlock), reads
/// their keys and links as they were, upserts the records, deletes the
/// keys they lost and inserts the ones they gained. Returns what each
/// record that existed was before, by id. The ids must be distinct.
pub(crate) async fn store_batch(
    db: &impl Db,
    tenant: &str,
    batch: &[ToStore<'_>],
) -> Result<HashMap<String, Previous>, StoreError> {
    let mut ids = Vec::with_capacity(batch.len());
    let (mut sources, mut patients, mut keys) = (Vec::new(), Vec::new(), Vec::new());
    let (mut given, mut family) = (Vec::new(), Vec::new());
    for record in batch {
        let f = record.features;
        ids.push(f.record_id.as_str());
        sources.push(f.source.as_str());
        patients.push(record.patient);
        keys.push(record.keys.join(&KEY_SEPARATOR.to_string()));
        given.push(f.given.as_ref().map(|g| g.first.as_str()));
        family.push(f.family.as_ref().map(|f| f.full.as_str()));
    }
    let rows = db
        .query(
            "WITH input AS ( \
               SELECT i, s, p, coalesce(string_to_array(nullif(k, ''), E'\\x1f'), '{}') AS keys, g, f \
               FROM unnest($2::text[], $3::text[], $4::json[], $5::text[], $6::text[], $7::text[]) \
                 AS t(i, s, p, k, g, f)), \
             old AS ( \
               SELECT r.patient_id, r.keys, l.golden_id, l.kind, l.merged_into FROM mpi_records r \
               LEFT JOIN mpi_links l ON l.tenant = r.tenant AND l.patient_id = r.patient_id \
               WHERE r.tenant = $1 AND r.patient_id = ANY($2) ORDER BY r.patient_id FOR UPDATE OF r), \
             up AS ( \
               INSERT INTO mpi_records (tenant, patient_id, source, patient, keys, given_name, family_name) \
               SELECT $1, i, s, p, keys, g, f FROM input \
               ON CONFLICT (tenant, patient_id) DO UPDATE SET source = EXCLUDED.source, \
                 patient = EXCLUDED.patient, keys = EXCLUDED.keys, given_name = EXCLUDED.given_name, \
                 family_name = EXCLUDED.family_name, updated_at = now()), \
             gone AS ( \
               DELETE FROM mpi_block_keys k USING old JOIN input ON input.i = old.patient_id, \
                 unnest(old.keys) AS o(key) \
               WHERE k.tenant = $1 AND k.key = o.key AND k.patient_id = old.patient_id \
                 AND o.key <> ALL(input.keys)), \
             added AS ( \
               INSERT INTO mpi_block_keys (tenant, key, patient_id) \
               SELECT $1, n.key, input.i FROM input CROSS JOIN LATERAL unnest(input.keys) AS n(key) \
               LEFT JOIN old ON old.patient_id = input.i \
               WHERE n.key <> ALL(coalesce(old.keys, '{}')) ON CONFLICT DO NOTHING) \
             SELECT patient_id, keys, golden_id, kind, merged_into FROM old",
            &[&tenant, &ids, &sources, &patients, &keys, &given, &family],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| {
            let previous = Previous {
                keys: row.get(1),
                golden_id: row.get(2),
                kind: row.get::<_, Option<&str>>(3).map(LinkKind::parse),
                merged_into: row.get(4),
            };
            (row.get(0), previous)
        })
        .collect())
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
    let rows = db.query(&sql, &[&tenant, &keys, &patient_id]).await?;
    Ok(rows.iter().map(|row| stored(linker, row)).collect())
}

/// The members of a cluster.
pub(crate) async fn cluster(
    db: &impl Db,
    linker: &Linker,
    tenant: &str,
    golden_id: &str,
) -> Result<Vec<Stored>, StoreError> {
    let sql = format!(
        "WITH c AS (SELECT patient_id FROM mpi_links WHERE tenant = $1 AND golden_id = $2) \
         SELECT {STORED_COLUMNS} FROM c {STORED_JOINS} ORDER BY r.patient_id"
    );
    let rows = db.query(&sql, &[&tenant, &golden_id]).await?;
    Ok(rows.iter().map(|row| stored(linker, row)).collect())
}

/// Some records by id (in any order).
pub(crate) async fn records(
    db: &impl Db,
    linker: &Linker,
    tenant: &str,
    ids: &[&str],
) -> Result<Vec<Stored>, StoreError> {
    let sql = format!(
        "WITH c AS (SELECT unnest($2::text[]) AS patient_id) \
         SELECT {STORED_COLUMNS} FROM c {STORED_JOINS}"
    );
    let rows = db.query(&sql, &[&tenant, &ids]).await?;
    Ok(rows.iter().map(|row| stored(linker, row)).collect())
}

/// The name frequencies a score of `record` against others needs: its
/// first given word and family name in both tables, and the total.
pub(crate) async fn frequencies_for(
    db: &impl Db,
    tenant: &str,
    record: &Features,
) -> Result<NameFrequencies, StoreError> {
    frequencies_for_all(db, tenant, [record]).await
}

/// The name frequencies scores of any of `records` need, in one
/// statement.
pub(crate) async fn frequencies_for_all<'a>(
    db: &impl Db,
    tenant: &str,
    records: impl IntoIterator<Item = &'a Features>,
) -> Result<NameFrequencies, StoreError> {
    let mut names: Vec<&str> = vec![""];
    for record in records {
        names.extend(record.given.as_ref().map(|g| g.first.as_str()));
        names.extend(record.family.as_ref().map(|f| f.full.as_str()));
    }
    names.sort_unstable();
    names.dedup();
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

/// The stored copies and sources of those of `ids` in the index.
pub async fn indexed(
    db: &impl Db,
    tenant: &str,
    ids: &[&str],
) -> Result<HashMap<String, (String, Value)>, StoreError> {
    let rows = db
        .query(
            "SELECT patient_id, source, patient FROM mpi_records \
             WHERE tenant = $1 AND patient_id = ANY($2)",
            &[&tenant, &ids],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| (row.get(0), (row.get(1), row.get(2))))
        .collect())
}
