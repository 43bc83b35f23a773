//! Content negotiation (http.html#mime-type): `_format` and Accept for the
//! response, Content-Type for the request, `_pretty`, Prefer, and bounded
//! reading of the body. Only JSON is spoken; XML gets 406 or 415.

use crate::error::{ApiError, Category};
use crate::service::body::parse_json;
use crate::service::{Body, FhirRequest, PreferReturn};
use actix_web::HttpRequest;
use actix_web::HttpResponseBuilder;
use actix_web::http::header;
use actix_web::web;
use futures_util::StreamExt;
use serde_json::Value;

pub const FHIR_JSON: &str = "application/fhir+json; charset=utf-8";

#[derive(Debug, Clone, Copy, Default)]
pub struct Output {
    pretty: bool,
}

impl Output {
    pub fn negotiate(req: &HttpRequest) -> Result<Output, ApiError> {
        let params = crate::service::conditional::parse_query(req.query_string());
        let mut output = Output::default();
        // SQL-on-FHIR `$run` also answers CSV and NDJSON (its `_format`).
        let tabular = req.path().ends_with("$run");
        for (name, value) in &params {
            match name.as_str() {
                "_pretty" => output.pretty = value == "true",
                "_format" if tabular && crate::service::views::is_output_format(value) => {}
                "_format" if !is_json_format(value) => {
                    return Err(not_acceptable(value)).map_err(|e| e.at("_format"));
                }
                _ => {}
            }
        }
        let has_format = params.iter().any(|(n, _)| n == "_format");
        if !has_format {
            if let Some(accept) = req
                .headers()
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
            {
                // Bulk Data files are NDJSON (export.html#file-request).
                let ndjson_file = req.path().contains("/$export-file/")
                    || req.path().contains("/$import-errors/");
                let acceptable = accept.split(',').any(|item| {
                    let media = item.split(';').next().unwrap_or("").trim();
                    media.is_empty()
                        || is_json_format(media)
                        || (ndjson_file && media.ends_with("ndjson"))
                        || media == "*/*"
                        || media == "application/*"
                });
                if !acceptable {
                    return Err(not_acceptable(accept));
                }
            }
        }
        Ok(output)
    }

    pub fn body(&self, builder: &mut HttpResponseBuilder, text: String) -> actix_web::HttpResponse {
        builder.content_type(FHIR_JSON);
        if self.pretty {
            if let Ok(value) = serde_json::from_str::<Value>(&text) {
                return self.body_value(builder, &value);
            }
        }
        builder.body(text)
    }

    pub fn body_value(
        &self,
        builder: &mut HttpResponseBuilder,
        value: &Value,
    ) -> actix_web::HttpResponse {
        builder.content_type(FHIR_JSON);
        let text = if self.pretty {
            serde_json::to_string_pretty(value)
        } else {
            serde_json::to_string(value)
        };
        builder.body(text.unwrap_or_default())
    }
}

/// A `+` sent unencoded in `_format=application/fhir+json` arrives as a
/// space after form decoding; both spellings are accepted.
fn is_json_format(value: &str) -> bool {
    matches!(
        value.trim().replace(' ', "+").as_str(),
        "json" | "application/json" | "application/fhir+json" | "application/json+fhir"
    )
}

fn not_acceptable(what: &str) -> ApiError {
    ApiError::new(
        Category::NotAcceptable,
        format!(
            "this server speaks FHIR JSON only (application/fhir+json); {what:?} cannot be produced"
        ),
    )
}

/// Reads headers, query and body into a [`FhirRequest`].
pub async fn read_request(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
) -> Result<FhirRequest, ApiError> {
    let path = req
        .match_info()
        .get("tail")
        .unwrap_or("")
        .trim_matches('/')
        .to_owned();
    let mut params = crate::service::conditional::parse_query(req.query_string());
    let bytes = read_body(payload, limit).await?;
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    let body = if bytes.iter().all(u8::is_ascii_whitespace) {
        Body::None
    } else {
        match content_type.as_deref() {
            None | Some("application/fhir+json" | "application/json" | "application/json+fhir") => {
                Body::Resource(parse_json(&bytes)?)
            }
            Some("application/json-patch+json") => Body::JsonPatch(parse_json(&bytes)?),
            // Bulk Data $import of an uploaded NDJSON file (docs/analytics.md).
            Some("application/fhir+ndjson" | "application/ndjson" | "application/x-ndjson")
                if path.ends_with("$import") =>
            {
                Body::Ndjson(bytes.freeze())
            }
            Some("application/x-www-form-urlencoded") if path.ends_with("_search") => {
                params.extend(crate::service::conditional::parse_query(
                    &String::from_utf8_lossy(&bytes),
                ));
                Body::None
            }
            Some(other) => {
                return Err(ApiError::new(
                    Category::UnsupportedMediaType,
                    format!(
                        "Content-Type {other} is not supported; send application/fhir+json (XML is not supported)"
                    ),
                ));
            }
        }
    };
    let text = |name: header::HeaderName| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (prefer_return, strict, respond_async) = parse_prefer(
        req.headers()
            .get_all(header::HeaderName::from_static("prefer"))
            .filter_map(|v| v.to_str().ok()),
    );
    Ok(FhirRequest {
        // HEAD is GET without the body (the HTTP layer drops it).
        method: if req.method() == actix_web::http::Method::HEAD {
            actix_web::http::Method::GET
        } else {
            req.method().clone()
        },
        path,
        params,
        body,
        if_match: text(header::IF_MATCH),
        if_none_exist: text(header::HeaderName::from_static("if-none-exist")),
        if_none_match: text(header::IF_NONE_MATCH),
        if_modified_since: text(header::IF_MODIFIED_SINCE),
        prefer_return,
        strict,
        respond_async,
        primary: wants_primary(req),
    })
}

/// `Cache-Control: no-cache` (or `no-store`): read from the primary
/// database, not a replica (docs/events.md, read replicas).
fn wants_primary(req: &HttpRequest) -> bool {
    req.headers()
        .get_all(header::CACHE_CONTROL)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|d| {
            matches!(
                d.trim().to_ascii_lowercase().as_str(),
                "no-cache" | "no-store"
            )
        })
}

/// `Prefer: return=minimal, handling=strict, respond-async` (RFC 7240).
fn parse_prefer<'a>(values: impl Iterator<Item = &'a str>) -> (Option<PreferReturn>, bool, bool) {
    let mut prefer_return = None;
    let mut strict = false;
    let mut respond_async = false;
    for value in values {
        for item in value.split([',', ';']) {
            match item.trim().replace(' ', "").as_str() {
                "return=minimal" => prefer_return = Some(PreferReturn::Minimal),
                "return=representation" => prefer_return = Some(PreferReturn::Representation),
                "return=OperationOutcome" => prefer_return = Some(PreferReturn::OperationOutcome),
                "handling=strict" => strict = true,
                "handling=lenient" => strict = false,
                "respond-async" => respond_async = true,
                _ => {}
            }
        }
    }
    (prefer_return, strict, respond_async)
}

/// Reads the body, refusing (413) once it exceeds `limit` bytes.
pub(super) async fn read_body(
    mut payload: web::Payload,
    limit: usize,
) -> Result<web::BytesMut, ApiError> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk
            .map_err(|e| ApiError::invalid(format!("the request body could not be read: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::new(
                Category::TooLarge,
                format!("the request body exceeds {limit} bytes (BARAZA_MAX_BODY_BYTES)"),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
