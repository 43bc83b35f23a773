//! The FHIR face of ingest (docs/ingest.md): `GET [base]/$ingest-status`,
//! a Parameters resource with each integrator's batch totals, error rate
//! and last success; and `POST [base]/$dhis2-import`, which takes DHIS2
//! Web API JSON, opens a batch for it, stores its records and sends it
//! complete, answering 202 while the worker writes it.

use super::caller;
use super::records::detect_dhis2;
use super::{DataType, api, store};
use crate::auth::Interaction;
use crate::error::ApiError;
use crate::service::operations::{Definition, Invocation, Level, Target, updates_the_type};
use crate::service::{AppState, Body, FhirRequest, FhirResponse};
use crate::store::{Access, TenantCtx, begin, format_instant};
use actix_web::http::StatusCode;
use futures_util::future::BoxFuture;
use serde_json::{Value, json};

pub const DEFINITIONS: &[Definition] = &[
    Definition {
        name: "$ingest-status",
        levels: &[Level::System],
        types: &[],
        methods: &["GET", "POST"],
        definition_url: "https://baraza.dev/fhir/OperationDefinition/ingest-status",
        needs: no_resource_needs,
        purpose: None,
        handler: status_handler,
    },
    Definition {
        name: "$dhis2-import",
        levels: &[Level::System],
        types: &[],
        methods: &["POST"],
        definition_url: "https://baraza.dev/fhir/OperationDefinition/dhis2-import",
        needs: updates_the_type,
        purpose: None,
        handler: import_handler,
    },
];

/// `$ingest-status` reads no resources: who sees what is decided by
/// [`caller::reach`] (integrators their own, tenant admins all).
fn no_resource_needs(_: &Target) -> Vec<(Interaction, String)> {
    Vec::new()
}

fn status_handler<'a>(
    state: &'a AppState,
    ctx: &'a TenantCtx,
    _: Invocation,
    _: FhirRequest,
) -> BoxFuture<'a, Result<FhirResponse, ApiError>> {
    Box::pin(ingest_status(state, ctx))
}

fn import_handler<'a>(
    state: &'a AppState,
    ctx: &'a TenantCtx,
    _: Invocation,
    req: FhirRequest,
) -> BoxFuture<'a, Result<FhirResponse, ApiError>> {
    Box::pin(dhis2_import(state, ctx, req))
}

fn count(name: &str, n: i64) -> Value {
    json!({"name": name, "valueInteger": i32::try_from(n).unwrap_or(i32::MAX)})
}

async fn ingest_status(state: &AppState, ctx: &TenantCtx) -> Result<FhirResponse, ApiError> {
    let reach = caller::reach(ctx)?;
    let mut client = state.pool.get().await?;
    let tx = begin(&mut client, ctx, Access::ReadOnly).await?;
    let summaries = store::summaries(&tx, &ctx.tenant, &reach).await?;
    let parameter: Vec<Value> = summaries
        .iter()
        .map(|s| {
            let processed = s.created + s.updated + s.unchanged + s.failed;
            let rate = if processed == 0 {
                0.0
            } else {
                s.failed as f64 / processed as f64
            };
            let mut part = vec![
                json!({"name": "integrator", "valueString": caller::label(s.integrator.as_deref())}),
                count("batches", s.batches),
                count("activeBatches", s.active),
                count("received", s.received),
                count("created", s.created),
                count("updated", s.updated),
                count("unchanged", s.unchanged),
                count("failed", s.failed),
                count("processed", processed),
                json!({"name": "errorRate", "valueDecimal": (rate * 10_000.0).round() / 10_000.0}),
            ];
            if let Some(t) = s.last_success_at {
                part.push(json!({"name": "lastSuccess", "valueInstant": format_instant(t)}));
            }
            json!({"name": "integrator", "part": part})
        })
        .collect();
    Ok(FhirResponse::json(
        StatusCode::OK,
        json!({"resourceType": "Parameters", "parameter": parameter}),
    ))
}

/// `kind=tracker|metadata|datavalues` (else told apart by the payload's
/// keys) and an optional `name`.
async fn dhis2_import(
    state: &AppState,
    ctx: &TenantCtx,
    req: FhirRequest,
) -> Result<FhirResponse, ApiError> {
    let reach = caller::reach(ctx)?;
    let Body::Resource(payload) = &req.body else {
        return Err(ApiError::invalid(
            "$dhis2-import needs the DHIS2 JSON as its body",
        ));
    };
    if state.dhis2.is_none() {
        return Err(api::no_dhis2_config());
    }
    let param = |name: &str| {
        req.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let data_type = match param("kind") {
        None => detect_dhis2(payload),
        Some("tracker") => DataType::Dhis2Tracker,
        Some("metadata") => DataType::Dhis2Metadata,
        Some("datavalues") => DataType::Dhis2DataValues,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "kind {other:?} is not one of tracker, metadata, datavalues"
            ))
            .at("kind"));
        }
    };
    let split = api::split_dhis2(state, ctx, data_type, payload).await?;
    let name = param("name").map_or_else(
        || format!("$dhis2-import {}", format_instant(crate::store::now())),
        str::to_owned,
    );
    let batch = api::open_batch(state, ctx, &name, data_type, None).await?;
    if !split.records.is_empty() {
        api::store_split(state, ctx, &batch.id, &reach, &split).await?;
    }
    let (_, batch) = api::action(state, ctx, &batch.id, "sendComplete").await?;
    let id = batch["id"].as_str().unwrap_or_default().to_owned();
    let mut parameter = vec![
        json!({"name": "batch", "valueString": id}),
        json!({"name": "status", "valueString": batch["status"]}),
        json!({"name": "statusUrl", "valueUrl": format!("/ingest/{}/batches/{id}", ctx.tenant)}),
        count("records", batch["counts"]["received"].as_i64().unwrap_or(0)),
        count(
            "failedAtMapping",
            batch["counts"]["failed"].as_i64().unwrap_or(0),
        ),
    ];
    if !split.warnings.is_empty() {
        parameter.push(json!({"name": "warnings", "resource": fhir::outcome::operation_outcome(&split.warnings)}));
    }
    Ok(FhirResponse::json(
        StatusCode::ACCEPTED,
        json!({"resourceType": "Parameters", "parameter": parameter}),
    ))
}
