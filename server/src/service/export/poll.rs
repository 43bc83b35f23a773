//! The status endpoint and the files of an `$export` job
//! (export.html#bulk-data-status-request): the HTTP layer renders what
//! these return with the headers the IG asks for.

use super::{check_owner, spec::Spec};
use crate::error::{ApiError, Category};
use crate::service::AppState;
use crate::service::route::Route;
use crate::store::{Access, TenantCtx, begin, export};
use chrono::{DateTime, Utc};
use futures_util::Stream;
use serde_json::{Value, json};

/// What a status request answers.
#[derive(Debug)]
pub enum Status {
    /// 202 with `X-Progress`.
    InProgress { progress: String },
    /// 200 with the manifest, `Expires` at the files' expiry.
    Complete {
        manifest: Value,
        expires: DateTime<Utc>,
    },
    /// The job failed: 500 with an OperationOutcome (the job's error).
    Failed(ApiError),
}

/// `GET [base]/$export-status/{job}`.
pub async fn status(
    state: &AppState,
    ctx: &TenantCtx,
    route: &Route,
    id: &str,
) -> Result<Status, ApiError> {
    crate::service::authorize::check(ctx, route, &[])?;
    let mut client = state.pool.get().await?;
    let tx = begin(&mut client, ctx, Access::ReadOnly).await?;
    let job = visible_job(&tx, ctx, id).await?;
    match job.status.as_str() {
        "running" => Ok(Status::InProgress {
            progress: progress(&job),
        }),
        "failed" => Ok(Status::Failed(ApiError::new(
            Category::Fault,
            format!(
                "the export failed: {}",
                job.error.as_deref().unwrap_or("no reason was recorded")
            ),
        ))),
        _ => {
            let files = export::files(&tx, ctx, id).await?;
            Ok(Status::Complete {
                manifest: manifest(ctx, &job, &files),
                expires: job.expires_at.unwrap_or_else(Utc::now),
            })
        }
    }
}

/// `DELETE [base]/$export-status/{job}`: stops the job and removes its
/// files; later requests answer 404.
pub async fn cancel(
    state: &AppState,
    ctx: &TenantCtx,
    route: &Route,
    id: &str,
) -> Result<(), ApiError> {
    crate::service::authorize::check(ctx, route, &[])?;
    let mut client = state.pool.get().await?;
    let tx = begin(&mut client, ctx, Access::ReadWrite).await?;
    visible_job(&tx, ctx, id).await?;
    export::delete(&tx, ctx, id).await?;
    tx.commit().await?;
    Ok(())
}

/// A file being served: its size and its bytes, a chunk at a time.
pub struct Download {
    pub bytes: i64,
    pub chunks: std::pin::Pin<Box<dyn Stream<Item = Result<Vec<u8>, ApiError>>>>,
}

impl std::fmt::Debug for Download {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Download")
            .field("bytes", &self.bytes)
            .finish()
    }
}

/// `GET [base]/$export-file/{job}/{file}` (`{file}` is `{n}.ndjson`): read
/// one chunk per transaction, so a large file needs no more memory than a
/// page.
pub async fn file(
    state: &AppState,
    ctx: &TenantCtx,
    route: &Route,
    id: &str,
    name: &str,
) -> Result<Download, ApiError> {
    crate::service::authorize::check(ctx, route, &[])?;
    let unknown = || ApiError::not_found(format!("export job {id} has no file {name}"));
    let file_no: i32 = name
        .strip_suffix(".ndjson")
        .and_then(|n| n.parse().ok())
        .ok_or_else(unknown)?;
    let mut client = state.pool.get().await?;
    let tx = begin(&mut client, ctx, Access::ReadOnly).await?;
    let job = visible_job(&tx, ctx, id).await?;
    if job.status != "done" {
        return Err(unknown());
    }
    let file = export::files(&tx, ctx, id)
        .await?
        .into_iter()
        .find(|f| f.file_no == file_no)
        .ok_or_else(unknown)?;
    drop(tx);
    drop(client);
    let (pool, ctx, id) = (state.pool.clone(), ctx.clone(), id.to_owned());
    let chunks = futures_util::stream::unfold(0, move |chunk_no| {
        let (pool, ctx, id) = (pool.clone(), ctx.clone(), id.clone());
        async move {
            if chunk_no >= file.chunks {
                return None;
            }
            let read = async {
                let mut client = pool.get().await?;
                let tx = begin(&mut client, &ctx, Access::ReadOnly).await?;
                export::chunk(&tx, &ctx, &id, file_no, chunk_no)
                    .await?
                    .ok_or_else(|| ApiError::not_found("the export was cancelled or expired"))
            };
            Some((read.await, chunk_no + 1))
        }
    });
    Ok(Download {
        bytes: file.bytes,
        chunks: Box::pin(chunks),
    })
}

/// The job `id` if the caller may see it: its owner's, with the same
/// rights, not yet expired. Anything else is 404, as if it did not exist.
async fn visible_job(
    db: &impl crate::store::Db,
    ctx: &TenantCtx,
    id: &str,
) -> Result<export::Job, ApiError> {
    let unknown = || {
        ApiError::not_found(format!(
            "no export job {id} (it may have expired or been cancelled)"
        ))
    };
    let job = export::get(db, ctx, id).await?.ok_or_else(unknown)?;
    if job.expires_at.is_some_and(|at| at <= Utc::now()) {
        return Err(unknown());
    }
    check_owner(ctx, &job)?;
    Ok(job)
}

/// `X-Progress`: how far the job is.
fn progress(job: &export::Job) -> String {
    let spec: Option<Spec> = serde_json::from_value(job.spec.clone()).ok();
    let types = spec.as_ref().map_or(0, |s| s.types.len());
    let current = spec
        .as_ref()
        .and_then(|s| {
            s.types
                .get(usize::try_from(job.type_index).unwrap_or(usize::MAX))
        })
        .map_or("", |t| t.res_type.as_str());
    let of = job
        .total
        .map(|t| format!(" of about {t}"))
        .unwrap_or_default();
    format!(
        "{} resources{of} written; type {} of {types} {current}",
        job.processed,
        (job.type_index + 1).min(i32::try_from(types).unwrap_or(i32::MAX))
    )
    .trim_end()
    .to_owned()
}

/// The complete-status body (export.html#response---complete-status).
fn manifest(ctx: &TenantCtx, job: &export::Job, files: &[export::File]) -> Value {
    let entry = |f: &export::File| {
        json!({
            "type": f.res_type,
            "url": format!("{}/$export-file/{}/{}.ndjson", ctx.base_url, job.id, f.file_no),
            "count": f.count,
        })
    };
    let output: Vec<Value> = files
        .iter()
        .filter(|f| f.kind == "output")
        .map(entry)
        .collect();
    let error: Vec<Value> = files
        .iter()
        .filter(|f| f.kind == "error")
        .map(entry)
        .collect();
    let mut manifest = json!({
        "transactionTime": crate::store::format_instant(job.transaction_time),
        "request": job.request,
        "requiresAccessToken": true,
        "output": output,
        "error": error,
    });
    if job.spec["deidentify"] == true {
        manifest["extension"] = json!({"https://baraza.dev/fhir/deidentified": "safe-harbor"});
    }
    manifest
}
