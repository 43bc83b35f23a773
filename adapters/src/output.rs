//! What an adapter produces: a transaction Bundle of `PUT`s with
//! deterministic ids, the per-record errors, and the split into smaller
//! Bundles that keep each record's resources together.

use fhir::{Issue, IssueCode, Severity};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt;

/// One DHIS2 record (or one part of it) that did not map, or mapped with
/// something left out. The server turns it into an OperationOutcome issue
/// whose `expression` is `path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    /// The DHIS2 uid of the record, when it has one.
    pub record: Option<String>,
    /// Where in the payload, e.g. `trackedEntities[3].enrollments[0].events[2].dataValues[1]`.
    pub path: String,
    pub message: String,
    /// `Error` when the record (or element) was left out; `Warning` when it
    /// was skipped on purpose by the config (e.g. `unknownDataElements: skip`).
    pub severity: Severity,
    pub code: IssueCode,
}

impl RecordError {
    pub fn error(record: Option<&str>, path: &str, message: impl Into<String>) -> Self {
        RecordError {
            record: record.map(str::to_owned),
            path: path.to_owned(),
            message: message.into(),
            severity: Severity::Error,
            code: IssueCode::Invalid,
        }
    }

    pub fn with_code(mut self, code: IssueCode) -> Self {
        self.code = code;
        self
    }

    pub fn warning(mut self) -> Self {
        self.severity = Severity::Warning;
        self
    }

    /// The OperationOutcome issue: diagnostics name the record, the
    /// expression is the payload path.
    pub fn to_issue(&self) -> Issue {
        let diagnostics = match &self.record {
            Some(uid) => format!("DHIS2 record {uid}: {}", self.message),
            None => self.message.clone(),
        };
        let issue = match self.severity {
            Severity::Warning => Issue::warning(self.code, diagnostics),
            _ => Issue::error(self.code, diagnostics),
        };
        issue.at(self.path.clone())
    }

    pub fn is_error(&self) -> bool {
        matches!(self.severity, Severity::Error | Severity::Fatal)
    }
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.record {
            Some(uid) => write!(f, "{} ({uid}): {}", self.path, self.message),
            None => write!(f, "{}: {}", self.path, self.message),
        }
    }
}

/// The result of mapping one payload.
#[derive(Debug, Clone)]
pub struct Mapped {
    /// A FHIR R4 transaction Bundle (`type: transaction`, every entry a `PUT`).
    pub bundle: Value,
    pub errors: Vec<RecordError>,
    /// How many consecutive entries belong to each record, in order.
    groups: Vec<usize>,
}

impl Mapped {
    /// The Bundle's entries.
    pub fn entries(&self) -> &[Value] {
        self.bundle
            .get("entry")
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice)
    }

    /// The resources of the Bundle of one type.
    pub fn resources<'a>(
        &'a self,
        resource_type: &str,
    ) -> impl Iterator<Item = &'a Value> + use<'a> {
        let wanted = resource_type.to_owned();
        self.entries()
            .iter()
            .filter_map(|entry| entry.get("resource"))
            .filter(move |r| r.get("resourceType").and_then(Value::as_str) == Some(wanted.as_str()))
    }

    /// The same entries as transaction Bundles of at most `max_entries`
    /// each. A record's resources (an org unit's pair, a tracked entity
    /// with its enrollments, events and observations) stay in one Bundle,
    /// so a record larger than `max_entries` gets a Bundle of its own.
    pub fn chunks(&self, max_entries: usize) -> Vec<Value> {
        let entries = self.entries();
        let mut bundles = Vec::new();
        let mut current: Vec<Value> = Vec::new();
        let mut offset = 0;
        for &size in &self.groups {
            if !current.is_empty() && current.len() + size > max_entries.max(1) {
                bundles.push(transaction(std::mem::take(&mut current)));
            }
            current.extend(entries[offset..offset + size].iter().cloned());
            offset += size;
        }
        if !current.is_empty() {
            bundles.push(transaction(current));
        }
        bundles
    }
}

fn transaction(entries: Vec<Value>) -> Value {
    json!({"resourceType": "Bundle", "type": "transaction", "entry": entries})
}

/// Collects entries record by record.
#[derive(Debug, Default)]
pub struct BundleBuilder {
    entries: Vec<Value>,
    groups: Vec<usize>,
    open: usize,
    /// `Type/id` → the payload path that produced it.
    seen: HashMap<String, String>,
    pub errors: Vec<RecordError>,
}

impl BundleBuilder {
    /// Adds `resource` (which has `resourceType` and `id`) as a `PUT` to
    /// the current record. A second resource with the same `Type/id` (the
    /// same DHIS2 uid twice in one payload) is refused with an error at
    /// `at`, since two writes of one resource fail a whole transaction;
    /// returns whether it was added.
    pub fn put(&mut self, resource: Value, record: Option<&str>, at: &str) -> bool {
        let resource_type = resource
            .get("resourceType")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let id = resource
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let url = format!("{resource_type}/{id}");
        if let Some(first) = self.seen.get(&url) {
            let message = format!(
                "duplicate id: {url} was already mapped from {first}; this copy is left out"
            );
            self.errors
                .push(RecordError::error(record, at, message).with_code(IssueCode::Duplicate));
            return false;
        }
        self.seen.insert(url.clone(), at.to_owned());
        self.entries.push(json!({
            "fullUrl": full_url(&url),
            "resource": resource,
            "request": {"method": "PUT", "url": url},
        }));
        self.open += 1;
        true
    }

    /// Closes the current record: the entries added since the last call
    /// stay together when chunked.
    pub fn end_record(&mut self) {
        if self.open > 0 {
            self.groups.push(self.open);
            self.open = 0;
        }
    }

    pub fn error(&mut self, error: RecordError) {
        self.errors.push(error);
    }

    pub fn finish(mut self) -> Mapped {
        self.end_record();
        Mapped {
            bundle: transaction(self.entries),
            errors: self.errors,
            groups: self.groups,
        }
    }
}

/// A `urn:uuid:` fullUrl derived from `Type/id`: the same resource always
/// gets the same one (a name-based UUID over SHA-256, version bits 8).
pub fn full_url(type_and_id: &str) -> String {
    let digest = Sha256::digest(type_and_id.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    bytes[6] = (bytes[6] & 0x0f) | 0x80;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// A FHIR id for a record known by several DHIS2 keys: `prefix` followed
/// by 32 hex digits of SHA-256 over the keys.
pub fn composite_id(prefix: &str, keys: &[&str]) -> String {
    let digest = Sha256::digest(keys.join("|").as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}{hex}")
}
