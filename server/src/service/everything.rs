//! `Patient/[id]/$everything` (patient-operation-everything.html): the
//! patient and every resource in its compartment that the caller may read,
//! as a searchset Bundle paged by `_count` (keyset by type and id, like a
//! search). `_since` keeps resources changed after an instant, `_type`
//! some types, and `start`/`end` the care dates: a resource of a type with
//! a `date` search parameter (Observation, Encounter, Procedure, …) is
//! kept when that date overlaps the range; types without one (Patient,
//! Condition, …) are always kept. This is also the data subject's copy of
//! their record (GDPR articles 15 and 20) as JSON.

use super::bundle_out::{Bundle, Embedded, Entry, Link, search_match};
use super::export::spec::compartment_clause;
use super::operations::{Definition, Invocation, Level, Target, input_parameters};
use super::{AppState, FhirRequest, FhirResponse, ResponseBody};
use crate::auth::Interaction;
use crate::error::ApiError;
use crate::search::criteria::{self, Clause, Criteria, Strictness};
use crate::search::execute::{self, Query};
use crate::search::sort::Cursor;
use crate::service::authorize::{self, Reach};
use crate::store::{Access, TenantCtx, begin};
use actix_web::http::StatusCode;
use futures_util::future::BoxFuture;

const DEFAULT_COUNT: usize = 100;

fn reads_the_patient(_: &Target) -> Vec<(Interaction, String)> {
    vec![(Interaction::Read, "Patient".to_owned())]
}

pub const DEFINITIONS: &[Definition] = &[Definition {
    name: "$everything",
    levels: &[Level::Instance],
    types: &["Patient"],
    methods: &["GET", "POST"],
    definition_url: "http://hl7.org/fhir/OperationDefinition/Patient-everything",
    needs: reads_the_patient,
    purpose: None,
    handler: everything,
}];

fn everything<'a>(
    state: &'a AppState,
    ctx: &'a TenantCtx,
    invocation: Invocation,
    req: FhirRequest,
) -> BoxFuture<'a, Result<FhirResponse, ApiError>> {
    Box::pin(run(state, ctx, invocation, req))
}

/// The operation's parameters.
struct Params {
    since: Option<String>,
    start: Option<String>,
    end: Option<String>,
    types: Option<Vec<String>>,
    count: usize,
    page: Option<String>,
    /// Echoed in page links.
    echo: Vec<(String, String)>,
}

fn read_params(state: &AppState, req: &FhirRequest) -> Result<Params, ApiError> {
    let mut params = Params {
        since: None,
        start: None,
        end: None,
        types: None,
        count: DEFAULT_COUNT.min(state.max_page_size),
        page: None,
        echo: Vec::new(),
    };
    for (name, value) in input_parameters(req)? {
        let echo = (name.clone(), value.clone());
        match name.as_str() {
            "_since" => {
                chrono::DateTime::parse_from_rfc3339(&value).map_err(|_| {
                    ApiError::invalid(format!("_since {value:?} is not an instant")).at("_since")
                })?;
                params.since = Some(value);
            }
            "start" => params.start = Some(value),
            "end" => params.end = Some(value),
            "_type" => {
                let mut types = Vec::new();
                for t in value.split(',').map(str::trim) {
                    let parsed = fhir::ResourceType::parse(t).ok_or_else(|| {
                        ApiError::invalid(format!("_type {t:?} is not an R4 resource type"))
                            .at("_type")
                    })?;
                    types.push(parsed.as_str().to_owned());
                }
                params.types = Some(types);
            }
            "_count" => {
                params.count = value
                    .parse::<usize>()
                    .map_err(|_| {
                        ApiError::invalid(format!("_count {value:?} is not a number")).at("_count")
                    })?
                    .clamp(1, state.max_page_size);
                continue;
            }
            "_page" => {
                params.page = Some(value);
                continue;
            }
            _ => {
                return Err(
                    ApiError::invalid(format!("$everything has no parameter {name}"))
                        .with_code(fhir::IssueCode::NotSupported)
                        .at(name),
                );
            }
        }
        params.echo.push(echo);
    }
    Ok(params)
}

async fn run(
    state: &AppState,
    ctx: &TenantCtx,
    invocation: Invocation,
    req: FhirRequest,
) -> Result<FhirResponse, ApiError> {
    let Target::Instance(_, patient) = &invocation.target else {
        return Err(ApiError::fault("$everything reached without a patient"));
    };
    let patient = patient.as_str().to_owned();
    let params = read_params(state, &req)?;
    if let Reach::Patient(own) = authorize::reach(ctx, Interaction::Read, "Patient")? {
        if own != patient {
            return Err(ApiError::not_found(format!(
                "Patient/{patient} is not known"
            )));
        }
    }
    let mut client = state.pool.get().await?;
    let tx = begin(&mut client, ctx, Access::ReadOnly).await?;
    let current = crate::store::read::read_current(&tx, ctx, "Patient", &patient).await?;
    let visible = current
        .as_ref()
        .is_some_and(|s| !s.deleted && authorize::integrator_may_see(ctx, s.content.as_deref()));
    if !visible {
        return Err(ApiError::not_found(format!(
            "Patient/{patient} is not known"
        )));
    }
    let types: Vec<String> = fhir::id::RESOURCE_TYPES
        .iter()
        .filter(|t| authorize::in_patient_compartment(t))
        .filter(|t| {
            params
                .types
                .as_ref()
                .is_none_or(|listed| listed.iter().any(|l| l == *t))
        })
        // Only what the caller may read; the rest is left out silently.
        .filter(|t| authorize::reach(ctx, Interaction::Read, t).is_ok())
        .map(|t| (*t).to_owned())
        .collect();
    let criteria = criteria_for(ctx, &types, &patient, &params)?;
    let after = params
        .page
        .as_deref()
        .map(|page| Cursor::decode(page, 0))
        .transpose()?;
    let query = Query {
        types: &types,
        criteria: &criteria,
        sort: &[],
    };
    let mut found = if types.is_empty() {
        Vec::new()
    } else {
        execute::find(&tx, ctx, query, params.count + 1, after.as_ref()).await?
    };
    let has_next = found.len() > params.count;
    found.truncate(params.count);
    let mut bundle = Bundle::new("searchset");
    if after.is_none() && !has_next {
        bundle.total = Some(found.len() as u64);
    }
    let link = |after: Option<&Cursor>| {
        let mut pairs = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &params.echo {
            pairs.append_pair(k, v);
        }
        pairs.append_pair("_count", &params.count.to_string());
        if let Some(after) = after {
            pairs.append_pair("_page", &after.encode());
        }
        format!(
            "{}/Patient/{patient}/$everything?{}",
            ctx.base_url,
            pairs.finish()
        )
    };
    bundle.link.push(Link {
        relation: "self",
        url: link(after.as_ref()),
    });
    if has_next {
        if let Some(last) = found.last() {
            bundle.link.push(Link {
                relation: "next",
                url: link(Some(&last.cursor)),
            });
        }
    }
    let mut touched = crate::audit::Touched::default();
    for f in found {
        touched.add_stored(&f.stored);
        bundle.entry.push(Entry {
            full_url: Some(format!(
                "{}/{}/{}",
                ctx.base_url, f.stored.resource_type, f.stored.id
            )),
            resource: f.stored.content.map(Embedded::stored),
            search: search_match(),
            ..Entry::default()
        });
    }
    if !touched.patients.contains(&patient) {
        touched.patients.push(patient.clone());
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

/// Per type: in the patient's compartment (the Patient itself for
/// Patient), then the care-date range for types with a `date` parameter;
/// for all: `_since`, and an integrator's own submissions.
fn criteria_for(
    ctx: &TenantCtx,
    types: &[String],
    patient: &str,
    params: &Params,
) -> Result<Criteria, ApiError> {
    let registry = ctx.registry();
    let patients = vec![patient.to_owned()];
    let mut per_type = Vec::new();
    for t in types {
        let mut clauses = vec![compartment_clause(t, Some(&patients))];
        let mut dates = Vec::new();
        if let Some(start) = &params.start {
            dates.push(("date".to_owned(), format!("ge{start}")));
        }
        if let Some(end) = &params.end {
            dates.push(("date".to_owned(), format!("le{end}")));
        }
        if !dates.is_empty() && registry.param(t, "date").is_some() {
            let parsed = criteria::parse(&registry, t, &dates, Strictness::Strict, &ctx.base_url)
                .map_err(|e| e.at("start"))?;
            clauses.extend(parsed.criteria.clauses);
        }
        per_type.push((t.clone(), Clause::AnyOf(vec![Criteria { clauses }])));
    }
    let mut clauses = vec![Clause::ForTypes(per_type)];
    if let (Some(since), Some(first)) = (&params.since, types.first()) {
        let since = [("_lastUpdated".to_owned(), format!("gt{since}"))];
        let parsed = criteria::parse(&registry, first, &since, Strictness::Strict, &ctx.base_url)
            .map_err(|e| e.at("_since"))?;
        clauses.extend(parsed.criteria.clauses);
    }
    if let Some(own) = authorize::integrator_clause(ctx) {
        clauses.push(own);
    }
    Ok(Criteria { clauses })
}
