//! The SQL of `$import` jobs (migration V34): `import_jobs` and their
//! `import_inputs`, each input naming the ingest batch it is read into.
//! Every function runs on a tenant transaction and names its tenant.

use crate::error::ApiError;
use crate::store::Db;
use chrono::{DateTime, Utc};
use serde_json::Value;

/// One job as stored.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: String,
    pub owner: Value,
    pub request: String,
    pub status: String,
    pub transaction_time: DateTime<Utc>,
}

/// One input of a job.
#[derive(Debug, Clone)]
pub struct Input {
    pub input_no: i32,
    pub res_type: Option<String>,
    /// `None` for an uploaded body.
    pub url: Option<String>,
    pub batch_id: String,
    pub fetched: bool,
    pub lines_read: i64,
    pub error: Option<String>,
}

pub async fn insert_job(db: &impl Db, tenant: &str, job: &Job) -> Result<(), ApiError> {
    db.execute(
        "INSERT INTO import_jobs (tenant, id, owner, request, status, transaction_time) \
         VALUES ($1, $2, $3::text::json, $4, $5, $6)",
        &[
            &tenant,
            &job.id,
            &job.owner.to_string(),
            &job.request,
            &job.status,
            &job.transaction_time,
        ],
    )
    .await?;
    Ok(())
}

pub async fn insert_input(
    db: &impl Db,
    tenant: &str,
    job_id: &str,
    input: &Input,
) -> Result<(), ApiError> {
    db.execute(
        "INSERT INTO import_inputs (tenant, job_id, input_no, res_type, url, batch_id, fetched) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            &tenant,
            &job_id,
            &input.input_no,
            &input.res_type,
            &input.url,
            &input.batch_id,
            &input.fetched,
        ],
    )
    .await?;
    Ok(())
}

/// The job `id`; `lock` takes its row lock (the fetch and cancel
/// serialise on it).
pub async fn job(
    db: &impl Db,
    tenant: &str,
    id: &str,
    lock: bool,
) -> Result<Option<Job>, ApiError> {
    let sql = format!(
        "SELECT id, owner::text, request, status, transaction_time FROM import_jobs \
         WHERE tenant = $1 AND id = $2{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    let rows = db.query(&sql, &[&tenant, &id]).await?;
    Ok(rows.first().map(|row| {
        let owner: String = row.get(1);
        Job {
            id: row.get(0),
            owner: serde_json::from_str(&owner).unwrap_or(Value::Null),
            request: row.get(2),
            status: row.get(3),
            transaction_time: row.get(4),
        }
    }))
}

/// The job's inputs, in order.
pub async fn inputs(db: &impl Db, tenant: &str, job_id: &str) -> Result<Vec<Input>, ApiError> {
    let rows = db
        .query(
            "SELECT input_no, res_type, url, batch_id, fetched, lines_read, error \
             FROM import_inputs WHERE tenant = $1 AND job_id = $2 ORDER BY input_no",
            &[&tenant, &job_id],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| Input {
            input_no: row.get(0),
            res_type: row.get(1),
            url: row.get(2),
            batch_id: row.get(3),
            fetched: row.get(4),
            lines_read: row.get(5),
            error: row.get(6),
        })
        .collect())
}

/// Moves the fetch's cursor after the lines just stored.
pub async fn set_lines_read(
    db: &impl Db,
    tenant: &str,
    job_id: &str,
    input_no: i32,
    lines_read: i64,
) -> Result<(), ApiError> {
    db.execute(
        "UPDATE import_inputs SET lines_read = $4 WHERE tenant = $1 AND job_id = $2 AND input_no = $3",
        &[&tenant, &job_id, &input_no, &lines_read],
    )
    .await?;
    Ok(())
}

/// Marks the input read (`error`: why it could not be).
pub async fn set_fetched(
    db: &impl Db,
    tenant: &str,
    job_id: &str,
    input_no: i32,
    error: Option<&str>,
) -> Result<(), ApiError> {
    db.execute(
        "UPDATE import_inputs SET fetched = true, error = $4 \
         WHERE tenant = $1 AND job_id = $2 AND input_no = $3",
        &[&tenant, &job_id, &input_no, &error],
    )
    .await?;
    Ok(())
}

pub async fn set_status(
    db: &impl Db,
    tenant: &str,
    job_id: &str,
    status: &str,
) -> Result<(), ApiError> {
    db.execute(
        "UPDATE import_jobs SET status = $3 WHERE tenant = $1 AND id = $2",
        &[&tenant, &job_id, &status],
    )
    .await?;
    Ok(())
}

/// Removes the job and its inputs (their batches stay).
pub async fn delete_job(db: &impl Db, tenant: &str, job_id: &str) -> Result<(), ApiError> {
    db.execute(
        "DELETE FROM import_jobs WHERE tenant = $1 AND id = $2",
        &[&tenant, &job_id],
    )
    .await?;
    Ok(())
}

/// The jobs still reading their inputs (resumed at start-up).
pub async fn fetching_jobs(db: &impl Db, tenant: &str) -> Result<Vec<String>, ApiError> {
    let rows = db
        .query(
            "SELECT id FROM import_jobs WHERE tenant = $1 AND status = 'fetching' ORDER BY created_at",
            &[&tenant],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}
