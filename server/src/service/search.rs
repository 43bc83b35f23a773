//! Search (http.html#search, search.html) at type, system and compartment
//! level: criteria, `_sort` with keyset paging, `_include`/`_revinclude`,
//! `_summary`, `_elements` and `_total`. Parameters the server cannot use
//! are reported in an OperationOutcome entry (search mode `outcome`), or
//! rejected with `Prefer: handling=strict`.

use super::authorize::{self, Reach};
use super::bundle_out::{Bundle, Embedded, Entry, Link};
use super::route::{Route, SearchScope};
use super::{AppState, FhirRequest, FhirResponse, ResponseBody};
use crate::error::ApiError;
use crate::search::criteria::{self, Parsed, Strictness};
use crate::search::execute::{self, Query};
use crate::search::include;
use crate::search::registry::Registry;
use crate::search::sort::Cursor;
use crate::store::{Db, Stored, TenantCtx};
use actix_web::http::StatusCode;
use fhir::outcome::operation_outcome;
use fhir::summary::SummaryMode;
use fhir::{Issue, IssueCode};
use serde_json::json;

mod compartment;
mod shape;

pub use compartment::in_patient_compartment;
use compartment::{compartment_clause, patient_reach_clause};
use shape::{Total, shape, shaped};

/// At most this many resources are added by `_include`/`_revinclude` per
/// page; beyond it the Bundle says the includes were cut short.
const MAX_INCLUDES: usize = 1000;

pub async fn search(
    db: &impl Db,
    state: &AppState,
    ctx: &TenantCtx,
    scope: SearchScope,
    req: &FhirRequest,
) -> Result<FhirResponse, ApiError> {
    let strictness = if req.strict {
        Strictness::Strict
    } else {
        Strictness::Lenient
    };
    let types = scope_types(&scope, &req.params)?;
    let registry = ctx.registry();
    let params =
        crate::search::token_sets::expand_modifiers(db, ctx, &registry, &types, &req.params)
            .await?;
    let mut parsed = parse_for_types(&registry, &types, &params, strictness, &ctx.base_url)?;
    if let Reach::Patient(patient) =
        authorize::check(ctx, &Route::Search(scope.clone()), &req.params)?
    {
        parsed
            .criteria
            .clauses
            .push(patient_reach_clause(&scope, &types, &patient)?);
    }
    if let Some(own) = authorize::integrator_clause(ctx) {
        parsed.criteria.clauses.push(own);
    }
    if let SearchScope::Compartment {
        compartment, id, ..
    } = &scope
    {
        parsed.criteria.clauses.push(compartment_clause(
            compartment.as_str(),
            id.as_str(),
            &types,
        ));
    }
    let shape = shape(
        &registry,
        state,
        &types,
        &req.params,
        strictness,
        &mut parsed.warnings,
    )?;
    let query = Query {
        types: &types,
        criteria: &parsed.criteria,
        sort: &shape.sort,
    };

    let mut bundle = Bundle::new("searchset");
    let count_only = shape.summary == SummaryMode::Count;
    let page_size = if count_only { 0 } else { shape.count };
    let mut found = if page_size == 0 {
        Vec::new()
    } else {
        execute::find(db, ctx, query, page_size + 1, shape.after.as_ref()).await?
    };
    let has_next = found.len() > page_size;
    found.truncate(page_size);
    bundle.total = match shape.total {
        _ if count_only => Some(execute::count(db, ctx, query).await?),
        Total::Accurate => Some(execute::count(db, ctx, query).await?),
        Total::Estimate => Some(execute::estimate(db, ctx, query).await?),
        Total::Default if shape.after.is_none() && !has_next && page_size > 0 => {
            Some(found.len() as i64)
        }
        Total::Default | Total::None => None,
    }
    .map(|n| u64::try_from(n).unwrap_or(0));

    let link = |after: Option<&Cursor>| {
        let mut pairs = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in parsed.used.iter().chain(&shape.echo) {
            pairs.append_pair(k, v);
        }
        pairs.append_pair("_count", &shape.count.to_string());
        if let Some(after) = after {
            pairs.append_pair("_page", &after.encode());
        }
        format!("{}/{}?{}", ctx.base_url, scope_path(&scope), pairs.finish())
    };
    bundle.link.push(Link {
        relation: "self",
        url: link(shape.after.as_ref()),
    });
    if has_next {
        if let Some(last) = found.last() {
            bundle.link.push(Link {
                relation: "next",
                url: link(Some(&last.cursor)),
            });
        }
    }
    let matches: Vec<Stored> = found.into_iter().map(|f| f.stored).collect();
    let (included, cut) = if shape.includes.is_empty() || matches.is_empty() {
        (Vec::new(), false)
    } else {
        include::resolve(db, ctx, &shape.includes, &matches, MAX_INCLUDES).await?
    };
    if cut {
        parsed.warnings.push(Issue::warning(
            IssueCode::TooCostly,
            format!("_include/_revinclude stopped after {MAX_INCLUDES} resources"),
        ));
    }
    let included = included
        .into_iter()
        .filter(|stored| authorize::may_include(ctx, stored));
    let mut touched = crate::audit::Touched::default();
    for (stored, mode) in matches
        .into_iter()
        .map(|s| (s, "match"))
        .chain(included.map(|s| (s, "include")))
    {
        touched.add_stored(&stored);
        bundle.entry.push(Entry {
            full_url: Some(format!(
                "{}/{}/{}",
                ctx.base_url, stored.resource_type, stored.id
            )),
            resource: stored
                .content
                .map(|text| shaped(text, &shape))
                .transpose()?,
            search: Some(json!({ "mode": mode })),
            ..Entry::default()
        });
    }
    if bundle.entry.is_empty() && shape.after.is_none() {
        // CodeSystem/ValueSet/ConceptMap?url=…: global content too.
        for (path, resource) in super::terminology::global_by_url(db, &scope, &req.params).await? {
            bundle.entry.push(Entry {
                full_url: Some(format!("{}/{path}", ctx.base_url)),
                resource: Some(Embedded::tree(&resource)?),
                search: Some(json!({ "mode": "match" })),
                ..Entry::default()
            });
            bundle.total = Some(bundle.entry.len() as u64);
        }
    }
    if !parsed.warnings.is_empty() {
        bundle.entry.push(Entry {
            resource: Some(Embedded::tree(&operation_outcome(&parsed.warnings))?),
            search: Some(json!({ "mode": "outcome" })),
            ..Entry::default()
        });
    }
    Ok(FhirResponse {
        status: StatusCode::OK,
        body: ResponseBody::Text(bundle.to_text()?),
        location: None,
        version_id: None,
        last_modified: None,
        touched,
    })
}

/// The resource types a scope searches.
fn scope_types(scope: &SearchScope, params: &[(String, String)]) -> Result<Vec<String>, ApiError> {
    match scope {
        SearchScope::Type(t) => Ok(vec![t.as_str().to_owned()]),
        SearchScope::Compartment {
            compartment,
            target: Some(t),
            ..
        } => {
            if fhir::compartment::compartment_params(compartment.as_str(), t.as_str())
                .is_none_or(|p| p.is_empty())
            {
                return Err(ApiError::not_found(format!(
                    "{t} is not in the {compartment} compartment"
                )));
            }
            Ok(vec![t.as_str().to_owned()])
        }
        SearchScope::Compartment {
            compartment,
            target: None,
            ..
        } => Ok(fhir::compartment::compartment_types(compartment.as_str())
            .map(str::to_owned)
            .collect()),
        SearchScope::System => {
            let listed: Vec<&str> = params
                .iter()
                .filter(|(k, _)| k == "_type")
                .flat_map(|(_, v)| v.split(','))
                .map(str::trim)
                .collect();
            if listed.is_empty() {
                return Ok(fhir::id::RESOURCE_TYPES
                    .iter()
                    .map(|t| (*t).to_owned())
                    .collect());
            }
            let mut types: Vec<String> = listed
                .iter()
                .map(|t| {
                    fhir::ResourceType::parse(t)
                        .map(|t| t.as_str().to_owned())
                        .ok_or_else(|| {
                            ApiError::invalid(format!("_type {t:?} is not a resource type"))
                                .at("_type")
                        })
                })
                .collect::<Result<_, _>>()?;
            types.sort();
            types.dedup();
            Ok(types)
        }
    }
}

/// The path after the base for page links.
fn scope_path(scope: &SearchScope) -> String {
    match scope {
        SearchScope::Type(t) => t.as_str().to_owned(),
        SearchScope::System => String::new(),
        SearchScope::Compartment {
            compartment,
            id,
            target,
        } => format!("{compartment}/{id}/{}", target.map_or("*", |t| t.as_str())),
    }
}

/// Criteria for several types: a parameter is used only if every type
/// defines it (the others are reported, or rejected when strict).
fn parse_for_types(
    registry: &Registry,
    types: &[String],
    params: &[(String, String)],
    strictness: Strictness,
    local_base: &str,
) -> Result<Parsed, ApiError> {
    let [first, rest @ ..] = types else {
        return Ok(Parsed::default());
    };
    let parsed = criteria::parse(registry, first, params, strictness, local_base)?;
    if rest.is_empty() {
        return Ok(parsed);
    }
    let mut everywhere = parsed.used.clone();
    for t in rest {
        let other = criteria::parse(registry, t, params, Strictness::Lenient, local_base)?;
        everywhere.retain(|p| other.used.contains(p));
    }
    let mut warnings = parsed.warnings;
    for (name, _) in parsed.used.iter().filter(|p| !everywhere.contains(p)) {
        let why = format!("{name} is not a search parameter of every type searched");
        strictness.unsupported(name, why, &mut warnings)?;
    }
    let mut kept = criteria::parse(registry, first, &everywhere, strictness, local_base)?;
    kept.warnings = warnings;
    Ok(kept)
}
