//! SQL-on-FHIR v2 ViewDefinitions (docs/analytics.md): stored per tenant
//! (`PUT/GET/DELETE ViewDefinition/[id]`, `GET ViewDefinition`), run
//! (`ViewDefinition/$run` with the view inline as `viewResource`, or
//! `ViewDefinition/[id]/$run`) with CSV, NDJSON or JSON output, and
//! materialised (`POST ViewDefinition/[id]/$materialize`) into a table of
//! the tenant's schema `analytics_<tenant>` that the tenant's read-only
//! role may query. Everything here needs the `$export` purpose (a view
//! reads in bulk) and read access to the view's resource type.

mod output;

use super::bundle_out::{Bundle, Embedded, Entry, search_match};
use super::export::spec::compartment_clause;
use super::route::ViewRoute;
use super::{AppState, Body, FhirRequest, FhirResponse, ResponseBody};
use crate::auth::Interaction;
use crate::error::{ApiError, Category};
use crate::search::criteria::{self, Criteria, Strictness};
use crate::search::execute::{self, Query};
use crate::search::sort::Cursor;
use crate::service::authorize::{self, Reach};
use crate::store::views::{self as store, StoredView};
use crate::store::{Access, Db, TenantCtx, begin};
use actix_web::http::StatusCode;
use fhir::view::{ViewDefinition, ViewError};
use futures_util::SinkExt;
use output::Format;
use serde_json::{Value, json};

/// Resources read per page while a view runs or is materialised.
const PAGE: usize = 1000;
/// The most rows `$run` answers (`_limit` may ask for fewer).
const MAX_RUN_ROWS: usize = 100_000;

pub async fn handle(
    state: &AppState,
    ctx: &TenantCtx,
    route: ViewRoute,
    req: FhirRequest,
) -> Result<FhirResponse, ApiError> {
    match route {
        ViewRoute::List => list(state, ctx).await,
        ViewRoute::Read(id) => read(state, ctx, id.as_str()).await,
        ViewRoute::Store(id) => put(state, ctx, id.as_str(), &req).await,
        ViewRoute::Delete(id) => delete(state, ctx, id.as_str()).await,
        ViewRoute::Run(id) => run(state, ctx, id.as_ref().map(|id| id.as_str()), &req).await,
        ViewRoute::Materialize(id) => materialize(state, ctx, id.as_str()).await,
    }
}

/// Whether `$run` can answer in `format` (CSV, NDJSON, JSON).
pub fn is_output_format(format: &str) -> bool {
    Format::is_known(format)
}

fn view_error(e: ViewError) -> ApiError {
    let at = e.path.clone();
    let error = ApiError::invalid(format!("the ViewDefinition is not valid: {e}"));
    if at.is_empty() { error } else { error.at(at) }
}

fn unknown(id: &str) -> ApiError {
    ApiError::not_found(format!("ViewDefinition/{id} is not known"))
}

async fn stored(state: &AppState, ctx: &TenantCtx, id: &str) -> Result<StoredView, ApiError> {
    let mut client = state.pool.get().await?;
    let tx = begin(&mut client, ctx, Access::ReadOnly).await?;
    store::get(&tx, ctx, id).await?.ok_or_else(|| unknown(id))
}

/// The stored view as served: its definition with `id` and `meta`.
fn served(view: &StoredView) -> Value {
    let mut definition = view.definition.clone();
    definition["id"] = json!(view.id);
    definition["meta"] = json!({"lastUpdated": crate::store::format_instant(view.updated_at)});
    definition
}

async fn list(state: &AppState, ctx: &TenantCtx) -> Result<FhirResponse, ApiError> {
    let mut client = state.pool.get().await?;
    let tx = begin(&mut client, ctx, Access::ReadOnly).await?;
    let views = store::list(&tx, ctx).await?;
    let mut bundle = Bundle::new("searchset");
    bundle.total = Some(views.len() as u64);
    for view in &views {
        bundle.entry.push(Entry {
            full_url: Some(format!("{}/ViewDefinition/{}", ctx.base_url, view.id)),
            resource: Some(Embedded::tree(&served(view))?),
            search: search_match(),
            ..Entry::default()
        });
    }
    Ok(FhirResponse {
        status: StatusCode::OK,
        body: ResponseBody::Text(bundle.to_text()?),
        location: None,
        version_id: None,
        last_modified: None,
        touched: crate::audit::Touched::default(),
    })
}

async fn read(state: &AppState, ctx: &TenantCtx, id: &str) -> Result<FhirResponse, ApiError> {
    let view = stored(state, ctx, id).await?;
    Ok(FhirResponse::json(StatusCode::OK, served(&view)))
}

async fn put(
    state: &AppState,
    ctx: &TenantCtx,
    id: &str,
    req: &FhirRequest,
) -> Result<FhirResponse, ApiError> {
    let Body::Resource(definition) = &req.body else {
        return Err(ApiError::invalid(
            "PUT ViewDefinition/[id] needs a ViewDefinition body",
        ));
    };
    if let Some(given) = definition.get("id").and_then(Value::as_str) {
        if given != id {
            return Err(ApiError::invalid(format!(
                "the body's id {given:?} differs from the URL's {id:?}"
            ))
            .at("id"));
        }
    }
    let mut definition = definition.clone();
    if let Some(object) = definition.as_object_mut() {
        object.remove("id");
        object.remove("meta");
    }
    let view = ViewDefinition::parse(&definition).map_err(view_error)?;
    let name = view.name().unwrap_or_default();
    if !store::is_table_name(name) {
        return Err(ApiError::invalid(format!(
            "a stored view needs a name that can name its table: lowercase letters, digits and _, \
             starting with a letter, at most 55 characters (not {name:?})"
        ))
        .at("name"));
    }
    authorize::reach(ctx, Interaction::Read, view.resource().as_str())?;
    let mut client = state.pool.get().await?;
    let tx = begin(&mut client, ctx, Access::ReadWrite).await?;
    let created = store::put(&tx, ctx, id, name, view.resource().as_str(), &definition).await?;
    let saved = store::get(&tx, ctx, id).await?.ok_or_else(|| unknown(id))?;
    tx.commit().await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut response = FhirResponse::json(status, served(&saved));
    response.location = Some(format!("ViewDefinition/{id}"));
    Ok(response)
}

async fn delete(state: &AppState, ctx: &TenantCtx, id: &str) -> Result<FhirResponse, ApiError> {
    let mut client = state.pool.get().await?;
    let tx = begin(&mut client, ctx, Access::ReadWrite).await?;
    if !store::delete(&tx, ctx, id).await? {
        return Err(unknown(id));
    }
    tx.commit().await?;
    Ok(FhirResponse::empty(StatusCode::NO_CONTENT))
}

/// `$run`'s input.
struct RunParams {
    format: Format,
    header: bool,
    limit: usize,
    view: Option<Value>,
    reference: Option<String>,
    since: Option<String>,
    patient: Option<String>,
    /// Resources given inline (`resource`): the view runs on them only.
    resources: Option<Vec<Value>>,
}

fn run_params(req: &FhirRequest) -> Result<RunParams, ApiError> {
    let mut params = RunParams {
        format: Format::Json,
        header: true,
        limit: MAX_RUN_ROWS,
        view: None,
        reference: None,
        since: None,
        patient: None,
        resources: None,
    };
    let mut take = |name: &str, value: &str| -> Result<(), ApiError> {
        match name {
            "_format" => params.format = Format::parse(value)?,
            "header" => params.header = value != "false",
            "_limit" => {
                params.limit = value
                    .parse::<usize>()
                    .map_err(|_| {
                        ApiError::invalid(format!("_limit {value:?} is not a number")).at("_limit")
                    })?
                    .min(MAX_RUN_ROWS)
            }
            "viewReference" => params.reference = Some(value.to_owned()),
            "_since" => params.since = Some(value.to_owned()),
            "patient" => params.patient = Some(value.trim_start_matches("Patient/").to_owned()),
            "_pretty" => {}
            _ => {
                return Err(ApiError::invalid(format!("$run has no parameter {name}"))
                    .with_code(fhir::IssueCode::NotSupported)
                    .at(name.to_owned()));
            }
        }
        Ok(())
    };
    for (name, value) in &req.params {
        take(name, value)?;
    }
    if let Body::Resource(body) = &req.body {
        if body.get("resourceType").and_then(Value::as_str) != Some("Parameters") {
            return Err(ApiError::invalid("POST $run takes a Parameters resource"));
        }
        for parameter in body["parameter"].as_array().into_iter().flatten() {
            let name = parameter["name"].as_str().unwrap_or_default();
            match name {
                "viewResource" => params.view = Some(parameter["resource"].clone()),
                "resource" => params
                    .resources
                    .get_or_insert_with(Vec::new)
                    .push(parameter["resource"].clone()),
                _ => {
                    let value = [
                        "valueString",
                        "valueCode",
                        "valueInstant",
                        "valueInteger",
                        "valueBoolean",
                    ]
                    .iter()
                    .find_map(|k| match &parameter[*k] {
                        Value::Null => None,
                        Value::String(s) => Some(s.clone()),
                        other => Some(other.to_string()),
                    })
                    .or_else(|| {
                        parameter["valueReference"]["reference"]
                            .as_str()
                            .map(str::to_owned)
                    })
                    .unwrap_or_default();
                    take(name, &value)?;
                }
            }
        }
    }
    Ok(params)
}

async fn run(
    state: &AppState,
    ctx: &TenantCtx,
    id: Option<&str>,
    req: &FhirRequest,
) -> Result<FhirResponse, ApiError> {
    let params = run_params(req)?;
    let definition = match (id, &params.view, &params.reference) {
        (Some(id), None, None) => stored(state, ctx, id).await?.definition,
        (None, Some(view), None) => view.clone(),
        (None, None, Some(reference)) => {
            let id = reference.trim_start_matches("ViewDefinition/");
            stored(state, ctx, id).await?.definition
        }
        _ => {
            return Err(ApiError::invalid(
                "$run needs exactly one view: ViewDefinition/[id]/$run, viewResource or viewReference",
            ));
        }
    };
    let view = ViewDefinition::parse(&definition).map_err(view_error)?;
    let mut out = output::Writer::new(params.format, params.header, &view);
    if let Some(resources) = &params.resources {
        for resource in resources {
            for row in view.evaluate(resource).map_err(view_error)? {
                if out.rows() >= params.limit {
                    break;
                }
                out.row(&view, row);
            }
        }
        return Ok(out.finish());
    }
    let criteria = run_criteria(ctx, &view, &params)?;
    let mut client = state.pool.get().await?;
    let tx = begin(&mut client, ctx, Access::ReadOnly).await?;
    let mut touched = crate::audit::Touched::default();
    let mut pages = Pages::new(&view, &criteria);
    'pages: loop {
        let page = pages.next(&tx, ctx).await?;
        if page.is_empty() {
            break;
        }
        for (id, resource) in page {
            touched.entities.push(crate::audit::EntityRef {
                reference: format!("{}/{id}", view.resource()),
                version: None,
            });
            for row in view.evaluate(&resource).map_err(view_error)? {
                if out.rows() >= params.limit {
                    break 'pages;
                }
                out.row(&view, row);
            }
        }
    }
    let mut response = out.finish();
    response.touched = touched;
    Ok(response)
}

/// Which resources a view reads for this caller: narrowed to the
/// patient's compartment under `patient/` scopes, to an integrator's own
/// submissions, and by `_since` and `patient`.
fn run_criteria(
    ctx: &TenantCtx,
    view: &ViewDefinition,
    params: &RunParams,
) -> Result<Criteria, ApiError> {
    let t = view.resource().as_str();
    let mut clauses = Vec::new();
    let mut patients = params.patient.clone().map(|p| vec![p]);
    if let Reach::Patient(own) = authorize::reach(ctx, Interaction::Read, t)? {
        patients = Some(
            patients
                .unwrap_or_else(|| vec![own.clone()])
                .into_iter()
                .filter(|p| *p == own)
                .collect(),
        );
    }
    if let Some(patients) = &patients {
        if !authorize::in_patient_compartment(t) {
            return Err(
                ApiError::invalid(format!("{t} is not in the Patient compartment")).at("patient"),
            );
        }
        clauses.push(compartment_clause(t, Some(patients)));
    }
    if let Some(since) = &params.since {
        let since = [("_lastUpdated".to_owned(), format!("gt{since}"))];
        let parsed = criteria::parse(
            &ctx.registry(),
            t,
            &since,
            Strictness::Strict,
            &ctx.base_url,
        )
        .map_err(|e| e.at("_since"))?;
        clauses.extend(parsed.criteria.clauses);
    }
    clauses.extend(authorize::integrator_clause(ctx));
    Ok(Criteria { clauses })
}

/// The current resources of a view's type matching `criteria`, a page
/// at a time (keyset by id), parsed.
struct Pages<'a> {
    types: [String; 1],
    criteria: &'a Criteria,
    after: Option<Cursor>,
    done: bool,
}

impl<'a> Pages<'a> {
    fn new(view: &ViewDefinition, criteria: &'a Criteria) -> Pages<'a> {
        Pages {
            types: [view.resource().as_str().to_owned()],
            criteria,
            after: None,
            done: false,
        }
    }

    /// The next page as (id, resource), empty at the end.
    async fn next(
        &mut self,
        db: &impl Db,
        ctx: &TenantCtx,
    ) -> Result<Vec<(String, Value)>, ApiError> {
        if self.done {
            return Ok(Vec::new());
        }
        let query = Query {
            types: &self.types,
            criteria: self.criteria,
            sort: &[],
        };
        let page = execute::find(db, ctx, query, PAGE, self.after.as_ref()).await?;
        self.done = page.len() < PAGE;
        self.after = page.last().map(|f| f.cursor.clone());
        page.into_iter()
            .filter_map(|f| Some((f.stored.id, f.stored.content?)))
            .map(|(id, content)| Ok((id, serde_json::from_str(&content).map_err(ApiError::fault)?)))
            .collect()
    }
}

/// Every current resource of the view's type, a page at a time, read by a
/// task of its own in one read-only transaction; at most two pages wait.
/// The channel ends after the last page, or after an error.
fn read_ahead(
    state: &AppState,
    ctx: &TenantCtx,
    view: &ViewDefinition,
) -> tokio::sync::mpsc::Receiver<Result<Vec<(String, Value)>, ApiError>> {
    let (send, receive) = tokio::sync::mpsc::channel(2);
    let (pool, ctx, view) = (state.pool.clone(), ctx.clone(), view.clone());
    tokio::spawn(async move {
        let read = async {
            let mut client = pool.get().await?;
            let rtx = begin(&mut client, &ctx, Access::ReadOnly).await?;
            let everything = Criteria::default();
            let mut pages = Pages::new(&view, &everything);
            loop {
                let page = pages.next(&rtx, &ctx).await?;
                if page.is_empty() {
                    return Ok::<(), ApiError>(());
                }
                if send.send(Ok(page)).await.is_err() {
                    // The build stopped: nobody waits for more.
                    return Ok(());
                }
            }
        };
        if let Err(e) = read.await {
            let _ = send.send(Err(e)).await;
        }
    });
    receive
}

/// `POST ViewDefinition/[id]/$materialize`: rebuilds the view's table in
/// the tenant's analytics schema from every current resource of its type,
/// in one transaction (readers see the old table until it commits).
async fn materialize(
    state: &AppState,
    ctx: &TenantCtx,
    id: &str,
) -> Result<FhirResponse, ApiError> {
    let stored_view = stored(state, ctx, id).await?;
    let view = ViewDefinition::parse(&stored_view.definition).map_err(view_error)?;
    let t = view.resource().as_str();
    if authorize::reach(ctx, Interaction::Read, t)? != Reach::Everything
        || authorize::integrator(ctx).is_some()
    {
        return Err(ApiError::new(
            Category::Forbidden,
            format!(
                "a materialised view holds every {t} of the tenant: it needs unrestricted read access"
            ),
        ));
    }
    let columns: Vec<(String, &str)> = view
        .columns()
        .iter()
        .map(|c| (c.name.clone(), c.sql_type()))
        .collect();
    let building = format!("{}__new", stored_view.name);
    let mut writer = state.pool.get().await?;
    let wtx = begin(&mut writer, ctx, Access::ReadWrite).await?;
    let (schema, reader) = store::prepare_schema(&wtx).await?;
    store::create_table(&wtx, &schema, &building, &columns).await?;
    let sink = store::copy_into(&wtx, &schema, &building, &columns).await?;
    let mut sink = std::pin::pin!(sink);
    // Writes from a little before the build started are caught up before
    // the swap (a write's transaction may have begun earlier).
    let started = crate::store::now() - chrono::Duration::minutes(5);
    // Pages are read (and parsed) on a connection of their own while the
    // previous page is evaluated and copied: the read, the evaluation and
    // the COPY overlap on the cores.
    let mut pages = read_ahead(state, ctx, &view);
    while let Some(page) = pages.recv().await {
        let page = page?;
        let mut csv = String::with_capacity(page.len() * 256);
        for (id, resource) in &page {
            for row in view.evaluate(resource).map_err(view_error)? {
                output::csv_cell(&mut csv, &Value::String(id.clone()));
                for value in &row {
                    csv.push(',');
                    output::csv_cell(&mut csv, value);
                }
                csv.push('\n');
            }
        }
        sink.send(bytes::Bytes::from(csv))
            .await
            .map_err(copy_error)?;
    }
    sink.as_mut().finish().await.map_err(copy_error)?;
    store::index_by_resource(&wtx, &schema, &building).await?;
    // From here until the commit, writes wait before refreshing this
    // view; those that refreshed the old table meanwhile are caught up.
    store::lock_for_swap(&wtx, ctx, id).await?;
    let changed = store::changed_since(&wtx, ctx, t, started).await?;
    let changed: Vec<&crate::store::Stored> = changed.iter().collect();
    store::replace_rows(&wtx, ctx, &schema, &building, &view, &changed).await?;
    let rows = store::count_rows(&wtx, &schema, &building).await?;
    store::replace(&wtx, &schema, &building, &stored_view.name, &reader).await?;
    store::set_materialized(&wtx, ctx, id, rows).await?;
    wtx.commit().await?;
    let table = format!("{schema}.{}", stored_view.name);
    tracing::info!(tenant = ctx.tenant, view = id, rows, "materialised a view");
    Ok(FhirResponse::json(
        StatusCode::OK,
        json!({"resourceType": "Parameters", "parameter": [
            {"name": "table", "valueString": table},
            {"name": "rows", "valueInteger": rows},
            {"name": "reader", "valueString": reader},
        ]}),
    ))
}

/// A row PostgreSQL refused (a value that does not fit its column's type)
/// is the view's fault, not the server's.
fn copy_error(e: tokio_postgres::Error) -> ApiError {
    match e.as_db_error() {
        Some(db) => ApiError::new(
            Category::Unprocessable,
            format!(
                "a row of the view does not fit its table: {} (check the columns' types)",
                db.message()
            ),
        ),
        None => ApiError::from(e),
    }
}
