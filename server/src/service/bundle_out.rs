//! Building response Bundles (searchset, history, batch/transaction
//! responses) as JSON text, embedding stored resources without re-parsing
//! them into trees, or even scanning them: the text of an entry's
//! resource is copied into the Bundle as it is.

use crate::error::ApiError;
use serde::Serialize;
use serde::de::IgnoredAny;
use serde_json::Value;

#[derive(Debug, Serialize)]
pub struct Link {
    pub relation: &'static str,
    pub url: String,
}

/// JSON text to embed verbatim, valid by construction: see each
/// constructor for why.
#[derive(Debug, Clone)]
pub struct Embedded(String);

impl Embedded {
    /// A resource as stored (`resource_history.content`), or a body that
    /// Baraza serialized itself (a sub-response of a batch). The stored
    /// text is valid JSON because the column's type is `json`: PostgreSQL
    /// parsed it when it was written, so it is not parsed again here (that
    /// check cost a twentieth of the server's time on the search mix,
    /// docs/search.md).
    pub fn stored(text: String) -> Self {
        Embedded(text)
    }

    /// A tree, serialized.
    pub fn tree(value: &Value) -> Result<Self, ApiError> {
        serde_json::to_string(value)
            .map(Embedded)
            .map_err(ApiError::fault)
    }

    /// Text from a column whose type does not guarantee JSON (the audit
    /// trail's `event`, which is `text`): checked, so that a damaged row
    /// is a server error rather than a malformed Bundle.
    pub fn checked(text: String) -> Result<Self, ApiError> {
        serde_json::from_str::<IgnoredAny>(&text).map_err(ApiError::fault)?;
        Ok(Embedded(text))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Default)]
pub struct Entry {
    pub full_url: Option<String>,
    pub resource: Option<Embedded>,
    pub search: Option<Value>,
    pub request: Option<Value>,
    pub response: Option<Value>,
}

/// `Bundle.entry.search` of a match.
pub fn search_match() -> Option<Value> {
    Some(serde_json::json!({ "mode": "match" }))
}

/// The elements of a Bundle before its entries, in the order they are
/// written.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Head<'a> {
    resource_type: &'static str,
    id: &'a str,
    meta: &'a Value,
    #[serde(rename = "type")]
    bundle_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    total: Option<u64>,
    #[serde(skip_serializing_if = "<[Link]>::is_empty")]
    link: &'a [Link],
}

#[derive(Debug)]
pub struct Bundle {
    id: String,
    meta: Value,
    bundle_type: &'static str,
    pub total: Option<u64>,
    pub link: Vec<Link>,
    pub entry: Vec<Entry>,
}

impl Bundle {
    pub fn new(bundle_type: &'static str) -> Self {
        Bundle {
            id: uuid::Uuid::new_v4().to_string(),
            meta: serde_json::json!({ "lastUpdated": crate::store::format_instant(crate::store::now()) }),
            bundle_type,
            total: None,
            link: Vec::new(),
            entry: Vec::new(),
        }
    }

    /// The Bundle as JSON text: the head and each entry's small elements
    /// through serde, each resource copied in. The text is sized once, so
    /// that a page of resources is not copied again as the text grows.
    pub fn to_text(&self) -> Result<String, ApiError> {
        let head = Head {
            resource_type: "Bundle",
            id: &self.id,
            meta: &self.meta,
            bundle_type: self.bundle_type,
            total: self.total,
            link: &self.link,
        };
        let resources: usize = self
            .entry
            .iter()
            .filter_map(|e| e.resource.as_ref())
            .map(|r| r.0.len())
            .sum();
        let mut out: Vec<u8> = Vec::with_capacity(1024 + resources + 160 * self.entry.len());
        serde_json::to_writer(&mut out, &head).map_err(ApiError::fault)?;
        if !self.entry.is_empty() {
            // Reopen the head's object for the entries.
            out.pop();
            out.extend_from_slice(b",\"entry\":[");
            for (n, entry) in self.entry.iter().enumerate() {
                if n > 0 {
                    out.push(b',');
                }
                write_entry(&mut out, entry)?;
            }
            out.extend_from_slice(b"]}");
        }
        String::from_utf8(out).map_err(ApiError::fault)
    }
}

/// One entry, its elements in the order of the R4 definition.
fn write_entry(out: &mut Vec<u8>, entry: &Entry) -> Result<(), ApiError> {
    out.push(b'{');
    let mut first = true;
    let mut key = |out: &mut Vec<u8>, name: &str| {
        if !first {
            out.push(b',');
        }
        first = false;
        out.push(b'"');
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\":");
    };
    if let Some(url) = &entry.full_url {
        key(out, "fullUrl");
        serde_json::to_writer(&mut *out, url).map_err(ApiError::fault)?;
    }
    if let Some(resource) = &entry.resource {
        key(out, "resource");
        out.extend_from_slice(resource.0.as_bytes());
    }
    for (name, value) in [
        ("search", &entry.search),
        ("request", &entry.request),
        ("response", &entry.response),
    ] {
        if let Some(value) = value {
            key(out, name);
            serde_json::to_writer(&mut *out, value).map_err(ApiError::fault)?;
        }
    }
    out.push(b'}');
    Ok(())
}

/// `201 Created` and friends, as Bundle.entry.response.status wants them.
pub fn status_line(status: actix_web::http::StatusCode) -> String {
    match status.canonical_reason() {
        Some(reason) => format!("{} {reason}", status.as_u16()),
        None => status.as_u16().to_string(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The text is the JSON serde would have written for the same Bundle
    /// with each resource as a tree: same elements, same order.
    #[test]
    fn bundle_text_is_the_bundle() {
        let mut bundle = Bundle::new("searchset");
        bundle.total = Some(2);
        bundle.link.push(Link {
            relation: "self",
            url: "http://x/fhir/Patient?name=\"a\"".into(),
        });
        bundle.entry.push(Entry {
            full_url: Some("http://x/fhir/Patient/1".into()),
            resource: Some(Embedded::stored(
                r#"{"resourceType":"Patient","id":"1","name":[{"family":"Ng\u00e9"}]}"#.into(),
            )),
            search: search_match(),
            ..Entry::default()
        });
        bundle.entry.push(Entry {
            response: Some(json!({ "status": "201 Created" })),
            request: Some(json!({ "method": "POST", "url": "Patient" })),
            ..Entry::default()
        });
        let text = bundle.to_text().unwrap();
        let value: Value = serde_json::from_str(&text).unwrap();
        let expected = json!({
            "resourceType": "Bundle",
            "id": bundle.id,
            "meta": bundle.meta,
            "type": "searchset",
            "total": 2,
            "link": [{ "relation": "self", "url": "http://x/fhir/Patient?name=\"a\"" }],
            "entry": [
                {
                    "fullUrl": "http://x/fhir/Patient/1",
                    "resource": { "resourceType": "Patient", "id": "1", "name": [{ "family": "Ngé" }] },
                    "search": { "mode": "match" }
                },
                {
                    "request": { "method": "POST", "url": "Patient" },
                    "response": { "status": "201 Created" }
                }
            ]
        });
        assert_eq!(value, expected);
        let keys: Vec<&str> = value["entry"][1]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["request", "response"]);
        assert!(text.starts_with(r#"{"resourceType":"Bundle","id":"#));
        assert!(text.contains(
            r#"{"fullUrl":"http://x/fhir/Patient/1","resource":{"resourceType":"Patient""#
        ));
    }

    #[test]
    fn a_bundle_without_entries_has_no_entry_element() {
        let text = Bundle::new("history").to_text().unwrap();
        let value: Value = serde_json::from_str(&text).unwrap();
        assert!(value.get("entry").is_none());
        assert_eq!(value["type"], "history");
    }

    #[test]
    fn checked_text_must_be_json() {
        assert!(Embedded::checked("{\"a\":1}".into()).is_ok());
        assert!(Embedded::checked("{\"a\":".into()).is_err());
        assert_eq!(
            Embedded::tree(&json!({"b": [1]})).unwrap().as_str(),
            r#"{"b":[1]}"#
        );
    }
}
