//! The ingest batch API (docs/ingest.md) at `/ingest/{tenant}/batches`:
//! plain JSON in and out (NDJSON for uploads and error downloads), errors
//! as OperationOutcomes. Callers authenticate as for FHIR; every request is
//! audited as the operation `$ingest-batch` on `batch/{id}`.

use super::negotiate::{Output, read_body};
use super::{render_error, request_ctx};
use crate::error::ApiError;
use crate::ingest::api;
use crate::service::AppState;
use actix_web::{HttpRequest, HttpResponse, web};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/ingest/{tenant}/batches", web::post().to(create))
        .route("/ingest/{tenant}/batches", web::get().to(list))
        .route("/ingest/{tenant}/batches/{id}", web::get().to(get))
        .route(
            "/ingest/{tenant}/batches/{id}/records",
            web::post().to(upload),
        )
        .route(
            "/ingest/{tenant}/batches/{id}/action/{action}",
            web::put().to(action),
        )
        .route(
            "/ingest/{tenant}/batches/{id}/errors",
            web::get().to(errors),
        );
}

fn param<'r>(req: &'r HttpRequest, name: &str) -> &'r str {
    req.match_info().get(name).unwrap_or_default()
}

fn answer(result: Result<api::Answer, ApiError>) -> HttpResponse {
    match result {
        Ok((status, body)) => HttpResponse::build(status).json(body),
        Err(e) => render_error(&e, Output::default()),
    }
}

/// Starts the audit of the request and authenticates it for its tenant.
async fn begin(
    req: &HttpRequest,
    state: &AppState,
) -> (
    crate::audit::Pending,
    Result<crate::store::TenantCtx, HttpResponse>,
) {
    let target = match req.match_info().get("id") {
        Some(id) => format!("batch/{id}"),
        None => "batch".to_owned(),
    };
    let tenant = param(req, "tenant");
    let mut audit = crate::audit::Pending::api(
        req.method(),
        req.peer_addr().map(|a| a.ip()),
        "$ingest-batch",
        target,
    );
    audit.tenant(tenant);
    let ctx = request_ctx(req, state, Some(tenant), Output::default()).await;
    if let Ok(ctx) = &ctx {
        audit.context(ctx);
    }
    (audit, ctx)
}

async fn finish(
    state: &AppState,
    audit: crate::audit::Pending,
    response: HttpResponse,
) -> HttpResponse {
    state.audit.record(audit, response.status()).await;
    response
}

async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> HttpResponse {
    let (audit, ctx) = begin(&req, &state).await;
    let response = match ctx {
        Err(refused) => refused,
        Ok(ctx) => answer(
            async {
                let body = read_body(payload, state.max_body_bytes).await?;
                let document: serde_json::Value = serde_json::from_slice(&body)
                    .map_err(|_| ApiError::invalid("the body is not a JSON object"))?;
                api::create(&state, &ctx, &document).await
            }
            .await,
        ),
    };
    finish(&state, audit, response).await
}

async fn list(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let (audit, ctx) = begin(&req, &state).await;
    let response = match ctx {
        Err(refused) => refused,
        Ok(ctx) => {
            let params = crate::service::conditional::parse_query(req.query_string());
            answer(api::list(&state, &ctx, &params).await)
        }
    };
    finish(&state, audit, response).await
}

async fn get(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let (audit, ctx) = begin(&req, &state).await;
    let response = match ctx {
        Err(refused) => refused,
        Ok(ctx) => answer(api::get(&state, &ctx, param(&req, "id")).await),
    };
    finish(&state, audit, response).await
}

async fn upload(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> HttpResponse {
    let (audit, ctx) = begin(&req, &state).await;
    let response = match ctx {
        Err(refused) => refused,
        Ok(ctx) => answer(
            async {
                let body = read_body(payload, state.max_body_bytes).await?;
                api::upload(&state, &ctx, param(&req, "id"), &body).await
            }
            .await,
        ),
    };
    finish(&state, audit, response).await
}

async fn action(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let (audit, ctx) = begin(&req, &state).await;
    let response = match ctx {
        Err(refused) => refused,
        Ok(ctx) => {
            answer(api::action(&state, &ctx, param(&req, "id"), param(&req, "action")).await)
        }
    };
    finish(&state, audit, response).await
}

async fn errors(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let (audit, ctx) = begin(&req, &state).await;
    let response = match ctx {
        Err(refused) => refused,
        Ok(ctx) => match api::errors(&state, &ctx, param(&req, "id")).await {
            Ok(text) => HttpResponse::Ok()
                .content_type("application/fhir+ndjson")
                .body(text),
            Err(e) => render_error(&e, Output::default()),
        },
    };
    finish(&state, audit, response).await
}
