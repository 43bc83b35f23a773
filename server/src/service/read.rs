//! read and vread (http.html#read, #vread), with If-None-Match and
//! If-Modified-Since answered by 304.

use super::{FhirRequest, FhirResponse, ResponseBody};
use crate::error::{ApiError, Category};
use crate::store::{Db, Stored, TenantCtx, read};
use actix_web::http::StatusCode;
use fhir::{Id, ResourceType};

pub async fn read(
    db: &impl Db,
    ctx: &TenantCtx,
    t: ResourceType,
    id: &Id,
    req: &FhirRequest,
) -> Result<FhirResponse, ApiError> {
    let Some(stored) = read::read_current(db, ctx, t.as_str(), id.as_str()).await? else {
        // CodeSystems, ValueSets and ConceptMaps also come from global
        // terminology content (docs/terminology.md).
        if terminology::mirror::mirrored(t.as_str()) {
            let tx = db.term();
            let global =
                terminology::store::resource_by_id(&tx, &ctx.tenant, t.as_str(), id.as_str());
            if let Some(resource) = global.await? {
                return Ok(FhirResponse::json(StatusCode::OK, resource));
            }
        }
        return Err(ApiError::not_found(format!("{t}/{id} is not known")));
    };
    if stored.deleted {
        return Err(gone(&stored));
    }
    if not_modified(&stored, req) {
        let mut response = resource_response(StatusCode::NOT_MODIFIED, stored);
        response.body = ResponseBody::Empty;
        return Ok(response);
    }
    Ok(resource_response(StatusCode::OK, stored))
}

pub async fn vread(
    db: &impl Db,
    ctx: &TenantCtx,
    t: ResourceType,
    id: &Id,
    vid: &str,
) -> Result<FhirResponse, ApiError> {
    let version: i64 = vid
        .parse()
        .ok()
        .filter(|v| *v > 0)
        .ok_or_else(|| ApiError::not_found(format!("{t}/{id} has no version {vid:?}")))?;
    let stored = read::read_version(db, ctx, t.as_str(), id.as_str(), version)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("{t}/{id} has no version {version}")))?;
    if stored.deleted {
        return Err(gone(&stored));
    }
    Ok(resource_response(StatusCode::OK, stored))
}

fn gone(stored: &Stored) -> ApiError {
    ApiError::new(
        Category::Gone,
        format!(
            "{}/{} was deleted (version {})",
            stored.resource_type, stored.id, stored.version_id
        ),
    )
}

/// A response carrying one stored version with its ETag and Last-Modified.
pub fn resource_response(status: StatusCode, stored: Stored) -> FhirResponse {
    FhirResponse {
        touched: crate::audit::Touched::of_stored(&stored),
        status,
        location: None,
        version_id: Some(stored.version_id),
        last_modified: Some(stored.last_updated),
        body: stored
            .content
            .map_or(ResponseBody::Empty, ResponseBody::Text),
    }
}

fn not_modified(stored: &Stored, req: &FhirRequest) -> bool {
    if let Some(tags) = &req.if_none_match {
        return tags
            .split(',')
            .map(str::trim)
            .any(|tag| tag == "*" || parse_etag(tag) == Some(stored.version_id));
    }
    if let Some(since) = &req.if_modified_since {
        if let Ok(since) = httpdate::parse_http_date(since) {
            let since: chrono::DateTime<chrono::Utc> = since.into();
            // HTTP dates have whole seconds.
            return stored.last_updated.timestamp() <= since.timestamp();
        }
    }
    false
}

/// `W/"3"` or `"3"` → 3.
pub fn parse_etag(raw: &str) -> Option<i64> {
    let raw = raw.trim();
    let raw = raw.strip_prefix("W/").unwrap_or(raw);
    raw.strip_prefix('"')?.strip_suffix('"')?.parse().ok()
}
