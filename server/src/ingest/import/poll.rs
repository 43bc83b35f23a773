//! The status of an `$import` job (`[base]/$import-status/{job}`: 202 with
//! `X-Progress` while inputs are read or written, 200 with each input's
//! counts when every batch has ended; DELETE cancels) and each input's
//! errors (`[base]/$import-errors/{job}/{n}.ndjson`: one OperationOutcome
//! per failed line, naming the line). Answered only to the caller that
//! started the job, in its tenant; anyone else gets 404.

use super::store::{self as jobs, Input, Job};
use crate::error::ApiError;
use crate::ingest::Status as BatchStatus;
use crate::ingest::api::{LINE_EXTENSION, SOURCE_EXTENSION};
use crate::ingest::caller::{self, Reach};
use crate::ingest::store::{self as batches, Batch};
use crate::service::AppState;
use crate::store::{Access, Db, TenantCtx, begin, format_instant};
use fhir::{Issue, IssueCode};
use serde_json::{Value, json};

/// The extension of an output entry with its input's counts.
pub const COUNTS_EXTENSION: &str = "https://baraza.dev/fhir/StructureDefinition/import-counts";

/// The extension naming the input of a failed line.
pub const INPUT_EXTENSION: &str = "https://baraza.dev/fhir/StructureDefinition/import-input";

/// What a status request answers.
#[derive(Debug)]
pub enum Status {
    /// 202 with `X-Progress`.
    InProgress { progress: String },
    /// 200 with the final status.
    Complete { body: Value },
}

/// `GET [base]/$import-status/{job}`.
pub async fn status(state: &AppState, ctx: &TenantCtx, id: &str) -> Result<Status, ApiError> {
    let mut client = state.pool.get().await?;
    let tx = begin(&mut client, ctx, Access::ReadOnly).await?;
    let job = visible_job(&tx, ctx, id, false).await?;
    let inputs = inputs_with_batches(&tx, ctx, &job).await?;
    if job.status == "fetching" {
        let read = inputs.iter().filter(|(i, _)| i.fetched).count();
        let lines: i64 = inputs.iter().map(|(i, _)| i.lines_read).sum();
        return Ok(Status::InProgress {
            progress: format!(
                "reading inputs: {read} of {} read, {lines} lines stored",
                inputs.len()
            ),
        });
    }
    let running = inputs.iter().any(|(_, b)| !b.status.is_final());
    if running {
        let received: i64 = inputs.iter().map(|(_, b)| b.received).sum();
        let pending: i64 = inputs.iter().map(|(_, b)| b.pending()).sum();
        return Ok(Status::InProgress {
            progress: format!("{} of {received} records processed", received - pending),
        });
    }
    Ok(Status::Complete {
        body: final_status(ctx, &job, &inputs),
    })
}

/// `DELETE [base]/$import-status/{job}`: stops reading and writing (what
/// was written stays) and forgets the job; its batches stay, terminated.
pub async fn cancel(state: &AppState, ctx: &TenantCtx, id: &str) -> Result<(), ApiError> {
    let mut client = state.pool.get().await?;
    let tx = begin(&mut client, ctx, Access::ReadWrite).await?;
    let job = visible_job(&tx, ctx, id, true).await?;
    for input in jobs::inputs(&tx, &ctx.tenant, &job.id).await? {
        let batch =
            batches::find_batch(&tx, &ctx.tenant, &input.batch_id, &Reach::All, true).await?;
        if let Some(batch) = batch.filter(|b| !b.status.is_final()) {
            batches::set_status(&tx, &ctx.tenant, &batch.id, BatchStatus::Terminated, None).await?;
            batches::skip_pending(&tx, &batch).await?;
        }
    }
    jobs::delete_job(&tx, &ctx.tenant, &job.id).await?;
    tx.commit().await?;
    Ok(())
}

/// `GET [base]/$import-errors/{job}/{n}.ndjson`: the input's failed lines.
pub async fn errors(
    state: &AppState,
    ctx: &TenantCtx,
    id: &str,
    name: &str,
) -> Result<String, ApiError> {
    let unknown = || ApiError::not_found(format!("import job {id} has no error file {name}"));
    let input_no: i32 = name
        .strip_suffix(".ndjson")
        .and_then(|n| n.parse().ok())
        .ok_or_else(unknown)?;
    let mut client = state.pool.get().await?;
    let tx = begin(&mut client, ctx, Access::ReadOnly).await?;
    let job = visible_job(&tx, ctx, id, false).await?;
    let (input, batch) = inputs_with_batches(&tx, ctx, &job)
        .await?
        .into_iter()
        .find(|(i, _)| i.input_no == input_no)
        .ok_or_else(unknown)?;
    let origin = input_origin(&input);
    let mut text = String::new();
    if let Some(error) = &input.error {
        let mut outcome = fhir::outcome::operation_outcome(&[Issue::error(
            IssueCode::Exception,
            format!("the input could not be read: {error}"),
        )]);
        outcome["extension"] = json!([{"url": INPUT_EXTENSION, "valueString": origin}]);
        text.push_str(&outcome.to_string());
        text.push('\n');
    }
    for failed in batches::failed_records(&tx, &batch).await? {
        let outcome = line_outcome(failed, &origin);
        text.push_str(&outcome.to_string());
        text.push('\n');
    }
    Ok(text)
}

/// A failed record's OperationOutcome as the errors file shows it: its
/// line in `id`, in every issue's diagnostics and in an extension; the
/// record's Bundle paths (`Bundle.entry[0].resource.x`) as the resource's
/// own (`Observation.x`).
fn line_outcome(failed: batches::FailedRecord, origin: &str) -> Value {
    let mut outcome = failed.outcome;
    let res_type = failed
        .source_id
        .split(['/', '#'])
        .next()
        .filter(|t| fhir::ResourceType::parse(t).is_some())
        .map(str::to_owned);
    let label = failed
        .line
        .map_or_else(|| format!("record {}", failed.seq), |n| format!("line {n}"));
    for issue in outcome["issue"].as_array_mut().into_iter().flatten() {
        if let Some(expressions) = issue["expression"].as_array_mut() {
            for expression in expressions.iter_mut() {
                let own = match (expression.as_str(), &res_type) {
                    (Some(text), Some(t)) => text
                        .strip_prefix("Bundle.entry[0].resource")
                        .map(|rest| format!("{t}{rest}")),
                    _ => None,
                };
                if let Some(own) = own {
                    *expression = json!(own);
                }
            }
        }
        let diagnostics = issue["diagnostics"].as_str().unwrap_or_default().to_owned();
        if !diagnostics.starts_with(&label) {
            issue["diagnostics"] = json!(format!("{label}: {diagnostics}"));
        }
    }
    outcome["id"] = json!(label.replace(' ', "-"));
    let mut extension = vec![
        json!({"url": INPUT_EXTENSION, "valueString": origin}),
        json!({"url": SOURCE_EXTENSION, "valueString": failed.source_id}),
    ];
    if let Some(line) = failed.line {
        extension.push(json!({"url": LINE_EXTENSION, "valueInteger": line}));
    }
    outcome["extension"] = Value::Array(extension);
    outcome
}

/// An input's URL, or `upload` for an uploaded body.
fn input_origin(input: &Input) -> String {
    input.url.clone().unwrap_or_else(|| "upload".to_owned())
}

/// The complete status, in the shape of a Bulk Data manifest: one `output`
/// entry per input with what it wrote (and its counts), one `error` entry
/// per input with failures, pointing at its errors file.
fn final_status(ctx: &TenantCtx, job: &Job, inputs: &[(Input, Batch)]) -> Value {
    let mut output = Vec::new();
    let mut error = Vec::new();
    for (input, batch) in inputs {
        let mut entry = json!({
            "inputUrl": input_origin(input),
            "count": batch.created + batch.updated + batch.unchanged,
            "extension": {COUNTS_EXTENSION: {
                "batch": batch.id,
                "status": batch.status.as_str(),
                "received": batch.received,
                "created": batch.created,
                "updated": batch.updated,
                "unchanged": batch.unchanged,
                "failed": batch.failed,
            }},
        });
        if let Some(t) = &input.res_type {
            entry["type"] = json!(t);
        }
        output.push(entry);
        let failures = batch.failed + i64::from(input.error.is_some());
        if failures > 0 {
            error.push(json!({
                "type": "OperationOutcome",
                "inputUrl": input_origin(input),
                "count": failures,
                "url": format!("{}/$import-errors/{}/{}.ndjson", ctx.base_url, job.id, input.input_no),
            }));
        }
    }
    json!({
        "transactionTime": format_instant(job.transaction_time),
        "request": job.request,
        "requiresAccessToken": true,
        "output": output,
        "error": error,
    })
}

async fn inputs_with_batches(
    db: &impl Db,
    ctx: &TenantCtx,
    job: &Job,
) -> Result<Vec<(Input, Batch)>, ApiError> {
    let mut out = Vec::new();
    for input in jobs::inputs(db, &ctx.tenant, &job.id).await? {
        let batch = batches::find_batch(db, &ctx.tenant, &input.batch_id, &Reach::All, false)
            .await?
            .ok_or_else(|| ApiError::fault("an import input's batch is missing"))?;
        out.push((input, batch));
    }
    Ok(out)
}

/// The job `id` if the caller started it (and may still import); 404 as
/// if it did not exist for anyone else.
async fn visible_job(db: &impl Db, ctx: &TenantCtx, id: &str, lock: bool) -> Result<Job, ApiError> {
    caller::reach(ctx)?;
    let unknown =
        || ApiError::not_found(format!("no import job {id} (it may have been cancelled)"));
    let job = jobs::job(db, &ctx.tenant, id, lock)
        .await?
        .ok_or_else(unknown)?;
    if job.owner != crate::service::export::owner(ctx) {
        return Err(unknown());
    }
    Ok(job)
}
