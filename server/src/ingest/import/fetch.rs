//! Reading `$import` inputs into their ingest batches: an uploaded body
//! at the kick-off, and URL inputs in the background, streamed a slice of
//! lines at a time. Each slice's records and the input's cursor
//! (`lines_read`) commit together, so an interrupted fetch (a restart, a
//! dropped connection) reads the input again and stores only the lines
//! after the cursor. When an input is read, its batch is sent complete and
//! the ingest worker writes it; when every input is read, the job is
//! `processing`.

use super::store as jobs;
use crate::error::ApiError;
use crate::ingest::caller::Reach;
use crate::ingest::records;
use crate::ingest::store::{self as batches, Batch};
use crate::ingest::{Status, worker};
use crate::service::AppState;
use crate::store::{Access, TenantCtx, begin};
use std::time::Duration;

/// Bytes read before a slice of whole lines is stored.
const SLICE_BYTES: usize = 4 * 1024 * 1024;

/// Attempts to read one URL input, resuming after the stored lines.
const ATTEMPTS: u32 = 4;

/// Stores `text` (lines from `first_line` of an input of `res_type`) as
/// records appended to `batch`, whose row the caller has locked, a few
/// thousand lines per statement; keeps `batch.received` current.
pub async fn store_lines(
    db: &impl crate::store::Db,
    batch: &mut Batch,
    text: &str,
    first_line: i64,
    res_type: Option<&str>,
) -> Result<(), ApiError> {
    const LINES_PER_STATEMENT: usize = 5000;
    let mut line = first_line;
    let mut rest = text;
    while !rest.is_empty() {
        let end = rest
            .match_indices('\n')
            .nth(LINES_PER_STATEMENT - 1)
            .map_or(rest.len(), |(i, _)| i + 1);
        let (slice, tail) = rest.split_at(end);
        let split = records::of_ndjson_lines(slice, line, res_type);
        if !split.records.is_empty() {
            batches::append_records(db, batch, &split.records).await?;
            batch.received += split.records.len() as i64;
        }
        line += slice.matches('\n').count() as i64;
        rest = tail;
    }
    Ok(())
}

/// Starts reading the job's URL inputs in the background.
pub fn spawn(state: AppState, tenant: String, job_id: String) {
    tokio::spawn(async move {
        if let Err(e) = fetch_job(&state, &tenant, &job_id).await {
            tracing::warn!(tenant = %tenant, job = %job_id, error = %e,
                "an $import job stopped reading its inputs; it resumes at the next start");
        }
    });
}

/// Resumes, at start-up, every job still reading its inputs.
pub async fn resume_all(state: &AppState) -> Result<(), ApiError> {
    for tenant in state.tenants.active() {
        let ctx = TenantCtx::new(&tenant, &state.base_url, state.registries.clone());
        let ids = {
            let mut client = state.pool.get().await?;
            let tx = begin(&mut client, &ctx, Access::ReadOnly).await?;
            jobs::fetching_jobs(&tx, &tenant).await?
        };
        for id in ids {
            spawn(state.clone(), tenant.clone(), id);
        }
    }
    Ok(())
}

/// Why an input could not be read.
enum Failure {
    /// The input itself (a 404, not UTF-8): final.
    Input(String),
    /// The connection or the server (5xx, 429): tried again.
    Transient(String),
    Database(ApiError),
}

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Failure {
        Failure::Database(e)
    }
}

async fn fetch_job(state: &AppState, tenant: &str, job_id: &str) -> Result<(), ApiError> {
    let ctx = TenantCtx::new(tenant, &state.base_url, state.registries.clone());
    let inputs = {
        let mut client = state.pool.get().await?;
        let tx = begin(&mut client, &ctx, Access::ReadOnly).await?;
        jobs::inputs(&tx, tenant, job_id).await?
    };
    for input in inputs.into_iter().filter(|i| !i.fetched) {
        let Some(url) = input.url.clone() else {
            continue;
        };
        let mut attempt = 0;
        let failure = loop {
            attempt += 1;
            match fetch_input(state, &ctx, job_id, &input, &url).await {
                Ok(true) => break None,
                // The job was cancelled.
                Ok(false) => return Ok(()),
                Err(Failure::Input(message)) => break Some(message),
                Err(Failure::Transient(message)) if attempt >= ATTEMPTS => break Some(message),
                Err(Failure::Database(e)) if attempt >= ATTEMPTS => return Err(e),
                Err(Failure::Transient(_) | Failure::Database(_)) => {
                    tokio::time::sleep(Duration::from_secs(1 << attempt)).await;
                }
            }
        };
        if !finish_input(state, &ctx, job_id, &input, failure.as_deref()).await? {
            return Ok(());
        }
    }
    let mut client = state.pool.get().await?;
    let tx = begin(&mut client, &ctx, Access::ReadWrite).await?;
    if let Some(job) = jobs::job(&tx, tenant, job_id, true).await? {
        if job.status == "fetching" {
            jobs::set_status(&tx, tenant, job_id, "processing").await?;
        }
    }
    tx.commit().await?;
    worker::wake();
    Ok(())
}

/// Reads one URL input to its end, a slice per transaction. `Ok(false)`:
/// the job is gone (cancelled).
async fn fetch_input(
    state: &AppState,
    ctx: &TenantCtx,
    job_id: &str,
    input: &jobs::Input,
    url: &str,
) -> Result<bool, Failure> {
    let mut response = state
        .imports
        .client
        .get(url)
        .header("Accept", "application/fhir+ndjson")
        .send()
        .await
        .map_err(|e| Failure::Transient(format!("{url} could not be read: {e}")))?;
    let status = response.status();
    if status.as_u16() == 429 || status.is_server_error() {
        return Err(Failure::Transient(format!("{url} answered {status}")));
    }
    if !status.is_success() {
        return Err(Failure::Input(format!(
            "{url} answered {status} (redirects are not followed)"
        )));
    }
    let mut buffer: Vec<u8> = Vec::new();
    // Lines of the input seen so far, stored or not.
    let mut seen: i64 = 0;
    loop {
        let chunk = response
            .chunk()
            .await
            .map_err(|e| Failure::Transient(format!("reading {url} failed: {e}")))?;
        let end = chunk.is_none();
        if let Some(bytes) = chunk {
            buffer.extend_from_slice(&bytes);
            if buffer.len() < SLICE_BYTES {
                continue;
            }
        }
        // Whole lines only, except at the end of the input.
        let cut = if end {
            buffer.len()
        } else {
            match buffer.iter().rposition(|b| *b == b'\n') {
                Some(i) => i + 1,
                None => continue,
            }
        };
        let slice: Vec<u8> = buffer.drain(..cut).collect();
        let text = String::from_utf8(slice)
            .map_err(|_| Failure::Input(format!("{url} is not UTF-8 (after line {seen})")))?;
        let lines = text.lines().count() as i64;
        if seen + lines > input.lines_read
            && !store_slice(state, ctx, job_id, input, &text, seen).await?
        {
            return Ok(false);
        }
        seen += lines;
        if end {
            return Ok(true);
        }
    }
}

/// Stores the lines of `text` after the input's cursor (`text` starts after
/// line `seen`) and moves the cursor, in one transaction. `Ok(false)`: the
/// job is gone.
async fn store_slice(
    state: &AppState,
    ctx: &TenantCtx,
    job_id: &str,
    input: &jobs::Input,
    text: &str,
    seen: i64,
) -> Result<bool, ApiError> {
    let tenant = ctx.tenant.as_str();
    let mut client = state.pool.get().await?;
    let tx = begin(&mut client, ctx, Access::ReadWrite).await?;
    let Some(job) = jobs::job(&tx, tenant, job_id, true).await? else {
        return Ok(false);
    };
    if job.status != "fetching" {
        return Ok(false);
    }
    // The cursor as committed: another attempt may have moved it.
    let stored = jobs::inputs(&tx, tenant, job_id)
        .await?
        .into_iter()
        .find(|i| i.input_no == input.input_no)
        .map_or(input.lines_read, |i| i.lines_read);
    let skip = usize::try_from((stored - seen).max(0)).unwrap_or(usize::MAX);
    let start = if skip == 0 {
        0
    } else {
        text.match_indices('\n')
            .nth(skip - 1)
            .map_or(text.len(), |(i, _)| i + 1)
    };
    let Some(mut batch) =
        batches::find_batch(&tx, tenant, &input.batch_id, &Reach::All, true).await?
    else {
        return Ok(false);
    };
    if batch.status != Status::Started {
        return Ok(false);
    }
    let first_line = seen + 1 + skip as i64;
    let rest = &text[start..];
    store_lines(&tx, &mut batch, rest, first_line, input.res_type.as_deref()).await?;
    let read = seen + text.lines().count() as i64;
    jobs::set_lines_read(&tx, tenant, job_id, input.input_no, read.max(stored)).await?;
    tx.commit().await?;
    Ok(true)
}

/// Marks the input read and sends its batch complete; an input that could
/// not be read fails its batch, which then writes nothing. `Ok(false)`:
/// the job is gone.
async fn finish_input(
    state: &AppState,
    ctx: &TenantCtx,
    job_id: &str,
    input: &jobs::Input,
    failure: Option<&str>,
) -> Result<bool, ApiError> {
    let tenant = ctx.tenant.as_str();
    let mut client = state.pool.get().await?;
    let tx = begin(&mut client, ctx, Access::ReadWrite).await?;
    let Some(job) = jobs::job(&tx, tenant, job_id, true).await? else {
        return Ok(false);
    };
    if job.status != "fetching" {
        return Ok(false);
    }
    jobs::set_fetched(&tx, tenant, job_id, input.input_no, failure).await?;
    if let Some(batch) =
        batches::find_batch(&tx, tenant, &input.batch_id, &Reach::All, true).await?
    {
        if batch.status == Status::Started {
            match failure {
                None => {
                    batches::set_status(&tx, tenant, &batch.id, Status::SendCompleted, None).await?
                }
                Some(message) => {
                    batches::set_status(&tx, tenant, &batch.id, Status::Failed, Some(message))
                        .await?;
                    batches::skip_pending(&tx, &batch).await?;
                }
            }
        }
    }
    tx.commit().await?;
    if failure.is_none() {
        worker::wake();
    }
    Ok(true)
}
