//! The Bulk Data endpoints that are not FHIR interactions: a job's status
//! (`$export-status/{job}`: 202 with `X-Progress` and `Retry-After`, 200
//! with the manifest and `Expires`, DELETE to cancel) and its files
//! (`$export-file/{job}/{n}.ndjson`, streamed a chunk at a time), and the
//! same for `$import` (`$import-status/{job}`, whose 200 lists each
//! input's counts, and `$import-errors/{job}/{n}.ndjson`). They are
//! served by `fhir_endpoint` after the same authentication, tenant
//! admission and audit as every FHIR request.

use super::negotiate::Output;
use super::render_error;
use crate::service::export::poll::{self, Status};
use crate::service::route::Route;
use crate::service::{AppState, FhirRequest};
use crate::store::TenantCtx;
use actix_web::HttpResponse;
use actix_web::http::{Method, header};
use futures_util::StreamExt;

/// How long a client should wait before polling again, in seconds.
const RETRY_AFTER_SECS: &str = "2";

/// Whether `route` is served here rather than by `service::handle`.
pub fn serves(route: &Route) -> bool {
    matches!(
        route,
        Route::ExportStatus(_)
            | Route::ExportFile(..)
            | Route::ImportStatus(_)
            | Route::ImportErrors(..)
    )
}

pub async fn serve(
    state: &AppState,
    ctx: &TenantCtx,
    route: Route,
    req: &FhirRequest,
    output: Output,
) -> HttpResponse {
    match &route {
        Route::ExportStatus(job) if req.method == Method::DELETE => {
            match poll::cancel(state, ctx, &route, job).await {
                Ok(()) => {
                    let outcome = fhir::outcome::operation_outcome(&[fhir::Issue::information(
                        fhir::IssueCode::Informational,
                        format!("export job {job} was cancelled and its files removed"),
                    )]);
                    output.body_value(&mut HttpResponse::Accepted(), &outcome)
                }
                Err(e) => render_error(&e, output),
            }
        }
        Route::ExportStatus(job) => match poll::status(state, ctx, &route, job).await {
            Ok(Status::InProgress { progress }) => HttpResponse::Accepted()
                .insert_header(("X-Progress", progress))
                .insert_header((header::RETRY_AFTER, RETRY_AFTER_SECS))
                .finish(),
            Ok(Status::Complete { manifest, expires }) => HttpResponse::Ok()
                .insert_header((header::EXPIRES, httpdate::fmt_http_date(expires.into())))
                .content_type("application/json")
                .body(manifest.to_string()),
            Ok(Status::Failed(e)) => render_error(&e, output),
            Err(e) => render_error(&e, output),
        },
        Route::ExportFile(job, file) => match poll::file(state, ctx, &route, job, file).await {
            Ok(download) => {
                let bytes = download.chunks.map(|chunk| {
                    chunk
                        .map(web_bytes)
                        .map_err(|e| actix_web::error::ErrorInternalServerError(describe(&e)))
                });
                HttpResponse::Ok()
                    .content_type("application/fhir+ndjson")
                    .no_chunking(u64::try_from(download.bytes).unwrap_or(0))
                    .streaming(bytes)
            }
            Err(e) => render_error(&e, output),
        },
        Route::ImportStatus(_) | Route::ImportErrors(..) => {
            serve_import(state, ctx, &route, req, output).await
        }
        _ => render_error(
            &crate::error::ApiError::new(
                crate::error::Category::Fault,
                "a Bulk Data route reached the wrong handler",
            ),
            output,
        ),
    }
}

/// `$import-status/{job}` (GET, DELETE) and `$import-errors/{job}/{file}`.
async fn serve_import(
    state: &AppState,
    ctx: &TenantCtx,
    route: &Route,
    req: &FhirRequest,
    output: Output,
) -> HttpResponse {
    use crate::ingest::import::poll;
    match route {
        Route::ImportStatus(job) if req.method == Method::DELETE => {
            match poll::cancel(state, ctx, job).await {
                Ok(()) => {
                    let outcome = fhir::outcome::operation_outcome(&[fhir::Issue::information(
                        fhir::IssueCode::Informational,
                        format!("import job {job} was cancelled; what it wrote stays"),
                    )]);
                    output.body_value(&mut HttpResponse::Accepted(), &outcome)
                }
                Err(e) => render_error(&e, output),
            }
        }
        Route::ImportStatus(job) => match poll::status(state, ctx, job).await {
            Ok(poll::Status::InProgress { progress }) => HttpResponse::Accepted()
                .insert_header(("X-Progress", progress))
                .insert_header((header::RETRY_AFTER, RETRY_AFTER_SECS))
                .finish(),
            Ok(poll::Status::Complete { body }) => HttpResponse::Ok()
                .content_type("application/json")
                .body(body.to_string()),
            Err(e) => render_error(&e, output),
        },
        Route::ImportErrors(job, file) => match poll::errors(state, ctx, job, file).await {
            Ok(text) => HttpResponse::Ok()
                .content_type("application/fhir+ndjson")
                .body(text),
            Err(e) => render_error(&e, output),
        },
        _ => render_error(
            &crate::error::ApiError::new(
                crate::error::Category::Fault,
                "an $import route reached the wrong handler",
            ),
            output,
        ),
    }
}

fn web_bytes(chunk: Vec<u8>) -> actix_web::web::Bytes {
    actix_web::web::Bytes::from(chunk)
}

fn describe(e: &crate::error::ApiError) -> String {
    e.issues.first().map_or_else(
        || "the file could not be read".to_owned(),
        |i| i.diagnostics.clone(),
    )
}
