//! Finding a value set by canonical (`url|version`): stored ValueSets (the
//! tenant's, then global), the implicit value sets of code systems
//! (`http://snomed.info/sct?fhir_vs`, `?fhir_vs=isa/73211009`,
//! `?fhir_vs=refset/…`, `?fhir_vs=refset`, `http://loinc.org/vs`), and
//! `CodeSystem.valueSet` (all of a system's codes) when no ValueSet of
//! that url is stored.

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
    match implicit(url)? {
        Some(Implicit::ValueSet(vs)) => return Ok(Some(vs)),
        Some(Implicit::AllRefsets { system, version }) => {
            return all_refsets(tx, tenant, url, system, version)
                .await
                .map(Some);
        }
        None => {}
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
    Ok(system.map(|row| all_of(url, &row.get::<_, String>(0), None, None)))
}

/// What an include selects of its system.
enum Select<'a> {
    All,
    /// The concept and its descendants.
    IsA(&'a str),
    /// The members of a reference set.
    Refset(&'a str),
}

/// A value set of the codes of `system` (at `version`) that `select` selects.
fn all_of(url: &str, system: &str, version: Option<&str>, select: Option<Select<'_>>) -> Value {
    let mut include = json!({"system": system});
    if let Some(v) = version {
        include["version"] = json!(v);
    }
    let filter = |op: &str, code: &str| json!([{"property": "concept", "op": op, "value": code}]);
    match select.unwrap_or(Select::All) {
        Select::All => {}
        Select::IsA(code) => include["filter"] = filter("is-a", code),
        // snomedct.html: `concept in <refset>` selects a reference set's members.
        Select::Refset(code) => include["filter"] = filter("in", code),
    }
    value_set(url, vec![include])
}

fn value_set(url: &str, includes: Vec<Value>) -> Value {
    json!({
        "resourceType": "ValueSet",
        "url": url,
        "status": "active",
        "compose": {"include": includes}
    })
}

/// An implicit value set: one computed from the url alone, or every
/// reference set of a SNOMED CT edition (which needs the database).
enum Implicit<'a> {
    ValueSet(Value),
    AllRefsets {
        system: &'a str,
        version: Option<&'a str>,
    },
}

/// The implicit value sets (snomedct.html "Implicit Value Sets",
/// loinc.html): `{system}?fhir_vs`, `?fhir_vs=isa/{code}`,
/// `?fhir_vs=refset/{code}`, `?fhir_vs=refset`, `http://loinc.org/vs`. A
/// SNOMED CT edition's url (`http://snomed.info/sct/{module}/version/{date}`)
/// names that version of `http://snomed.info/sct`.
fn implicit(url: &str) -> Result<Option<Implicit<'_>>, TermError> {
    if url == "http://loinc.org/vs" {
        return Ok(Some(Implicit::ValueSet(all_of(
            url,
            "http://loinc.org",
            None,
            None,
        ))));
    }
    let Some((system, query)) = url.split_once('?') else {
        return Ok(None);
    };
    let Some(rest) = query.strip_prefix("fhir_vs") else {
        return Ok(None);
    };
    let (system, version) = match system.split_once("/version/") {
        // http://snomed.info/sct/900000000000207008/version/20240101: that
        // edition's version of the code system (stored under this URI).
        Some(_) => (crate::formats::rf2::URL, Some(system)),
        None if system.starts_with("http://snomed.info/sct/") => (crate::formats::rf2::URL, None),
        None => (system, None),
    };
    let spec = match rest.strip_prefix('=') {
        None if rest.is_empty() => {
            return Ok(Some(Implicit::ValueSet(all_of(url, system, version, None))));
        }
        None => return Ok(None),
        Some(spec) => spec,
    };
    let select = match spec.split_once('/') {
        None if spec == "refset" => return Ok(Some(Implicit::AllRefsets { system, version })),
        Some(("isa", code)) if !code.is_empty() => Select::IsA(code),
        Some(("refset", code)) if !code.is_empty() => {
            if !code.bytes().all(|b| b.is_ascii_digit()) {
                return Err(TermError::invalid(format!(
                    "the implicit value set {url} names the reference set {code:?}, which is not a SNOMED CT identifier"
                )));
            }
            Select::Refset(code)
        }
        _ => {
            return Err(TermError::invalid(format!(
                "the implicit value set {url} is not supported (fhir_vs, fhir_vs=isa/<code>, \
                 fhir_vs=refset and fhir_vs=refset/<code> are)"
            )));
        }
    };
    Ok(Some(Implicit::ValueSet(all_of(
        url,
        system,
        version,
        Some(select),
    ))))
}

/// `?fhir_vs=refset`: the reference sets of the edition that have
/// members, as a list of their concepts.
async fn all_refsets(
    tx: &Tx<'_>,
    tenant: &str,
    url: &str,
    system: &str,
    version: Option<&str>,
) -> Result<Value, TermError> {
    let Some(cs) = crate::store::find_system(tx, tenant, system, version).await? else {
        // The expansion then says that the code system is not known.
        return Ok(all_of(url, system, version, None));
    };
    // A skip scan over the members' key: one index probe per reference set.
    let rows = tx
        .query(
            "WITH RECURSIVE r (refset_id) AS ( \
               (SELECT refset_id FROM term_refset_members WHERE tenant = $1 AND system_id = $2 \
                ORDER BY refset_id LIMIT 1) \
               UNION ALL \
               SELECT (SELECT m.refset_id FROM term_refset_members m WHERE m.tenant = $1 \
                       AND m.system_id = $2 AND m.refset_id > r.refset_id ORDER BY m.refset_id LIMIT 1) \
               FROM r WHERE r.refset_id IS NOT NULL) \
             SELECT c.code FROM r JOIN term_concepts c ON c.tenant = $1 AND c.system_id = $2 \
             AND c.concept_id = r.refset_id ORDER BY c.code",
            &[&cs.tenant, &cs.id],
        )
        .await?;
    if rows.is_empty() {
        return Ok(value_set(url, Vec::new()));
    }
    let concepts: Vec<Value> = rows
        .iter()
        .map(|r| json!({"code": r.get::<_, String>(0)}))
        .collect();
    let mut include = json!({"system": system, "concept": concepts});
    if !cs.version.is_empty() {
        include["version"] = json!(cs.version);
    }
    Ok(value_set(url, vec![include]))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn include(url: &str) -> Value {
        match implicit(url).unwrap() {
            Some(Implicit::ValueSet(vs)) => vs["compose"]["include"][0].clone(),
            Some(Implicit::AllRefsets { system, version }) => {
                json!({"all refsets of": system, "version": version})
            }
            None => Value::Null,
        }
    }

    #[test]
    fn implicit_value_sets() {
        let sct = "http://snomed.info/sct";
        let edition = "http://snomed.info/sct/900000000000207008/version/20250101";
        for (url, expected) in [
            (format!("{sct}?fhir_vs"), json!({"system": sct})),
            (
                format!("{sct}?fhir_vs=isa/73211009"),
                json!({"system": sct, "filter": [{"property": "concept", "op": "is-a", "value": "73211009"}]}),
            ),
            (
                format!("{sct}?fhir_vs=refset/723264001"),
                json!({"system": sct, "filter": [{"property": "concept", "op": "in", "value": "723264001"}]}),
            ),
            (
                format!("{edition}?fhir_vs=isa/1"),
                json!({"system": sct, "version": edition,
                       "filter": [{"property": "concept", "op": "is-a", "value": "1"}]}),
            ),
            (
                format!("{sct}?fhir_vs=refset"),
                json!({"all refsets of": sct, "version": null}),
            ),
            (
                format!("{edition}?fhir_vs=refset"),
                json!({"all refsets of": sct, "version": edition}),
            ),
            (
                "http://loinc.org/vs".to_owned(),
                json!({"system": "http://loinc.org"}),
            ),
            ("http://hl7.org/fhir/ValueSet/x".to_owned(), Value::Null),
            (format!("{sct}?other=1"), Value::Null),
        ] {
            assert_eq!(include(&url), expected, "{url}");
        }
        for bad in [
            "http://snomed.info/sct?fhir_vs=refset/abc",
            "http://snomed.info/sct?fhir_vs=refset/",
            "http://snomed.info/sct?fhir_vs=ecl/<<1",
            "http://snomed.info/sct?fhir_vs=isa/",
        ] {
            assert!(implicit(bad).is_err(), "{bad}");
        }
        assert_eq!(split_canonical("a|1"), ("a", Some("1")));
        assert_eq!(split_canonical("a"), ("a", None));
    }
}
