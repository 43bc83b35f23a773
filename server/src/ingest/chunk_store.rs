//! The SQL of the worker's fast path ([`super::chunk`]): a chunk's pending
//! records, their integrator's source hashes and the chunk's bookkeeping,
//! each one statement whatever the chunk's size (multi-row `unnest`), in
//! the tenant transaction that writes the chunk.

use super::store::{Batch, Done, Pending};
use crate::error::ApiError;
use crate::store::Db;
use serde_json::Value;
use std::collections::HashMap;

/// The batch's first `limit` pending records after seq `after`, in
/// upload order; their payloads as stored text, parsed by the checks.
pub async fn pending_records(
    db: &impl Db,
    batch: &Batch,
    after: i64,
    limit: usize,
) -> Result<Vec<Pending>, ApiError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = db
        .query(
            "SELECT seq, source_id, content_hash, payload::text FROM ingest_records \
             WHERE tenant = $1 AND batch_id = $2 AND state = 'pending' AND seq > $4 \
             ORDER BY seq LIMIT $3",
            &[&batch.tenant, &batch.id, &limit, &after],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| Pending {
            seq: row.get(0),
            source_id: row.get(1),
            content_hash: row.get(2),
            payload: row.get::<_, Option<String>>(3).unwrap_or_default(),
        })
        .collect())
}

/// The advisory lock that the later parts of a chunk
/// ([`super::chunk_parts`]) hold shared, each for its transaction.
const PARTS_LOCK: &str = "SELECT pg_advisory_xact_lock_shared(hashtextextended($1, 0))";

fn parts_key(batch: &Batch) -> String {
    format!("ingest-parts|{}|{}", batch.tenant, batch.id)
}

/// Holds the batch's parts lock shared until `db`'s transaction ends.
pub async fn hold_part(db: &impl Db, batch: &Batch) -> Result<(), ApiError> {
    db.execute(PARTS_LOCK, &[&parts_key(batch)]).await?;
    Ok(())
}

/// Waits until no later part of an earlier chunk of the batch is still
/// running, by taking the parts lock exclusively and letting it go at once.
/// A chunk's parts end before its transaction does, except when the
/// process dies with a part's COMMIT on its way: the next worker then
/// waits here, and reads that part's records only once they are committed
/// (no longer pending) or rolled back (pending again).
pub async fn wait_for_parts(db: &impl Db, batch: &Batch) -> Result<(), ApiError> {
    // One statement, so that the session lock cannot outlive it on the
    // pooled connection.
    db.execute(
        "WITH taken AS MATERIALIZED (SELECT pg_advisory_lock(hashtextextended($1, 0))) \
         SELECT pg_advisory_unlock(hashtextextended($1, 0)) FROM taken",
        &[&parts_key(batch)],
    )
    .await?;
    Ok(())
}

/// The content hash last written by `integrator` for each of `sources`
/// that has one.
pub async fn source_hashes(
    db: &impl Db,
    tenant: &str,
    integrator: &str,
    sources: &[&str],
) -> Result<HashMap<String, String>, ApiError> {
    let rows = db
        .query(
            "SELECT s.source_id, s.content_hash FROM ingest_sources s \
             JOIN unnest($3::text[]) AS u(source_id) ON u.source_id = s.source_id \
             WHERE s.tenant = $1 AND s.integrator = $2",
            &[&tenant, &integrator, &sources],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// One processed record of a chunk.
#[derive(Debug)]
pub struct Finished {
    pub seq: i64,
    pub done: Done,
    pub outcome: Option<Value>,
}

/// Marks the chunk's records done: a written record's payload is dropped
/// (the resources hold it now), a failed one keeps it for inspection.
pub async fn mark_records(
    db: &impl Db,
    batch: &Batch,
    finished: &[Finished],
) -> Result<(), ApiError> {
    if finished.is_empty() {
        return Ok(());
    }
    let seqs: Vec<i64> = finished.iter().map(|f| f.seq).collect();
    let states: Vec<&str> = finished.iter().map(|f| f.done.as_str()).collect();
    let outcomes: Vec<Option<String>> = finished
        .iter()
        .map(|f| f.outcome.as_ref().map(Value::to_string))
        .collect();
    // The seq range keeps the plan on the primary key even before
    // autovacuum has analysed the records of a large fresh batch (without
    // it, this phase took 0.4–0.5 s per 1,000 records until the analyse,
    // 0.05–0.1 s after).
    let first = seqs.iter().copied().min().unwrap_or_default();
    let last = seqs.iter().copied().max().unwrap_or_default();
    db.execute(
        "UPDATE ingest_records r SET state = u.st, outcome = u.o::json, processed_at = now(), \
           payload = CASE WHEN u.st = 'failed' THEN r.payload END \
         FROM unnest($3::bigint[], $4::text[], $5::text[]) AS u(s, st, o) \
         WHERE r.tenant = $1 AND r.batch_id = $2 AND r.seq = u.s AND r.seq BETWEEN $6 AND $7",
        &[
            &batch.tenant,
            &batch.id,
            &seqs,
            &states,
            &outcomes,
            &first,
            &last,
        ],
    )
    .await?;
    Ok(())
}

/// Adds the finished records to the batch's counts (the batch row is
/// locked by the caller).
pub async fn count_records(
    db: &impl Db,
    batch: &Batch,
    finished: &[Finished],
) -> Result<(), ApiError> {
    if finished.is_empty() {
        return Ok(());
    }
    let count = |done: Done| finished.iter().filter(|f| f.done == done).count() as i64;
    let (created, updated) = (count(Done::Created), count(Done::Updated));
    db.execute(
        "UPDATE ingest_batches SET created = created + $3, updated = updated + $4, \
           unchanged = unchanged + $5, failed = failed + $6, \
           last_success_at = CASE WHEN $3 + $4 > 0 THEN now() ELSE last_success_at END \
         WHERE tenant = $1 AND id = $2",
        &[
            &batch.tenant,
            &batch.id,
            &created,
            &updated,
            &count(Done::Unchanged),
            &count(Done::Failed),
        ],
    )
    .await?;
    Ok(())
}

/// Sets the batch's counts from its records' states, when it completes.
/// A chunk written in two parts ([`super::chunk_parts`]) commits its second
/// part's records before the counts that include them; a crash between the
/// two commits would otherwise leave the counts short for good.
pub async fn recount(db: &impl Db, batch: &Batch) -> Result<(), ApiError> {
    db.execute(
        "UPDATE ingest_batches b SET created = c.created, updated = c.updated, \
           unchanged = c.unchanged, failed = c.failed \
         FROM (SELECT count(*) FILTER (WHERE state = 'created') AS created, \
                 count(*) FILTER (WHERE state = 'updated') AS updated, \
                 count(*) FILTER (WHERE state = 'unchanged') AS unchanged, \
                 count(*) FILTER (WHERE state = 'failed') AS failed \
               FROM ingest_records WHERE tenant = $1 AND batch_id = $2) c \
         WHERE b.tenant = $1 AND b.id = $2",
        &[&batch.tenant, &batch.id],
    )
    .await?;
    Ok(())
}

/// Remembers the content hash written for each source id (distinct
/// within one call).
pub async fn remember_sources(
    db: &impl Db,
    batch: &Batch,
    integrator: &str,
    written: &[(&str, &str)],
) -> Result<(), ApiError> {
    if written.is_empty() {
        return Ok(());
    }
    let (sources, hashes): (Vec<&str>, Vec<&str>) = written.iter().copied().unzip();
    db.execute(
        "INSERT INTO ingest_sources (tenant, integrator, source_id, content_hash, batch_id) \
         SELECT $1, $2, s, h, $5 FROM unnest($3::text[], $4::text[]) AS u(s, h) \
         ON CONFLICT (tenant, integrator, source_id) DO UPDATE \
         SET content_hash = excluded.content_hash, batch_id = excluded.batch_id, written_at = now()",
        &[&batch.tenant, &integrator, &sources, &hashes, &batch.id],
    )
    .await?;
    Ok(())
}
