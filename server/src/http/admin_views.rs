//! The admin API's read-only views for operators (issue 11,
//! `service::overview`): `/admin/whoami`, and per tenant (`/admin/...` for the
//! default one, `/admin/{tenant}/...` for the others) `me`, `overview` and
//! `permissions?group=...` and `integrators`, plus `/admin/tenants`
//! (`service::admin_lists`). Authenticated, admitted and audited exactly
//! like the groups API (`http::admin`): every request is one AuditEvent.

use super::negotiate::Output;
use super::{render_error, request_ctx};
use crate::service::{AppState, admin_lists, groups::AdminAnswer, overview};
use actix_web::{HttpRequest, HttpResponse, web};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/whoami", web::get().to(whoami))
        .route("/admin/tenants", web::get().to(tenants))
        .route("/admin/integrators", web::get().to(integrators))
        .route("/admin/{tenant}/integrators", web::get().to(integrators))
        .route("/admin/me", web::get().to(me_in_tenant))
        .route("/admin/overview", web::get().to(tenant_overview))
        .route("/admin/permissions", web::get().to(permissions))
        .route("/admin/{tenant}/me", web::get().to(me_in_tenant))
        .route("/admin/{tenant}/overview", web::get().to(tenant_overview))
        .route("/admin/{tenant}/permissions", web::get().to(permissions));
}

fn answer(result: Result<AdminAnswer, crate::error::ApiError>) -> HttpResponse {
    match result {
        Ok((status, body)) => HttpResponse::build(status).json(body),
        Err(e) => render_error(&e, Output::default()),
    }
}

/// Audits `operation` on the request's tenant and authenticates it.
async fn begin(
    req: &HttpRequest,
    state: &AppState,
    operation: &'static str,
) -> (
    crate::audit::Pending,
    Result<crate::store::TenantCtx, HttpResponse>,
) {
    let tenant = req.match_info().get("tenant");
    let target = operation.trim_start_matches("$admin-").to_owned();
    let mut audit = crate::audit::Pending::api(
        req.method(),
        req.peer_addr().map(|a| a.ip()),
        operation,
        target,
    );
    audit.tenant(tenant.unwrap_or(crate::store::tenants::DEFAULT_TENANT));
    let ctx = request_ctx(req, state, tenant, Output::default()).await;
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

/// Audits `operation` and authenticates the caller without admitting it to
/// a tenant (what the caller asks is about itself).
async fn begin_unscoped(
    req: &HttpRequest,
    state: &AppState,
    operation: &'static str,
) -> (
    crate::audit::Pending,
    Result<Option<std::sync::Arc<crate::auth::Principal>>, HttpResponse>,
) {
    let target = operation.trim_start_matches("$admin-").to_owned();
    let mut audit = crate::audit::Pending::api(
        req.method(),
        req.peer_addr().map(|a| a.ip()),
        operation,
        target,
    );
    audit.tenant(crate::store::tenants::DEFAULT_TENANT);
    let caller = super::auth::caller(req, state, "", Output::default()).await;
    if let Ok(caller) = &caller {
        audit.caller(caller.clone());
    }
    (audit, caller)
}

/// `GET /admin/whoami`: who the caller is and which tenants it may open.
async fn whoami(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let (audit, caller) = begin_unscoped(&req, &state, "$admin-whoami").await;
    let response = match caller {
        Ok(caller) => answer(Ok(overview::whoami(&state, caller.as_deref()))),
        Err(refused) => refused,
    };
    finish(&state, audit, response).await
}

/// `GET /admin/tenants`: the caller's tenants with their names and status.
async fn tenants(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let (audit, caller) = begin_unscoped(&req, &state, "$admin-tenants").await;
    let response = match caller {
        Ok(caller) => answer(admin_lists::tenants(&state, caller.as_deref()).await),
        Err(refused) => refused,
    };
    finish(&state, audit, response).await
}

async fn integrators(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let (audit, ctx) = begin(&req, &state, "$admin-integrators").await;
    let response = match ctx {
        Ok(ctx) => answer(admin_lists::integrators(&state, &ctx).await),
        Err(refused) => refused,
    };
    finish(&state, audit, response).await
}

async fn me_in_tenant(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let (audit, ctx) = begin(&req, &state, "$admin-me").await;
    let response = match ctx {
        Ok(ctx) => answer(Ok(overview::me_in_tenant(&ctx))),
        Err(refused) => refused,
    };
    finish(&state, audit, response).await
}

async fn tenant_overview(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let (audit, ctx) = begin(&req, &state, "$admin-overview").await;
    let response = match ctx {
        Ok(ctx) => answer(overview::overview(&state, &ctx).await),
        Err(refused) => refused,
    };
    finish(&state, audit, response).await
}

async fn permissions(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let (audit, ctx) = begin(&req, &state, "$admin-permissions").await;
    let groups: Vec<String> = url::form_urlencoded::parse(req.query_string().as_bytes())
        .filter(|(name, _)| name == "group")
        .flat_map(|(_, value)| {
            value
                .split(',')
                .map(str::trim)
                .filter(|g| !g.is_empty())
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    let response = match ctx {
        Ok(ctx) => answer(overview::permissions(&state, &ctx, &groups).await),
        Err(refused) => refused,
    };
    finish(&state, audit, response).await
}
