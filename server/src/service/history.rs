//! history at system, type and instance level (http.html#history): newest
//! first, `_since`, `_at`, `_count`, and stable `next` links.

use super::bundle_out::{Bundle, Embedded, Entry, Link};
use super::route::HistoryKind;
use super::{AppState, FhirRequest, FhirResponse, ResponseBody};
use crate::error::ApiError;
use crate::store::history::{HistoryQuery, history as load};
use crate::store::{Db, TenantCtx, format_instant, read};
use actix_web::http::StatusCode;
use chrono::{DateTime, Utc};
use fhir::search_values::parse_date_value;
use serde_json::json;

const DEFAULT_COUNT: usize = 50;

/// A date, dateTime or instant as the UTC range it covers at its precision.
fn parse_range(raw: &str) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let range = parse_date_value(raw)?;
    Some((
        DateTime::from_timestamp_micros(range.start)?,
        DateTime::from_timestamp_micros(range.end)?,
    ))
}

pub async fn history(
    db: &impl Db,
    state: &AppState,
    ctx: &TenantCtx,
    kind: HistoryKind,
    req: &FhirRequest,
) -> Result<FhirResponse, ApiError> {
    let mut query = HistoryQuery {
        count: DEFAULT_COUNT.min(state.max_page_size),
        ..HistoryQuery::default()
    };
    let mut used: Vec<(String, String)> = Vec::new();
    for (name, value) in &req.params {
        match name.as_str() {
            "_since" => {
                let (start, _) = parse_range(value).ok_or_else(|| {
                    ApiError::invalid(format!("_since {value:?} is not a valid instant"))
                        .at("_since")
                })?;
                query.since = Some(start);
                used.push((name.clone(), value.clone()));
            }
            "_at" => {
                query.at = Some(parse_range(value).ok_or_else(|| {
                    ApiError::invalid(format!("_at {value:?} is not a valid date or dateTime"))
                        .at("_at")
                })?);
                used.push((name.clone(), value.clone()));
            }
            "_count" => {
                let count: usize = value.parse().map_err(|_| {
                    ApiError::invalid(format!("_count {value:?} is not a non-negative integer"))
                        .at("_count")
                })?;
                query.count = count.min(state.max_page_size);
            }
            "_page" => {
                query.before_seq = Some(value.parse().map_err(|_| {
                    ApiError::invalid(format!("_page {value:?} is not a page cursor")).at("_page")
                })?);
            }
            "_format" | "_pretty" => {}
            other if req.strict => {
                return Err(
                    ApiError::invalid(format!("unknown history parameter {other}"))
                        .at(other.to_owned()),
                );
            }
            _ => {}
        }
    }
    if let HistoryKind::Instance(t, id) = &kind {
        if read::read_current(db, ctx, t.as_str(), id.as_str())
            .await?
            .is_none()
        {
            return Err(ApiError::not_found(format!("{t}/{id} is not known")));
        }
    }
    let mut rows = load(db, ctx, &kind.scope(), &query).await?;
    let has_next = rows.len() > query.count;
    rows.truncate(query.count);
    // The next page continues after the last row read, even if it is left
    // out below.
    let next_seq = rows.last().map(|row| row.seq);
    // An integrator's history holds only its own submissions (a page can
    // then be shorter than _count).
    rows.retain(|row| super::authorize::integrator_may_see(ctx, row.content.as_deref()));

    let path = match &kind {
        HistoryKind::System => "_history".to_string(),
        HistoryKind::Type(t) => format!("{t}/_history"),
        HistoryKind::Instance(t, id) => format!("{t}/{id}/_history"),
    };
    let link_for = |extra: Option<i64>| {
        let mut pairs = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &used {
            pairs.append_pair(k, v);
        }
        pairs.append_pair("_count", &query.count.to_string());
        if let Some(seq) = extra {
            pairs.append_pair("_page", &seq.to_string());
        }
        format!("{}/{path}?{}", ctx.base_url, pairs.finish())
    };
    let mut bundle = Bundle::new("history");
    bundle.link.push(Link {
        relation: "self",
        url: link_for(query.before_seq),
    });
    if has_next {
        if let Some(seq) = next_seq {
            bundle.link.push(Link {
                relation: "next",
                url: link_for(Some(seq)),
            });
        }
    }
    let mut touched = crate::audit::Touched::default();
    for row in rows {
        let (method, url, status) = match row.method.as_str() {
            "DELETE" => (
                "DELETE",
                format!("{}/{}", row.resource_type, row.id),
                "204 No Content",
            ),
            "POST" => ("POST", row.resource_type.clone(), "201 Created"),
            m => (
                if m == "PATCH" { "PATCH" } else { "PUT" },
                format!("{}/{}", row.resource_type, row.id),
                if row.version_id == 1 {
                    "201 Created"
                } else {
                    "200 OK"
                },
            ),
        };
        touched.add_version(
            &row.resource_type,
            &row.id,
            row.version_id,
            row.content.as_deref(),
        );
        bundle.entry.push(Entry {
            full_url: Some(format!("{}/{}/{}", ctx.base_url, row.resource_type, row.id)),
            resource: row.content.map(Embedded::stored),
            request: Some(json!({ "method": method, "url": url })),
            response: Some(json!({
                "status": status,
                "etag": format!("W/\"{}\"", row.version_id),
                "lastModified": format_instant(row.last_updated),
            })),
            ..Entry::default()
        });
    }
    Ok(FhirResponse {
        status: StatusCode::OK,
        body: ResponseBody::Text(bundle.to_text()?),
        location: None,
        version_id: None,
        last_modified: None,
        touched,
    })
}
