//! The batch lifecycle as plain JSON answers (docs/ingest.md): create,
//! upload, `sendComplete`, `terminate`, status, list and the failed
//! records' OperationOutcomes. `http::ingest` routes, authenticates and
//! audits; everything here runs in transactions of the caller's tenant.

use super::caller::{self, Reach};
use super::records::{self, Split};
use super::store::{self, Batch, NewBatch};
use super::{DataType, Status, illegal_transition};
use crate::error::{ApiError, Category};
use crate::service::AppState;
use crate::store::{Access, TenantCtx, begin};
use actix_web::http::StatusCode;
use serde_json::{Value, json};

/// A status and a JSON body.
pub type Answer = (StatusCode, Value);

const MAX_NAME: usize = 200;
const DEFAULT_LIST: i64 = 100;
const MAX_LIST: i64 = 1000;

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("there is no batch {id:?} that you can see"))
}

/// `POST /ingest/{tenant}/batches`: `{"name", "dataType", "expectedRecordCount"?}`.
pub async fn create(state: &AppState, ctx: &TenantCtx, body: &Value) -> Result<Answer, ApiError> {
    caller::reach(ctx)?;
    let name = body
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.trim().is_empty() && n.len() <= MAX_NAME)
        .ok_or_else(|| {
            ApiError::invalid(format!(
                "name must be a non-empty string of at most {MAX_NAME} bytes"
            ))
            .at("name")
        })?;
    let data_type = body
        .get("dataType")
        .and_then(Value::as_str)
        .and_then(DataType::parse)
        .ok_or_else(|| {
            let known: Vec<&str> = DataType::ALL.iter().map(|t| t.as_str()).collect();
            ApiError::invalid(format!("dataType must be one of {}", known.join(", ")))
                .at("dataType")
        })?;
    if data_type.is_dhis2() && state.dhis2.is_none() {
        return Err(no_dhis2_config().at("dataType"));
    }
    if data_type == DataType::Csv && state.csv.is_none() {
        return Err(ApiError::new(
            Category::Unprocessable,
            "this server has no CSV mapping config (set BARAZA_CSV_CONFIG to a mapping file)",
        )
        .at("dataType"));
    }
    let expected = match body.get("expectedRecordCount") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_i64().filter(|n| *n >= 0).ok_or_else(|| {
            ApiError::invalid("expectedRecordCount must be a whole number ≥ 0")
                .at("expectedRecordCount")
        })?),
    };
    let batch = open_batch(state, ctx, name, data_type, expected).await?;
    Ok((StatusCode::CREATED, batch.to_json()))
}

/// Creates a batch in status `started` and returns it.
pub async fn open_batch(
    state: &AppState,
    ctx: &TenantCtx,
    name: &str,
    data_type: DataType,
    expected: Option<i64>,
) -> Result<Batch, ApiError> {
    let id = uuid::Uuid::new_v4().to_string();
    let integrator = caller::integrator_of(ctx);
    let claims = ctx.caller.as_deref().map(caller::to_claims);
    let mut client = state.pool.get().await?;
    let tx = begin(&mut client, ctx, Access::ReadWrite).await?;
    let new = NewBatch {
        id: &id,
        name,
        data_type,
        integrator: integrator.as_deref(),
        caller: claims.as_ref(),
        expected,
    };
    store::insert_batch(&tx, &ctx.tenant, &new).await?;
    let batch = store::find_batch(&tx, &ctx.tenant, &id, &Reach::All, false)
        .await?
        .ok_or_else(|| ApiError::fault("a new batch vanished"))?;
    tx.commit().await?;
    Ok(batch)
}

pub fn no_dhis2_config() -> ApiError {
    ApiError::new(
        Category::Unprocessable,
        "this server has no DHIS2 mapping config (set BARAZA_DHIS2_CONFIG to a mapping file)",
    )
}

/// `POST /ingest/{tenant}/batches/{id}/records`: stores the upload's
/// records durably; several uploads are allowed while the batch is
/// `started`.
pub async fn upload(
    state: &AppState,
    ctx: &TenantCtx,
    id: &str,
    body: &[u8],
) -> Result<Answer, ApiError> {
    let reach = caller::reach(ctx)?;
    let batch = {
        let mut client = state.pool.get().await?;
        let tx = begin(&mut client, ctx, Access::ReadOnly).await?;
        store::find_batch(&tx, &ctx.tenant, id, &reach, false)
            .await?
            .ok_or_else(|| not_found(id))?
    };
    if batch.status != Status::Started {
        return Err(illegal_transition("an upload", batch.status));
    }
    let split = split_upload(state, ctx, batch.data_type, body).await?;
    if split.records.is_empty() {
        return Err(ApiError::invalid("the upload holds no records"));
    }
    let (batch, failed) = store_split(state, ctx, id, &reach, &split).await?;
    let mut answer = json!({
        "batch": batch.to_json(),
        "upload": {"records": split.records.len(), "failed": failed},
    });
    if !split.warnings.is_empty() {
        answer["outcome"] = fhir::outcome::operation_outcome(&split.warnings);
    }
    Ok((StatusCode::OK, answer))
}

/// Appends the records under the batch's row lock, if it is still
/// `started`; returns the batch and how many records failed at upload.
pub async fn store_split(
    state: &AppState,
    ctx: &TenantCtx,
    id: &str,
    reach: &Reach,
    split: &Split,
) -> Result<(Batch, usize), ApiError> {
    let mut client = state.pool.get().await?;
    let tx = begin(&mut client, ctx, Access::ReadWrite).await?;
    let batch = store::find_batch(&tx, &ctx.tenant, id, reach, true)
        .await?
        .ok_or_else(|| not_found(id))?;
    if batch.status != Status::Started {
        return Err(illegal_transition("an upload", batch.status));
    }
    store::append_records(&tx, &batch, &split.records).await?;
    let batch = store::find_batch(&tx, &ctx.tenant, id, reach, false)
        .await?
        .ok_or_else(|| not_found(id))?;
    tx.commit().await?;
    let failed = split.records.iter().filter(|r| r.outcome.is_some()).count();
    Ok((batch, failed))
}

/// Reads an upload of `data_type` into records.
pub async fn split_upload(
    state: &AppState,
    ctx: &TenantCtx,
    data_type: DataType,
    body: &[u8],
) -> Result<Split, ApiError> {
    match data_type {
        DataType::Ndjson => {
            let text = std::str::from_utf8(body)
                .map_err(|_| ApiError::invalid("an NDJSON upload must be UTF-8"))?;
            Ok(records::of_ndjson(text))
        }
        DataType::FhirBundle => records::of_bundle(parse_json(body)?),
        DataType::Csv => {
            let text = std::str::from_utf8(body)
                .map_err(|_| ApiError::invalid("a CSV upload must be UTF-8"))?;
            let cfg = state
                .csv
                .as_deref()
                .ok_or_else(|| ApiError::new(Category::Unprocessable, "no CSV mapping config"))?;
            Ok(records::of_mapped(adapters::csv::map_csv(text, cfg)))
        }
        dhis2 => {
            let payload = parse_json(body)?;
            split_dhis2(state, ctx, dhis2, &payload).await
        }
    }
}

/// Maps a DHIS2 payload into records; parents outside an org-unit payload
/// count as known when their Location was imported before.
pub async fn split_dhis2(
    state: &AppState,
    ctx: &TenantCtx,
    data_type: DataType,
    payload: &Value,
) -> Result<Split, ApiError> {
    let cfg = state.dhis2.as_deref().ok_or_else(no_dhis2_config)?;
    let mut known = std::collections::HashSet::new();
    let outside = records::outside_parents(payload);
    if !outside.is_empty() {
        let mut client = state.pool.get().await?;
        let tx = begin(&mut client, ctx, Access::ReadOnly).await?;
        for uid in outside {
            let found = crate::store::read::read_current(&tx, ctx, "Location", &cfg.id(&uid))
                .await?
                .is_some_and(|stored| !stored.deleted);
            if found {
                known.insert(uid);
            }
        }
    }
    records::of_dhis2(data_type, payload, cfg, &known)
}

fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid(format!("the body is not JSON: {e}")))
}

/// `PUT /ingest/{tenant}/batches/{id}/action/{action}`.
pub async fn action(
    state: &AppState,
    ctx: &TenantCtx,
    id: &str,
    action: &str,
) -> Result<Answer, ApiError> {
    let reach = caller::reach(ctx)?;
    let mut client = state.pool.get().await?;
    let tx = begin(&mut client, ctx, Access::ReadWrite).await?;
    let batch = store::find_batch(&tx, &ctx.tenant, id, &reach, true)
        .await?
        .ok_or_else(|| not_found(id))?;
    match action {
        "sendComplete" => {
            if batch.status != Status::Started {
                return Err(illegal_transition("sendComplete", batch.status));
            }
            match batch.expected {
                Some(expected) if expected != batch.received => {
                    let message = format!(
                        "expectedRecordCount was {expected}, but {} records were received",
                        batch.received
                    );
                    store::set_status(&tx, &ctx.tenant, id, Status::Failed, Some(&message)).await?;
                    store::skip_pending(&tx, &batch).await?;
                }
                _ => store::set_status(&tx, &ctx.tenant, id, Status::SendCompleted, None).await?,
            }
        }
        "terminate" => {
            if batch.status.is_final() {
                return Err(illegal_transition("terminate", batch.status));
            }
            store::set_status(&tx, &ctx.tenant, id, Status::Terminated, None).await?;
            store::skip_pending(&tx, &batch).await?;
        }
        other => {
            return Err(ApiError::not_found(format!(
                "unknown action {other:?}: the actions are sendComplete and terminate"
            )));
        }
    }
    let batch = store::find_batch(&tx, &ctx.tenant, id, &reach, false)
        .await?
        .ok_or_else(|| not_found(id))?;
    tx.commit().await?;
    if batch.status == Status::SendCompleted {
        super::worker::wake();
    }
    Ok((StatusCode::OK, batch.to_json()))
}

/// `GET /ingest/{tenant}/batches/{id}`.
pub async fn get(state: &AppState, ctx: &TenantCtx, id: &str) -> Result<Answer, ApiError> {
    let reach = caller::reach(ctx)?;
    let mut client = state.pool.get().await?;
    let tx = begin(&mut client, ctx, Access::ReadOnly).await?;
    let batch = store::find_batch(&tx, &ctx.tenant, id, &reach, false)
        .await?
        .ok_or_else(|| not_found(id))?;
    Ok((StatusCode::OK, batch.to_json()))
}

/// `GET /ingest/{tenant}/batches?status=&integrator=&_count=`.
pub async fn list(
    state: &AppState,
    ctx: &TenantCtx,
    params: &[(String, String)],
) -> Result<Answer, ApiError> {
    let reach = caller::reach(ctx)?;
    let mut status = None;
    let mut integrator = None;
    let mut limit = DEFAULT_LIST;
    for (name, value) in params {
        match name.as_str() {
            "status" => {
                status = Some(Status::parse(value).ok_or_else(|| {
                    let known: Vec<&str> = Status::ALL.iter().map(|s| s.as_str()).collect();
                    ApiError::invalid(format!("status must be one of {}", known.join(", ")))
                        .at("status")
                })?)
            }
            "integrator" => integrator = Some(value.clone()),
            "_count" => {
                limit = value
                    .parse::<i64>()
                    .ok()
                    .filter(|n| (1..=MAX_LIST).contains(n))
                    .ok_or_else(|| {
                        ApiError::invalid(format!("_count must be 1 to {MAX_LIST}")).at("_count")
                    })?
            }
            other => {
                return Err(ApiError::invalid(format!(
                    "unknown parameter {other:?}: use status, integrator or _count"
                ))
                .at(other.to_owned()));
            }
        }
    }
    let mut client = state.pool.get().await?;
    let tx = begin(&mut client, ctx, Access::ReadOnly).await?;
    let batches = store::list_batches(
        &tx,
        &ctx.tenant,
        &reach,
        status,
        integrator.as_deref(),
        limit,
    )
    .await?;
    let items: Vec<Value> = batches.iter().map(Batch::to_json).collect();
    Ok((StatusCode::OK, json!({"batches": items})))
}

/// `GET /ingest/{tenant}/batches/{id}/errors`: one OperationOutcome per
/// failed record, one per line; each names the record (`id` `rec-{seq}`)
/// and its source id (an extension).
pub async fn errors(state: &AppState, ctx: &TenantCtx, id: &str) -> Result<String, ApiError> {
    let reach = caller::reach(ctx)?;
    let mut client = state.pool.get().await?;
    let tx = begin(&mut client, ctx, Access::ReadOnly).await?;
    let batch = store::find_batch(&tx, &ctx.tenant, id, &reach, false)
        .await?
        .ok_or_else(|| not_found(id))?;
    let mut text = String::new();
    for failed in store::failed_records(&tx, &batch).await? {
        let mut outcome = failed.outcome;
        if let Some(object) = outcome.as_object_mut() {
            object.insert("id".into(), json!(format!("rec-{}", failed.seq)));
            let mut extension =
                vec![json!({"url": SOURCE_EXTENSION, "valueString": failed.source_id})];
            if let Some(line) = failed.line {
                extension.push(json!({"url": LINE_EXTENSION, "valueInteger": line}));
            }
            object.insert("extension".into(), Value::Array(extension));
        }
        text.push_str(&outcome.to_string());
        text.push('\n');
    }
    Ok(text)
}

/// The extension naming a failed record's source id in the errors file.
pub const SOURCE_EXTENSION: &str = "https://baraza.dev/fhir/StructureDefinition/ingest-source-id";

/// The extension naming a failed record's line in an NDJSON upload.
pub const LINE_EXTENSION: &str = "https://baraza.dev/fhir/StructureDefinition/ingest-line";
