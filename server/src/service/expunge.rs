//! `$expunge`: hard deletion for erasure (GDPR article 17) and retention,
//! for callers with the `$expunge` purpose permission. Unlike DELETE,
//! nothing is kept: every version, the index rows, MPI and terminology rows
//! and export files go (store/expunge.rs). The request's audit event
//! records that it happened and its target, never the content.
//!
//! - `POST [base]/Type/[id]/$expunge`: one resource;
//! - `POST [base]/Patient/[id]/$expunge?compartment=true`: the patient and
//!   every resource of its compartment, current or deleted;
//! - `POST [base]/$expunge?before=DATE[&_type=…]` and
//!   `POST [base]/Type/$expunge?before=DATE`: every resource whose last
//!   change is older than the date.
//!
//! Retention policies (per tenant and type, `$retention`) run the date
//! expunge on a schedule ([`spawn_retention`]).

use super::operations::{Definition, Invocation, Level, Target, input_parameters};
use super::{AppState, FhirRequest, FhirResponse};
use crate::auth::Interaction;
use crate::error::ApiError;
use crate::store::expunge::{self, Removed};
use crate::store::{Access, Db, TenantCtx, begin};
use actix_web::http::StatusCode;
use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use serde_json::{Value, json};

/// Resources expunged per transaction by a date expunge.
const BATCH: i64 = 500;

fn deletes_the_type(target: &Target) -> Vec<(Interaction, String)> {
    let t = target.resource_type().map_or("*", |t| t.as_str());
    vec![(Interaction::Delete, t.to_owned())]
}

pub const DEFINITIONS: &[Definition] = &[
    Definition {
        name: "$expunge",
        levels: &[Level::System, Level::Type, Level::Instance],
        types: &[],
        methods: &["POST"],
        definition_url: "https://baraza.dev/fhir/OperationDefinition/expunge",
        needs: deletes_the_type,
        purpose: Some("$expunge"),
        handler: expunge_operation,
    },
    Definition {
        name: "$retention",
        levels: &[Level::System],
        types: &[],
        methods: &["GET", "POST"],
        definition_url: "https://baraza.dev/fhir/OperationDefinition/retention",
        needs: deletes_the_type,
        purpose: Some("$expunge"),
        handler: retention_operation,
    },
];

fn expunge_operation<'a>(
    state: &'a AppState,
    ctx: &'a TenantCtx,
    invocation: Invocation,
    req: FhirRequest,
) -> BoxFuture<'a, Result<FhirResponse, ApiError>> {
    Box::pin(async move {
        let params = input_parameters(&req)?;
        let value = |name: &str| {
            params
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        for (name, _) in &params {
            if !matches!(name.as_str(), "before" | "compartment" | "_type") {
                return Err(
                    ApiError::invalid(format!("$expunge has no parameter {name}")).at(name.clone()),
                );
            }
        }
        let removed = match &invocation.target {
            Target::Instance(t, id) => {
                let compartment = match value("compartment") {
                    None | Some("false") => false,
                    Some("true") if t.as_str() == "Patient" => true,
                    Some(_) => {
                        return Err(ApiError::invalid(
                            "compartment=true is for Patient/[id]/$expunge only",
                        )
                        .at("compartment"));
                    }
                };
                let removed = one(state, ctx, t.as_str(), id.as_str(), compartment).await?;
                if removed.is_empty() {
                    return Err(ApiError::not_found(format!("{t}/{id} is not known")));
                }
                removed
            }
            target => {
                let before = value("before").ok_or_else(|| {
                    ApiError::invalid("a type- or system-level $expunge needs before=DATE")
                        .at("before")
                })?;
                let before = parse_date(before).ok_or_else(|| {
                    ApiError::invalid(format!("before {before:?} is not a date")).at("before")
                })?;
                let types = match (target.resource_type(), value("_type")) {
                    (Some(t), _) => Some(vec![t.as_str().to_owned()]),
                    (None, Some(listed)) => Some(listed_types(listed)?),
                    (None, None) => None,
                };
                if let Some(types) = &types {
                    for t in types {
                        super::authorize::reach(ctx, Interaction::Delete, t)?;
                    }
                }
                older_than(state, ctx, types.as_deref(), before).await?
            }
        };
        Ok(FhirResponse::json(
            StatusCode::OK,
            report("expunged", &removed),
        ))
    })
}

/// Expunges one resource, or a patient with its compartment, in one
/// transaction.
async fn one(
    state: &AppState,
    ctx: &TenantCtx,
    t: &str,
    id: &str,
    compartment: bool,
) -> Result<Removed, ApiError> {
    let mut client = state.pool.get().await?;
    let tx = begin(&mut client, ctx, Access::ReadWrite).await?;
    let (mut types, mut ids) = (vec![t.to_owned()], vec![id.to_owned()]);
    if compartment {
        let (member_types, member_ids) = compartment_members(&tx, ctx, id).await?;
        types.extend(member_types);
        ids.extend(member_ids);
    }
    let removed = super::patient_index::expunge_linked(&tx, ctx, &types, &ids).await?;
    tx.commit().await?;
    Ok(removed)
}

/// The resources of a patient's compartment, other Patients aside: current
/// ones by their index rows, deleted ones by a version that referred to
/// the patient.
async fn compartment_members(
    db: &impl Db,
    ctx: &TenantCtx,
    patient: &str,
) -> Result<(Vec<String>, Vec<String>), ApiError> {
    let (mut types, mut ids) = (Vec::new(), Vec::new());
    let patients = vec![patient.to_owned()];
    let compartment_types: Vec<String> = fhir::id::RESOURCE_TYPES
        .iter()
        .filter(|t| **t != "Patient" && super::authorize::in_patient_compartment(t))
        .map(|t| (*t).to_owned())
        .collect();
    for t in &compartment_types {
        let criteria = crate::search::criteria::Criteria {
            clauses: vec![super::export::spec::compartment_clause(t, Some(&patients))],
        };
        let one_type = [t.clone()];
        let mut after: Option<crate::search::sort::Cursor> = None;
        loop {
            let query = crate::search::execute::Query {
                types: &one_type,
                criteria: &criteria,
                sort: &[],
            };
            let page = crate::search::execute::find(db, ctx, query, 1000, after.as_ref()).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.cursor.clone());
            for found in page {
                types.push(found.stored.resource_type);
                ids.push(found.stored.id);
            }
        }
    }
    let (deleted_types, deleted_ids) =
        crate::store::expunge::deleted_referring(db, ctx, &compartment_types, "Patient", patient)
            .await?;
    types.extend(deleted_types);
    ids.extend(deleted_ids);
    Ok((types, ids))
}

/// Expunges, a batch per transaction, every resource of `types` whose
/// last change is older than `before`.
pub async fn older_than(
    state: &AppState,
    ctx: &TenantCtx,
    types: Option<&[String]>,
    before: DateTime<Utc>,
) -> Result<Removed, ApiError> {
    let mut removed = Removed::new();
    loop {
        let mut client = state.pool.get().await?;
        let tx = begin(&mut client, ctx, Access::ReadWrite).await?;
        let (batch_types, batch_ids) = expunge::older_than(&tx, ctx, types, before, BATCH).await?;
        if batch_ids.is_empty() {
            return Ok(removed);
        }
        for (t, n) in
            super::patient_index::expunge_linked(&tx, ctx, &batch_types, &batch_ids).await?
        {
            *removed.entry(t).or_default() += n;
        }
        tx.commit().await?;
    }
}

fn listed_types(listed: &str) -> Result<Vec<String>, ApiError> {
    listed
        .split(',')
        .map(|t| {
            fhir::ResourceType::parse(t.trim())
                .map(|t| t.as_str().to_owned())
                .ok_or_else(|| {
                    ApiError::invalid(format!("_type {t:?} is not a resource type")).at("_type")
                })
        })
        .collect()
}

/// A date or instant: its first instant.
fn parse_date(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    let date = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    Some(date.and_hms_opt(0, 0, 0)?.and_utc())
}

/// `{"resourceType": "Parameters", …}` with a part per type and the total.
fn report(name: &str, removed: &Removed) -> Value {
    let parts: Vec<Value> = removed
        .iter()
        .map(|(t, n)| json!({"name": t, "valueInteger": n}))
        .collect();
    let total: i64 = removed.values().sum();
    let mut parameter = vec![json!({"name": "total", "valueInteger": total})];
    if !parts.is_empty() {
        parameter.push(json!({"name": name, "part": parts}));
    }
    json!({"resourceType": "Parameters", "parameter": parameter})
}

/// `GET [base]/$retention`: the tenant's policies and the last runs;
/// `POST` with `policy` parts (`type`, `days`) replaces the policies, and
/// `run=true` runs them now.
fn retention_operation<'a>(
    state: &'a AppState,
    ctx: &'a TenantCtx,
    _: Invocation,
    req: FhirRequest,
) -> BoxFuture<'a, Result<FhirResponse, ApiError>> {
    Box::pin(async move {
        let mut ran = None;
        if req.method == actix_web::http::Method::POST {
            if let Some(policies) = policies_of(&req)? {
                let mut client = state.pool.get().await?;
                let tx = begin(&mut client, ctx, Access::ReadWrite).await?;
                expunge::set_policies(&tx, ctx, &policies).await?;
                tx.commit().await?;
            }
            let run = input_parameters(&req)?
                .iter()
                .any(|(n, v)| n == "run" && v == "true");
            if run {
                ran = Some(run_policies(state, ctx).await?);
            }
        }
        let mut client = state.pool.get().await?;
        let tx = begin(&mut client, ctx, Access::ReadOnly).await?;
        let policies = expunge::policies(&tx, ctx).await?;
        let runs = expunge::runs(&tx, ctx, 10).await?;
        let mut parameter: Vec<Value> = policies
            .iter()
            .map(|(t, days)| {
                json!({"name": "policy", "part": [
                    {"name": "type", "valueCode": t},
                    {"name": "days", "valueInteger": days}]})
            })
            .collect();
        if let Some(removed) = ran {
            parameter.push(json!({"name": "removed", "resource": report("expunged", &removed)}));
        }
        for (at, removed) in runs {
            let parts: Vec<Value> = removed
                .as_object()
                .into_iter()
                .flatten()
                .map(|(t, n)| json!({"name": t, "valueInteger": n}))
                .collect();
            let mut run =
                vec![json!({"name": "at", "valueInstant": crate::store::format_instant(at)})];
            run.extend(parts);
            parameter.push(json!({"name": "run", "part": run}));
        }
        Ok(FhirResponse::json(
            StatusCode::OK,
            json!({"resourceType": "Parameters", "parameter": parameter}),
        ))
    })
}

/// The `policy` parts of a POST, if any: (type, days).
fn policies_of(req: &FhirRequest) -> Result<Option<Vec<(String, i32)>>, ApiError> {
    let super::Body::Resource(body) = &req.body else {
        return Ok(None);
    };
    let mut policies = Vec::new();
    let mut any = false;
    for (i, parameter) in body["parameter"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        if parameter["name"] != "policy" {
            continue;
        }
        any = true;
        let at = format!("Parameters.parameter[{i}]");
        let part = |name: &str| {
            parameter["part"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|p| p["name"] == name)
                .cloned()
                .unwrap_or(Value::Null)
        };
        let type_part = part("type");
        let t = type_part["valueCode"]
            .as_str()
            .or_else(|| type_part["valueString"].as_str())
            .and_then(fhir::ResourceType::parse)
            .ok_or_else(|| {
                ApiError::invalid("a policy needs a type (a resource type)").at(at.clone())
            })?;
        let days = part("days")["valueInteger"]
            .as_i64()
            .and_then(|d| i32::try_from(d).ok())
            .filter(|d| *d > 0)
            .ok_or_else(|| {
                ApiError::invalid("a policy needs days, a positive integer").at(at.clone())
            })?;
        policies.push((t.as_str().to_owned(), days));
    }
    Ok(any.then_some(policies))
}

/// Runs the tenant's retention policies: expunges what each type keeps no
/// longer, and records the counts.
pub async fn run_policies(state: &AppState, ctx: &TenantCtx) -> Result<Removed, ApiError> {
    let policies = {
        let mut client = state.pool.get().await?;
        let tx = begin(&mut client, ctx, Access::ReadOnly).await?;
        expunge::policies(&tx, ctx).await?
    };
    let mut removed = Removed::new();
    if policies.is_empty() {
        return Ok(removed);
    }
    for (t, days) in policies {
        let before = Utc::now() - chrono::Duration::days(i64::from(days));
        for (t, n) in older_than(state, ctx, Some(&[t]), before).await? {
            *removed.entry(t).or_default() += n;
        }
    }
    let mut client = state.pool.get().await?;
    let tx = begin(&mut client, ctx, Access::ReadWrite).await?;
    expunge::record_run(&tx, ctx, &removed).await?;
    tx.commit().await?;
    Ok(removed)
}

/// Runs every tenant's retention policies every `interval`, logging what
/// each run removed (the runs are also recorded, see `$retention`).
pub fn spawn_retention(state: AppState, interval: std::time::Duration) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(interval).await;
            for tenant in state.tenants.active() {
                let ctx = TenantCtx::new(&tenant, &state.base_url, state.registries.clone());
                match run_policies(&state, &ctx).await {
                    Ok(removed) if removed.is_empty() => {}
                    Ok(removed) => {
                        tracing::info!(tenant, ?removed, "retention policies expunged resources")
                    }
                    Err(e) => tracing::warn!(tenant, error = %e, "retention policies failed"),
                }
            }
        }
    });
}
