//! `Patient/$match` (patient-operation-match.html) and IHE PIXm
//! `Patient/$ihe-pix` (ITI-83): read-only questions to the index.

use super::{linker, store_error};
use crate::error::{ApiError, Category};
use crate::service::operations::Invocation;
use crate::service::{AppState, FhirRequest, FhirResponse};
use crate::store::{Access, TenantCtx, begin, read};
use actix_web::http::StatusCode;
use futures_util::future::BoxFuture;
use serde_json::{Value, json};
use terminology::params::Output;

/// The largest `count` of `$match`.
const MAX_MATCHES: usize = 100;
/// Results without `count`.
const DEFAULT_MATCHES: usize = 10;

const MATCH_GRADE: &str = "http://hl7.org/fhir/StructureDefinition/match-grade";

pub fn match_handler<'a>(
    state: &'a AppState,
    ctx: &'a TenantCtx,
    _: Invocation,
    req: FhirRequest,
) -> BoxFuture<'a, Result<FhirResponse, ApiError>> {
    Box::pin(patient_match(state, ctx, req))
}

pub fn pix_handler<'a>(
    state: &'a AppState,
    ctx: &'a TenantCtx,
    _: Invocation,
    req: FhirRequest,
) -> BoxFuture<'a, Result<FhirResponse, ApiError>> {
    Box::pin(pix(state, ctx, req))
}

/// `$match`: input `resource` (a Patient), `onlyCertainMatches`, `count`;
/// a searchset Bundle of the matching source Patients, best first, with
/// `search.score` and the `match-grade` extension.
async fn patient_match(
    state: &AppState,
    ctx: &TenantCtx,
    req: FhirRequest,
) -> Result<FhirResponse, ApiError> {
    let linker = linker(ctx)?;
    let params = crate::service::terminology::params(&req)?;
    params.only(&["resource", "onlyCertainMatches", "count"])?;
    let (patient, at) = params.json("resource")?.ok_or_else(|| {
        ApiError::invalid("$match needs the Patient to match in the parameter resource")
            .at("Parameters.parameter")
    })?;
    if patient.get("resourceType").and_then(Value::as_str) != Some("Patient") {
        return Err(ApiError::invalid("resource must be a Patient").at(at));
    }
    crate::service::body::check_resource(
        patient,
        fhir::ResourceType::parse("Patient").ok_or_else(|| ApiError::fault("no Patient type"))?,
        crate::service::body::IdRule::Ignored,
        None,
    )
    .map_err(|e| e.at(at))?;
    let only_certain = params.bool("onlyCertainMatches")?.unwrap_or(false);
    let count = params
        .count("count")?
        .unwrap_or(DEFAULT_MATCHES)
        .clamp(1, MAX_MATCHES);
    let mut client = state.pool.get().await?;
    let tx = begin(&mut client, ctx, Access::ReadOnly).await?;
    let results =
        mpi::store::match_patient(&**tx, linker, &ctx.tenant, patient, count, only_certain)
            .await
            .map_err(store_error)?;
    let keys: Vec<(String, String)> = results
        .iter()
        .map(|r| ("Patient".to_owned(), r.patient_id.clone()))
        .collect();
    let stored = read::read_many(&tx, ctx, &keys).await?;
    let mut response_touched = crate::audit::Touched::default();
    let mut entries = Vec::new();
    for result in &results {
        let Some(found) = stored.iter().find(|s| s.id == result.patient_id) else {
            continue;
        };
        if !crate::service::authorize::integrator_may_see(ctx, found.content.as_deref()) {
            continue;
        }
        let Some(content) = found
            .content
            .as_deref()
            .and_then(|text| serde_json::from_str::<Value>(text).ok())
        else {
            continue;
        };
        response_touched.add_stored(found);
        entries.push(json!({
            "fullUrl": format!("{}/Patient/{}", ctx.base_url, result.patient_id),
            "resource": content,
            "search": {
                "mode": "match",
                "score": result.search_score,
                "extension": [{"url": MATCH_GRADE, "valueCode": result.grade.code()}]
            }
        }));
    }
    let bundle = json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "total": entries.len(),
        "entry": entries,
    });
    let mut response = FhirResponse::json(StatusCode::OK, bundle);
    response.touched = response_touched;
    Ok(response)
}

/// PIXm: `sourceIdentifier` (system|value, exactly one), `targetSystem`
/// (any number): the identifiers of the same person, as `targetIdentifier`
/// and `targetId` parameters.
async fn pix(
    state: &AppState,
    ctx: &TenantCtx,
    req: FhirRequest,
) -> Result<FhirResponse, ApiError> {
    let linker = linker(ctx)?;
    let params = crate::service::terminology::params(&req)?;
    params.only(&["sourceIdentifier", "targetSystem", "_format"])?;
    let sources = params.all_text("sourceIdentifier");
    let [source] = sources.as_slice() else {
        return Err(
            ApiError::invalid("give exactly one sourceIdentifier (system|value)")
                .at("sourceIdentifier"),
        );
    };
    let Some((system, value)) = source
        .split_once('|')
        .filter(|(s, v)| !s.is_empty() && !v.is_empty())
    else {
        return Err(ApiError::invalid(
            "sourceIdentifier needs both the assigning authority and the value: system|value",
        )
        .at("sourceIdentifier"));
    };
    let targets = params.all_text("targetSystem");
    let mut client = state.pool.get().await?;
    let tx = begin(&mut client, ctx, Access::ReadOnly).await?;
    if !known_domain(&tx, ctx, linker, system).await? {
        return Err(
            ApiError::invalid("sourceIdentifier Assigning Authority not found")
                .with_code(fhir::IssueCode::CodeInvalid)
                .at("sourceIdentifier"),
        );
    }
    for target in &targets {
        if !known_domain(&tx, ctx, linker, target).await? {
            return Err(ApiError::new(Category::Forbidden, "targetSystem not found")
                .with_code(fhir::IssueCode::CodeInvalid)
                .at("targetSystem"));
        }
    }
    let references = mpi::store::cross_references(&**tx, linker, &ctx.tenant, system, value)
        .await
        .map_err(store_error)?;
    if references.is_empty() {
        return Err(
            ApiError::not_found("sourceIdentifier Patient Identifier not found")
                .at("sourceIdentifier"),
        );
    }
    let mut out = Output::default();
    let mut touched = crate::audit::Touched::default();
    let mut seen = std::collections::HashSet::new();
    for reference in &references {
        touched.patients.push(reference.patient_id.clone());
        for identifier in &reference.identifiers {
            let id_system = identifier.get("system").and_then(Value::as_str);
            let wanted = targets.is_empty() || id_system.is_some_and(|s| targets.contains(&s));
            let same_as_source = id_system == Some(system)
                && identifier.get("value").and_then(Value::as_str) == Some(value);
            if wanted && !same_as_source && seen.insert(identifier.to_string()) {
                out.add("targetIdentifier", "valueIdentifier", identifier.clone());
            }
        }
        out.add(
            "targetId",
            "valueReference",
            json!({"reference": format!("{}/Patient/{}", ctx.base_url, reference.patient_id)}),
        );
    }
    let mut response = FhirResponse::json(StatusCode::OK, out.into_parameters());
    response.touched = touched;
    Ok(response)
}

/// Whether `system` is a patient identity domain of this tenant: one the
/// MPI configuration names, or one some Patient's identifier carries.
async fn known_domain(
    db: &impl crate::store::Db,
    ctx: &TenantCtx,
    linker: &mpi::store::Linker,
    system: &str,
) -> Result<bool, ApiError> {
    if linker
        .config()
        .identifiers
        .iter()
        .any(|i| i.system == system)
    {
        return Ok(true);
    }
    let rows = db
        .query(
            "SELECT 1 FROM search_token WHERE tenant = $1 AND res_type = 'Patient' \
             AND param = 'identifier' AND system = $2 LIMIT 1",
            &[&ctx.tenant, &system],
        )
        .await?;
    Ok(!rows.is_empty())
}
