//! Building response Bundles (searchset, history, batch/transaction
//! responses) as JSON text, embedding stored resources without re-parsing
//! them into trees.

use crate::error::ApiError;
use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;

#[derive(Debug, Serialize)]
pub struct Link {
    pub relation: &'static str,
    pub url: String,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub full_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<Box<RawValue>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub search: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<Value>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Bundle {
    resource_type: &'static str,
    id: String,
    meta: Value,
    #[serde(rename = "type")]
    bundle_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub link: Vec<Link>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub entry: Vec<Entry>,
}

impl Bundle {
    pub fn new(bundle_type: &'static str) -> Self {
        Bundle {
            resource_type: "Bundle",
            id: uuid::Uuid::new_v4().to_string(),
            meta: serde_json::json!({ "lastUpdated": crate::store::format_instant(crate::store::now()) }),
            bundle_type,
            total: None,
            link: Vec::new(),
            entry: Vec::new(),
        }
    }

    pub fn to_text(&self) -> Result<String, ApiError> {
        serde_json::to_string(self).map_err(ApiError::fault)
    }
}

/// Wraps stored JSON text for embedding.
pub fn raw(text: String) -> Result<Box<RawValue>, ApiError> {
    RawValue::from_string(text).map_err(ApiError::fault)
}

/// Wraps a JSON tree for embedding.
pub fn raw_value(value: &Value) -> Result<Box<RawValue>, ApiError> {
    serde_json::value::to_raw_value(value).map_err(ApiError::fault)
}

/// `201 Created` and friends, as Bundle.entry.response.status wants them.
pub fn status_line(status: actix_web::http::StatusCode) -> String {
    match status.canonical_reason() {
        Some(reason) => format!("{} {reason}", status.as_u16()),
        None => status.as_u16().to_string(),
    }
}
