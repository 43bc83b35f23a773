//! `$validate-code` on ValueSet (valueset-operation-validate-code) and
//! CodeSystem (codesystem-operation-validate-code): `result`, `message`
//! and the right `display`. A wrong display makes the result false and says
//! which display is right; an inactive code is valid with a message.

use super::{designation_values, display_matches, input_codings, target_value_set};
use crate::cache::{Membership, membership, stamp};
use crate::expand::{Request, expand};
use crate::params::{Coding, Output, Params};
use crate::store::{find_concept, find_system, require_system};
use crate::{TermError, Tx};
use serde_json::{Value, json};

const VALUE_SET_PARAMS: &[&str] = &[
    "url",
    "context",
    "valueSet",
    "valueSetVersion",
    "code",
    "system",
    "systemVersion",
    "display",
    "coding",
    "codeableConcept",
    "date",
    "abstract",
    "displayLanguage",
];

const CODE_SYSTEM_PARAMS: &[&str] = &[
    "url",
    "codeSystem",
    "code",
    "version",
    "display",
    "coding",
    "codeableConcept",
    "date",
    "abstract",
    "displayLanguage",
];

/// One coding's verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub result: bool,
    pub message: Option<String>,
    pub display: Option<String>,
}

impl Verdict {
    fn to_parameters(&self) -> Value {
        let mut out = Output::default();
        out.add("result", "valueBoolean", json!(self.result));
        if let Some(m) = &self.message {
            out.add("message", "valueString", json!(m));
        }
        if let Some(d) = &self.display {
            out.add("display", "valueString", json!(d));
        }
        out.into_parameters()
    }
}

pub async fn value_set_validate_code(
    tx: &Tx<'_>,
    tenant: &str,
    params: &Params,
    instance: Option<&Value>,
) -> Result<Value, TermError> {
    params.only(VALUE_SET_PARAMS)?;
    let codings = input_codings(params, "system", "systemVersion")?;
    // The usual case, a value set named by url whose membership is cached,
    // needs neither the ValueSet resource nor an expansion.
    let mut looked_up = None;
    if let (None, None, Some(url)) = (instance, params.get("valueSet"), params.str("url")?) {
        let canonical = match params.str("valueSetVersion")? {
            Some(v) if !url.contains('|') => format!("{url}|{v}"),
            _ => url.to_owned(),
        };
        let members = membership(tx, &stamp(tx, tenant).await?, &canonical).await?;
        if let Membership::Known(map) = members.as_ref() {
            let mut verdicts = Vec::new();
            for (coding, _) in &codings {
                let found = match coding.code.as_deref() {
                    Some(code) => known(map, coding, code),
                    None => Found {
                        hit: None,
                        complete: true,
                    },
                };
                verdicts.push(verdict(tx, tenant, &canonical, coding, found).await?);
            }
            return Ok(combine(verdicts).to_parameters());
        }
        looked_up = Some(members);
    }
    let (vs, canonical) = target_value_set(tx, tenant, params, instance).await?;
    let mut verdicts = Vec::new();
    for (coding, _) in &codings {
        let verdict = in_value_set(
            tx,
            tenant,
            &vs,
            canonical.as_deref(),
            looked_up.as_deref(),
            coding,
        );
        verdicts.push(verdict.await?);
    }
    Ok(combine(verdicts).to_parameters())
}

/// A CodeableConcept is valid when one of its codings is.
fn combine(verdicts: Vec<Verdict>) -> Verdict {
    if let Some(ok) = verdicts.iter().find(|v| v.result) {
        return ok.clone();
    }
    let message = verdicts
        .iter()
        .filter_map(|v| v.message.clone())
        .collect::<Vec<_>>()
        .join("; ");
    Verdict {
        result: false,
        message: Some(message).filter(|m| !m.is_empty()),
        display: verdicts.into_iter().find_map(|v| v.display),
    }
}

/// Whether `coding` is in the value set `vs` (named `canonical`, whose
/// cached membership the caller may have looked up already).
pub async fn in_value_set(
    tx: &Tx<'_>,
    tenant: &str,
    vs: &Value,
    canonical: Option<&str>,
    looked_up: Option<&Membership>,
    coding: &Coding,
) -> Result<Verdict, TermError> {
    let Some(code) = coding.code.as_deref() else {
        return Ok(Verdict {
            result: false,
            message: Some("the coding has no code".into()),
            display: None,
        });
    };
    let name = canonical.unwrap_or("the value set");
    let cached = match (looked_up, canonical) {
        (Some(_), _) | (None, None) => None,
        (None, Some(c)) => Some(membership(tx, &stamp(tx, tenant).await?, c).await?),
    };
    let found = match looked_up.or(cached.as_deref()) {
        Some(Membership::Known(map)) => known(map, coding, code),
        _ => {
            let request = Request {
                only: Some((coding.system.clone(), code.to_owned())),
                limit: 1_000,
                ..Request::default()
            };
            let mut stack: Vec<String> = canonical.map(str::to_owned).into_iter().collect();
            let e = expand(tx, tenant, vs, &request, &mut stack).await?;
            Found {
                hit: e
                    .items
                    .into_iter()
                    .next()
                    .map(|i| (i.system, (i.display, i.active))),
                complete: e.complete,
            }
        }
    };
    verdict(tx, tenant, name, coding, found).await
}

/// The answer for `coding` once its membership is known.
async fn verdict(
    tx: &Tx<'_>,
    tenant: &str,
    name: &str,
    coding: &Coding,
    found: Found,
) -> Result<Verdict, TermError> {
    let Some(code) = coding.code.as_deref() else {
        return Ok(Verdict {
            result: false,
            message: Some("the coding has no code".into()),
            display: None,
        });
    };
    let shown = |s: &str| match &coding.system {
        Some(system) => format!("{system}#{s}"),
        None => s.to_owned(),
    };
    let Some((system, (display, active))) = found.hit else {
        let mut message = format!("the code {} is not in {name}", shown(code));
        if let Some(system) = &coding.system {
            if let Some(cs) = find_system(tx, tenant, system, coding.version.as_deref()).await? {
                if cs.complete() && find_concept(tx, &cs, code).await?.is_none() {
                    message =
                        format!("unknown code {code:?} in the code system {system}; {message}");
                }
            } else {
                message.push_str(&format!(
                    " (the code system {system} is not known to this server)"
                ));
            }
        }
        if !found.complete {
            message.push_str(" (the value set refers to content this server does not have, so this may be wrong)");
        }
        return Ok(Verdict {
            result: false,
            message: Some(message),
            display: None,
        });
    };
    check_display(tx, tenant, &system, coding, display, active).await
}

/// Looks `code` up in a cached membership.
fn known(map: &Members, coding: &Coding, code: &str) -> Found {
    let hit = match &coding.system {
        Some(system) => map
            .get(&(system.clone(), code.to_owned()))
            .map(|v| (system.clone(), v.clone())),
        None => map
            .iter()
            .find(|((_, c), _)| c == code)
            .map(|((s, _), v)| (s.clone(), v.clone())),
    };
    Found {
        hit,
        complete: true,
    }
}

type Members = std::collections::HashMap<(String, String), (Option<String>, bool)>;

struct Found {
    hit: Option<(String, (Option<String>, bool))>,
    complete: bool,
}

async fn check_display(
    tx: &Tx<'_>,
    tenant: &str,
    system: &str,
    coding: &Coding,
    display: Option<String>,
    active: bool,
) -> Result<Verdict, TermError> {
    let code = coding.code.as_deref().unwrap_or("");
    if let Some(given) = coding.display.as_deref() {
        let mut others = Vec::new();
        if !display_matches(given, display.as_deref(), &[]) {
            if let Some(cs) = find_system(tx, tenant, system, coding.version.as_deref()).await? {
                if let Some(concept) = find_concept(tx, &cs, code).await? {
                    others = designation_values(tx, &cs, concept.concept_id).await?;
                }
            }
        }
        if !display_matches(given, display.as_deref(), &others) && display.is_some() {
            return Ok(Verdict {
                result: false,
                message: Some(format!(
                    "the display {given:?} is not a valid display for {system}#{code}; it should be {:?}",
                    display.as_deref().unwrap_or("")
                )),
                display,
            });
        }
    }
    Ok(Verdict {
        result: true,
        message: (!active).then(|| format!("the code {system}#{code} is inactive")),
        display,
    })
}

pub async fn code_system_validate_code(
    tx: &Tx<'_>,
    tenant: &str,
    params: &Params,
    instance: Option<&Value>,
) -> Result<Value, TermError> {
    params.only(CODE_SYSTEM_PARAMS)?;
    let codings = input_codings(params, "url", "version")?;
    let (url, url_at) = match (instance, params.text("url")?, params.json("codeSystem")?) {
        (Some(cs), _, _) => (
            cs.get("url")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
            "url".to_owned(),
        ),
        (None, Some((url, at)), _) => (url.to_owned(), at.to_owned()),
        (None, None, Some((cs, at))) => (
            cs.get("url")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
            at.to_owned(),
        ),
        (None, None, None) => match codings.first().and_then(|(c, _)| c.system.clone()) {
            Some(system) => (system, codings[0].1.clone()),
            None => return Err(TermError::invalid("name the code system with url").at("url")),
        },
    };
    let version = params.str("version")?;
    let cs = require_system(tx, tenant, &url, version)
        .await
        .map_err(|e| e.at(&url_at))?;
    let mut verdicts = Vec::new();
    for (coding, _) in &codings {
        if coding.system.as_deref().is_some_and(|s| s != url) {
            verdicts.push(Verdict {
                result: false,
                message: Some(format!(
                    "the coding's system {:?} is not {url}",
                    coding.system.as_deref().unwrap_or("")
                )),
                display: None,
            });
            continue;
        }
        let code = coding.code.as_deref().unwrap_or("");
        match find_concept(tx, &cs, code).await? {
            Some(concept) => {
                let mut coding = coding.clone();
                coding.version = Some(cs.version.clone()).filter(|v| !v.is_empty());
                verdicts.push(
                    check_display(tx, tenant, &url, &coding, concept.display, concept.active)
                        .await?,
                );
            }
            None => verdicts.push(Verdict {
                result: false,
                message: Some(format!("unknown code {code:?} in the code system {url}")),
                display: None,
            }),
        }
    }
    Ok(combine(verdicts).to_parameters())
}
