//! Bulk Data `$import` of NDJSON (docs/analytics.md). R4 has no final
//! `$import`; Baraza follows the Bulk Data IG's import draft and the
//! async pattern of `$export`:
//!
//! - `POST [base]/$import` with `Prefer: respond-async` and either an
//!   NDJSON body (`Content-Type: application/fhir+ndjson`; `?type=` may
//!   name its one resource type) or a `Parameters` resource / JSON
//!   manifest naming inputs by URL ([`request`]), each under a prefix of
//!   `BARAZA_IMPORT_ALLOWED_URLS` (else 403). It answers 202 with
//!   `Content-Location: [base]/$import-status/{job}`.
//! - Every input becomes an ingest batch of the caller (docs/ingest.md):
//!   an upload is stored before the 202, URLs are read in the background
//!   ([`fetch`]), and the ingest worker writes the records with the same
//!   validation, bindings, MPI linking, events and audit as any write.
//! - [`poll`] answers the status (202 with `X-Progress`, then 200 with
//!   each input's counts), DELETE cancels, and each input's errors are
//!   NDJSON OperationOutcomes naming their lines.
//!
//! Like the batches it makes, `$import` is for integrators and tenant
//! admins; each record is written with the caller's rights.

pub mod fetch;
pub mod poll;
pub mod request;
pub mod store;

use super::caller;
use super::store::{self as batches, NewBatch};
use super::{DataType, Status};
use crate::auth::Interaction;
use crate::error::{ApiError, Category};
use crate::service::operations::{Definition, Invocation, Level, Target};
use crate::service::{AppState, Body, FhirRequest, FhirResponse};
use crate::store::{Access, TenantCtx, begin};
use actix_web::http::StatusCode;
use futures_util::future::BoxFuture;
use request::UrlInput;

/// `$import` settings: the URL allow-list and the client that reads
/// inputs (no redirects, so a redirect cannot leave the allow-list).
#[derive(Debug)]
pub struct Imports {
    pub allowed_urls: Vec<String>,
    pub client: reqwest::Client,
}

impl Imports {
    pub fn new(settings: &crate::config::Settings) -> Imports {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(std::time::Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        Imports {
            allowed_urls: settings.import_allowed_urls.clone(),
            client,
        }
    }
}

pub const DEFINITIONS: &[Definition] = &[Definition {
    name: "$import",
    levels: &[Level::System],
    types: &[],
    methods: &["POST"],
    definition_url: "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/import",
    needs: checked_per_record,
    purpose: None,
    handler: kick_off,
}];

/// Who may import is [`caller::reach`]'s rule; the write rights are
/// checked for each declared type at the kick-off and for each record as
/// it is written.
fn checked_per_record(_: &Target) -> Vec<(Interaction, String)> {
    Vec::new()
}

fn kick_off<'a>(
    state: &'a AppState,
    ctx: &'a TenantCtx,
    _: Invocation,
    req: FhirRequest,
) -> BoxFuture<'a, Result<FhirResponse, ApiError>> {
    Box::pin(start(state, ctx, req))
}

/// One input as the kick-off names it.
enum Source<'a> {
    Upload(&'a [u8], Option<String>),
    Urls(Vec<UrlInput>),
}

async fn start(
    state: &AppState,
    ctx: &TenantCtx,
    req: FhirRequest,
) -> Result<FhirResponse, ApiError> {
    caller::reach(ctx)?;
    if !req.respond_async {
        return Err(ApiError::invalid(
            "a Bulk Data kick-off needs the header Prefer: respond-async (async.html)",
        ));
    }
    let source = match &req.body {
        Body::Ndjson(bytes) => {
            let res_type = upload_type(&req.params)?;
            Source::Upload(bytes, res_type)
        }
        Body::Resource(body) => {
            if let Some((name, _)) = req.params.iter().find(|(n, _)| n != "_format") {
                return Err(ApiError::invalid(format!(
                    "{name} is not a query parameter of $import with a JSON body"
                ))
                .at(name.clone()));
            }
            let mut urls = Vec::new();
            for (input, at) in request::url_inputs(body)? {
                request::check_allowed(&input.url, &state.imports.allowed_urls, &at)?;
                check_rights(ctx, input.res_type.as_deref(), &at)?;
                urls.push(input);
            }
            Source::Urls(urls)
        }
        Body::None => {
            return Err(ApiError::invalid(
                "$import needs an NDJSON body (application/fhir+ndjson) or a Parameters resource naming its inputs",
            ));
        }
        Body::JsonPatch(_) => {
            return Err(ApiError::new(
                Category::UnsupportedMediaType,
                "$import takes NDJSON (application/fhir+ndjson) or a Parameters resource, not a JSON Patch",
            ));
        }
    };
    if let Source::Upload(_, res_type) = &source {
        check_rights(ctx, res_type.as_deref(), "type")?;
    }
    let id = uuid::Uuid::new_v4().to_string();
    let fetching = matches!(source, Source::Urls(_));
    create_job(state, ctx, &req, &id, source).await?;
    if fetching {
        fetch::spawn(state.clone(), ctx.tenant.clone(), id.clone());
    } else {
        super::worker::wake();
    }
    let mut response = FhirResponse::json(
        StatusCode::ACCEPTED,
        fhir::outcome::operation_outcome(&[fhir::Issue::information(
            fhir::IssueCode::Informational,
            format!(
                "import job {id} started; poll {}/$import-status/{id}",
                ctx.base_url
            ),
        )]),
    );
    response.location = Some(format!("$import-status/{id}"));
    Ok(response)
}

/// The `type` query parameter of an upload: the resource type of every line.
fn upload_type(params: &[(String, String)]) -> Result<Option<String>, ApiError> {
    let mut res_type = None;
    for (name, value) in params {
        match name.as_str() {
            "type" => {
                let t = fhir::ResourceType::parse(value).ok_or_else(|| {
                    ApiError::invalid(format!("{value:?} is not an R4 resource type")).at("type")
                })?;
                res_type = Some(t.as_str().to_owned());
            }
            "_format" => {}
            other => {
                return Err(ApiError::invalid(format!(
                    "{other} is not a parameter of an $import upload (only type)"
                ))
                .at(other.to_owned()));
            }
        }
    }
    Ok(res_type)
}

/// The caller must be able to create and update a declared type.
fn check_rights(ctx: &TenantCtx, res_type: Option<&str>, at: &str) -> Result<(), ApiError> {
    if let Some(t) = res_type {
        for interaction in [Interaction::Create, Interaction::Update] {
            crate::service::authorize::reach(ctx, interaction, t)
                .map_err(|e| e.at(at.to_owned()))?;
        }
    }
    Ok(())
}

/// Stores the job, its inputs and their batches (an upload's records
/// too, its batch sent complete) in one transaction: the job exists with
/// all its uploaded records, or not at all.
async fn create_job(
    state: &AppState,
    ctx: &TenantCtx,
    req: &FhirRequest,
    id: &str,
    source: Source<'_>,
) -> Result<(), ApiError> {
    let tenant = ctx.tenant.as_str();
    let integrator = caller::integrator_of(ctx);
    let claims = ctx.caller.as_deref().map(caller::to_claims);
    let mut client = state.pool.get().await?;
    let tx = begin(&mut client, ctx, Access::ReadWrite).await?;
    let job = store::Job {
        id: id.to_owned(),
        owner: crate::service::export::owner(ctx),
        request: format!("{}/{}", ctx.base_url, req.path),
        status: if matches!(source, Source::Urls(_)) {
            "fetching"
        } else {
            "processing"
        }
        .to_owned(),
        transaction_time: crate::store::now(),
    };
    store::insert_job(&tx, tenant, &job).await?;
    let inputs: Vec<(Option<String>, Option<String>)> = match &source {
        Source::Upload(_, res_type) => vec![(res_type.clone(), None)],
        Source::Urls(urls) => urls
            .iter()
            .map(|u| (u.res_type.clone(), Some(u.url.clone())))
            .collect(),
    };
    for (n, (res_type, url)) in inputs.into_iter().enumerate() {
        let batch_id = uuid::Uuid::new_v4().to_string();
        let name = format!("$import {id} input {}", n + 1);
        let new = NewBatch {
            id: &batch_id,
            name: &name,
            data_type: DataType::Ndjson,
            integrator: integrator.as_deref(),
            caller: claims.as_ref(),
            expected: None,
        };
        batches::insert_batch(&tx, tenant, &new).await?;
        let input = store::Input {
            input_no: i32::try_from(n + 1).unwrap_or(i32::MAX),
            res_type: res_type.clone(),
            fetched: url.is_none(),
            url,
            batch_id: batch_id.clone(),
            lines_read: 0,
            error: None,
        };
        store::insert_input(&tx, tenant, id, &input).await?;
        if let Source::Upload(bytes, _) = &source {
            let text = std::str::from_utf8(bytes).map_err(|e| {
                ApiError::invalid(format!(
                    "the NDJSON body is not UTF-8 (at byte {})",
                    e.valid_up_to()
                ))
            })?;
            let mut batch = batches::find_batch(&tx, tenant, &batch_id, &caller::Reach::All, true)
                .await?
                .ok_or_else(|| ApiError::fault("a new import batch vanished"))?;
            fetch::store_lines(&tx, &mut batch, text, 1, res_type.as_deref()).await?;
            batches::set_status(&tx, tenant, &batch_id, Status::SendCompleted, None).await?;
        }
    }
    tx.commit().await?;
    Ok(())
}
