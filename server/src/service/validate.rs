//! `$validate` at type and instance level (resource-operation-validate):
//! the same checks as a write, without writing. Answers 200 with the
//! OperationOutcome whether or not the resource is valid; 4xx only when
//! validation could not be performed.

use super::body::{IdRule, check_resource};
use super::{AppState, Body, FhirRequest, FhirResponse};
use crate::error::{ApiError, Category};
use crate::store::{Access, TenantCtx, begin, read};
use actix_web::http::StatusCode;
use fhir::outcome::operation_outcome;
use fhir::{Id, Issue, IssueCode, ResourceType};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Create,
    Update,
    Delete,
}

pub async fn validate(
    state: &AppState,
    ctx: &TenantCtx,
    t: ResourceType,
    id: Option<Id>,
    req: FhirRequest,
) -> Result<FhirResponse, ApiError> {
    let (resource, mode) = input(&req)?;
    let issues = match mode {
        Mode::Delete => {
            let Some(id) = &id else {
                return Err(
                    ApiError::invalid("mode=delete needs an instance-level $validate").at("mode"),
                );
            };
            let mut client = state.pool.get().await?;
            let tx = begin(&mut client, ctx, Access::ReadOnly).await?;
            match read::read_current(&tx, ctx, t.as_str(), id.as_str()).await? {
                Some(stored) if !stored.deleted => Vec::new(),
                _ => vec![Issue::error(
                    IssueCode::NotFound,
                    format!("{t}/{id} does not exist, so it cannot be deleted"),
                )],
            }
        }
        Mode::Create | Mode::Update => {
            let resource = resource
                .ok_or_else(|| ApiError::invalid("$validate needs a resource").at("resource"))?;
            let id_rule = match (mode, &id) {
                (Mode::Update, Some(id)) => IdRule::MustEqual(id.as_str()),
                (Mode::Update, None) => match resource.get("id").and_then(Value::as_str) {
                    Some(body_id) => IdRule::MustEqual(body_id),
                    None => {
                        return Ok(outcome(vec![
                            Issue::error(IssueCode::Required, "mode=update needs a resource id")
                                .at(format!("{t}.id")),
                        ]));
                    }
                },
                _ => IdRule::Ignored,
            };
            let mut issues = match check_resource(&resource, t, id_rule, None) {
                Ok(warnings) => warnings,
                Err(e) if e.category == Category::Fault => return Err(e),
                Err(e) => e.issues,
            };
            // Terminology bindings: errors for required, warnings otherwise.
            let mut client = state.pool.get().await?;
            let tx = begin(&mut client, ctx, Access::ReadOnly).await?;
            issues.extend(super::bindings::issues(&tx, ctx, &resource).await?);
            issues
        }
    };
    Ok(outcome(issues))
}

fn outcome(issues: Vec<Issue>) -> FhirResponse {
    FhirResponse::json(StatusCode::OK, operation_outcome(&issues))
}

/// The resource and mode: a bare resource, or a Parameters with `resource`
/// and `mode`.
fn input(req: &FhirRequest) -> Result<(Option<Value>, Mode), ApiError> {
    let mut mode = Mode::Create;
    let parse_mode = |raw: &str| match raw {
        "create" => Ok(Mode::Create),
        "update" => Ok(Mode::Update),
        "delete" => Ok(Mode::Delete),
        other => Err(
            ApiError::invalid(format!("mode {other:?} is not create, update or delete")).at("mode"),
        ),
    };
    for (name, value) in &req.params {
        if name == "mode" {
            mode = parse_mode(value)?;
        }
    }
    let body = match &req.body {
        Body::Resource(v) => v,
        Body::None => return Ok((None, mode)),
        Body::JsonPatch(_) | Body::Ndjson(_) => {
            return Err(ApiError::new(
                Category::UnsupportedMediaType,
                "$validate takes a resource or Parameters",
            ));
        }
    };
    if body.get("resourceType").and_then(Value::as_str) != Some("Parameters") {
        return Ok((Some(body.clone()), mode));
    }
    let mut resource = None;
    for param in body
        .get("parameter")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        match param.get("name").and_then(Value::as_str) {
            Some("resource") => resource = param.get("resource").cloned(),
            Some("mode") => {
                let raw = param
                    .get("valueCode")
                    .or_else(|| param.get("valueString"))
                    .and_then(Value::as_str)
                    .unwrap_or("");
                mode = parse_mode(raw)?;
            }
            _ => {}
        }
    }
    Ok((resource, mode))
}
