//! The admin API (issue 4): a tenant's permission groups, at
//! `/admin/groups[/{name}]` for the default tenant and
//! `/admin/{tenant}/groups[/{name}]` for the others. Plain JSON in and
//! out; errors are OperationOutcomes like everywhere else. Callers
//! authenticate as for FHIR and need the `tenant-admin` permission.

use super::negotiate::Output;
use super::{render_error, request_ctx};
use crate::service::{AppState, groups};
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::Value;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/groups", web::get().to(list))
        .route("/admin/groups/{name}", web::get().to(read))
        .route("/admin/groups/{name}", web::put().to(put))
        .route("/admin/groups/{name}", web::delete().to(delete))
        .route("/admin/{tenant}/groups", web::get().to(list))
        .route("/admin/{tenant}/groups/{name}", web::get().to(read))
        .route("/admin/{tenant}/groups/{name}", web::put().to(put))
        .route("/admin/{tenant}/groups/{name}", web::delete().to(delete));
}

fn answer(result: Result<groups::AdminAnswer, crate::error::ApiError>) -> HttpResponse {
    match result {
        Ok((status, Value::Null)) => HttpResponse::build(status).finish(),
        Ok((status, body)) => HttpResponse::build(status).json(body),
        Err(e) => render_error(&e, Output::default()),
    }
}

fn tenant_of(req: &HttpRequest) -> Option<&str> {
    req.match_info().get("tenant")
}

fn name_of(req: &HttpRequest) -> &str {
    req.match_info().get("name").unwrap_or_default()
}

/// Starts the audit of an admin request (every one is audited, refused or
/// not) and authenticates it.
async fn begin(
    req: &HttpRequest,
    state: &AppState,
) -> (
    crate::audit::Pending,
    Result<crate::store::TenantCtx, HttpResponse>,
) {
    let target = match req.match_info().get("name") {
        Some(name) => format!("group/{name}"),
        None => "group".to_owned(),
    };
    let mut audit =
        crate::audit::Pending::admin(req.method(), req.peer_addr().map(|a| a.ip()), target);
    audit.tenant(tenant_of(req).unwrap_or(crate::store::tenants::DEFAULT_TENANT));
    let ctx = request_ctx(req, state, tenant_of(req), Output::default()).await;
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

async fn list(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let (audit, ctx) = begin(&req, &state).await;
    let response = match ctx {
        Ok(ctx) => answer(groups::list(&state, &ctx).await),
        Err(refused) => refused,
    };
    finish(&state, audit, response).await
}

async fn read(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let (audit, ctx) = begin(&req, &state).await;
    let response = match ctx {
        Ok(ctx) => answer(groups::read(&state, &ctx, name_of(&req)).await),
        Err(refused) => refused,
    };
    finish(&state, audit, response).await
}

async fn put(req: HttpRequest, state: web::Data<AppState>, body: web::Bytes) -> HttpResponse {
    let (audit, ctx) = begin(&req, &state).await;
    let response = match (ctx, serde_json::from_slice::<Value>(&body)) {
        (Err(refused), _) => refused,
        (Ok(_), Err(_)) => render_error(
            &crate::error::ApiError::invalid("the body is not a JSON object"),
            Output::default(),
        ),
        (Ok(ctx), Ok(document)) => {
            answer(groups::put(&state, &ctx, name_of(&req), &document).await)
        }
    };
    finish(&state, audit, response).await
}

async fn delete(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let (audit, ctx) = begin(&req, &state).await;
    let response = match ctx {
        Ok(ctx) => answer(groups::delete(&state, &ctx, name_of(&req)).await),
        Err(refused) => refused,
    };
    finish(&state, audit, response).await
}
