//! Finding a value set by canonical (`url|version`): stored ValueSets (the
//! tenant's, then global), the implicit value sets of code systems
//! (`http://snomed.info/sct?fhir_vs`, `?fhir_vs=isa/73211009`,
//! `http://loinc.org/vs`), and `CodeSystem.valueSet` (all of a system's
//! codes) when no ValueSet of that url is stored.

use crate::{TermError, Tx};
use serde_json::{Value, json};

/// Splits `url|version`.
pub fn split_canonical(canonical: &str) -> (&str, Option<&str>) {
    match canonical.split_once('|') {
        Some((url, version)) if !version.is_empty() => (url, Some(version)),
        Some((url, _)) => (url, None),
        None => (canonical, None),
    }
}

/// The ValueSet resource a canonical names, if any.
pub async fn resolve(
    tx: &Tx<'_>,
    tenant: &str,
    canonical: &str,
) -> Result<Option<Value>, TermError> {
    let (url, version) = split_canonical(canonical);
    if let Some(implicit) = implicit(url)? {
        return Ok(Some(implicit));
    }
    let row = tx
        .query_opt(
            "SELECT resource::text FROM term_value_sets WHERE tenant IN ($1, '') AND url = $2 \
             AND ($3::text IS NULL OR version = $3) ORDER BY (tenant = $1) DESC, version DESC LIMIT 1",
            &[&tenant, &url, &version],
        )
        .await?;
    if let Some(row) = row {
        let text: String = row.get(0);
        return serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| TermError::fault(format!("stored ValueSet {url}: {e}")));
    }
    if version.is_some() {
        return Ok(None);
    }
    let system = tx
        .query_opt(
            "SELECT url FROM term_code_systems WHERE tenant IN ($1, '') AND value_set = $2 \
             ORDER BY (tenant = $1) DESC, is_current DESC LIMIT 1",
            &[&tenant, &url],
        )
        .await?;
    Ok(system.map(|row| all_of(url, &row.get::<_, String>(0), None)))
}

/// A value set of all the codes of `system` (or those under `isa`).
fn all_of(url: &str, system: &str, isa: Option<&str>) -> Value {
    let mut include = json!({"system": system});
    if let Some(code) = isa {
        include["filter"] = json!([{"property": "concept", "op": "is-a", "value": code}]);
    }
    json!({
        "resourceType": "ValueSet",
        "url": url,
        "status": "active",
        "compose": {"include": [include]}
    })
}

/// The implicit value sets (snomed.org/fhirterminology, loinc.org/fhir).
fn implicit(url: &str) -> Result<Option<Value>, TermError> {
    if url == "http://loinc.org/vs" {
        return Ok(Some(all_of(url, "http://loinc.org", None)));
    }
    let Some((system, query)) = url.split_once('?') else {
        return Ok(None);
    };
    let Some(rest) = query.strip_prefix("fhir_vs") else {
        return Ok(None);
    };
    let system = match system.split_once("/version/") {
        // http://snomed.info/sct/900000000000207008/version/20240101: the
        // edition's code system.
        Some(_) => "http://snomed.info/sct",
        None => system,
    };
    match rest.strip_prefix('=') {
        None if rest.is_empty() => Ok(Some(all_of(url, system, None))),
        Some(spec) => match spec.split_once('/') {
            Some(("isa", code)) if !code.is_empty() => Ok(Some(all_of(url, system, Some(code)))),
            _ => Err(TermError::invalid(format!(
                "the implicit value set {url} is not supported (fhir_vs and fhir_vs=isa/<code> are)"
            ))),
        },
        None => Ok(None),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn implicit_value_sets() {
        let all = implicit("http://snomed.info/sct?fhir_vs").unwrap().unwrap();
        assert_eq!(
            all["compose"]["include"][0]["system"],
            "http://snomed.info/sct"
        );
        let isa = implicit("http://snomed.info/sct?fhir_vs=isa/73211009")
            .unwrap()
            .unwrap();
        assert_eq!(
            isa["compose"]["include"][0]["filter"][0]["value"],
            "73211009"
        );
        assert!(implicit("http://snomed.info/sct?fhir_vs=refset/1").is_err());
        assert!(implicit("http://loinc.org/vs").unwrap().is_some());
        assert!(
            implicit("http://hl7.org/fhir/ValueSet/x")
                .unwrap()
                .is_none()
        );
        assert_eq!(split_canonical("a|1"), ("a", Some("1")));
        assert_eq!(split_canonical("a"), ("a", None));
    }
}
