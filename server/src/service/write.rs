//! create, update, delete and patch, plain and conditional (http.html),
//! each in one database transaction.

use super::body::{IdRule, check_resource};
use super::conditional::{matching_ids, multiple_matches};
use super::read::{parse_etag, resource_response};
use super::{AppState, Body, FhirRequest, FhirResponse, PreferReturn, ResponseBody};
use crate::error::{ApiError, Category};
use crate::store::write::{Method, WriteOp, WriteResult};
use crate::store::{Access, Stored, TenantCtx, TenantTx, begin, now, read};
use actix_web::http::StatusCode;
use fhir::outcome::operation_outcome;
use fhir::{Id, Issue, IssueCode, ResourceType};
use serde_json::Value;

/// Attempts for a write that lost a race to create the same new id.
const WRITE_ATTEMPTS: usize = 3;

pub async fn create(
    state: &AppState,
    ctx: &TenantCtx,
    t: ResourceType,
    req: FhirRequest,
) -> Result<FhirResponse, ApiError> {
    let resource = resource_body(&req)?;
    let warnings = check_resource(&resource, t, IdRule::Ignored, None)?;
    let mut client = state.pool.get().await?;
    let tx = begin(&mut client, ctx, Access::ReadWrite).await?;
    if let Some(condition) = &req.if_none_exist {
        let params = super::conditional::parse_query(condition);
        let ids = matching_ids(&tx, ctx, t, &params).await?;
        match ids.as_slice() {
            [] => {}
            [existing] => {
                let stored = read::read_current(&tx, ctx, t.as_str(), existing)
                    .await?
                    .ok_or_else(|| ApiError::fault("matched resource vanished"))?;
                tx.commit().await?;
                return Ok(prefer(
                    resource_response(StatusCode::OK, stored),
                    req.prefer(),
                    "the resource already exists; nothing was created",
                ));
            }
            _ => return Err(multiple_matches(t)),
        }
    }
    let warnings = binding_warnings(&tx, ctx, req.prefer(), &resource, warnings).await?;
    let op = WriteOp {
        resource_type: t.as_str().to_owned(),
        id: new_id(),
        method: Method::Post,
        resource: Some(resource),
        if_match: None,
        fresh_id: true,
    };
    let results = apply(&tx, ctx, vec![op], now()).await?;
    tx.commit().await?;
    written(results, req.prefer(), &warnings)
}

pub async fn update(
    state: &AppState,
    ctx: &TenantCtx,
    t: ResourceType,
    id: Id,
    req: FhirRequest,
) -> Result<FhirResponse, ApiError> {
    let resource = resource_body(&req)?;
    let warnings = check_resource(&resource, t, IdRule::MustEqual(id.as_str()), None)?;
    let if_match = if_match(&req)?;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut client = state.pool.get().await?;
        let tx = begin(&mut client, ctx, Access::ReadWrite).await?;
        let warnings =
            binding_warnings(&tx, ctx, req.prefer(), &resource, warnings.clone()).await?;
        let op = WriteOp {
            resource_type: t.as_str().to_owned(),
            id: id.as_str().to_owned(),
            method: Method::Put,
            resource: Some(resource.clone()),
            if_match,
            fresh_id: false,
        };
        match apply(&tx, ctx, vec![op], now()).await {
            Ok(results) => {
                tx.commit().await?;
                return written(results, req.prefer(), &warnings);
            }
            // Two update-as-creates of one new id: the loser retries and
            // becomes version 2 (or meets its If-Match).
            Err(e) if e.category == Category::Conflict && attempt < WRITE_ATTEMPTS => continue,
            Err(e) => return Err(e),
        }
    }
}

pub async fn conditional_update(
    state: &AppState,
    ctx: &TenantCtx,
    t: ResourceType,
    req: FhirRequest,
) -> Result<FhirResponse, ApiError> {
    let resource = resource_body(&req)?;
    let body_id = resource
        .get("id")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let mut client = state.pool.get().await?;
    let tx = begin(&mut client, ctx, Access::ReadWrite).await?;
    let ids = matching_ids(&tx, ctx, t, &req.params).await?;
    let (id, fresh) = match (ids.as_slice(), body_id) {
        ([], None) => (new_id(), true),
        ([], Some(body_id)) => {
            if read::read_current(&tx, ctx, t.as_str(), &body_id)
                .await?
                .is_some_and(|s| !s.deleted)
            {
                return Err(ApiError::new(
                    Category::Conflict,
                    format!(
                        "no {t} matches the criteria, but {t}/{body_id} exists; it would be overwritten"
                    ),
                ));
            }
            (body_id, false)
        }
        ([found], Some(body_id)) if *found != body_id => {
            return Err(ApiError::invalid(format!(
                "the criteria match {t}/{found}, but the resource's id is {body_id:?}"
            ))
            .at(format!("{t}.id")));
        }
        ([found], _) => (found.clone(), false),
        _ => return Err(multiple_matches(t)),
    };
    let mut resource = resource;
    if let Value::Object(map) = &mut resource {
        map.insert("id".into(), Value::String(id.clone()));
    }
    let warnings = check_resource(&resource, t, IdRule::MustEqual(&id), None)?;
    let op = WriteOp {
        resource_type: t.as_str().to_owned(),
        id,
        method: if fresh { Method::Post } else { Method::Put },
        resource: Some(resource),
        if_match: if_match(&req)?,
        fresh_id: fresh,
    };
    let results = apply(&tx, ctx, vec![op], now()).await?;
    tx.commit().await?;
    written(results, req.prefer(), &warnings)
}

pub async fn delete(
    state: &AppState,
    ctx: &TenantCtx,
    t: ResourceType,
    id: Id,
    req: FhirRequest,
) -> Result<FhirResponse, ApiError> {
    let mut client = state.pool.get().await?;
    let tx = begin(&mut client, ctx, Access::ReadWrite).await?;
    let response = delete_in(&tx, ctx, t, id.as_str(), if_match(&req)?, req.prefer()).await?;
    tx.commit().await?;
    Ok(response)
}

pub async fn conditional_delete(
    state: &AppState,
    ctx: &TenantCtx,
    t: ResourceType,
    req: FhirRequest,
) -> Result<FhirResponse, ApiError> {
    let mut client = state.pool.get().await?;
    let tx = begin(&mut client, ctx, Access::ReadWrite).await?;
    let ids = matching_ids(&tx, ctx, t, &req.params).await?;
    let response = match ids.as_slice() {
        [] => deleted_response(None, req.prefer()),
        [id] => delete_in(&tx, ctx, t, id, if_match(&req)?, req.prefer()).await?,
        _ => return Err(multiple_matches(t)),
    };
    tx.commit().await?;
    Ok(response)
}

async fn delete_in(
    tx: &TenantTx<'_>,
    ctx: &TenantCtx,
    t: ResourceType,
    id: &str,
    if_match: Option<i64>,
    prefer_return: PreferReturn,
) -> Result<FhirResponse, ApiError> {
    let op = WriteOp {
        resource_type: t.as_str().to_owned(),
        id: id.to_owned(),
        method: Method::Delete,
        resource: None,
        if_match,
        fresh_id: false,
    };
    let results = apply(tx, ctx, vec![op], now()).await?;
    let stored = match results.into_iter().next() {
        Some(WriteResult::Stored { stored, .. }) => Some(stored),
        _ => None,
    };
    Ok(deleted_response(stored, prefer_return))
}

/// 204, or 200 with an OperationOutcome when asked for one.
pub fn deleted_response(stored: Option<Stored>, prefer_return: PreferReturn) -> FhirResponse {
    let mut response = FhirResponse::empty(StatusCode::NO_CONTENT);
    if let Some(stored) = stored {
        response.version_id = Some(stored.version_id);
        response.last_modified = Some(stored.last_updated);
        response.touched = crate::audit::Touched::of_stored(&stored);
    }
    if prefer_return == PreferReturn::OperationOutcome {
        response.status = StatusCode::OK;
        response.body = ResponseBody::Json(operation_outcome(&[Issue::information(
            IssueCode::Informational,
            "deleted",
        )]));
    }
    response
}

pub async fn patch(
    state: &AppState,
    ctx: &TenantCtx,
    t: ResourceType,
    id: Option<Id>,
    req: FhirRequest,
) -> Result<FhirResponse, ApiError> {
    let mut client = state.pool.get().await?;
    let tx = begin(&mut client, ctx, Access::ReadWrite).await?;
    let id = match id {
        Some(id) => id.into_string(),
        None => match matching_ids(&tx, ctx, t, &req.params).await?.as_slice() {
            [] => return Err(ApiError::not_found(format!("no {t} matches the criteria"))),
            [one] => one.clone(),
            _ => return Err(multiple_matches(t)),
        },
    };
    let (op, warnings) = patched_write(&tx, ctx, t, id, &req, if_match(&req)?).await?;
    let results = apply(&tx, ctx, vec![op], now()).await?;
    tx.commit().await?;
    written(results, req.prefer(), &warnings)
}

/// Applies the request's JSON Patch (http.html#patch) to the current
/// version of `t/id`, locked for the transaction, and returns the write
/// with the validator's warnings. Used by PATCH and by transaction entries.
pub async fn patched_write(
    tx: &TenantTx<'_>,
    ctx: &TenantCtx,
    t: ResourceType,
    id: String,
    req: &FhirRequest,
    if_match: Option<i64>,
) -> Result<(WriteOp, Vec<Issue>), ApiError> {
    let Body::JsonPatch(patch_doc) = &req.body else {
        return Err(ApiError::new(
            Category::UnsupportedMediaType,
            "PATCH needs a JSON Patch body with Content-Type application/json-patch+json",
        ));
    };
    let patch_ops: json_patch::Patch = serde_json::from_value(patch_doc.clone())
        .map_err(|e| ApiError::invalid(format!("the body is not a JSON Patch document: {e}")))?;
    let current = read::read_current_for_update(tx, ctx, t.as_str(), &id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("{t}/{id} is not known")))?;
    let Some(content) = current.content.filter(|_| !current.deleted) else {
        return Err(ApiError::new(
            Category::Gone,
            format!("{t}/{id} was deleted"),
        ));
    };
    if if_match.is_some_and(|v| v != current.version_id) {
        return Err(ApiError::new(
            Category::PreconditionFailed,
            format!(
                "If-Match does not name the current version {} of {t}/{id}",
                current.version_id
            ),
        ));
    }
    let mut doc: Value = serde_json::from_str(&content).map_err(ApiError::fault)?;
    json_patch::patch(&mut doc, &patch_ops).map_err(|e| {
        ApiError::new(
            Category::Unprocessable,
            format!("the patch cannot be applied: {e}"),
        )
    })?;
    let warnings = check_resource(&doc, t, IdRule::MustEqual(&id), None)?;
    let op = WriteOp {
        resource_type: t.as_str().to_owned(),
        id,
        method: Method::Patch,
        resource: Some(doc),
        if_match: Some(current.version_id),
        fresh_id: false,
    };
    Ok((op, warnings))
}

/// The resource from a request body, or the right error.
pub fn resource_body(req: &FhirRequest) -> Result<Value, ApiError> {
    match &req.body {
        Body::Resource(v) => Ok(v.clone()),
        Body::None => Err(ApiError::invalid(
            "this interaction needs a resource in the body",
        )),
        Body::JsonPatch(_) => Err(ApiError::new(
            Category::UnsupportedMediaType,
            "a JSON Patch body is only accepted by PATCH",
        )),
        Body::Ndjson(_) => Err(ApiError::new(
            Category::UnsupportedMediaType,
            "an NDJSON body is only accepted by $import",
        )),
    }
}

/// `If-Match: W/"3"` → 3; a malformed value is a client error.
pub fn if_match(req: &FhirRequest) -> Result<Option<i64>, ApiError> {
    match &req.if_match {
        None => Ok(None),
        Some(raw) => parse_etag(raw).map(Some).ok_or_else(|| {
            ApiError::invalid(format!(
                "If-Match {raw:?} is not a version ETag such as W/\"3\""
            ))
        }),
    }
}

/// With `Prefer: return=OperationOutcome`, adds the warnings of extensible
/// and preferred terminology bindings to the validator's.
async fn binding_warnings(
    tx: &TenantTx<'_>,
    ctx: &TenantCtx,
    prefer_return: PreferReturn,
    resource: &Value,
    mut warnings: Vec<Issue>,
) -> Result<Vec<Issue>, ApiError> {
    if prefer_return == PreferReturn::OperationOutcome {
        let issues = super::bindings::issues(tx, ctx, resource).await?;
        warnings.extend(issues.into_iter().filter(|i| !i.is_error()));
    }
    Ok(warnings)
}

/// Checks the writes' required terminology bindings, then applies them.
///
/// The write path's statements take their rows as arrays. PostgreSQL
/// plans such a statement afresh on every execution (its generic plan
/// assumes ten elements per array and so looks costlier than a custom plan
/// for one), which costs more than running it; within the write, generic
/// plans are used, and the setting is restored afterwards.
pub async fn apply(
    tx: &TenantTx<'_>,
    ctx: &TenantCtx,
    ops: Vec<WriteOp>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<WriteResult>, ApiError> {
    tx.generic_plans(true).await?;
    let applied = apply_planned(tx, ctx, ops, now).await;
    let restored = tx.generic_plans(false).await;
    let results = applied?;
    restored?;
    Ok(results)
}

async fn apply_planned(
    tx: &TenantTx<'_>,
    ctx: &TenantCtx,
    mut ops: Vec<WriteOp>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<WriteResult>, ApiError> {
    super::bindings::check_ops(tx, ctx, &ops).await?;
    let linking = super::patient_index::before_store(tx, ctx, &mut ops).await?;
    let results = crate::store::write::apply(tx, ctx, ops, now).await?;
    super::mcsd::check_facility_codes(tx, ctx, &results).await?;
    // Before the linker's own writes, which may add later versions.
    crate::events::record(tx, ctx, &results).await?;
    if let Some(plan) = linking {
        super::patient_index::after_store(tx, ctx, plan, now).await?;
    }
    Ok(results)
}

pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The response for one stored write: 201 for a creation, 200 otherwise,
/// shaped by `Prefer: return`.
pub fn written(
    results: Vec<WriteResult>,
    prefer_return: PreferReturn,
    warnings: &[Issue],
) -> Result<FhirResponse, ApiError> {
    match results.into_iter().next() {
        Some(WriteResult::Stored { stored, created }) => {
            let status = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            let location = format!(
                "{}/{}/_history/{}",
                stored.resource_type, stored.id, stored.version_id
            );
            let mut response = resource_response(status, stored);
            response.location = Some(location);
            let note = if created { "created" } else { "updated" };
            let mut response = prefer(response, prefer_return, note);
            if prefer_return == PreferReturn::OperationOutcome && !warnings.is_empty() {
                response.body = ResponseBody::Json(operation_outcome(warnings));
            }
            Ok(response)
        }
        _ => Err(ApiError::fault("a write produced no version")),
    }
}

/// Applies `Prefer: return` to a response that carries a resource.
pub fn prefer(mut response: FhirResponse, prefer_return: PreferReturn, note: &str) -> FhirResponse {
    match prefer_return {
        PreferReturn::Representation => {}
        PreferReturn::Minimal => response.body = ResponseBody::Empty,
        PreferReturn::OperationOutcome => {
            response.body = ResponseBody::Json(operation_outcome(&[Issue::information(
                IssueCode::Informational,
                note,
            )]));
        }
    }
    response
}
