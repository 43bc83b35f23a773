//! Whole-index work: the name frequencies of the term-frequency
//! adjustment (recomputed from the records), relink jobs that re-index
//! every record in resumable batches after a configuration change
//! (`baraza mpi relink`), and training samples for EM (`baraza mpi
//! train`).

use std::collections::HashSet;

use serde::Serialize;
use serde_json::Value;

use super::db::Db;
use super::link::index_patient;
use super::outcome::{LinkOutcome, Pair};
use super::records;
use super::{Linker, StoreError};
use crate::fields::Gamma;
use crate::generator::Rng;
use crate::train::{TrainOptions, TrainResult, train};

/// Recomputes a tenant's name frequencies from its records: how many
/// carry each first given word and each family name, and the total.
/// Scores read them; run it after loads, periodically, and at relink.
pub async fn refresh_name_frequencies(db: &impl Db, tenant: &str) -> Result<u64, StoreError> {
    db.execute(
        "DELETE FROM mpi_name_frequencies WHERE tenant = $1",
        &[&tenant],
    )
    .await?;
    let rows = db
        .execute(
            "INSERT INTO mpi_name_frequencies (tenant, kind, name, count) \
             SELECT $1, 'given', given_name, count(*) FROM mpi_records \
               WHERE tenant = $1 AND given_name IS NOT NULL GROUP BY given_name \
             UNION ALL \
             SELECT $1, 'family', family_name, count(*) FROM mpi_records \
               WHERE tenant = $1 AND family_name IS NOT NULL GROUP BY family_name \
             UNION ALL \
             SELECT $1, 'total', '', count(*) FROM mpi_records WHERE tenant = $1",
            &[&tenant],
        )
        .await?;
    Ok(rows)
}

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
}

/// Starts a relink job `job_id` (refreshing the name frequencies first).
pub async fn start_relink(
    db: &impl Db,
    tenant: &str,
    job_id: &str,
) -> Result<JobProgress, StoreError> {
    refresh_name_frequencies(db, tenant).await?;
    db.execute(
        "INSERT INTO mpi_jobs (tenant, id, kind, status, total) \
         SELECT $1, $2, 'relink', 'running', count(*) FROM mpi_records WHERE tenant = $1",
        &[&tenant, &job_id],
    )
    .await?;
    job_progress(db, tenant, job_id).await
}

async fn read_job(
    db: &impl Db,
    tenant: &str,
    job_id: &str,
    lock: bool,
) -> Result<JobProgress, StoreError> {
    let sql = format!(
        "SELECT id, status, processed, total, changed, cursor FROM mpi_jobs \
         WHERE tenant = $1 AND id = $2{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    let rows = db.query(&sql, &[&tenant, &job_id]).await?;
    let row = rows
        .first()
        .ok_or_else(|| StoreError::NotFound(format!("no MPI job {job_id}")))?;
    Ok(JobProgress {
        id: row.get(0),
        status: row.get(1),
        processed: row.get(2),
        total: row.get(3),
        changed: row.get(4),
        cursor: row.get(5),
    })
}

/// A job's progress.
pub async fn job_progress(
    db: &impl Db,
    tenant: &str,
    job_id: &str,
) -> Result<JobProgress, StoreError> {
    read_job(db, tenant, job_id, false).await
}

/// Re-indexes the next `batch` records of a relink job (in id order after
/// its cursor) and advances the cursor, in the caller's transaction: run
/// each step in its own transaction and an interrupted job resumes after
/// the last committed step. Returns the progress and what the server must
/// write.
pub async fn relink_step(
    db: &impl Db,
    linker: &Linker,
    tenant: &str,
    job_id: &str,
    batch: usize,
) -> Result<(JobProgress, LinkOutcome), StoreError> {
    let job = read_job(db, tenant, job_id, true).await?;
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
    let mut cursor = job.cursor.clone();
    for row in &rows {
        let (id, source, patient): (String, String, Value) = (row.get(0), row.get(1), row.get(2));
        out.absorb(index_patient(db, linker, tenant, &id, &patient, &source).await?);
        cursor = Some(id);
    }
    let done = rows.len() < batch.max(1);
    db.execute(
        "UPDATE mpi_jobs SET cursor = $3, processed = processed + $4, changed = changed + $5, \
           status = $6, updated_at = now() WHERE tenant = $1 AND id = $2",
        &[
            &tenant,
            &job_id,
            &cursor,
            &(rows.len() as i64),
            &(out.changes.len() as i64),
            &if done { "done" } else { "running" },
        ],
    )
    .await?;
    Ok((job_progress(db, tenant, job_id).await?, out))
}

/// Agreement levels for EM: candidate pairs (as blocking proposes them)
/// of a random sample of records, and random pairs among the sample.
#[derive(Debug, Clone, Default)]
pub struct TrainingSample {
    pub candidates: Vec<Gamma>,
    pub random: Vec<Gamma>,
}

/// Samples up to `n` records and their candidate pairs (at most `n * 4`)
/// and `n * 4` random pairs.
pub async fn sample_pairs(
    db: &impl Db,
    linker: &Linker,
    tenant: &str,
    n: usize,
    seed: u64,
) -> Result<TrainingSample, StoreError> {
    let rows = db
        .query(
            "SELECT patient_id, keys FROM mpi_records WHERE tenant = $1 \
             ORDER BY md5(patient_id || $2) LIMIT $3",
            &[&tenant, &seed.to_string(), &(n as i64)],
        )
        .await?;
    let ids: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let sample = records::records(db, linker, tenant, &id_refs, "").await?;
    let matcher = &linker.matcher;
    let mut out = TrainingSample::default();
    let mut seen: HashSet<Pair> = HashSet::new();
    for (row, record) in rows.iter().zip(ids.iter()) {
        let keys: Vec<String> = row.get(1);
        let Some(a) = sample.iter().find(|s| s.patient_id == *record) else {
            continue;
        };
        for c in records::candidates(db, linker, tenant, record, &keys).await? {
            if seen.insert(Pair::new(record, &c.patient_id)) && out.candidates.len() < n * 4 {
                out.candidates.push(matcher.gamma(&a.features, &c.features));
            }
        }
    }
    let mut rng = Rng::new(seed);
    if sample.len() >= 2 {
        for _ in 0..n * 4 {
            let (i, j) = (rng.below(sample.len()), rng.below(sample.len()));
            if i != j {
                out.random
                    .push(matcher.gamma(&sample[i].features, &sample[j].features));
            }
        }
    }
    Ok(out)
}

/// Trains the linker's configuration on a sample of `n` indexed records
/// (`baraza mpi train`): EM over their candidate pairs, u from random
/// pairs. The result's configuration is what to write to the file.
pub async fn train_from_index(
    db: &impl Db,
    linker: &Linker,
    tenant: &str,
    n: usize,
    opts: &TrainOptions,
) -> Result<TrainResult, StoreError> {
    let sample = sample_pairs(db, linker, tenant, n, opts.seed).await?;
    Ok(train(
        linker.config(),
        &sample.candidates,
        &sample.random,
        opts,
    )?)
}
