//! The FHIR interactions, independent of actix: a [`FhirRequest`] in, a
//! [`FhirResponse`] out. The HTTP layer and batch processing both call
//! [`handle`]; transactions reuse the planning functions and [`read_only`].

pub mod admin_lists;
pub mod authorize;
pub mod batch;
pub mod bindings;
pub mod body;
pub mod bundle_out;
pub mod capabilities;
pub mod conditional;
pub mod everything;
pub mod export;
pub mod expunge;
pub mod groups;
pub mod history;
pub mod mcsd;
pub mod operations;
pub mod overview;
pub mod patient_index;
pub mod read;
pub mod reindex;
pub mod route;
pub mod search;
pub mod tenants;
pub mod terminology;
pub mod transaction;
pub mod validate;
pub mod views;
pub mod write;

use crate::error::{ApiError, Category};
use crate::store::{Db, TenantCtx};
use actix_web::http::StatusCode;
use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use route::Route;
use serde_json::Value;

/// What every interaction needs from the running server.
#[derive(Debug, Clone)]
pub struct AppState {
    pub pool: Pool,
    /// Public FHIR base URL without trailing slash.
    pub base_url: String,
    pub max_bundle_entries: usize,
    pub max_page_size: usize,
    /// The largest `$expand` answer without `count`.
    pub terminology_max_expansion: usize,
    pub max_body_bytes: usize,
    /// The CapabilityStatement, serialised once at start-up.
    pub capabilities: std::sync::Arc<String>,
    /// Tenants' custom search parameters.
    pub registries: std::sync::Arc<crate::search::custom::CustomRegistries>,
    /// The active tenants, which requests are routed to.
    pub tenants: std::sync::Arc<crate::store::tenants::Directory>,
    /// Access-token verification; `None` when authentication is off
    /// (loopback only).
    pub auth: Option<std::sync::Arc<crate::auth::Verifier>>,
    /// The client `POST /auth/login` forwards passwords with.
    pub login_client: Option<(String, crate::config::Secret)>,
    /// Each tenant's own permission groups.
    pub groups: std::sync::Arc<groups::GroupCache>,
    /// Where requests' audit events go (`crate::audit`).
    pub audit: crate::audit::Recorder,
    /// Prometheus metrics (`crate::metrics`).
    pub metrics: std::sync::Arc<crate::metrics::Metrics>,
    /// The bearer token `/metrics` asks for; `None`: loopback callers only.
    pub metrics_token: Option<crate::config::Secret>,
    /// The master patient index's linker (`None`: BARAZA_MPI=off).
    pub mpi: Option<std::sync::Arc<mpi::store::Linker>>,
    /// Patient writes are linked after commit by the outbox consumer
    /// `mpi` (BARAZA_MPI_LINKING=queued).
    pub mpi_queued: bool,
    /// The DHIS2 mapping config (BARAZA_DHIS2_CONFIG), checked at start-up.
    pub dhis2: Option<std::sync::Arc<adapters::dhis2::Config>>,
    /// The CSV mapping config (BARAZA_CSV_CONFIG), checked at start-up.
    pub csv: Option<std::sync::Arc<adapters::csv::CsvConfig>>,
    /// The console's public OIDC client (`http::console`).
    pub console_client_id: Option<String>,
    /// Bulk Data `$export` settings and running jobs (`export`).
    pub exports: std::sync::Arc<export::Exports>,
    /// Bulk Data `$import` settings (`crate::ingest::import`).
    pub imports: std::sync::Arc<crate::ingest::import::Imports>,
    /// This instance, for change events and shared work (`crate::events`).
    pub node: std::sync::Arc<crate::events::Node>,
    /// A read replica for read-only interactions (BARAZA_READ_DATABASE_URL).
    pub read_pool: Option<Pool>,
}

/// `Prefer: return=...` (http.html#ops).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PreferReturn {
    Minimal,
    #[default]
    Representation,
    OperationOutcome,
}

/// A request body, already decoded by content type.
#[derive(Debug, Clone, Default)]
pub enum Body {
    #[default]
    None,
    /// A FHIR resource (application/fhir+json or application/json).
    Resource(Value),
    /// A JSON Patch document (application/json-patch+json).
    JsonPatch(Value),
    /// NDJSON (application/fhir+ndjson), accepted only by `$import`.
    Ndjson(actix_web::web::Bytes),
}

#[derive(Debug, Clone, Default)]
pub struct FhirRequest {
    pub method: actix_web::http::Method,
    /// Path relative to the FHIR base, without leading slash or query.
    pub path: String,
    pub params: Vec<(String, String)>,
    pub body: Body,
    pub if_match: Option<String>,
    pub if_none_exist: Option<String>,
    pub if_none_match: Option<String>,
    pub if_modified_since: Option<String>,
    /// `Prefer: return=...`, when the client sent one.
    pub prefer_return: Option<PreferReturn>,
    /// `Prefer: handling=strict`.
    pub strict: bool,
    /// `Prefer: respond-async` (async.html), which Bulk Data kick-offs need.
    pub respond_async: bool,
    /// `Cache-Control: no-cache`: read from the primary database even when
    /// a read replica is configured.
    pub primary: bool,
}

impl FhirRequest {
    /// The return preference, defaulting to the representation.
    pub fn prefer(&self) -> PreferReturn {
        self.prefer_return.unwrap_or_default()
    }
}

/// The body of a response.
#[derive(Debug, Clone)]
pub enum ResponseBody {
    Empty,
    /// JSON text (a stored resource, or a Bundle serialised by the server),
    /// served as is.
    Text(String),
    /// A resource built by the server (Bundle, OperationOutcome, ...).
    Json(Value),
    /// Output that is not FHIR JSON (SQL-on-FHIR `$run` as CSV, NDJSON or
    /// plain JSON rows), served with its own content type.
    Data {
        content_type: &'static str,
        text: String,
    },
}

#[derive(Debug, Clone)]
pub struct FhirResponse {
    pub status: StatusCode,
    pub body: ResponseBody,
    /// Relative `Type/id/_history/vid`; the HTTP layer makes it absolute.
    pub location: Option<String>,
    pub version_id: Option<i64>,
    pub last_modified: Option<DateTime<Utc>>,
    /// The resources and patients the interaction touched, for its audit
    /// event (never rendered).
    pub touched: crate::audit::Touched,
}

impl FhirResponse {
    pub fn json(status: StatusCode, body: Value) -> Self {
        FhirResponse {
            status,
            body: ResponseBody::Json(body),
            location: None,
            version_id: None,
            last_modified: None,
            touched: crate::audit::Touched::default(),
        }
    }

    pub fn empty(status: StatusCode) -> Self {
        FhirResponse {
            status,
            body: ResponseBody::Empty,
            location: None,
            version_id: None,
            last_modified: None,
            touched: crate::audit::Touched::default(),
        }
    }

    /// The body as a JSON value (for Bundle entries).
    pub fn body_value(&self) -> Option<Value> {
        match &self.body {
            ResponseBody::Empty => None,
            ResponseBody::Text(text) => serde_json::from_str(text).ok(),
            ResponseBody::Json(v) => Some(v.clone()),
            ResponseBody::Data { .. } => None,
        }
    }
}

/// Handles one interaction in its own database transaction (for writes).
pub async fn handle(
    state: &AppState,
    ctx: &TenantCtx,
    req: FhirRequest,
) -> Result<FhirResponse, ApiError> {
    let route = Route::parse(&req.method, &req.path, !req.params.is_empty())?;
    authorize::check(ctx, &route, &req.params)?;
    match route {
        Route::Operation(invocation) => operations::invoke(state, ctx, invocation, req).await,
        Route::Transaction => batch::process_bundle(state, ctx, req).await,
        Route::Create(t) => write::create(state, ctx, t, req).await,
        Route::Update(t, id) => write::update(state, ctx, t, id, req).await,
        Route::ConditionalUpdate(t) => write::conditional_update(state, ctx, t, req).await,
        Route::Delete(t, id) => write::delete(state, ctx, t, id, req).await,
        Route::ConditionalDelete(t) => write::conditional_delete(state, ctx, t, req).await,
        Route::Patch(t, id) => write::patch(state, ctx, t, Some(id), req).await,
        Route::ConditionalPatch(t) => write::patch(state, ctx, t, None, req).await,
        Route::Validate(t, id) => validate::validate(state, ctx, t, id, req).await,
        Route::Reindex(t) => reindex::start(state, ctx, t).await,
        Route::View(view) => views::handle(state, ctx, view, req).await,
        Route::Terminology(route::TerminologyOp::Load, ..) => {
            terminology::load(state, ctx, req).await
        }
        read_route => {
            // Reads outside transactions may go to a read replica.
            let pool = match &state.read_pool {
                Some(replica) if !req.primary => replica,
                _ => &state.pool,
            };
            let mut client = pool.get().await?;
            let tx = crate::store::begin(&mut client, ctx, crate::store::Access::ReadOnly).await?;
            // Nothing to commit: dropping the transaction sends its ROLLBACK
            // without waiting for the answer.
            read_only(&tx, state, ctx, read_route, &req).await
        }
    }
}

/// Read-only interactions, on any connection or transaction.
pub async fn read_only(
    db: &impl Db,
    state: &AppState,
    ctx: &TenantCtx,
    route: Route,
    req: &FhirRequest,
) -> Result<FhirResponse, ApiError> {
    let reach = authorize::check(ctx, &route, &req.params)?;
    authorize::check_target(db, ctx, &route, &reach).await?;
    match route {
        Route::Capabilities
            if req
                .params
                .iter()
                .any(|(n, v)| n == "mode" && v == "terminology") =>
        {
            terminology::capabilities(db, ctx).await
        }
        Route::Capabilities => capabilities::capability_statement(state, ctx),
        Route::Terminology(op, t, id) => {
            terminology::operation(db, state, ctx, op, id.map(|id| (t, id)), req).await
        }
        Route::ReindexStatus(job) => reindex::status(db, ctx, &job).await,
        Route::Read(t, id) if crate::audit::rest::serves(t) => {
            crate::audit::rest::read(db, ctx, &id).await
        }
        Route::Search(route::SearchScope::Type(t)) if crate::audit::rest::serves(t) => {
            crate::audit::rest::search(db, state, ctx, req).await
        }
        Route::Read(t, id) => read::read(db, ctx, t, &id, req).await,
        Route::Vread(t, id, vid) => read::vread(db, ctx, t, &id, &vid).await,
        Route::History(scope) => history::history(db, state, ctx, scope, req).await,
        Route::Search(scope) => search::search(db, state, ctx, scope, req).await,
        other => Err(ApiError::new(
            Category::Invalid,
            format!("{other:?} cannot be used here"),
        )),
    }
}
