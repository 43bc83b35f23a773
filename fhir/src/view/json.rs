//! Shape checks on the ViewDefinition's JSON: objects, arrays, strings
//! and the allowed element names, each failure naming its path.

use super::ViewError;
use serde_json::{Map, Value as Json};

pub(super) fn object<'j>(v: &'j Json, at: &str) -> Result<&'j Map<String, Json>, ViewError> {
    v.as_object()
        .ok_or_else(|| ViewError::new(at, "must be an object"))
}

/// An optional array element (absent is empty).
pub(super) fn array<'j>(v: Option<&'j Json>, at: &str) -> Result<&'j [Json], ViewError> {
    match v {
        None => Ok(&[]),
        Some(Json::Array(items)) => Ok(items),
        Some(_) => Err(ViewError::new(at, "must be an array")),
    }
}

pub(super) fn check_keys(
    map: &Map<String, Json>,
    allowed: &[&str],
    at: &str,
) -> Result<(), ViewError> {
    match map.keys().find(|k| !allowed.contains(&k.as_str())) {
        None => Ok(()),
        Some(k) => Err(ViewError::new(
            join(at, k),
            "is not a ViewDefinition element",
        )),
    }
}

pub(super) fn required_string<'j>(
    map: &'j Map<String, Json>,
    key: &str,
    at: &str,
) -> Result<&'j str, ViewError> {
    optional_string(map, key, at)?.ok_or_else(|| ViewError::new(join(at, key), "is required"))
}

pub(super) fn optional_string<'j>(
    map: &'j Map<String, Json>,
    key: &str,
    at: &str,
) -> Result<Option<&'j str>, ViewError> {
    match map.get(key) {
        None => Ok(None),
        Some(Json::String(s)) => Ok(Some(s)),
        Some(_) => Err(ViewError::new(join(at, key), "must be a string")),
    }
}

pub(super) fn join(at: &str, key: &str) -> String {
    if at.is_empty() {
        key.to_owned()
    } else {
        format!("{at}.{key}")
    }
}
