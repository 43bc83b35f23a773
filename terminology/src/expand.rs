//! The expansion engine (valueset.html#expansion): a ValueSet's compose,
//! include by include (concept lists, filters, whole systems, other value
//! sets), minus the excludes. System includes run as one SQL statement
//! each over the concept tables; the same engine answers membership
//! questions by restricting every include to one code, so a code is checked
//! against a value set of any size without expanding it.

mod filters;

use crate::store::{CodeSystemRow, find_system};
use crate::{TermError, Tx};
use fhir::IssueCode;
use serde_json::Value;
use std::collections::HashSet;

/// Above this many concepts, the text filter uses the word index only
/// (word prefixes); smaller code systems also match inside words.
pub const SMALL_SYSTEM: i32 = 10_000;

/// What to compute.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// The text filter (`filter`).
    pub filter: Option<String>,
    pub active_only: bool,
    /// Only this code (of this system, if given): a membership check.
    pub only: Option<(Option<String>, String)>,
    /// The most codes an expansion may have; more is `too-costly`.
    pub limit: usize,
    /// Unknown or incomplete code systems are errors (for `$expand`); when
    /// false they make the result [`Expansion::complete`] false instead.
    pub strict: bool,
}

/// One code of an expansion.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub system: String,
    pub version: Option<String>,
    pub code: String,
    pub display: Option<String>,
    pub active: bool,
    /// Text-filter rank (lower is better).
    pub rank: u8,
}

#[derive(Debug, Clone, Default)]
pub struct Expansion {
    pub items: Vec<Item>,
    /// Every include was evaluated against complete content, so a code
    /// missing from `items` is really not in the value set.
    pub complete: bool,
    /// The code systems used, as `url|version`.
    pub used: Vec<String>,
}

/// Expands `vs` (a ValueSet resource). `stack` holds the canonicals being
/// expanded, to detect cycles.
pub async fn expand(
    tx: &Tx<'_>,
    tenant: &str,
    vs: &Value,
    req: &Request,
    stack: &mut Vec<String>,
) -> Result<Expansion, TermError> {
    let Some(compose) = vs.get("compose") else {
        return Ok(from_expansion(vs, req));
    };
    let mut out = Expansion {
        complete: true,
        ..Expansion::default()
    };
    let mut seen: HashSet<(String, String)> = HashSet::new();
    for include in list(compose, "include") {
        let part = Box::pin(evaluate(tx, tenant, include, req, stack)).await?;
        merge_flags(&mut out, &part);
        for item in part.items {
            if seen.insert((item.system.clone(), item.code.clone())) {
                out.items.push(item);
            }
            if out.items.len() > req.limit {
                return Err(too_costly(req.limit));
            }
        }
    }
    for exclude in list(compose, "exclude") {
        let mut unlimited = req.clone();
        unlimited.filter = None;
        unlimited.active_only = false;
        let part = Box::pin(evaluate(tx, tenant, exclude, &unlimited, stack)).await?;
        merge_flags(&mut out, &part);
        let gone: HashSet<(&str, &str)> = part
            .items
            .iter()
            .map(|i| (i.system.as_str(), i.code.as_str()))
            .collect();
        out.items
            .retain(|i| !gone.contains(&(i.system.as_str(), i.code.as_str())));
    }
    if compose.get("inactive").and_then(Value::as_bool) == Some(false) {
        out.items.retain(|i| i.active);
    }
    if req.filter.is_some() {
        out.items.sort_by(|a, b| {
            let len = |i: &Item| i.display.as_deref().map_or(usize::MAX, str::len);
            (a.rank, len(a), &a.display).cmp(&(b.rank, len(b), &b.display))
        });
    }
    Ok(out)
}

fn merge_flags(out: &mut Expansion, part: &Expansion) {
    out.complete &= part.complete;
    for u in &part.used {
        if !out.used.contains(u) {
            out.used.push(u.clone());
        }
    }
}

fn list<'v>(v: &'v Value, key: &str) -> impl Iterator<Item = &'v Value> {
    v.get(key).and_then(Value::as_array).into_iter().flatten()
}

pub fn too_costly(limit: usize) -> TermError {
    TermError::unprocessable(
        IssueCode::TooCostly,
        format!(
            "the expansion has more than {limit} codes; use a text filter, or count and offset to page it"
        ),
    )
}

/// A ValueSet that carries an expansion but no compose.
fn from_expansion(vs: &Value, req: &Request) -> Expansion {
    let mut items = Vec::new();
    fn walk(contains: &Value, req: &Request, items: &mut Vec<Item>) {
        for c in contains.as_array().into_iter().flatten() {
            let s = |k: &str| c.get(k).and_then(Value::as_str).map(str::to_owned);
            if let (Some(system), Some(code)) = (s("system"), s("code")) {
                let item = Item {
                    system,
                    version: s("version"),
                    code,
                    display: s("display"),
                    active: c.get("inactive").and_then(Value::as_bool) != Some(true),
                    rank: 0,
                };
                if let Some(item) = keep(item, req) {
                    items.push(item);
                }
            }
            if let Some(nested) = c.get("contains") {
                walk(nested, req, items);
            }
        }
    }
    if let Some(contains) = vs.get("expansion").and_then(|e| e.get("contains")) {
        walk(contains, req, &mut items);
    }
    Expansion {
        items,
        complete: vs.get("expansion").is_some(),
        used: Vec::new(),
    }
}

/// Applies the request's restrictions to an item that did not come from
/// a restricted SQL statement.
fn keep(mut item: Item, req: &Request) -> Option<Item> {
    if let Some((system, code)) = &req.only {
        if *code != item.code || system.as_ref().is_some_and(|s| *s != item.system) {
            return None;
        }
    }
    if req.active_only && !item.active {
        return None;
    }
    if let Some(filter) = &req.filter {
        item.rank = crate::text::rank(filter, item.display.as_deref().unwrap_or(&item.code))?;
    }
    Some(item)
}

/// One include or exclude.
async fn evaluate(
    tx: &Tx<'_>,
    tenant: &str,
    include: &Value,
    req: &Request,
    stack: &mut Vec<String>,
) -> Result<Expansion, TermError> {
    let mut result: Option<Expansion> = None;
    if let Some(system) = include.get("system").and_then(Value::as_str) {
        result = Some(system_part(tx, tenant, system, include, req).await?);
    }
    for canonical in list(include, "valueSet").filter_map(Value::as_str) {
        let other = nested(tx, tenant, canonical, req, stack).await?;
        result = Some(match result {
            None => other,
            Some(mut acc) => {
                let keep: HashSet<(&str, &str)> = other
                    .items
                    .iter()
                    .map(|i| (i.system.as_str(), i.code.as_str()))
                    .collect();
                acc.items
                    .retain(|i| keep.contains(&(i.system.as_str(), i.code.as_str())));
                acc.complete &= other.complete;
                acc
            }
        });
    }
    Ok(result.unwrap_or(Expansion {
        complete: true,
        ..Expansion::default()
    }))
}

async fn nested(
    tx: &Tx<'_>,
    tenant: &str,
    canonical: &str,
    req: &Request,
    stack: &mut Vec<String>,
) -> Result<Expansion, TermError> {
    if stack.iter().any(|c| c == canonical) {
        let mut path = stack.clone();
        path.push(canonical.to_owned());
        return Err(TermError::unprocessable(
            IssueCode::Processing,
            format!(
                "the value sets include each other in a cycle: {}",
                path.join(" → ")
            ),
        ));
    }
    let Some(vs) = crate::valueset::resolve(tx, tenant, canonical).await? else {
        if req.strict {
            return Err(TermError::unprocessable(
                IssueCode::NotFound,
                format!("the included value set {canonical} is not known"),
            ));
        }
        return Ok(Expansion::default());
    };
    stack.push(canonical.to_owned());
    let result = expand(tx, tenant, &vs, req, stack).await;
    stack.pop();
    result
}

/// The codes of one system an include selects.
async fn system_part(
    tx: &Tx<'_>,
    tenant: &str,
    system: &str,
    include: &Value,
    req: &Request,
) -> Result<Expansion, TermError> {
    let version = include.get("version").and_then(Value::as_str);
    if req
        .only
        .as_ref()
        .is_some_and(|(s, _)| s.as_deref().is_some_and(|s| s != system))
    {
        return Ok(Expansion {
            complete: true,
            ..Expansion::default()
        });
    }
    let found = find_system(tx, tenant, system, version).await?;
    let concepts: Vec<&Value> = list(include, "concept").collect();
    if !concepts.is_empty() {
        return listed(tx, system, found.as_ref(), &concepts, req).await;
    }
    let Some(cs) = found else {
        if req.strict {
            let known = crate::store::versions_of(tx, tenant, system).await?;
            let message = match (version, known.is_empty()) {
                (Some(v), false) => format!(
                    "the code system {system} has no version {v:?} (known: {})",
                    known.join(", ")
                ),
                _ => format!("the code system {system} is not known to this server"),
            };
            return Err(TermError::unprocessable(IssueCode::NotFound, message));
        }
        return Ok(Expansion::default());
    };
    if !cs.complete() && req.strict && cs.content != "fragment" {
        return Err(TermError::unprocessable(
            IssueCode::NotSupported,
            format!(
                "the code system {system} is stored without its concepts (content {}); it cannot be expanded",
                cs.content
            ),
        ));
    }
    let items = filters::query(tx, &cs, list(include, "filter").collect(), req).await?;
    Ok(Expansion {
        complete: cs.complete(),
        used: vec![format!("{}|{}", cs.url, cs.version)],
        items,
    })
}

/// An include that lists its concepts: each listed code, with the code
/// system's display and status when the system is known.
async fn listed(
    tx: &Tx<'_>,
    system: &str,
    cs: Option<&CodeSystemRow>,
    concepts: &[&Value],
    req: &Request,
) -> Result<Expansion, TermError> {
    let codes: Vec<String> = concepts
        .iter()
        .filter_map(|c| c.get("code").and_then(Value::as_str).map(str::to_owned))
        .collect();
    let known = match cs {
        Some(cs) => Some(filters::by_codes(tx, cs, &codes).await?),
        None => None,
    };
    let mut items = Vec::new();
    for concept in concepts {
        let Some(code) = concept.get("code").and_then(Value::as_str) else {
            continue;
        };
        let listed_display = concept
            .get("display")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let (display, active) = match &known {
            Some(found) => match found.get(code) {
                Some((display, active)) => (listed_display.or_else(|| display.clone()), *active),
                // A complete code system without the code: not a member.
                None if cs.is_some_and(CodeSystemRow::complete) => continue,
                None => (listed_display, true),
            },
            None => (listed_display, true),
        };
        let item = Item {
            system: system.to_owned(),
            version: cs.map(|c| c.version.clone()).filter(|v| !v.is_empty()),
            code: code.to_owned(),
            display,
            active,
            rank: 0,
        };
        if let Some(item) = keep(item, req) {
            items.push(item);
        }
    }
    Ok(Expansion {
        items,
        complete: true,
        used: cs
            .map(|c| vec![format!("{}|{}", c.url, c.version)])
            .unwrap_or_default(),
    })
}
