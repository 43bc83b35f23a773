//! Reading an `$import` kick-off: its inputs, from a FHIR `Parameters`
//! resource (`inputFormat`, `inputSource`, `storageDetail`, and `input`
//! with the parts `type` and `url`) or the Bulk Data Import draft's JSON
//! manifest (`{"inputFormat", "inputSource", "storageDetail", "input":
//! [{"type", "url"}]}`), and checking each URL against the allow-list.

use crate::error::{ApiError, Category};
use fhir::{IssueCode, ResourceType};
use serde_json::Value;

/// The formats an input may have (NDJSON only).
const FORMATS: [&str; 3] = ["application/fhir+ndjson", "application/ndjson", "ndjson"];

/// The most inputs one job may name.
pub const MAX_INPUTS: usize = 1000;

/// One input to read: a URL, with the resource type every line must have
/// when the kick-off names one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlInput {
    pub res_type: Option<String>,
    pub url: String,
}

/// A kick-off body's inputs, each with the path of its URL in the body (for
/// errors' `expression`).
pub fn url_inputs(body: &Value) -> Result<Vec<(UrlInput, String)>, ApiError> {
    let inputs = if body.get("resourceType").and_then(Value::as_str) == Some("Parameters") {
        from_parameters(body)?
    } else if body.get("resourceType").is_none() && body.is_object() {
        from_manifest(body)?
    } else {
        return Err(ApiError::invalid(
            "the $import kick-off takes a Parameters resource, a JSON manifest or an NDJSON body",
        )
        .at("resourceType"));
    };
    if inputs.is_empty() {
        return Err(ApiError::invalid("the kick-off names no input").at("input"));
    }
    if inputs.len() > MAX_INPUTS {
        return Err(ApiError::invalid(format!(
            "the kick-off names {} inputs; at most {MAX_INPUTS} are allowed",
            inputs.len()
        ))
        .at("input"));
    }
    Ok(inputs)
}

fn from_parameters(body: &Value) -> Result<Vec<(UrlInput, String)>, ApiError> {
    let mut inputs = Vec::new();
    let parameters = body["parameter"].as_array().map_or(&[][..], Vec::as_slice);
    for (i, parameter) in parameters.iter().enumerate() {
        let at = format!("Parameters.parameter[{i}]");
        let name = parameter["name"].as_str().unwrap_or_default();
        match name {
            "inputFormat" => check_format(primitive(parameter), &at)?,
            "inputSource" => {}
            "storageDetail" => {
                let kind = parts(parameter)
                    .find(|(_, part)| part["name"] == "type")
                    .and_then(|(_, part)| primitive(part));
                check_storage(kind, &at)?;
            }
            "input" => {
                let mut res_type = None;
                let mut url = None;
                for (j, part) in parts(parameter) {
                    let part_at = format!("{at}.part[{j}]");
                    match part["name"].as_str().unwrap_or_default() {
                        "type" => res_type = Some((primitive(part), part_at)),
                        "url" => url = Some((primitive(part), part_at)),
                        other => return Err(unknown(other, &part_at)),
                    }
                }
                inputs.push(input(res_type, url, &at)?);
            }
            other => return Err(unknown(other, &at)),
        }
    }
    Ok(inputs)
}

fn from_manifest(body: &Value) -> Result<Vec<(UrlInput, String)>, ApiError> {
    let object = body.as_object().map(|o| o.iter()).into_iter().flatten();
    for (key, value) in object {
        match key.as_str() {
            "inputFormat" => check_format(value.as_str(), key)?,
            "storageDetail" => check_storage(value["type"].as_str(), key)?,
            "inputSource" | "input" => {}
            other => return Err(unknown(other, other)),
        }
    }
    let Some(listed) = body["input"].as_array() else {
        return Err(ApiError::invalid("input must be an array of {type, url}").at("input"));
    };
    listed
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let at = format!("input[{i}]");
            let res_type = item.get("type").map(|t| (t.as_str(), format!("{at}.type")));
            let url = item.get("url").map(|u| (u.as_str(), format!("{at}.url")));
            input(res_type, url, &at)
        })
        .collect()
}

type Field<'a> = Option<(Option<&'a str>, String)>;

fn input(res_type: Field, url: Field, at: &str) -> Result<(UrlInput, String), ApiError> {
    let res_type = match res_type {
        None => None,
        Some((Some(t), at)) => Some(
            ResourceType::parse(t)
                .ok_or_else(|| {
                    ApiError::invalid(format!("{t:?} is not an R4 resource type")).at(at)
                })?
                .as_str()
                .to_owned(),
        ),
        Some((None, at)) => return Err(ApiError::invalid("type must be a string").at(at)),
    };
    let (url, url_at) = match url {
        Some((Some(url), url_at)) => (url.to_owned(), url_at),
        Some((None, url_at)) => return Err(ApiError::invalid("url must be a string").at(url_at)),
        None => {
            return Err(ApiError::invalid("every input needs a url").at(format!("{at}.url")));
        }
    };
    Ok((UrlInput { res_type, url }, url_at))
}

fn parts(parameter: &Value) -> impl Iterator<Item = (usize, &Value)> {
    parameter["part"]
        .as_array()
        .map_or(&[][..], Vec::as_slice)
        .iter()
        .enumerate()
}

/// A parameter's primitive value, whatever its `value[x]` type.
fn primitive(parameter: &Value) -> Option<&str> {
    parameter.as_object().and_then(|object| {
        object
            .iter()
            .find(|(key, _)| key.starts_with("value"))
            .and_then(|(_, value)| value.as_str())
    })
}

fn check_format(format: Option<&str>, at: &str) -> Result<(), ApiError> {
    match format {
        Some(f) if FORMATS.contains(&f) => Ok(()),
        _ => Err(
            ApiError::invalid(format!("inputFormat must be one of {}", FORMATS.join(", ")))
                .at(at.to_owned()),
        ),
    }
}

fn check_storage(kind: Option<&str>, at: &str) -> Result<(), ApiError> {
    match kind {
        None | Some("https" | "http") => Ok(()),
        Some(other) => Err(ApiError::new(
            Category::Invalid,
            format!("storageDetail type {other:?} is not supported: inputs are read over http(s)"),
        )
        .with_code(IssueCode::NotSupported)
        .at(at.to_owned())),
    }
}

fn unknown(name: &str, at: &str) -> ApiError {
    ApiError::invalid(format!(
        "unknown $import parameter {name:?}: use inputFormat, inputSource, storageDetail and input (type, url)"
    ))
    .at(at.to_owned())
}

/// Checks that `url` is an http(s) URL under one of the `allowed`
/// prefixes. A prefix matches only up to a boundary (`/`, `?`, `#` or the
/// end, unless it ends with `/`), so `https://data.example.org` does not
/// allow `https://data.example.org.evil.test/`.
pub fn check_allowed(url: &str, allowed: &[String], at: &str) -> Result<url::Url, ApiError> {
    let parsed = url::Url::parse(url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        .ok_or_else(|| {
            ApiError::invalid(format!("{url:?} is not an absolute http(s) URL")).at(at.to_owned())
        })?;
    let text = parsed.as_str();
    let under = |prefix: &String| {
        // Normalised as the URL is (a bare origin gets its "/").
        let prefix = url::Url::parse(prefix).map_or_else(|_| prefix.clone(), |p| p.to_string());
        match text.strip_prefix(prefix.as_str()) {
            Some(_) if prefix.ends_with('/') => true,
            Some(rest) => rest.is_empty() || rest.starts_with(['/', '?', '#']),
            None => false,
        }
    };
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(ApiError::invalid("an input URL must not carry credentials").at(at.to_owned()));
    }
    if allowed.iter().any(under) {
        Ok(parsed)
    } else if allowed.is_empty() {
        Err(ApiError::new(
            Category::Forbidden,
            "this server reads $import inputs from no URL (BARAZA_IMPORT_ALLOWED_URLS is unset); upload the NDJSON as the body instead",
        )
        .at(at.to_owned()))
    } else {
        Err(ApiError::new(
            Category::Forbidden,
            format!(
                "{url} is not under a URL this server may import from (BARAZA_IMPORT_ALLOWED_URLS)"
            ),
        )
        .at(at.to_owned()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn allowed(url: &str, prefixes: &[&str]) -> bool {
        let prefixes: Vec<String> = prefixes.iter().map(|p| p.to_string()).collect();
        check_allowed(url, &prefixes, "x").is_ok()
    }

    #[test]
    fn urls_are_allowed_only_under_a_prefix_at_a_boundary() {
        let list = ["https://data.example.org", "http://127.0.0.1:8000/files/"];
        assert!(allowed("https://data.example.org/a.ndjson", &list));
        assert!(allowed("https://data.example.org", &list));
        assert!(allowed("http://127.0.0.1:8000/files/p.ndjson", &list));
        assert!(!allowed("https://data.example.org.evil.test/a", &list));
        assert!(!allowed("https://data.example.org@evil.test/a", &list));
        assert!(!allowed("http://127.0.0.1:8000/other/p.ndjson", &list));
        assert!(!allowed("http://127.0.0.1:80001/files/p", &list));
        assert!(!allowed("file:///etc/passwd", &list));
        assert!(!allowed("https://other.example.org/a", &list));
        assert!(!allowed("https://x.example.org/a", &[]));
    }

    #[test]
    fn parameters_and_manifests_name_the_same_inputs() {
        let parameters = json!({"resourceType": "Parameters", "parameter": [
            {"name": "inputFormat", "valueCode": "application/fhir+ndjson"},
            {"name": "inputSource", "valueUri": "https://src.example.org"},
            {"name": "input", "part": [
                {"name": "type", "valueCode": "Patient"},
                {"name": "url", "valueUrl": "https://data.example.org/p.ndjson"}]}]});
        let manifest = json!({"inputFormat": "application/fhir+ndjson",
            "input": [{"type": "Patient", "url": "https://data.example.org/p.ndjson"}]});
        let a = url_inputs(&parameters).unwrap();
        let b = url_inputs(&manifest).unwrap();
        assert_eq!(a[0].0, b[0].0);
        assert_eq!(a[0].1, "Parameters.parameter[2].part[1]");
        assert_eq!(b[0].1, "input[0].url");
    }

    #[test]
    fn bad_kick_offs_name_the_element_at_fault() {
        let check = |body: Value, expression: &str| {
            let e = url_inputs(&body).unwrap_err();
            assert_eq!(
                e.issues[0].expression,
                vec![expression.to_owned()],
                "{body}"
            );
        };
        check(
            json!({"inputFormat": "text/csv", "input": []}),
            "inputFormat",
        );
        check(
            json!({"input": [{"type": "Nope", "url": "https://x"}]}),
            "input[0].type",
        );
        check(json!({"input": [{"type": "Patient"}]}), "input[0].url");
        check(json!({"input": []}), "input");
        check(
            json!({"resourceType": "Parameters", "parameter": [{"name": "since", "valueInstant": "2020"}]}),
            "Parameters.parameter[0]",
        );
        check(json!({"resourceType": "Patient"}), "resourceType");
    }
}
