//! Type-level search (http.html#search): `_id` and indexed token
//! parameters, keyset-paged; ignored parameters are reported in an
//! OperationOutcome entry (search mode `outcome`), or 400 when strict.

use super::bundle_out::{Bundle, Entry, Link, raw, raw_value};
use super::{AppState, FhirRequest, FhirResponse, ResponseBody};
use crate::error::ApiError;
use crate::search::criteria::{self, Strictness};
use crate::search::execute;
use crate::store::{Db, TenantCtx};
use actix_web::http::StatusCode;
use fhir::ResourceType;
use fhir::outcome::operation_outcome;
use serde_json::json;

const DEFAULT_COUNT: usize = 50;

pub async fn search(
    db: &impl Db,
    state: &AppState,
    ctx: &TenantCtx,
    t: ResourceType,
    req: &FhirRequest,
) -> Result<FhirResponse, ApiError> {
    let strictness = if req.strict {
        Strictness::Strict
    } else {
        Strictness::Lenient
    };
    let parsed = criteria::parse(t.as_str(), &req.params, strictness, &ctx.base_url)?;
    let mut count = DEFAULT_COUNT.min(state.max_page_size);
    let mut after: Option<String> = None;
    for (name, value) in &req.params {
        match name.as_str() {
            "_count" => {
                count = value
                    .parse::<usize>()
                    .map_err(|_| {
                        ApiError::invalid(format!("_count {value:?} is not a non-negative integer"))
                            .at("_count")
                    })?
                    .min(state.max_page_size);
            }
            "_page" => after = Some(value.clone()),
            _ => {}
        }
    }
    let mut found = execute::find(
        db,
        ctx,
        t.as_str(),
        &parsed.criteria,
        count + 1,
        after.as_deref(),
    )
    .await?;
    let has_next = found.len() > count;
    found.truncate(count);

    let link_for = |after: Option<&str>| {
        let mut pairs = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &parsed.used {
            pairs.append_pair(k, v);
        }
        pairs.append_pair("_count", &count.to_string());
        if let Some(after) = after {
            pairs.append_pair("_page", after);
        }
        format!("{}/{t}?{}", state.base_url, pairs.finish())
    };
    let mut bundle = Bundle::new("searchset");
    bundle.link.push(Link {
        relation: "self",
        url: link_for(after.as_deref()),
    });
    if has_next {
        if let Some(last) = found.last() {
            bundle.link.push(Link {
                relation: "next",
                url: link_for(Some(&last.id)),
            });
        }
    }
    for stored in found {
        bundle.entry.push(Entry {
            full_url: Some(format!(
                "{}/{}/{}",
                state.base_url, stored.resource_type, stored.id
            )),
            resource: stored.content.map(raw).transpose()?,
            search: Some(json!({ "mode": "match" })),
            ..Entry::default()
        });
    }
    if !parsed.warnings.is_empty() {
        bundle.entry.push(Entry {
            resource: Some(raw_value(&operation_outcome(&parsed.warnings))?),
            search: Some(json!({ "mode": "outcome" })),
            ..Entry::default()
        });
    }
    Ok(FhirResponse {
        status: StatusCode::OK,
        body: ResponseBody::Text(bundle.to_text()?),
        location: None,
        version_id: None,
        last_modified: None,
    })
}
