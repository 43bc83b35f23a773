//! The SQL of ingest batches (migrations V29–V31): batches, their records
//! and the per-integrator source hashes. Every function runs on a tenant
//! transaction (`store::Db`), names its tenant, and is held to it by
//! row-level security.

use super::caller::Reach;
use super::records::Record;
use super::{DataType, Status};
use crate::error::ApiError;
use crate::store::Db;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tokio_postgres::Row;

/// One batch as stored.
#[derive(Debug, Clone)]
pub struct Batch {
    pub tenant: String,
    pub id: String,
    pub name: String,
    pub data_type: DataType,
    pub integrator: Option<String>,
    /// The principal that opened it ([`super::caller::to_claims`]).
    pub caller: Option<Value>,
    pub status: Status,
    pub expected: Option<i64>,
    pub received: i64,
    pub created: i64,
    pub updated: i64,
    pub unchanged: i64,
    pub failed: i64,
    pub failure_message: Option<String>,
    pub created_at: DateTime<Utc>,
    pub send_completed_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub last_success_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "tenant, id, name, data_type, integrator, caller::text, status, \
    expected_count, received, created, updated, unchanged, failed, failure_message, \
    created_at, send_completed_at, finished_at, last_success_at";

fn batch_of(row: &Row) -> Result<Batch, ApiError> {
    let data_type: String = row.get(3);
    let status: String = row.get(6);
    let caller: Option<String> = row.get(5);
    Ok(Batch {
        tenant: row.get(0),
        id: row.get(1),
        name: row.get(2),
        data_type: DataType::parse(&data_type)
            .ok_or_else(|| ApiError::fault(format!("stored data type {data_type:?}")))?,
        integrator: row.get(4),
        caller: caller.and_then(|text| serde_json::from_str(&text).ok()),
        status: Status::parse(&status)
            .ok_or_else(|| ApiError::fault(format!("stored batch status {status:?}")))?,
        expected: row.get(7),
        received: row.get(8),
        created: row.get(9),
        updated: row.get(10),
        unchanged: row.get(11),
        failed: row.get(12),
        failure_message: row.get(13),
        created_at: row.get(14),
        send_completed_at: row.get(15),
        finished_at: row.get(16),
        last_success_at: row.get(17),
    })
}

fn instant(t: Option<DateTime<Utc>>) -> Value {
    t.map_or(Value::Null, |t| json!(crate::store::format_instant(t)))
}

impl Batch {
    /// Records not processed yet.
    pub fn pending(&self) -> i64 {
        self.received - self.created - self.updated - self.unchanged - self.failed
    }

    /// The batch as the API serves it (docs/ingest.md).
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "dataType": self.data_type.as_str(),
            "integrator": self.integrator,
            "status": self.status.as_str(),
            "expectedRecordCount": self.expected,
            "counts": {
                "received": self.received,
                "created": self.created,
                "updated": self.updated,
                "unchanged": self.unchanged,
                "failed": self.failed,
                "pending": self.pending(),
            },
            "failureMessage": self.failure_message,
            "createdAt": instant(Some(self.created_at)),
            "sendCompletedAt": instant(self.send_completed_at),
            "finishedAt": instant(self.finished_at),
            "lastSuccessAt": instant(self.last_success_at),
        })
    }
}

/// What a new batch is made of.
#[derive(Debug)]
pub struct NewBatch<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub data_type: DataType,
    pub integrator: Option<&'a str>,
    pub caller: Option<&'a Value>,
    pub expected: Option<i64>,
}

pub async fn insert_batch(db: &impl Db, tenant: &str, new: &NewBatch<'_>) -> Result<(), ApiError> {
    let caller = new.caller.map(Value::to_string);
    db.execute(
        "INSERT INTO ingest_batches (tenant, id, name, data_type, integrator, caller, status, expected_count) \
         VALUES ($1, $2, $3, $4, $5, $6::text::json, 'started', $7)",
        &[
            &tenant,
            &new.id,
            &new.name,
            &new.data_type.as_str(),
            &new.integrator,
            &caller,
            &new.expected,
        ],
    )
    .await?;
    Ok(())
}

/// The batch `id` if the caller reaches it; `lock` takes its row lock
/// (actions and record processing serialise on it).
pub async fn find_batch(
    db: &impl Db,
    tenant: &str,
    id: &str,
    reach: &Reach,
    lock: bool,
) -> Result<Option<Batch>, ApiError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM ingest_batches WHERE tenant = $1 AND id = $2 \
         AND ($3::text IS NULL OR integrator = $3){}",
        if lock { " FOR UPDATE" } else { "" }
    );
    let integrator = reach.integrator();
    let rows = db.query(&sql, &[&tenant, &id, &integrator]).await?;
    rows.first().map(batch_of).transpose()
}

/// The reached batches, newest first, optionally of one status and one
/// integrator; at most `limit`.
pub async fn list_batches(
    db: &impl Db,
    tenant: &str,
    reach: &Reach,
    status: Option<Status>,
    integrator: Option<&str>,
    limit: i64,
) -> Result<Vec<Batch>, ApiError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM ingest_batches WHERE tenant = $1 \
         AND ($2::text IS NULL OR integrator = $2) AND ($3::text IS NULL OR integrator = $3) \
         AND ($4::text IS NULL OR status = $4) ORDER BY created_at DESC, id LIMIT $5"
    );
    let status = status.map(Status::as_str);
    let rows = db
        .query(
            &sql,
            &[&tenant, &reach.integrator(), &integrator, &status, &limit],
        )
        .await?;
    rows.iter().map(batch_of).collect()
}

/// The batches the worker has to process.
pub async fn batches_to_process(db: &impl Db, tenant: &str) -> Result<Vec<String>, ApiError> {
    let rows = db
        .query(
            "SELECT id FROM ingest_batches WHERE tenant = $1 \
             AND status IN ('sendCompleted', 'processing') ORDER BY created_at, id",
            &[&tenant],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Moves the batch to `status`; final statuses set `finished_at`.
pub async fn set_status(
    db: &impl Db,
    tenant: &str,
    id: &str,
    status: Status,
    failure_message: Option<&str>,
) -> Result<(), ApiError> {
    db.execute(
        "UPDATE ingest_batches SET status = $3, \
           failure_message = coalesce($4, failure_message), \
           send_completed_at = CASE WHEN $3 = 'sendCompleted' THEN now() ELSE send_completed_at END, \
           finished_at = CASE WHEN $3 IN ('completed', 'failed', 'terminated') THEN now() ELSE finished_at END \
         WHERE tenant = $1 AND id = $2",
        &[&tenant, &id, &status.as_str(), &failure_message],
    )
    .await?;
    Ok(())
}

/// Appends `records` after the batch's `received` ones (the batch row is
/// locked by the caller) with one statement, and counts them received;
/// records that failed at upload count as failed at once.
pub async fn append_records(
    db: &impl Db,
    batch: &Batch,
    records: &[Record],
) -> Result<(), ApiError> {
    let mut seqs = Vec::with_capacity(records.len());
    let mut sources = Vec::with_capacity(records.len());
    let mut hashes = Vec::with_capacity(records.len());
    let mut payloads: Vec<Option<String>> = Vec::with_capacity(records.len());
    let mut states = Vec::with_capacity(records.len());
    let mut outcomes: Vec<Option<String>> = Vec::with_capacity(records.len());
    let lines: Vec<Option<i64>> = records.iter().map(|r| r.line).collect();
    for (i, record) in records.iter().enumerate() {
        seqs.push(batch.received + 1 + i as i64);
        sources.push(record.source_id.clone());
        hashes.push(record.content_hash.clone());
        payloads.push(record.payload.as_ref().map(Value::to_string));
        states.push(if record.outcome.is_some() {
            "failed"
        } else {
            "pending"
        });
        outcomes.push(record.outcome.as_ref().map(Value::to_string));
    }
    db.execute(
        "INSERT INTO ingest_records (tenant, batch_id, seq, source_id, content_hash, payload, state, outcome, processed_at, line) \
         SELECT $1, $2, s, src, h, p::json, st, o::json, CASE WHEN st = 'failed' THEN now() END, l \
         FROM unnest($3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::bigint[]) \
           AS u(s, src, h, p, st, o, l)",
        &[
            &batch.tenant,
            &batch.id,
            &seqs,
            &sources,
            &hashes,
            &payloads,
            &states,
            &outcomes,
            &lines,
        ],
    )
    .await?;
    let failed = records.iter().filter(|r| r.outcome.is_some()).count() as i64;
    db.execute(
        "UPDATE ingest_batches SET received = received + $3, failed = failed + $4 \
         WHERE tenant = $1 AND id = $2",
        &[&batch.tenant, &batch.id, &(records.len() as i64), &failed],
    )
    .await?;
    Ok(())
}

/// A record waiting to be written.
#[derive(Debug)]
pub struct Pending {
    pub seq: i64,
    pub source_id: String,
    pub content_hash: String,
    /// The record's transaction Bundle as stored (JSON text).
    pub payload: String,
}

/// The outcome of processing one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Done {
    Created,
    Updated,
    Unchanged,
    Failed,
}

impl Done {
    pub fn as_str(self) -> &'static str {
        match self {
            Done::Created => "created",
            Done::Updated => "updated",
            Done::Unchanged => "unchanged",
            Done::Failed => "failed",
        }
    }
}

/// Records still pending when a batch is terminated are skipped.
pub async fn skip_pending(db: &impl Db, batch: &Batch) -> Result<u64, ApiError> {
    Ok(db
        .execute(
            "UPDATE ingest_records SET state = 'skipped', processed_at = now() \
             WHERE tenant = $1 AND batch_id = $2 AND state = 'pending'",
            &[&batch.tenant, &batch.id],
        )
        .await?)
}

/// A record that failed, for the errors file.
#[derive(Debug)]
pub struct FailedRecord {
    pub seq: i64,
    pub source_id: String,
    /// Its line in an NDJSON upload.
    pub line: Option<i64>,
    pub outcome: Value,
}

/// The failed records, in upload order.
pub async fn failed_records(db: &impl Db, batch: &Batch) -> Result<Vec<FailedRecord>, ApiError> {
    let rows = db
        .query(
            "SELECT seq, source_id, line, outcome::text FROM ingest_records \
             WHERE tenant = $1 AND batch_id = $2 AND state = 'failed' ORDER BY seq",
            &[&batch.tenant, &batch.id],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| {
            let outcome: Option<String> = row.get(3);
            FailedRecord {
                seq: row.get(0),
                source_id: row.get(1),
                line: row.get(2),
                outcome: outcome
                    .and_then(|text| serde_json::from_str(&text).ok())
                    .unwrap_or(Value::Null),
            }
        })
        .collect())
}

/// One integrator's totals over its batches, for `$ingest-status`.
#[derive(Debug)]
pub struct Summary {
    pub integrator: Option<String>,
    pub batches: i64,
    pub active: i64,
    pub received: i64,
    pub created: i64,
    pub updated: i64,
    pub unchanged: i64,
    pub failed: i64,
    pub last_success_at: Option<DateTime<Utc>>,
}

/// The totals per integrator of the reached batches.
pub async fn summaries(
    db: &impl Db,
    tenant: &str,
    reach: &Reach,
) -> Result<Vec<Summary>, ApiError> {
    let rows = db
        .query(
            "SELECT integrator, count(*), \
               count(*) FILTER (WHERE status IN ('started', 'sendCompleted', 'processing')), \
               sum(received)::bigint, sum(created)::bigint, sum(updated)::bigint, \
               sum(unchanged)::bigint, sum(failed)::bigint, max(last_success_at) \
             FROM ingest_batches WHERE tenant = $1 AND ($2::text IS NULL OR integrator = $2) \
             GROUP BY integrator ORDER BY integrator NULLS FIRST",
            &[&tenant, &reach.integrator()],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| Summary {
            integrator: row.get(0),
            batches: row.get(1),
            active: row.get(2),
            received: row.get(3),
            created: row.get(4),
            updated: row.get(5),
            unchanged: row.get(6),
            failed: row.get(7),
            last_success_at: row.get(8),
        })
        .collect())
}

/// Up to `limit` batches whose status changed since it was last published
/// to Kafka (`events::kafka::batches`), locked; other instances skip them.
pub async fn batches_to_notify(
    db: &impl Db,
    tenant: &str,
    limit: i64,
) -> Result<Vec<Batch>, ApiError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM ingest_batches WHERE tenant = $1 \
         AND notified_status IS DISTINCT FROM status \
         ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED"
    );
    let rows = db.query(&sql, &[&tenant, &limit]).await?;
    rows.iter().map(batch_of).collect()
}

/// Records that the batch's status `status` was published.
pub async fn notified(db: &impl Db, tenant: &str, id: &str, status: &str) -> Result<(), ApiError> {
    db.execute(
        "UPDATE ingest_batches SET notified_status = $3 WHERE tenant = $1 AND id = $2",
        &[&tenant, &id, &status],
    )
    .await?;
    Ok(())
}
