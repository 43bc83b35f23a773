//! Storage of Bulk Data `$export` jobs (migration V26): the job rows, their
//! NDJSON files and the files' bytes in chunks. Every function takes the
//! tenant's transaction; row-level security keeps jobs to their tenant.

use super::{Db, TenantCtx};
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::collections::HashMap;
use tokio_postgres::types::ToSql;

/// A job as stored.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: String,
    pub owner: Value,
    pub request: String,
    pub spec: Value,
    pub status: String,
    pub transaction_time: DateTime<Utc>,
    pub type_index: i32,
    pub cursor_id: String,
    pub processed: i64,
    pub total: Option<i64>,
    pub error: Option<String>,
    pub pseudonym_key: Option<Vec<u8>>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// A new job, as the kick-off records it.
#[derive(Debug)]
pub struct NewJob<'a> {
    pub id: &'a str,
    pub owner: &'a Value,
    pub request: &'a str,
    pub spec: &'a Value,
    pub transaction_time: DateTime<Utc>,
    pub pseudonym_key: Option<&'a [u8]>,
}

/// One output or error file of a job.
#[derive(Debug, Clone)]
pub struct File {
    pub file_no: i32,
    pub kind: String,
    pub res_type: String,
    pub count: i64,
    pub bytes: i64,
    pub chunks: i32,
}

const JOB_COLUMNS: &str = "id, owner::text, request, spec::text, status, transaction_time, type_index, \
     cursor_id, processed, total, error, pseudonym_key, expires_at";

fn job(row: &tokio_postgres::Row) -> Job {
    let json = |i: usize| serde_json::from_str(&row.get::<_, String>(i)).unwrap_or(Value::Null);
    Job {
        id: row.get(0),
        owner: json(1),
        request: row.get(2),
        spec: json(3),
        status: row.get(4),
        transaction_time: row.get(5),
        type_index: row.get(6),
        cursor_id: row.get(7),
        processed: row.get(8),
        total: row.get(9),
        error: row.get(10),
        pseudonym_key: row.get(11),
        expires_at: row.get(12),
    }
}

pub async fn insert(
    db: &impl Db,
    ctx: &TenantCtx,
    new: &NewJob<'_>,
) -> Result<(), tokio_postgres::Error> {
    db.execute(
        "INSERT INTO export_jobs (tenant, id, owner, request, spec, status, transaction_time, pseudonym_key) \
         VALUES ($1, $2, $3::text::json, $4, $5::text::json, 'running', $6, $7)",
        &[
            &ctx.tenant,
            &new.id,
            &new.owner.to_string(),
            &new.request,
            &new.spec.to_string(),
            &new.transaction_time,
            &new.pseudonym_key,
        ],
    )
    .await?;
    Ok(())
}

/// The job `id`, if it exists.
pub async fn get(
    db: &impl Db,
    ctx: &TenantCtx,
    id: &str,
) -> Result<Option<Job>, tokio_postgres::Error> {
    let sql = format!("SELECT {JOB_COLUMNS} FROM export_jobs WHERE tenant = $1 AND id = $2");
    Ok(db.query(&sql, &[&ctx.tenant, &id]).await?.first().map(job))
}

/// The job `id` locked for its next page, if it is still running (a
/// cancel deletes it, which this waits for or sees).
pub async fn lock_running(
    db: &impl Db,
    ctx: &TenantCtx,
    id: &str,
) -> Result<Option<Job>, tokio_postgres::Error> {
    let sql = format!(
        "SELECT {JOB_COLUMNS} FROM export_jobs WHERE tenant = $1 AND id = $2 AND status = 'running' FOR UPDATE"
    );
    Ok(db.query(&sql, &[&ctx.tenant, &id]).await?.first().map(job))
}

/// Takes or renews the lease of running job `id` for `node` (in the
/// transaction that holds the job's row): false when another instance
/// holds an unexpired lease on it, which then runs it alone.
pub async fn hold_lease(
    db: &impl Db,
    ctx: &TenantCtx,
    id: &str,
    node: &str,
    lease: &str,
) -> Result<bool, tokio_postgres::Error> {
    let held = db
        .execute(
            "UPDATE export_jobs SET leased_by = $3, lease_until = now() + $4::text::interval \
             WHERE tenant = $1 AND id = $2 AND status = 'running' \
             AND (leased_by IS NULL OR leased_by = $3 OR lease_until IS NULL OR lease_until < now())",
            &[&ctx.tenant, &id, &node, &lease],
        )
        .await?;
    Ok(held == 1)
}

/// Leases to `node` the tenant's running jobs that no instance holds (a
/// new job not yet started, or one whose instance died or stopped) and
/// returns their ids. Rows a running page has locked are skipped: their
/// instance is alive.
pub async fn adopt(
    db: &impl Db,
    ctx: &TenantCtx,
    node: &str,
    lease: &str,
) -> Result<Vec<String>, tokio_postgres::Error> {
    let rows = db
        .query(
            "UPDATE export_jobs SET leased_by = $2, lease_until = now() + $3::text::interval \
             WHERE tenant = $1 AND id IN (SELECT id FROM export_jobs WHERE tenant = $1 \
               AND status = 'running' AND (lease_until IS NULL OR lease_until < now()) \
               ORDER BY created_at FOR UPDATE SKIP LOCKED) \
             RETURNING id",
            &[&ctx.tenant, &node, &lease],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Records the job's plan as it starts: the spec without the types that
/// have no resources, and about how many resources it will write.
pub async fn set_plan(
    db: &impl Db,
    ctx: &TenantCtx,
    id: &str,
    spec: &Value,
    total: i64,
) -> Result<(), tokio_postgres::Error> {
    db.execute(
        "UPDATE export_jobs SET spec = $3::text::json, total = $4 WHERE tenant = $1 AND id = $2",
        &[&ctx.tenant, &id, &spec.to_string(), &total],
    )
    .await?;
    Ok(())
}

/// The types the tenant has resources of (current or deleted), by a skip
/// scan of the primary key: one index probe per type.
pub async fn present_types(
    db: &impl Db,
    ctx: &TenantCtx,
) -> Result<Vec<String>, tokio_postgres::Error> {
    let rows = db
        .query(
            "WITH RECURSIVE t(r) AS ( \
               SELECT min(res_type) FROM resources WHERE tenant = $1 \
               UNION ALL \
               SELECT (SELECT min(res_type) FROM resources WHERE tenant = $1 AND res_type > t.r) \
               FROM t WHERE t.r IS NOT NULL) \
             SELECT r FROM t WHERE r IS NOT NULL",
            &[&ctx.tenant],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Moves the cursor: `written` more resources are done, the last one
/// `cursor_id` of the type at `type_index`.
pub async fn advance(
    db: &impl Db,
    ctx: &TenantCtx,
    id: &str,
    type_index: i32,
    cursor_id: &str,
    written: i64,
) -> Result<(), tokio_postgres::Error> {
    db.execute(
        "UPDATE export_jobs SET type_index = $3, cursor_id = $4, processed = processed + $5 \
         WHERE tenant = $1 AND id = $2",
        &[&ctx.tenant, &id, &type_index, &cursor_id, &written],
    )
    .await?;
    Ok(())
}

/// Ends the job (`done` or `failed`); its files are kept until `expires_at`.
pub async fn finish(
    db: &impl Db,
    ctx: &TenantCtx,
    id: &str,
    status: &str,
    error: Option<&str>,
    expires_at: DateTime<Utc>,
) -> Result<(), tokio_postgres::Error> {
    db.execute(
        "UPDATE export_jobs SET status = $3, error = $4, finished_at = now(), expires_at = $5 \
         WHERE tenant = $1 AND id = $2",
        &[&ctx.tenant, &id, &status, &error, &expires_at],
    )
    .await?;
    Ok(())
}

/// Deletes the job with its files (cancel). Whether it existed.
pub async fn delete(
    db: &impl Db,
    ctx: &TenantCtx,
    id: &str,
) -> Result<bool, tokio_postgres::Error> {
    Ok(db
        .execute(
            "DELETE FROM export_jobs WHERE tenant = $1 AND id = $2",
            &[&ctx.tenant, &id],
        )
        .await?
        > 0)
}

/// Deletes the tenant's jobs past their expiry, with their files; how many.
pub async fn delete_expired(db: &impl Db, ctx: &TenantCtx) -> Result<u64, tokio_postgres::Error> {
    db.execute(
        "DELETE FROM export_jobs WHERE tenant = $1 AND expires_at < now()",
        &[&ctx.tenant],
    )
    .await
}

/// Appends `data` (`count` NDJSON lines of `res_type`) to the job's last
/// file of that kind and type, or starts a new file when there is none or
/// it already holds `per_file` lines.
#[allow(clippy::too_many_arguments)]
pub async fn append(
    db: &impl Db,
    ctx: &TenantCtx,
    job: &str,
    kind: &str,
    res_type: &str,
    data: &[u8],
    count: i64,
    per_file: i64,
) -> Result<(), tokio_postgres::Error> {
    let last = db
        .query(
            "SELECT file_no, kind, res_type, count FROM export_files WHERE tenant = $1 AND job = $2 \
             ORDER BY file_no DESC LIMIT 1",
            &[&ctx.tenant, &job],
        )
        .await?;
    let open = last.first().and_then(|row| {
        let same = row.get::<_, String>(1) == kind && row.get::<_, String>(2) == res_type;
        (same && row.get::<_, i64>(3) < per_file).then(|| row.get::<_, i32>(0))
    });
    let file_no = match open {
        Some(file_no) => file_no,
        None => {
            let file_no = last.first().map_or(0, |row| row.get::<_, i32>(0) + 1);
            db.execute(
                "INSERT INTO export_files (tenant, job, file_no, kind, res_type) VALUES ($1, $2, $3, $4, $5)",
                &[&ctx.tenant, &job, &file_no, &kind, &res_type],
            )
            .await?;
            file_no
        }
    };
    let bytes = data.len() as i64;
    let chunk_params: [&(dyn ToSql + Sync); 4] = [&ctx.tenant, &job, &file_no, &data];
    let file_params: [&(dyn ToSql + Sync); 5] = [&ctx.tenant, &job, &file_no, &count, &bytes];
    // Pipelined: both statements go out before either answer comes back.
    let (chunk, update) = futures_util::join!(
        db.execute(
            "INSERT INTO export_chunks (tenant, job, file_no, chunk_no, data) \
             SELECT $1, $2, $3, coalesce(max(chunk_no) + 1, 0), $4 FROM export_chunks \
             WHERE tenant = $1 AND job = $2 AND file_no = $3",
            &chunk_params,
        ),
        db.execute(
            "UPDATE export_files SET count = count + $4, bytes = bytes + $5 \
             WHERE tenant = $1 AND job = $2 AND file_no = $3",
            &file_params,
        ),
    );
    chunk?;
    update?;
    Ok(())
}

/// The job's files in order, with their number of chunks.
pub async fn files(
    db: &impl Db,
    ctx: &TenantCtx,
    job: &str,
) -> Result<Vec<File>, tokio_postgres::Error> {
    let rows = db
        .query(
            "SELECT f.file_no, f.kind, f.res_type, f.count, f.bytes, \
             (SELECT count(*)::int4 FROM export_chunks c WHERE c.tenant = f.tenant AND c.job = f.job AND c.file_no = f.file_no) \
             FROM export_files f WHERE f.tenant = $1 AND f.job = $2 ORDER BY f.file_no",
            &[&ctx.tenant, &job],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| File {
            file_no: row.get(0),
            kind: row.get(1),
            res_type: row.get(2),
            count: row.get(3),
            bytes: row.get(4),
            chunks: row.get(5),
        })
        .collect())
}

/// One chunk of a file's bytes.
pub async fn chunk(
    db: &impl Db,
    ctx: &TenantCtx,
    job: &str,
    file_no: i32,
    chunk_no: i32,
) -> Result<Option<Vec<u8>>, tokio_postgres::Error> {
    let rows = db
        .query(
            "SELECT data FROM export_chunks WHERE tenant = $1 AND job = $2 AND file_no = $3 AND chunk_no = $4",
            &[&ctx.tenant, &job, &file_no, &chunk_no],
        )
        .await?;
    Ok(rows.first().map(|row| row.get(0)))
}

/// For resources changed after `at`: their content as it was at `at`
/// (`None`: created later, or deleted then), so that an export holds the
/// data as of its `transactionTime`.
pub async fn versions_at(
    db: &impl Db,
    ctx: &TenantCtx,
    res_type: &str,
    ids: &[String],
    at: DateTime<Utc>,
) -> Result<HashMap<String, Option<String>>, tokio_postgres::Error> {
    let rows = db
        .query(
            "SELECT DISTINCT ON (id) id, content::text FROM resource_history \
             WHERE tenant = $1 AND res_type = $2 AND id = ANY($3) AND last_updated <= $4 \
             ORDER BY id, version_id DESC",
            &[&ctx.tenant, &res_type, &ids, &at],
        )
        .await?;
    let mut found: HashMap<String, Option<String>> =
        ids.iter().map(|id| (id.clone(), None)).collect();
    for row in rows {
        found.insert(row.get(0), row.get(1));
    }
    Ok(found)
}
