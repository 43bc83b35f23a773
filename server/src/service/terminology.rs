//! The terminology operations (terminology-service.html) over HTTP:
//! `$expand`, `$validate-code`, `$lookup`, `$subsumes`, `$translate` at type
//! and instance level (GET with query parameters, POST with a Parameters
//! resource), `$load` (uploads, with the `terminology-load` permission) and
//! `metadata?mode=terminology`. The work is the `terminology` crate's; this
//! module reads the input, finds the instance and renders the answer.

use super::route::TerminologyOp;
use super::{AppState, Body, FhirRequest, FhirResponse};
use crate::error::{ApiError, Category};
use crate::store::{Access, Db, TenantCtx, begin, read};
use actix_web::http::StatusCode;
use fhir::{Id, ResourceType};
use serde_json::{Value, json};
use terminology::ops;
use terminology::params::Params;

/// The operation's input: query parameters plus a Parameters body.
pub(crate) fn params(req: &FhirRequest) -> Result<Params, ApiError> {
    let mut params = Params::from_query(&req.params);
    match &req.body {
        Body::Resource(body) => params.add_parameters(body)?,
        Body::None => {}
        Body::JsonPatch(_) | Body::Ndjson(_) => {
            return Err(ApiError::new(
                Category::UnsupportedMediaType,
                "terminology operations take a Parameters resource",
            ));
        }
    }
    Ok(params)
}

/// The resource an instance-level operation names: the tenant's own, or
/// global content (the R4 definitions and loaded releases).
pub async fn instance(
    db: &impl Db,
    ctx: &TenantCtx,
    t: ResourceType,
    id: &Id,
) -> Result<Value, ApiError> {
    if let Some(stored) = read::read_current(db, ctx, t.as_str(), id.as_str()).await? {
        if let Some(content) = stored.content.filter(|_| !stored.deleted) {
            return serde_json::from_str(&content).map_err(ApiError::fault);
        }
        return Err(ApiError::new(
            Category::Gone,
            format!("{t}/{id} was deleted"),
        ));
    }
    terminology::store::resource_by_id(&db.term(), &ctx.tenant, t.as_str(), id.as_str())
        .await?
        .ok_or_else(|| ApiError::not_found(format!("{t}/{id} is not known")))
}

/// For a search of CodeSystem, ValueSet or ConceptMap by `url` (and
/// `version`) alone that found nothing of the tenant's own: the global
/// resources of that url (docs/terminology.md).
pub async fn global_by_url(
    db: &impl Db,
    scope: &super::route::SearchScope,
    params: &[(String, String)],
) -> Result<Vec<(String, Value)>, ApiError> {
    let super::route::SearchScope::Type(t) = scope else {
        return Ok(Vec::new());
    };
    let criteria: Vec<&(String, String)> = params
        .iter()
        .filter(|(name, _)| !name.starts_with('_'))
        .collect();
    let value = |key: &str| {
        criteria
            .iter()
            .find(|(n, _)| n == key)
            .map(|(_, v)| v.as_str())
    };
    let only_url = criteria.iter().all(|(n, _)| n == "url" || n == "version");
    match (
        terminology::mirror::mirrored(t.as_str()),
        only_url,
        value("url"),
    ) {
        (true, true, Some(url)) => {
            let found = terminology::store::global_resources_by_url(
                &db.term(),
                t.as_str(),
                url,
                value("version"),
            )
            .await?;
            Ok(found
                .into_iter()
                .map(|r| {
                    let id = r.get("id").and_then(Value::as_str).unwrap_or_default();
                    (format!("{t}/{id}"), r)
                })
                .collect())
        }
        _ => Ok(Vec::new()),
    }
}

/// A read-only terminology operation.
pub async fn operation(
    db: &impl Db,
    state: &AppState,
    ctx: &TenantCtx,
    op: TerminologyOp,
    target: Option<(ResourceType, Id)>,
    req: &FhirRequest,
) -> Result<FhirResponse, ApiError> {
    let params = params(req)?;
    let instance = match &target {
        Some((t, id)) => Some(instance(db, ctx, *t, id).await?),
        None => None,
    };
    let term = db.term();
    let (tx, tenant, instance) = (&term, ctx.tenant.as_str(), instance.as_ref());
    let body = match op {
        TerminologyOp::Expand => {
            let limits = ops::Limits {
                max_expansion: state.terminology_max_expansion,
                ..ops::Limits::default()
            };
            ops::expand::value_set_expand(tx, tenant, &params, instance, limits).await?
        }
        TerminologyOp::ValidateCodeValueSet => {
            ops::validate::value_set_validate_code(tx, tenant, &params, instance).await?
        }
        TerminologyOp::ValidateCodeCodeSystem => {
            ops::validate::code_system_validate_code(tx, tenant, &params, instance).await?
        }
        TerminologyOp::Lookup => {
            ops::lookup::code_system_lookup(tx, tenant, &params, instance).await?
        }
        TerminologyOp::Subsumes => {
            ops::lookup::code_system_subsumes(tx, tenant, &params, instance).await?
        }
        TerminologyOp::Translate => {
            ops::translate::concept_map_translate(tx, tenant, &params, instance).await?
        }
        TerminologyOp::Load => {
            return Err(ApiError::invalid(
                "$load changes content; it cannot run here",
            ));
        }
    };
    Ok(FhirResponse::json(StatusCode::OK, body))
}

/// `GET metadata?mode=terminology`.
pub async fn capabilities(db: &impl Db, ctx: &TenantCtx) -> Result<FhirResponse, ApiError> {
    let body =
        ops::capabilities::terminology_capabilities(&db.term(), &ctx.tenant, &ctx.base_url).await?;
    Ok(FhirResponse::json(StatusCode::OK, body))
}

/// `POST CodeSystem/$load`: a release uploaded in a Parameters resource
/// (`format`, `file` as an Attachment with base64 `data`, optional `url`,
/// `version`, `name`), stored for the request's tenant in one transaction.
pub async fn load(
    state: &AppState,
    ctx: &TenantCtx,
    req: FhirRequest,
) -> Result<FhirResponse, ApiError> {
    let params = params(&req)?;
    params.only(&["format", "file", "url", "version", "name", "title"])?;
    let Some((format, format_at)) = params.text("format")? else {
        return Err(ApiError::invalid("$load needs format (csv, icd10 or icd10cm)").at("format"));
    };
    let format: terminology::formats::Format = format
        .parse()
        .map_err(|e: String| ApiError::invalid(e).at(format_at))?;
    if matches!(
        format,
        terminology::formats::Format::Snomed | terminology::formats::Format::Loinc
    ) {
        return Err(ApiError::invalid(format!(
            "a {format} release is a directory of files; load it with `baraza terminology load`"
        ))
        .at(format_at));
    }
    let Some((file, file_at)) = params.json("file")? else {
        return Err(
            ApiError::invalid("$load needs file (an Attachment with base64 data)").at("file"),
        );
    };
    let data = file.get("data").and_then(Value::as_str).ok_or_else(|| {
        ApiError::invalid("file has no data").at(format!("{file_at}.valueAttachment.data"))
    })?;
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map_err(|e| ApiError::invalid(format!("file data is not base64: {e}")).at(file_at))?;
    let dir = std::env::temp_dir().join(format!("baraza-load-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).map_err(ApiError::fault)?;
    let path = dir.join("upload");
    let result = async {
        std::fs::write(&path, &bytes).map_err(ApiError::fault)?;
        let options = terminology::formats::Options {
            url: params.str("url")?.map(str::to_owned),
            version: params.str("version")?.map(str::to_owned),
            name: params.str("name")?.map(str::to_owned),
            title: params.str("title")?.map(str::to_owned),
            ..Default::default()
        };
        let uploaded = |e: terminology::model::LoadError| {
            ApiError::new(
                Category::Unprocessable,
                format!("the upload, line {}: {}", e.position.line, e.message),
            )
            .at(file_at)
        };
        let (header, records) =
            terminology::formats::open(format, &path, &options).map_err(uploaded)?;
        let mut client = state.pool.get().await?;
        let tx = begin(&mut client, ctx, Access::ReadWrite).await?;
        let load_options = terminology::load::LoadOptions::new(&ctx.tenant, "load");
        let summary =
            terminology::release::load_release(&tx.term(), &load_options, &header, records)
                .await
                .map_err(|e| match e {
                    terminology::load::LoadFailure::Input(e) => uploaded(e),
                    other => ApiError::from(terminology::TermError::from(other)).at(file_at),
                })?;
        tx.commit().await?;
        Ok::<_, ApiError>(summary)
    }
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    let summary = result?;
    let mut out = terminology::params::Output::default();
    out.add("url", "valueUri", json!(summary.url));
    if !summary.version.is_empty() {
        out.add("version", "valueString", json!(summary.version));
    }
    out.add("concepts", "valueInteger", json!(summary.concepts));
    out.add("isA", "valueInteger", json!(summary.edges));
    out.add("designations", "valueInteger", json!(summary.designations));
    out.add("properties", "valueInteger", json!(summary.properties));
    Ok(FhirResponse::json(StatusCode::OK, out.into_parameters()))
}
