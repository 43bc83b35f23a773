//! The actix-web edge: turns HTTP requests into [`FhirRequest`]s (content
//! negotiation, body limits, headers) and [`FhirResponse`]s or errors into
//! HTTP responses. Only this module knows actix-web's request types.

mod admin;
mod admin_views;
pub mod auth;
mod bulk;
mod console;
mod ingest;
mod negotiate;
pub mod rate_limit;
pub mod tls;
pub mod ws;

use crate::error::{ApiError, Category};
use crate::service::{self, AppState, FhirResponse, ResponseBody};
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use negotiate::{Output, read_request};
use tracing::Instrument;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/health", web::get().to(health))
        .route("/ready", web::get().to(ready))
        .route("/metrics", web::get().to(metrics))
        .route(
            "/.well-known/smart-configuration",
            web::get().to(auth::smart_configuration),
        )
        .route("/auth/login", web::post().to(login))
        .configure(admin::configure)
        .configure(ingest::configure)
        .configure(admin_views::configure)
        .configure(console::configure)
        .service(web::resource("/fhir").route(web::route().to(fhir_endpoint)))
        .service(web::resource("/fhir/{tail:.*}").route(web::route().to(fhir_endpoint)))
        .default_service(web::route().to(not_found));
}

/// Every FHIR request, answered or refused at any step, is audited here
/// (crate::audit): [`serve_fhir`] fills in what it learns.
async fn fhir_endpoint(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let started = std::time::Instant::now();
    let mut audit = crate::audit::Pending::begin(req.method(), req.peer_addr().map(|a| a.ip()));
    let response = serve_fhir(&req, payload, state.clone(), &mut audit).await;
    let status = response.status();
    state.metrics.request(
        &audit.summary(status.as_u16()),
        status.as_u16(),
        started.elapsed(),
    );
    state.audit.record(audit, status).await;
    if req.method() == actix_web::http::Method::HEAD {
        return response.drop_body().map_into_boxed_body();
    }
    response
}

/// `POST /auth/login`, audited as a login naming the username it tried.
async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: Result<web::Either<web::Form<auth::Login>, web::Json<auth::Login>>, actix_web::Error>,
) -> HttpResponse {
    let user = match &body {
        Ok(web::Either::Left(form)) => Some(form.username.clone()),
        Ok(web::Either::Right(json)) => Some(json.username.clone()),
        Err(_) => None,
    };
    let audit = crate::audit::Pending::login(req.peer_addr().map(|a| a.ip()), user);
    let response = auth::login(state.clone(), body).await;
    state.audit.record(audit, response.status()).await;
    response
}

async fn serve_fhir(
    req: &HttpRequest,
    payload: web::Payload,
    shared: web::Data<AppState>,
    audit: &mut crate::audit::Pending,
) -> HttpResponse {
    let state: &AppState = &shared;
    let output = match Output::negotiate(req) {
        Ok(output) => output,
        Err(e) => return render_error(&e, Output::default()),
    };
    // Credentials before the body: an anonymous caller cannot make the
    // server read a large upload.
    let tail = req.match_info().get("tail").unwrap_or("");
    let (tenant, path) = service::route::split_tenant(tail);
    if let Some(tenant) = tenant {
        audit.tenant(tenant);
    }
    audit.path(path, !req.query_string().is_empty());
    let caller = match auth::caller(req, state, tail, output).await {
        Ok(caller) => caller,
        Err(refused) => return refused,
    };
    audit.caller(caller.clone());
    let (mut ctx, path) = match service::tenants::resolve(state, tail).await {
        Ok(found) => found,
        Err(e) => return render_error(&e, output),
    };
    if path == "$websocket" {
        ctx.caller = caller;
        if let Err(e) = service::authorize::admit(state, &mut ctx).await {
            return render_error(&e, output);
        }
        audit.context(&ctx);
        if !ws::is_upgrade(req) {
            let e = ApiError::invalid("$websocket is a websocket: send an Upgrade request");
            return render_error(&e, output);
        }
        return ws::serve(req, payload, state, ctx);
    }
    let mut fhir_request = match read_request(req, payload, state.max_body_bytes).await {
        Ok(r) => r,
        Err(e) => return render_error(&e, output),
    };
    fhir_request.path = path;
    ctx.caller = caller;
    if let Err(e) = service::authorize::admit(state, &mut ctx).await {
        return render_error(&e, output);
    }
    audit.context(&ctx);
    audit.request(&fhir_request);
    let has_query = !fhir_request.params.is_empty();
    if let Ok(route) =
        service::route::Route::parse(&fhir_request.method, &fhir_request.path, has_query)
    {
        if bulk::serves(&route) {
            return bulk::serve(state, &ctx, route, &fhir_request, output).await;
        }
    }
    // On the process's runtime, where the pool's connections are driven
    // (crate::db::driver), in the request's span.
    let handled = {
        let (state, ctx) = (shared.clone(), ctx.clone());
        let work = async move { service::handle(&state, &ctx, fhir_request).await };
        crate::db::driver::spawn(work.instrument(tracing::Span::current()))
            .await
            .unwrap_or_else(|e| Err(ApiError::fault(format!("the request's task failed: {e}"))))
    };
    match handled {
        Ok(mut response) => {
            audit.touched(std::mem::take(&mut response.touched));
            render(response, output, &ctx.base_url)
        }
        Err(e) => render_error(&e, output),
    }
}

/// The context of a request outside FHIR (the admin API) for `tenant`
/// (`None`: the default tenant): authenticated and admitted as FHIR
/// requests are.
async fn request_ctx(
    req: &HttpRequest,
    state: &AppState,
    tenant: Option<&str>,
    output: Output,
) -> Result<crate::store::TenantCtx, HttpResponse> {
    // The admin API has no public paths: "" is never one.
    let caller = auth::caller(req, state, "", output).await?;
    let path = tenant.unwrap_or_default();
    let (mut ctx, rest) = service::tenants::resolve(state, path)
        .await
        .map_err(|e| render_error(&e, output))?;
    if !rest.is_empty() {
        return Err(render_error(&service::tenants::tenant_not_found(), output));
    }
    ctx.caller = caller;
    service::authorize::admit(state, &mut ctx)
        .await
        .map_err(|e| render_error(&e, output))?;
    Ok(ctx)
}

async fn health() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

/// Ready when the database answers and its schema has every migration
/// this binary knows (a newer schema is fine: during a rolling upgrade the
/// previous version keeps serving while the next one has migrated).
async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let unavailable = |message: String| {
        render_error(
            &ApiError::new(Category::Unavailable, message),
            Output::default(),
        )
    };
    let Ok(client) = state.pool.get().await else {
        return unavailable("the database is not reachable".into());
    };
    let version = client
        .query_one("SELECT max(version) FROM refinery_schema_history", &[])
        .await
        .map(|row| row.get::<_, Option<i32>>(0).map(i64::from).unwrap_or(0));
    let known = crate::db::known_schema_version();
    match version {
        Ok(v) if v >= known => HttpResponse::Ok().json(serde_json::json!({ "status": "ready" })),
        Ok(v) => unavailable(format!(
            "the database schema is at version {v}; this Baraza needs {known} (run baraza migrate)"
        )),
        Err(_) => unavailable("the database is not reachable".into()),
    }
}

/// `GET /metrics`: the Prometheus text exposition (`crate::metrics`), for
/// the bearer token of BARAZA_METRICS_TOKEN, or for loopback callers when
/// none is set.
async fn metrics(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let allowed = match &state.metrics_token {
        Some(token) => {
            let presented = req
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .unwrap_or_default();
            constant_time_eq(presented.as_bytes(), token.expose().as_bytes())
        }
        None => req.peer_addr().is_some_and(|a| a.ip().is_loopback()),
    };
    if !allowed {
        return render_error(
            &ApiError::new(
                Category::Forbidden,
                "metrics are served to the bearer of BARAZA_METRICS_TOKEN (or, without one, to loopback callers)",
            ),
            Output::default(),
        );
    }
    state
        .metrics
        .observe_state(&state.pool, state.audit.queue_depth());
    if let Ok(client) = state.pool.get().await {
        if let Ok(row) = client
            .query_one("SELECT pg_database_size(current_database())", &[])
            .await
        {
            state.metrics.set_database_size(row.get(0));
        }
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics.render())
}

/// Compares secrets without an early exit that would time the match.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn not_found(req: HttpRequest) -> HttpResponse {
    render_error(
        &ApiError::not_found(format!(
            "nothing is served at {}; the FHIR base is /fhir",
            req.path()
        )),
        Output::default(),
    )
}

fn render(response: FhirResponse, output: Output, base_url: &str) -> HttpResponse {
    let mut builder = HttpResponse::build(response.status);
    if let Some(v) = response.version_id {
        builder.insert_header((header::ETAG, format!("W/\"{v}\"")));
    }
    if let Some(t) = response.last_modified {
        builder.insert_header((header::LAST_MODIFIED, httpdate::fmt_http_date(t.into())));
    }
    if let Some(location) = &response.location {
        let absolute = format!("{base_url}/{location}");
        if let Ok(value) = HeaderValue::from_str(&absolute) {
            let name = if response.status == actix_web::http::StatusCode::CREATED {
                header::LOCATION
            } else {
                header::CONTENT_LOCATION
            };
            builder.insert_header((name, value));
        }
    }
    match response.body {
        ResponseBody::Empty => builder.finish(),
        ResponseBody::Text(text) => output.body(&mut builder, text),
        ResponseBody::Json(value) => output.body_value(&mut builder, &value),
        ResponseBody::Data { content_type, text } => builder.content_type(content_type).body(text),
    }
}

pub fn render_error(e: &ApiError, output: Output) -> HttpResponse {
    let mut builder = HttpResponse::build(e.status());
    if e.category == Category::TooManyRequests {
        builder.insert_header((header::RETRY_AFTER, "1"));
    }
    output.body_value(&mut builder, &e.outcome())
}
