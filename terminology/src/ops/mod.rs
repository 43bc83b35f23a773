//! The operations of terminology-service.html, each a function from
//! [`Params`] (and, at instance level, the resource the URL names) to the
//! resource it answers with. The server reads the input, opens the
//! transaction and renders the result or the [`TermError`].

pub mod capabilities;
pub mod expand;
pub mod lookup;
pub mod translate;
pub mod validate;

use crate::params::{Coding, Params};
use crate::valueset::split_canonical;
use crate::{TermError, Tx};
use serde_json::Value;

/// Limits of `$expand`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The most codes of an expansion without `count`.
    pub max_expansion: usize,
    /// The most codes an expansion paged with `count` may have in all.
    pub max_paged_expansion: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_expansion: 10_000,
            max_paged_expansion: 200_000,
        }
    }
}

/// The value set an operation works on: the instance, `valueSet` (a
/// resource in the body) or `url` (+ `valueSetVersion`). Returns the
/// resource and its canonical (when it has one).
pub async fn target_value_set(
    tx: &Tx<'_>,
    tenant: &str,
    params: &Params,
    instance: Option<&Value>,
) -> Result<(Value, Option<String>), TermError> {
    let canonical_of = |vs: &Value| {
        let url = vs.get("url").and_then(Value::as_str)?;
        Some(match vs.get("version").and_then(Value::as_str) {
            Some(v) => format!("{url}|{v}"),
            None => url.to_owned(),
        })
    };
    if let Some(vs) = instance {
        return Ok((vs.clone(), canonical_of(vs)));
    }
    if let Some((vs, at)) = params.json("valueSet")? {
        if vs.get("resourceType").and_then(Value::as_str) != Some("ValueSet") {
            return Err(TermError::invalid("valueSet must be a ValueSet resource").at(at));
        }
        return Ok((vs.clone(), None));
    }
    let Some((url, at)) = params.text("url")? else {
        return Err(
            TermError::invalid("name the value set with url (or valueSet in a POST)").at("url"),
        );
    };
    let canonical = match params.str("valueSetVersion")? {
        Some(v) if !url.contains('|') => format!("{url}|{v}"),
        _ => url.to_owned(),
    };
    match crate::valueset::resolve(tx, tenant, &canonical)
        .await
        .map_err(|e| e.at(at))?
    {
        Some(vs) => Ok((vs, Some(canonical))),
        None => {
            let (bare, version) = split_canonical(&canonical);
            let message = match version {
                Some(v) if crate::valueset::resolve(tx, tenant, bare).await?.is_some() => {
                    format!("the value set {bare} has no version {v:?}")
                }
                _ => format!("the value set {bare} is not known"),
            };
            Err(TermError::not_found(message).at(at))
        }
    }
}

/// The codings an operation checks: `coding`, `codeableConcept`, or
/// `code` with `system` (named `system_param`), `version` and `display`.
/// Each with the expression that names it.
pub fn input_codings(
    params: &Params,
    system_param: &str,
    version_param: &str,
) -> Result<Vec<(Coding, String)>, TermError> {
    if let Some((coding, at)) = params.json("coding")? {
        return Ok(vec![(Coding::from_json(coding), at.to_owned())]);
    }
    if let Some((cc, at)) = params.json("codeableConcept")? {
        let codings: Vec<(Coding, String)> = cc
            .get("coding")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
            .map(|(i, c)| (Coding::from_json(c), format!("{at}.coding[{i}]")))
            .collect();
        if codings.is_empty() {
            return Err(TermError::invalid("the codeableConcept has no coding").at(at));
        }
        return Ok(codings);
    }
    let Some((code, at)) = params.text("code")? else {
        return Err(
            TermError::invalid("give code (with system), coding or codeableConcept").at("code"),
        );
    };
    Ok(vec![(
        Coding {
            system: params.str(system_param)?.map(str::to_owned),
            version: params.str(version_param)?.map(str::to_owned),
            code: Some(code.to_owned()),
            display: params.str("display")?.map(str::to_owned),
        },
        at.to_owned(),
    )])
}

/// Whether `given` is an acceptable display for a concept shown as
/// `display` or designated by `others` (case and surrounding spaces aside).
pub fn display_matches(given: &str, display: Option<&str>, others: &[String]) -> bool {
    let norm = |s: &str| s.trim().to_lowercase();
    let given = norm(given);
    display.is_some_and(|d| norm(d) == given) || others.iter().any(|o| norm(o) == given)
}

/// The designation values of a concept (for display checks).
pub async fn designation_values(
    tx: &Tx<'_>,
    system: &crate::store::CodeSystemRow,
    concept_id: i32,
) -> Result<Vec<String>, TermError> {
    let rows = tx
        .query(
            "SELECT value FROM term_designations WHERE tenant = $1 AND system_id = $2 AND concept_id = $3",
            &[&system.tenant, &system.id, &concept_id],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

#[cfg(test)]
mod tests {
    use super::display_matches;

    #[test]
    fn displays_match_ignoring_case_and_spaces() {
        for (given, display, others, expected) in [
            ("Male", Some("Male"), vec![], true),
            (" male ", Some("Male"), vec![], true),
            ("Man", Some("Male"), vec![], false),
            ("Homme", Some("Male"), vec!["homme".to_owned()], true),
            ("x", None, vec![], false),
        ] {
            assert_eq!(
                display_matches(given, display, &others),
                expected,
                "{given}"
            );
        }
    }
}
