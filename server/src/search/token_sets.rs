//! Token modifiers that need the terminology service (search.html#token):
//! `:in` and `:not-in` (a value set), `:below` (is-a: the code and its
//! descendants) and `:above` (the code and its ancestors). Before the
//! criteria are parsed, each becomes the plain token parameter (`:not` for
//! `:not-in`) listing the codes as `system|code` alternatives, so the
//! query is the usual indexed token match. Above [`MAX_CODES`] codes,
//! `:below`, `:above` and `:in` an is-a value set (`?fhir_vs=isa/…`)
//! become the internal `:baraza-hierarchy` form instead, which the search
//! matches against the code system's closure in the database, so a broad
//! SNOMED concept works at any size; other value sets and `:not-in` stay
//! bounded by [`MAX_CODES`].

use super::criteria::{HIERARCHY_MODIFIER, Hierarchy};
use super::registry::{ParamKind, Registry};
use crate::error::ApiError;
use crate::store::{Db, TenantCtx};
use fhir::IssueCode;
use terminology::expand::{Request, expand};

/// The most codes one modifier may stand for.
pub const MAX_CODES: usize = 1_000;

/// A code no resource has: what an empty set matches.
const NOTHING: &str = "urn:baraza:no-code|no-code";

/// The parameters with every terminology modifier replaced.
pub async fn expand_modifiers(
    db: &impl Db,
    ctx: &TenantCtx,
    registry: &Registry,
    types: &[String],
    params: &[(String, String)],
) -> Result<Vec<(String, String)>, ApiError> {
    let mut out = Vec::with_capacity(params.len());
    for (name, value) in params {
        let Some((code, modifier)) = name.split_once(':') else {
            out.push((name.clone(), value.clone()));
            continue;
        };
        if modifier == HIERARCHY_MODIFIER {
            return Err(
                ApiError::invalid(format!("the modifier :{modifier} is not supported"))
                    .at(name.clone()),
            );
        }
        let is_token = types.iter().any(|t| {
            registry
                .param(t, code)
                .is_some_and(|p| p.kind == ParamKind::Token)
        });
        if !is_token || !matches!(modifier, "in" | "not-in" | "below" | "above") {
            out.push((name.clone(), value.clone()));
            continue;
        }
        let codes = match modifier {
            "in" => match is_a_value_set(value) {
                Some((system, root)) => hierarchy_codes(db, ctx, system, root, true).await,
                None => value_set_codes(db, ctx, value).await.map(Codes::Listed),
            },
            "not-in" => value_set_codes(db, ctx, value).await.map(Codes::Listed),
            _ => match value
                .split_once('|')
                .filter(|(s, c)| !s.is_empty() && !c.is_empty())
            {
                Some((system, root)) => {
                    hierarchy_codes(db, ctx, system, root, modifier == "below").await
                }
                None => Err(ApiError::invalid(format!(
                    "{value:?} must be system|code: :below and :above follow a code system's hierarchy"
                ))),
            },
        }
        .map_err(|e| e.at(name.clone()))?;
        let codes = match codes {
            Codes::Listed(codes) => codes,
            Codes::Related(hierarchy) => {
                out.push((format!("{code}:{HIERARCHY_MODIFIER}"), hierarchy.to_value()));
                continue;
            }
        };
        if codes.len() > MAX_CODES {
            return Err(ApiError::invalid(format!(
                "{name}={value} stands for more than {MAX_CODES} codes; use a narrower value set or code"
            ))
            .with_code(IssueCode::TooCostly)
            .at(name.clone()));
        }
        let listed = codes
            .iter()
            .map(|(system, code)| format!("{}|{}", escape(system), escape(code)))
            .collect::<Vec<_>>()
            .join(",");
        match (modifier, listed.is_empty()) {
            ("not-in", true) => {}
            ("not-in", false) => out.push((format!("{code}:not"), listed)),
            (_, true) => out.push((code.to_owned(), NOTHING.to_owned())),
            (_, false) => out.push((code.to_owned(), listed)),
        }
    }
    Ok(out)
}

/// Escapes search's separators (search.html#escaping).
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\\' | ',' | '|' | '$') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

async fn value_set_codes(
    db: &impl Db,
    ctx: &TenantCtx,
    canonical: &str,
) -> Result<Vec<(String, String)>, ApiError> {
    let tx = &db.term();
    let Some(vs) = terminology::valueset::resolve(tx, &ctx.tenant, canonical).await? else {
        return Err(ApiError::invalid(format!(
            "the value set {canonical} is not known"
        )));
    };
    let request = Request {
        limit: MAX_CODES,
        strict: true,
        ..Request::default()
    };
    let mut stack = vec![canonical.to_owned()];
    let expansion = expand(tx, &ctx.tenant, &vs, &request, &mut stack)
        .await
        .map_err(|e| {
            if e.code == IssueCode::TooCostly {
                ApiError::invalid(format!(
                    "the value set {canonical} has more than {MAX_CODES} codes"
                ))
                .with_code(IssueCode::TooCostly)
            } else {
                ApiError::from(e)
            }
        })?;
    Ok(expansion
        .items
        .into_iter()
        .map(|i| (i.system, i.code))
        .collect())
}

/// A modifier's codes: listed, or too many to list and matched in the
/// database.
enum Codes {
    Listed(Vec<(String, String)>),
    Related(Hierarchy),
}

/// `(system, code)` of an implicit is-a value set such as
/// `http://snomed.info/sct?fhir_vs=isa/73211009`.
fn is_a_value_set(canonical: &str) -> Option<(&str, &str)> {
    let (system, rest) = canonical.split_once("?fhir_vs=isa/")?;
    (!system.is_empty() && !rest.is_empty() && !rest.contains(['|', '&'])).then_some((system, rest))
}

/// The codes of `root` and its descendants (`below`) or ancestors.
async fn hierarchy_codes(
    db: &impl Db,
    ctx: &TenantCtx,
    system: &str,
    root: &str,
    below: bool,
) -> Result<Codes, ApiError> {
    let tx = &db.term();
    let cs = terminology::store::require_system(tx, &ctx.tenant, system, None)
        .await
        .map_err(|e| ApiError::invalid(e.message))?;
    let Some(concept) = terminology::store::find_concept(tx, &cs, root).await? else {
        return Err(ApiError::invalid(format!(
            "unknown code {root:?} in the code system {system}"
        )));
    };
    let codes =
        terminology::store::related_codes(tx, &cs, concept.concept_id, below, MAX_CODES).await?;
    if codes.len() > MAX_CODES {
        return Ok(Codes::Related(Hierarchy {
            system: system.to_owned(),
            cs_tenant: cs.tenant.clone(),
            system_id: cs.id,
            concept_id: concept.concept_id,
            below,
        }));
    }
    Ok(Codes::Listed(
        codes.into_iter().map(|c| (system.to_owned(), c)).collect(),
    ))
}
