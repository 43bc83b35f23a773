//! Search (http.html#search, search.html) at type, system and compartment
//! level: criteria, `_sort` with keyset paging, `_include`/`_revinclude`,
//! `_summary`, `_elements` and `_total`. Parameters the server cannot use
//! are reported in an OperationOutcome entry (search mode `outcome`), or
//! rejected with `Prefer: handling=strict`.

use super::authorize::{self, Reach};
use super::bundle_out::{Bundle, Entry, Link, raw, raw_value};
use super::route::{Route, SearchScope};
use super::{AppState, FhirRequest, FhirResponse, ResponseBody};
use crate::error::{ApiError, Category};
use crate::search::criteria::{
    self, Alternative, Clause, Cond, Criteria, Parsed, ReferenceValue, Strictness,
};
use crate::search::execute::{self, Query};
use crate::search::include::{self, Include};
use crate::search::registry::Registry;
use crate::search::sort::{Cursor, SortKey, parse_sort};
use crate::store::{Db, Stored, TenantCtx};
use actix_web::http::StatusCode;
use fhir::outcome::operation_outcome;
use fhir::summary::{SummaryMode, select_elements, summarize};
use fhir::{Issue, IssueCode};
use serde_json::{Value, json};

const DEFAULT_COUNT: usize = 50;
/// At most this many resources are added by `_include`/`_revinclude` per
/// page; beyond it the Bundle says the includes were cut short.
const MAX_INCLUDES: usize = 1000;

/// `_total` (search.html#total).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Total {
    /// Not asked: given when the whole result fits on the first page.
    Default,
    None,
    Estimate,
    Accurate,
}

/// The result-shaping parameters of one search.
struct Shape {
    count: usize,
    after: Option<Cursor>,
    sort: Vec<SortKey>,
    includes: Vec<Include>,
    summary: SummaryMode,
    elements: Option<Vec<String>>,
    total: Total,
    /// The parameters to repeat in page links.
    echo: Vec<(String, String)>,
}

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
                resource: Some(raw_value(&resource)?),
                search: Some(json!({ "mode": "match" })),
                ..Entry::default()
            });
            bundle.total = Some(bundle.entry.len() as u64);
        }
    }
    if !parsed.warnings.is_empty() {
        bundle.entry.push(Entry {
            resource: Some(raw_value(&operation_outcome(&parsed.warnings))?),
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

/// The stored text, cut down by `_summary`/`_elements` when asked.
fn shaped(text: String, shape: &Shape) -> Result<Box<serde_json::value::RawValue>, ApiError> {
    if shape.summary == SummaryMode::False && shape.elements.is_none() {
        return raw(text);
    }
    let resource: Value = serde_json::from_str(&text).map_err(ApiError::fault)?;
    let resource = match &shape.elements {
        Some(elements) => {
            let names: Vec<&str> = elements.iter().map(String::as_str).collect();
            select_elements(&resource, &names).0
        }
        None => summarize(&resource, shape.summary),
    };
    raw_value(&resource)
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

/// Membership of the `compartment`/`id` compartment (compartment.html):
/// for each type, a reference to it through any of the type's links.
/// The clause keeping a `patient/`-scoped search inside the patient's
/// compartment (the patient itself for `Patient`).
fn patient_reach_clause(
    scope: &SearchScope,
    types: &[String],
    patient: &str,
) -> Result<Clause, ApiError> {
    match types {
        [only] if only == "Patient" => Ok(Clause::Ids(vec![patient.to_owned()])),
        [_] if !matches!(scope, SearchScope::System) => {
            Ok(compartment_clause("Patient", patient, types))
        }
        _ => Err(ApiError::new(
            Category::Forbidden,
            "with patient/ scopes, search one resource type at a time",
        )),
    }
}

/// Whether `resource_type/id` is the patient or in the patient's
/// compartment (for reads under `patient/` scopes).
pub async fn in_patient_compartment(
    db: &impl Db,
    ctx: &TenantCtx,
    resource_type: &str,
    id: &str,
    patient: &str,
) -> Result<bool, ApiError> {
    if resource_type == "Patient" {
        return Ok(id == patient);
    }
    let types = [resource_type.to_owned()];
    let criteria = Criteria {
        clauses: vec![
            Clause::Ids(vec![id.to_owned()]),
            compartment_clause("Patient", patient, &types),
        ],
    };
    let query = Query {
        types: &types,
        criteria: &criteria,
        sort: &[],
    };
    Ok(execute::count(db, ctx, query).await? > 0)
}

fn compartment_clause(compartment: &str, id: &str, types: &[String]) -> Clause {
    let per_type: Vec<(String, Clause)> = types
        .iter()
        .filter_map(|t| {
            let params = fhir::compartment::compartment_params(compartment, t)?;
            let alternatives: Vec<Alternative> = params
                .iter()
                .map(|p| Alternative {
                    param: p.clone(),
                    cond: Cond::Reference(ReferenceValue::Local {
                        target_type: Some(compartment.to_owned()),
                        id: id.to_owned(),
                    }),
                })
                .collect();
            (!alternatives.is_empty()).then(|| {
                (
                    t.clone(),
                    Clause::Match {
                        table: "search_reference",
                        negated: false,
                        alternatives,
                    },
                )
            })
        })
        .collect();
    match per_type.as_slice() {
        [(_, only)] => only.clone(),
        _ => Clause::ForTypes(per_type),
    }
}

/// Reads the result parameters.
fn shape(
    registry: &Registry,
    state: &AppState,
    types: &[String],
    params: &[(String, String)],
    strictness: Strictness,
    warnings: &mut Vec<Issue>,
) -> Result<Shape, ApiError> {
    let mut shape = Shape {
        count: DEFAULT_COUNT.min(state.max_page_size),
        after: None,
        sort: Vec::new(),
        includes: Vec::new(),
        summary: SummaryMode::False,
        elements: None,
        total: Total::Default,
        echo: Vec::new(),
    };
    let mut page = None;
    for (name, value) in params {
        let echo = (name.clone(), value.clone());
        match name.as_str() {
            "_count" => {
                shape.count = value
                    .parse::<usize>()
                    .map_err(|_| {
                        ApiError::invalid(format!("_count {value:?} is not a non-negative integer"))
                            .at("_count")
                    })?
                    .min(state.max_page_size);
            }
            "_page" => page = Some(value.clone()),
            "_sort" => {
                shape.sort = parse_sort(registry, types, value)?;
                shape.echo.push(echo);
            }
            "_type" => shape.echo.push(echo),
            n if n.starts_with("_include") || n.starts_with("_revinclude") => {
                shape
                    .includes
                    .push(include::parse_include(registry, n, value)?);
                shape.echo.push(echo);
            }
            "_summary" => {
                shape.summary = SummaryMode::parse(value)
                    .map_err(|e| ApiError::invalid(e.to_string()).at("_summary"))?;
                shape.echo.push(echo);
            }
            "_elements" => {
                let names: Vec<String> = value
                    .split(',')
                    .map(|e| e.trim().to_owned())
                    .filter(|e| !e.is_empty())
                    .collect();
                shape.elements = Some(names);
                shape.echo.push(echo);
            }
            "_total" => {
                shape.total = match value.as_str() {
                    "none" => Total::None,
                    "estimate" => Total::Estimate,
                    "accurate" => Total::Accurate,
                    _ => {
                        return Err(ApiError::invalid(format!(
                            "_total takes none, estimate or accurate, not {value:?}"
                        ))
                        .at("_total"));
                    }
                };
                shape.echo.push(echo);
            }
            "_contained" | "_containedType" => {
                let plain = matches!(
                    (name.as_str(), value.as_str()),
                    ("_contained", "false") | ("_containedType", "container")
                );
                if !plain {
                    let why = format!(
                        "{name}={value} is not supported: contained resources are not searched"
                    );
                    strictness.unsupported(name, why, warnings)?;
                }
            }
            _ => {}
        }
    }
    if shape.summary != SummaryMode::False && shape.elements.is_some() {
        return Err(
            ApiError::invalid("_summary and _elements cannot be used together").at("_elements"),
        );
    }
    if let Some(page) = page {
        shape.after = Some(Cursor::decode(&page, shape.sort.len())?);
    }
    Ok(shape)
}
