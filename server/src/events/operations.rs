//! The Subscription operations of the Backport IG: `$status` (the
//! subscription's status and event count) and `$get-ws-binding-token`
//! (a short-lived token a websocket client binds with).

use crate::error::ApiError;
use crate::service::operations::{Definition, Invocation, Level, Target, reads_the_type};
use crate::service::{AppState, FhirRequest, FhirResponse};
use crate::store::{Access, TenantCtx, begin};
use actix_web::http::StatusCode;
use futures_util::future::BoxFuture;
use serde_json::json;

const BACKPORT: &str = "http://hl7.org/fhir/uv/subscriptions-backport/OperationDefinition";

pub const DEFINITIONS: &[Definition] = &[
    Definition {
        name: "$status",
        levels: &[Level::Instance],
        types: &["Subscription"],
        methods: &["GET", "POST"],
        definition_url: "http://hl7.org/fhir/uv/subscriptions-backport/OperationDefinition/backport-subscription-status",
        needs: reads_the_type,
        purpose: None,
        handler: status,
    },
    Definition {
        name: "$get-ws-binding-token",
        levels: &[Level::Instance],
        types: &["Subscription"],
        methods: &["GET", "POST"],
        definition_url: "http://hl7.org/fhir/uv/subscriptions-backport/OperationDefinition/backport-subscription-get-ws-binding-token",
        needs: reads_the_type,
        purpose: None,
        handler: binding_token,
    },
];

fn instance_id(invocation: &Invocation) -> Result<String, ApiError> {
    match &invocation.target {
        Target::Instance(_, id) => Ok(id.as_str().to_owned()),
        _ => Err(ApiError::invalid(format!(
            "{} is invoked on one Subscription ({BACKPORT})",
            invocation.name()
        ))),
    }
}

/// `GET [base]/Subscription/{id}/$status`: a searchset Bundle with the
/// subscription's status Parameters.
fn status<'a>(
    state: &'a AppState,
    ctx: &'a TenantCtx,
    invocation: Invocation,
    _req: FhirRequest,
) -> BoxFuture<'a, Result<FhirResponse, ApiError>> {
    Box::pin(async move {
        let id = instance_id(&invocation)?;
        let mut client = state.pool.get().await?;
        let tx = begin(&mut client, ctx, Access::ReadOnly).await?;
        let parameters = super::subscription::status_parameters(&tx, ctx, &id).await?;
        Ok(FhirResponse::json(
            StatusCode::OK,
            json!({
                "resourceType": "Bundle",
                "type": "searchset",
                "total": 1,
                "entry": [{
                    "fullUrl": format!("urn:uuid:{}", uuid::Uuid::new_v4()),
                    "resource": parameters,
                    "search": {"mode": "match"},
                }],
            }),
        ))
    })
}

/// `GET [base]/Subscription/{id}/$get-ws-binding-token`: a token valid for
/// a few minutes, the websocket URL, and its expiry.
fn binding_token<'a>(
    state: &'a AppState,
    ctx: &'a TenantCtx,
    invocation: Invocation,
    _req: FhirRequest,
) -> BoxFuture<'a, Result<FhirResponse, ApiError>> {
    Box::pin(async move {
        let id = instance_id(&invocation)?;
        let mut client = state.pool.get().await?;
        let tx = begin(&mut client, ctx, crate::store::Access::ReadWrite).await?;
        let (token, expires) = super::websocket::issue_token(&tx, ctx, &id).await?;
        tx.commit().await?;
        let url = super::websocket::socket_url(&ctx.base_url);
        Ok(FhirResponse::json(
            StatusCode::OK,
            json!({
                "resourceType": "Parameters",
                "parameter": [
                    {"name": "token", "valueString": token},
                    {"name": "expiration", "valueDateTime": expires},
                    {"name": "subscription", "valueString": format!("{}/Subscription/{id}", ctx.base_url)},
                    {"name": "websocket-url", "valueUrl": url},
                ],
            }),
        ))
    })
}
