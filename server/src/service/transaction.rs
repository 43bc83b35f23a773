//! Transaction Bundles (http.html#transaction, bundle.html#transaction):
//! all or nothing in one database transaction. Entries are resolved
//! (conditional creates, updates, deletes and references), placeholders
//! (`urn:uuid:`, `urn:oid:`, fullUrls) are rewritten everywhere, and the
//! writes are applied in the spec's order (DELETE, POST, PUT/PATCH) as one
//! batch, then GETs run against the transaction's own view.

use super::batch::{EntryRequest, read_entries, response_entry};
use super::body::{IdRule, category_of, check_identity};
use super::bundle_out::Bundle;
use super::conditional::{matching_ids, multiple_matches, parse_query};
use super::read::resource_response;
use super::route::Route;
use super::write::apply;
use super::write::{deleted_response, new_id, prefer};
use super::{AppState, Body, FhirResponse, PreferReturn, ResponseBody, read_only};
use crate::error::{ApiError, Category};
use crate::store::write::{Method, WriteOp, WriteResult};
use crate::store::{Access, TenantCtx, TenantTx, begin, now, read};
use actix_web::http::StatusCode;
use fhir::reference::{ReferenceTarget, for_each_reference_mut, parse_reference};
use fhir::{Issue, ResourceType};
use serde_json::Value;
use std::collections::{HashMap, HashSet};

/// What one entry will do once resolved.
#[derive(Debug)]
enum Plan {
    /// Write `op`; `entry_status` overrides the write's own status.
    Write(WriteOp),
    /// Conditional create that matched: answer with the existing resource.
    Existing(String, String),
    /// Conditional delete that matched nothing.
    NothingToDelete,
    /// A read-only interaction, run after the writes.
    Read(Route),
}

pub async fn process(
    state: &AppState,
    ctx: &TenantCtx,
    bundle: Value,
    prefer_return: Option<PreferReturn>,
) -> Result<FhirResponse, ApiError> {
    let prepared = prepare(ctx, bundle)?;
    let mut client = state.pool.get().await?;
    let tx = begin(&mut client, ctx, Access::ReadWrite).await?;
    let responses = execute(&tx, state, ctx, prepared, prefer_return).await?;
    tx.commit().await?;
    respond(responses)
}

/// A transaction Bundle checked without the database: every resource
/// valid, every entry's request readable and allowed to the caller.
#[derive(Debug, Clone)]
pub struct Prepared {
    entries: Vec<EntryRequest>,
    routes: Vec<Route>,
}

impl Prepared {
    /// How many entries it has (and responses [`execute`] returns).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether it can be written in one transaction with other such
    /// Bundles (the ingest worker's chunks, docs/ingest.md): only plain
    /// creates and updates, without `fullUrl`, conditions or If-Match, so
    /// that no entry resolves or references anything another Bundle's
    /// entries could name.
    pub fn joinable(&self) -> bool {
        self.entries.iter().zip(&self.routes).all(|(entry, route)| {
            matches!(route, Route::Create(_) | Route::Update(..))
                && entry.full_url.is_none()
                && entry.request.if_none_exist.is_none()
                && entry.request.if_match.is_none()
                && entry.request.params.is_empty()
        })
    }

    /// The resource types its entries write.
    pub fn written_types(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.routes.iter().filter_map(|route| match route {
            Route::Create(t) | Route::Update(t, _) => Some(t.as_str()),
            _ => None,
        })
    }

    /// The `Type/id` every update entry writes (creates get fresh ids).
    pub fn updated_identities(&self) -> Vec<String> {
        self.routes
            .iter()
            .filter_map(|route| match route {
                Route::Update(t, id) => Some(format!("{t}/{id}")),
                _ => None,
            })
            .collect()
    }

    /// Joins joinable Bundles into one transaction, entries in order; the
    /// responses of [`execute`] then come back in the same order.
    pub fn join(parts: Vec<Prepared>) -> Prepared {
        let mut joined = Prepared {
            entries: Vec::new(),
            routes: Vec::new(),
        };
        for part in parts {
            for mut entry in part.entries {
                entry.index = joined.entries.len();
                joined.entries.push(entry);
            }
            joined.routes.extend(part.routes);
        }
        joined
    }
}

/// Checks `bundle` before any database work.
pub fn prepare(ctx: &TenantCtx, bundle: Value) -> Result<Prepared, ApiError> {
    // Validate every entry's resource at once, with Bundle paths.
    let issues = fhir::validation::validate_resource(&bundle);
    if issues.iter().any(Issue::is_error) {
        return Err(ApiError::from_issues(category_of(&issues), issues));
    }
    let entries: Vec<EntryRequest> = read_entries(&bundle, &ctx.base_url)
        .into_iter()
        .collect::<Result<_, _>>()?;
    drop(bundle);
    let routes = entries
        .iter()
        .map(|e| {
            let route = Route::parse(
                &e.request.method,
                &e.request.path,
                !e.request.params.is_empty(),
            )
            .map_err(|err| err.at(format!("{}.request.url", e.location())))?;
            check_entry(e, &route)?;
            super::authorize::check(ctx, &route, &e.request.params)
                .map_err(|err| err.at(format!("{}.request", e.location())))?;
            Ok(route)
        })
        .collect::<Result<Vec<Route>, ApiError>>()?;
    Ok(Prepared { entries, routes })
}

/// Runs a prepared transaction in `tx`, which the caller commits (the
/// ingest worker commits its record's state with it). Returns one
/// response per entry, in entry order.
pub async fn execute(
    tx: &TenantTx<'_>,
    state: &AppState,
    ctx: &TenantCtx,
    prepared: Prepared,
    prefer_return: Option<PreferReturn>,
) -> Result<Vec<FhirResponse>, ApiError> {
    let Prepared { entries, routes } = prepared;
    let mut plans = Vec::with_capacity(entries.len());
    let mut placeholders: HashMap<String, String> = HashMap::new();
    for (entry, route) in entries.iter().zip(routes) {
        let plan = resolve(tx, ctx, entry, route)
            .await
            .map_err(|e| locate(e, entry))?;
        if let (Some(full_url), Plan::Write(op)) = (&entry.full_url, &plan) {
            placeholders.insert(full_url.clone(), format!("{}/{}", op.resource_type, op.id));
        }
        if let (Some(full_url), Plan::Existing(t, id)) = (&entry.full_url, &plan) {
            placeholders.insert(full_url.clone(), format!("{t}/{id}"));
        }
        plans.push(plan);
    }
    check_distinct_identities(&plans, &entries)?;
    let mut conditional_refs: HashMap<String, String> = HashMap::new();
    for (plan, entry) in plans.iter_mut().zip(&entries) {
        if let Plan::Write(WriteOp {
            resource: Some(resource),
            ..
        }) = plan
        {
            rewrite_references(
                tx,
                ctx,
                resource,
                &placeholders,
                &mut conditional_refs,
                &ctx.base_url,
            )
            .await
            .map_err(|e| locate(e, entry))?;
        }
    }

    // Writes in the spec's order, as one batch.
    let mut write_order: Vec<usize> = (0..plans.len())
        .filter(|&i| matches!(plans[i], Plan::Write(_)))
        .collect();
    write_order.sort_by_key(|&i| entries[i].order());
    let mut ops = Vec::with_capacity(write_order.len());
    for &i in &write_order {
        if let Plan::Write(op) = std::mem::replace(&mut plans[i], Plan::NothingToDelete) {
            ops.push(op);
        }
    }
    let results = apply(tx, ctx, ops, now()).await?;
    let mut responses: Vec<Option<FhirResponse>> = (0..entries.len()).map(|_| None).collect();
    let prefer_return = prefer_return.unwrap_or(PreferReturn::Minimal);
    for (i, result) in write_order.into_iter().zip(results) {
        responses[i] = Some(match result {
            WriteResult::NothingToDelete => deleted_response(None, PreferReturn::Minimal),
            WriteResult::Stored { stored, .. } if stored.deleted => {
                deleted_response(Some(stored), PreferReturn::Minimal)
            }
            WriteResult::Stored { stored, created } => {
                let status = if created {
                    StatusCode::CREATED
                } else {
                    StatusCode::OK
                };
                let location = format!(
                    "{}/{}/_history/{}",
                    stored.resource_type, stored.id, stored.version_id
                );
                let mut response = prefer(
                    resource_response(status, stored),
                    prefer_return,
                    if created { "created" } else { "updated" },
                );
                response.location = Some(location);
                response
            }
        });
    }
    for (i, plan) in plans.into_iter().enumerate() {
        let response = match plan {
            Plan::Write(_) => continue,
            Plan::NothingToDelete if responses[i].is_some() => continue,
            Plan::NothingToDelete => deleted_response(None, PreferReturn::Minimal),
            Plan::Existing(t, id) => {
                let stored = read::read_current(tx, ctx, &t, &id)
                    .await?
                    .ok_or_else(|| ApiError::fault("matched resource vanished"))?;
                let location = format!("{t}/{id}/_history/{}", stored.version_id);
                let mut response = prefer(
                    resource_response(StatusCode::OK, stored),
                    prefer_return,
                    "already exists",
                );
                response.location = Some(location);
                response
            }
            Plan::Read(route) => read_only(tx, state, ctx, route, &entries[i].request)
                .await
                .map_err(|e| locate(e, &entries[i]))?,
        };
        responses[i] = Some(response);
    }
    Ok(responses.into_iter().flatten().collect())
}

/// The transaction-response Bundle of [`execute`]'s responses.
pub fn respond(responses: Vec<FhirResponse>) -> Result<FhirResponse, ApiError> {
    let mut out = Bundle::new("transaction-response");
    let mut touched = crate::audit::Touched::default();
    for mut response in responses {
        touched.merge(std::mem::take(&mut response.touched));
        out.entry.push(response_entry(response, true)?);
    }
    Ok(FhirResponse {
        status: StatusCode::OK,
        body: ResponseBody::Text(out.to_text()?),
        location: None,
        version_id: None,
        last_modified: None,
        touched,
    })
}

/// Checks that don't need the database: allowed interactions and identity.
fn check_entry(entry: &EntryRequest, route: &Route) -> Result<(), ApiError> {
    let location = format!("{}.resource", entry.location());
    let resource = match &entry.request.body {
        Body::Resource(r) => Some(r),
        _ => None,
    };
    match route {
        Route::Transaction | Route::Validate(..) => Err(ApiError::invalid(
            "a transaction entry cannot be a nested Bundle or an operation",
        )
        .at(format!("{}.request", entry.location()))),
        Route::Create(t) | Route::ConditionalUpdate(t) => match resource {
            Some(r) => check_identity(r, *t, IdRule::Ignored, Some(&location)),
            None => Err(ApiError::invalid("the entry needs a resource").at(location)),
        },
        Route::Update(t, id) => match resource {
            Some(r) => check_identity(r, *t, IdRule::MustEqual(id.as_str()), Some(&location)),
            None => Err(ApiError::invalid("the entry needs a resource").at(location)),
        },
        Route::Patch(..) | Route::ConditionalPatch(..)
            if !matches!(entry.request.body, Body::JsonPatch(_)) =>
        {
            Err(ApiError::new(
                Category::UnsupportedMediaType,
                "a PATCH entry needs a JSON Patch Binary",
            )
            .at(location))
        }
        _ => Ok(()),
    }
}

async fn resolve(
    tx: &TenantTx<'_>,
    ctx: &TenantCtx,
    entry: &EntryRequest,
    route: Route,
) -> Result<Plan, ApiError> {
    let req = &entry.request;
    let if_match = super::write::if_match(req)?;
    let resource = || match &req.body {
        Body::Resource(r) => Some(r.clone()),
        _ => None,
    };
    let write =
        |t: ResourceType, id: String, method: Method, resource: Option<Value>, fresh: bool| {
            Plan::Write(WriteOp {
                resource_type: t.as_str().to_owned(),
                id,
                method,
                resource,
                if_match,
                fresh_id: fresh,
            })
        };
    Ok(match route {
        Route::Create(t) => {
            if let Some(condition) = &req.if_none_exist {
                let ids = matching_ids(tx, ctx, t, &parse_query(condition)).await?;
                match ids.as_slice() {
                    [] => {}
                    [existing] => {
                        return Ok(Plan::Existing(t.as_str().to_owned(), existing.clone()));
                    }
                    _ => return Err(multiple_matches(t)),
                }
            }
            write(t, new_id(), Method::Post, resource(), true)
        }
        Route::Update(t, id) => write(t, id.into_string(), Method::Put, resource(), false),
        Route::ConditionalUpdate(t) => {
            let ids = matching_ids(tx, ctx, t, &req.params).await?;
            let body_id =
                resource().and_then(|r| r.get("id").and_then(Value::as_str).map(str::to_owned));
            let (id, fresh) = match (ids.as_slice(), body_id) {
                ([], None) => (new_id(), true),
                ([], Some(body_id)) => (body_id, false),
                ([found], Some(body_id)) if *found != body_id => {
                    return Err(ApiError::invalid(format!(
                        "the criteria match {t}/{found}, but the resource's id is {body_id:?}"
                    )));
                }
                ([found], _) => (found.clone(), false),
                _ => return Err(multiple_matches(t)),
            };
            let mut r = resource();
            if let Some(Value::Object(map)) = &mut r {
                map.insert("id".into(), Value::String(id.clone()));
            }
            write(
                t,
                id,
                if fresh { Method::Post } else { Method::Put },
                r,
                fresh,
            )
        }
        Route::Delete(t, id) => write(t, id.into_string(), Method::Delete, None, false),
        Route::ConditionalDelete(t) => {
            match matching_ids(tx, ctx, t, &req.params).await?.as_slice() {
                [] => Plan::NothingToDelete,
                [id] => write(t, id.clone(), Method::Delete, None, false),
                _ => return Err(multiple_matches(t)),
            }
        }
        Route::Patch(t, id) => patched(tx, ctx, t, id.into_string(), req, if_match).await?,
        Route::ConditionalPatch(t) => match matching_ids(tx, ctx, t, &req.params).await?.as_slice()
        {
            [] => return Err(ApiError::not_found(format!("no {t} matches the criteria"))),
            [id] => patched(tx, ctx, t, id.clone(), req, if_match).await?,
            _ => return Err(multiple_matches(t)),
        },
        other => Plan::Read(other),
    })
}

async fn patched(
    tx: &TenantTx<'_>,
    ctx: &TenantCtx,
    t: ResourceType,
    id: String,
    req: &super::FhirRequest,
    if_match: Option<i64>,
) -> Result<Plan, ApiError> {
    let (op, _warnings) = super::write::patched_write(tx, ctx, t, id, req, if_match).await?;
    Ok(Plan::Write(op))
}

/// bundle.html#transaction: "If any resource identities ... overlap in
/// steps 1-3, then the transaction SHALL fail."
fn check_distinct_identities(plans: &[Plan], entries: &[EntryRequest]) -> Result<(), ApiError> {
    let mut seen: HashSet<(&str, &str)> = HashSet::new();
    for (plan, entry) in plans.iter().zip(entries) {
        if let Plan::Write(op) = plan {
            if !seen.insert((op.resource_type.as_str(), op.id.as_str())) {
                return Err(ApiError::invalid(format!(
                    "{}/{} is written by more than one entry of the transaction",
                    op.resource_type, op.id
                ))
                .at(entry.location()));
            }
        }
    }
    Ok(())
}

/// Replaces placeholder references with `Type/id`, and resolves conditional
/// references (`Patient?identifier=...`) to exactly one match.
async fn rewrite_references(
    tx: &TenantTx<'_>,
    ctx: &TenantCtx,
    resource: &mut Value,
    placeholders: &HashMap<String, String>,
    conditional_refs: &mut HashMap<String, String>,
    base_url: &str,
) -> Result<(), ApiError> {
    let mut unresolved: Vec<String> = Vec::new();
    let mut conditionals: Vec<String> = Vec::new();
    for_each_reference_mut(resource, &mut |reference| {
        if let Some(target) = placeholders.get(reference.as_str()) {
            *reference = target.clone();
            return;
        }
        match parse_reference(reference, base_url) {
            Some(ReferenceTarget::Urn(_)) => unresolved.push(reference.clone()),
            Some(ReferenceTarget::Conditional { .. }) => conditionals.push(reference.clone()),
            _ => {}
        }
    });
    if let Some(first) = unresolved.first() {
        return Err(ApiError::invalid(format!(
            "the reference {first:?} names no entry of this transaction (no entry has that fullUrl)"
        ))
        .with_code(fhir::IssueCode::NotFound));
    }
    for conditional in conditionals {
        if conditional_refs.contains_key(&conditional) {
            continue;
        }
        let Some(ReferenceTarget::Conditional {
            resource_type,
            query,
        }) = parse_reference(&conditional, base_url)
        else {
            continue;
        };
        let ids = matching_ids(tx, ctx, resource_type, &parse_query(query)).await?;
        let target = match ids.as_slice() {
            [id] => format!("{resource_type}/{id}"),
            [] => {
                return Err(ApiError::new(
                    Category::PreconditionFailed,
                    format!("the conditional reference {conditional:?} matches no resource"),
                ));
            }
            _ => return Err(multiple_matches(resource_type)),
        };
        conditional_refs.insert(conditional, target);
    }
    if !conditional_refs.is_empty() {
        for_each_reference_mut(resource, &mut |reference| {
            if let Some(target) = conditional_refs.get(reference.as_str()) {
                *reference = target.clone();
            }
        });
    }
    Ok(())
}

/// Points an entry's error at the entry when it has no location of its own.
fn locate(mut e: ApiError, entry: &EntryRequest) -> ApiError {
    for issue in &mut e.issues {
        if issue.expression.is_empty() {
            issue.expression.push(entry.location());
        } else if !issue.expression.iter().any(|x| x.starts_with("Bundle.")) {
            issue.expression = issue
                .expression
                .iter()
                .map(|x| format!("{}.{x}", entry.location()))
                .collect();
        }
    }
    e
}
