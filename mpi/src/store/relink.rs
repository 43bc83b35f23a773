//! Relink jobs: re-index every record of a tenant in resumable batches
//! after a configuration change (`baraza mpi relink`, the server's
//! `Patient/$mpi-relink`). A job's cursor commits with each batch, so an
//! interrupted job resumes after its last committed batch.
//!
//! A job runs under a lease (migration V35): its holder (a server
//! instance, or the command line) renews it in every batch's transaction,
//! holding the job's row until that commits, so two holders never run
//! one job's batches at once. When the holder dies its lease runs out and
//! another instance adopts the job. One relink per tenant runs at a time.

use serde::Serialize;
use serde_json::Value;

use super::batch::{Incoming, index_batch};
use super::db::Db;
use super::jobs::refresh_name_frequencies;
use super::outcome::LinkOutcome;
use super::{Linker, StoreError};

/// The records a relink batch takes by default.
pub const DEFAULT_RELINK_BATCH: i32 = 500;

/// A relink job's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobProgress {
    pub id: String,
    pub status: String,
    pub processed: i64,
    pub total: i64,
    /// Link changes made so far.
    pub changed: i64,
    /// The last record re-indexed.
    pub cursor: Option<String>,
    /// Records per batch.
    pub batch: i32,
    /// Who holds the job's lease, if anyone does.
    pub leased_by: Option<String>,
    /// Why the job failed.
    pub error: Option<String>,
}

/// Who runs a job: the holder's id and how long its lease lasts
/// (PostgreSQL interval text, e.g. `30000 milliseconds`).
#[derive(Debug, Clone, Copy)]
pub struct Lease<'a> {
    pub holder: &'a str,
    pub interval: &'a str,
}

/// Starts a relink job `job_id` with the default batch, no lease.
pub async fn start_relink(
    db: &impl Db,
    tenant: &str,
    job_id: &str,
) -> Result<JobProgress, StoreError> {
    start_relink_job(db, tenant, job_id, DEFAULT_RELINK_BATCH, None).await
}

/// Starts a relink job (refreshing the name frequencies first), held by
/// `lease` if given. Refused (`Conflict`) while another relink of the
/// tenant is running.
pub async fn start_relink_job(
    db: &impl Db,
    tenant: &str,
    job_id: &str,
    batch: i32,
    lease: Option<Lease<'_>>,
) -> Result<JobProgress, StoreError> {
    if !(1..=10_000).contains(&batch) {
        return Err(StoreError::Invalid(format!(
            "a relink batch is 1 to 10000 records, not {batch}"
        )));
    }
    db.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('mpi-relink|' || $1, 0))",
        &[&tenant],
    )
    .await?;
    if let Some(running) = running_relink(db, tenant).await? {
        return Err(StoreError::Conflict(format!(
            "the relink job {} is already running ({} of {} records)",
            running.id, running.processed, running.total
        )));
    }
    refresh_name_frequencies(db, tenant).await?;
    let (holder, interval) = match lease {
        Some(l) => (Some(l.holder), Some(l.interval)),
        None => (None, None),
    };
    db.execute(
        "INSERT INTO mpi_jobs (tenant, id, kind, status, total, batch, leased_by, lease_until) \
         SELECT $1, $2, 'relink', 'running', count(*), $3, $4, now() + $5::text::interval \
         FROM mpi_records WHERE tenant = $1",
        &[&tenant, &job_id, &batch, &holder, &interval],
    )
    .await?;
    job_progress(db, tenant, job_id).await
}

const JOB_COLUMNS: &str =
    "id, status, processed, total, changed, cursor, batch, leased_by, error FROM mpi_jobs";

fn progress_of(row: &tokio_postgres::Row) -> JobProgress {
    JobProgress {
        id: row.get(0),
        status: row.get(1),
        processed: row.get(2),
        total: row.get(3),
        changed: row.get(4),
        cursor: row.get(5),
        batch: row.get(6),
        leased_by: row.get(7),
        error: row.get(8),
    }
}

/// A job's progress.
pub async fn job_progress(
    db: &impl Db,
    tenant: &str,
    job_id: &str,
) -> Result<JobProgress, StoreError> {
    let sql = format!("SELECT {JOB_COLUMNS} WHERE tenant = $1 AND id = $2");
    let rows = db.query(&sql, &[&tenant, &job_id]).await?;
    rows.first()
        .map(progress_of)
        .ok_or_else(|| StoreError::NotFound(format!("no MPI job {job_id}")))
}

/// The tenant's running relink job, if any.
pub async fn running_relink(db: &impl Db, tenant: &str) -> Result<Option<JobProgress>, StoreError> {
    latest_relink(db, tenant, true).await
}

/// The tenant's most recently started relink job (`running`: only a
/// running one).
pub async fn latest_relink(
    db: &impl Db,
    tenant: &str,
    running: bool,
) -> Result<Option<JobProgress>, StoreError> {
    let sql = format!(
        "SELECT {JOB_COLUMNS} WHERE tenant = $1 AND kind = 'relink' \
         AND (NOT $2 OR status = 'running') ORDER BY started_at DESC, id DESC LIMIT 1"
    );
    let rows = db.query(&sql, &[&tenant, &running]).await?;
    Ok(rows.first().map(progress_of))
}

/// Takes or renews a running job's lease for `lease.holder`, locking the
/// job's row until the transaction ends: true when the holder has it
/// (it held it, or nobody did, or the last holder's lease ran out).
pub async fn hold_lease(
    db: &impl Db,
    tenant: &str,
    job_id: &str,
    lease: Lease<'_>,
) -> Result<bool, StoreError> {
    let rows = db
        .query(
            "UPDATE mpi_jobs SET leased_by = $3, lease_until = now() + $4::text::interval \
             WHERE tenant = $1 AND id = $2 AND status = 'running' \
               AND (leased_by IS NULL OR leased_by = $3 OR lease_until < now()) \
             RETURNING id",
            &[&tenant, &job_id, &lease.holder, &lease.interval],
        )
        .await?;
    Ok(!rows.is_empty())
}

/// The tenant's running relink jobs whose holder's lease ran out (it
/// died or stopped), now leased to `lease.holder`, which is to run them.
/// Jobs nobody ever leased are left to whoever resumes them.
pub async fn adopt_relinks(
    db: &impl Db,
    tenant: &str,
    lease: Lease<'_>,
) -> Result<Vec<String>, StoreError> {
    let rows = db
        .query(
            "UPDATE mpi_jobs SET leased_by = $2, lease_until = now() + $3::text::interval \
             WHERE tenant = $1 AND kind = 'relink' AND status = 'running' \
               AND leased_by IS NOT NULL AND lease_until < now() \
             RETURNING id",
            &[&tenant, &lease.holder, &lease.interval],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Marks a job failed with its error.
pub async fn fail_job(
    db: &impl Db,
    tenant: &str,
    job_id: &str,
    error: &str,
) -> Result<(), StoreError> {
    db.execute(
        "UPDATE mpi_jobs SET status = 'failed', error = $3, finished_at = now(), \
           leased_by = NULL, lease_until = NULL, updated_at = now() \
         WHERE tenant = $1 AND id = $2 AND status = 'running'",
        &[&tenant, &job_id, &error],
    )
    .await?;
    Ok(())
}

/// Re-indexes the next `batch` records of a relink job (in id order after
/// its cursor, as one `index_batch`) and advances the cursor, in the
/// caller's transaction: run each step in its own transaction and an
/// interrupted job resumes after the last committed step. Returns the
/// progress and what the server must write.
pub async fn relink_step(
    db: &impl Db,
    linker: &Linker,
    tenant: &str,
    job_id: &str,
    batch: usize,
) -> Result<(JobProgress, LinkOutcome), StoreError> {
    let sql = format!("SELECT {JOB_COLUMNS} WHERE tenant = $1 AND id = $2 FOR UPDATE");
    let rows = db.query(&sql, &[&tenant, &job_id]).await?;
    let job = rows
        .first()
        .map(progress_of)
        .ok_or_else(|| StoreError::NotFound(format!("no MPI job {job_id}")))?;
    let mut out = LinkOutcome::default();
    if job.status != "running" {
        return Ok((job, out));
    }
    let rows = db
        .query(
            "SELECT patient_id, source, patient FROM mpi_records \
             WHERE tenant = $1 AND ($2::text IS NULL OR patient_id > $2) \
             ORDER BY patient_id LIMIT $3",
            &[&tenant, &job.cursor, &(batch.max(1) as i64)],
        )
        .await?;
    let records: Vec<(String, String, Value)> = rows
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2)))
        .collect();
    let incoming: Vec<Incoming<'_>> = records
        .iter()
        .map(|(id, source, patient)| Incoming {
            patient_id: id,
            patient,
            source,
        })
        .collect();
    out.absorb(index_batch(db, linker, tenant, &incoming).await?);
    let cursor = records.last().map(|(id, _, _)| id.clone()).or(job.cursor);
    let done = records.len() < batch.max(1);
    db.execute(
        "UPDATE mpi_jobs SET cursor = $3, processed = processed + $4, changed = changed + $5, \
           status = $6, updated_at = now(), \
           finished_at = CASE WHEN $6 = 'done' THEN now() END, \
           leased_by = CASE WHEN $6 = 'done' THEN NULL ELSE leased_by END \
         WHERE tenant = $1 AND id = $2",
        &[
            &tenant,
            &job_id,
            &cursor,
            &(records.len() as i64),
            &(out.changes.len() as i64),
            &if done { "done" } else { "running" },
        ],
    )
    .await?;
    Ok((job_progress(db, tenant, job_id).await?, out))
}
