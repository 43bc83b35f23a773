//! Batch and transaction Bundles (http.html#transaction, bundle.html):
//! reading the envelope, and batch processing, where each entry succeeds or
//! fails on its own.

use super::bundle_out::{Bundle, Embedded, Entry, status_line};
use super::conditional::parse_query;
use super::route::Route;
use super::{AppState, Body, FhirRequest, FhirResponse, ResponseBody};
use crate::error::{ApiError, Category};
use crate::store::{TenantCtx, format_instant};
use actix_web::http::{Method, StatusCode};
use base64::Engine;
use fhir::outcome::operation_outcome;
use serde_json::{Value, json};

/// One Bundle entry's request, ready to dispatch.
#[derive(Debug, Clone)]
pub struct EntryRequest {
    pub index: usize,
    pub full_url: Option<String>,
    pub request: FhirRequest,
}

impl EntryRequest {
    /// The spec's processing order: DELETE, POST, PUT/PATCH, then GET/HEAD.
    pub fn order(&self) -> u8 {
        match self.request.method.as_str() {
            "DELETE" => 0,
            "POST" => 1,
            "PUT" | "PATCH" => 2,
            _ => 3,
        }
    }

    pub fn location(&self) -> String {
        format!("Bundle.entry[{}]", self.index)
    }
}

pub async fn process_bundle(
    state: &AppState,
    ctx: &TenantCtx,
    req: FhirRequest,
) -> Result<FhirResponse, ApiError> {
    let Body::Resource(bundle) = &req.body else {
        return Err(ApiError::invalid(
            "POST to the base needs a batch or transaction Bundle",
        ));
    };
    if bundle.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
        return Err(
            ApiError::invalid("POST to the base needs a Bundle resource").at("resourceType"),
        );
    }
    let kind = bundle.get("type").and_then(Value::as_str).unwrap_or("");
    let n_entries = bundle
        .get("entry")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    if n_entries > state.max_bundle_entries {
        return Err(ApiError::new(
            Category::TooLarge,
            format!(
                "the Bundle has {n_entries} entries; this server accepts at most {} (BARAZA_MAX_BUNDLE_ENTRIES)",
                state.max_bundle_entries
            ),
        )
        .at("Bundle.entry"));
    }
    match kind {
        "transaction" => {
            super::transaction::process(state, ctx, bundle.clone(), req.prefer_return).await
        }
        "batch" => process_batch(state, ctx, bundle, &req).await,
        other => Err(ApiError::invalid(format!(
            "Bundle.type {other:?} cannot be posted to the base; use batch or transaction"
        ))
        .at("Bundle.type")),
    }
}

/// Reads every entry's request. Entries that cannot be read are returned
/// as errors in place, so batch can report them and transaction can fail.
pub fn read_entries(bundle: &Value, base_url: &str) -> Vec<Result<EntryRequest, ApiError>> {
    let entries = bundle
        .get("entry")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    entries
        .iter()
        .enumerate()
        .map(|(index, entry)| read_entry(index, entry, base_url))
        .collect()
}

fn read_entry(index: usize, entry: &Value, base_url: &str) -> Result<EntryRequest, ApiError> {
    let at = |field: &str| format!("Bundle.entry[{index}].{field}");
    let request = entry
        .get("request")
        .ok_or_else(|| ApiError::invalid("the entry has no request").at(at("request")))?;
    let method_raw = request.get("method").and_then(Value::as_str).unwrap_or("");
    let method = match method_raw {
        "GET" | "HEAD" | "POST" | "PUT" | "DELETE" | "PATCH" => {
            Method::from_bytes(method_raw.as_bytes())
                .map_err(|_| ApiError::invalid("bad method").at(at("request.method")))?
        }
        other => {
            return Err(ApiError::invalid(format!(
                "request.method {other:?} is not an HTTP verb FHIR allows"
            ))
            .at(at("request.method")));
        }
    };
    let url = request
        .get("url")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::invalid("the entry's request has no url").at(at("request.url")))?;
    // Only URLs under this tenant's base are local: `{base}b/...` is not.
    let relative = match url.strip_prefix(base_url) {
        Some(rest) if rest.is_empty() || rest.starts_with(['/', '?']) => {
            rest.trim_start_matches('/')
        }
        _ => url,
    };
    if relative.contains("://") {
        return Err(
            ApiError::invalid(format!("request.url {url:?} is not on this server"))
                .at(at("request.url")),
        );
    }
    let (path, query) = relative.split_once('?').unwrap_or((relative, ""));
    let text = |field: &str| {
        request
            .get(field)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let body = match (method.as_str(), entry.get("resource")) {
        (_, None) => Body::None,
        ("PATCH", Some(resource)) => patch_body(resource).map_err(|e| e.at(at("resource")))?,
        (_, Some(resource)) => Body::Resource(resource.clone()),
    };
    Ok(EntryRequest {
        index,
        full_url: entry
            .get("fullUrl")
            .and_then(Value::as_str)
            .map(str::to_owned),
        request: FhirRequest {
            method,
            path: path.to_owned(),
            params: parse_query(query),
            body,
            if_match: text("ifMatch"),
            if_none_exist: text("ifNoneExist"),
            if_none_match: text("ifNoneMatch"),
            if_modified_since: text("ifModifiedSince"),
            prefer_return: None,
            strict: false,
            respond_async: false,
            // A batch's reads see its own writes.
            primary: true,
        },
    })
}

/// A PATCH entry carries its JSON Patch as a Binary (http.html#patch).
fn patch_body(resource: &Value) -> Result<Body, ApiError> {
    let is_json_patch = resource.get("resourceType").and_then(Value::as_str) == Some("Binary")
        && resource.get("contentType").and_then(Value::as_str)
            == Some("application/json-patch+json");
    if !is_json_patch {
        return Err(ApiError::new(
            Category::UnsupportedMediaType,
            "a PATCH entry must carry a Binary with contentType application/json-patch+json",
        ));
    }
    let data = resource.get("data").and_then(Value::as_str).unwrap_or("");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .map_err(|_| ApiError::invalid("Binary.data is not base64"))?;
    let doc = super::body::parse_json(&bytes)?;
    Ok(Body::JsonPatch(doc))
}

async fn process_batch(
    state: &AppState,
    ctx: &TenantCtx,
    bundle: &Value,
    outer: &FhirRequest,
) -> Result<FhirResponse, ApiError> {
    let mut entries: Vec<Result<EntryRequest, ApiError>> = read_entries(bundle, &ctx.base_url);
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_by_key(|&i| entries[i].as_ref().map_or(3, EntryRequest::order));
    let mut responses: Vec<Option<Entry>> = (0..entries.len()).map(|_| None).collect();
    // Each entry is audited as an event of its own.
    let mut touched = crate::audit::Touched::default();
    for i in order {
        let mut interaction = None;
        let mut result =
            match std::mem::replace(&mut entries[i], Err(ApiError::fault("entry taken twice"))) {
                Err(e) => Err(e),
                Ok(mut entry) => {
                    interaction = crate::audit::Interaction::of_request(&entry.request);
                    entry.request.prefer_return = outer.prefer_return;
                    let nested = Route::parse(&entry.request.method, &entry.request.path, false)
                        .is_ok_and(|r| r == Route::Transaction);
                    if nested {
                        Err(ApiError::invalid(
                            "a batch entry cannot itself be a batch or transaction",
                        )
                        .at(format!("Bundle.entry[{i}]")))
                    } else {
                        // Each entry runs in its own database transaction.
                        Box::pin(super::handle(state, ctx, entry.request)).await
                    }
                }
            };
        let (status, entry_touched) = match &mut result {
            Ok(response) => (response.status, std::mem::take(&mut response.touched)),
            Err(e) => (e.status(), crate::audit::Touched::default()),
        };
        touched.entries.push(crate::audit::EntryAudit {
            interaction,
            status: status.as_u16(),
            touched: entry_touched,
        });
        responses[i] = Some(match result {
            Ok(response) => response_entry(response, outer.prefer_return.is_some())?,
            Err(e) => error_entry(&e),
        });
    }
    let mut out = Bundle::new("batch-response");
    out.entry = responses.into_iter().flatten().collect();
    Ok(FhirResponse {
        status: StatusCode::OK,
        body: ResponseBody::Text(out.to_text()?),
        location: None,
        version_id: None,
        last_modified: None,
        touched,
    })
}

/// A response Bundle entry for a successful interaction. Resources are
/// included when the interaction was a read or the client asked for them.
pub fn response_entry(response: FhirResponse, resources_wanted: bool) -> Result<Entry, ApiError> {
    let mut status = json!({ "status": status_line(response.status) });
    if let Some(location) = &response.location {
        status["location"] = json!(location);
    }
    if let Some(v) = response.version_id {
        status["etag"] = json!(format!("W/\"{v}\""));
    }
    if let Some(t) = response.last_modified {
        status["lastModified"] = json!(format_instant(t));
    }
    let is_write = response.location.is_some();
    let mut entry = Entry::default();
    match response.body {
        ResponseBody::Empty => {}
        ResponseBody::Json(v)
            if v.get("resourceType").and_then(Value::as_str) == Some("OperationOutcome")
                && is_write =>
        {
            status["outcome"] = v;
        }
        body if !is_write || resources_wanted => {
            entry.resource = Some(match body {
                ResponseBody::Text(text) => Embedded::stored(text),
                ResponseBody::Json(v) => Embedded::tree(&v)?,
                ResponseBody::Data { content_type, text } => {
                    use base64::Engine;
                    Embedded::tree(&json!({
                        "resourceType": "Binary",
                        "contentType": content_type,
                        "data": base64::engine::general_purpose::STANDARD.encode(text),
                    }))?
                }
                ResponseBody::Empty => return Err(ApiError::fault("unreachable empty body")),
            });
        }
        _ => {}
    }
    entry.response = Some(status);
    Ok(entry)
}

pub fn error_entry(e: &ApiError) -> Entry {
    Entry {
        response: Some(json!({
            "status": status_line(e.status()),
            "outcome": operation_outcome(&e.issues),
        })),
        ..Entry::default()
    }
}
