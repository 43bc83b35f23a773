//! Bulk Data `$export` (FHIR Bulk Data Access IG 2.0, export.html): the
//! kick-off at system level, `Patient/$export` and `Group/[id]/$export`
//! answers 202 with `Content-Location: [base]/$export-status/{job}`; the
//! job runs in the background ([`job`]); polling answers 202 with
//! `X-Progress` until the manifest is ready, DELETE cancels, and the files
//! are served to the same caller with the same rights until they expire
//! ([`poll`]). The expired jobs are removed by [`spawn_cleanup`].
//!
//! docs/analytics.md describes the whole feature.

pub mod job;
pub mod poll;
pub mod spec;

use super::operations::{Definition, Invocation, Level as OpLevel, Target};
use super::{AppState, Body, FhirRequest, FhirResponse};
use crate::auth::Interaction;
use crate::error::{ApiError, Category};
use crate::store::{Access, TenantCtx, begin, export};
use actix_web::http::StatusCode;
use chrono::{DateTime, Utc};
use fhir::deidentify::Deidentifier;
use futures_util::future::BoxFuture;
use serde_json::{Value, json};
use spec::{Level, Params, Patients};
use std::time::Duration;

/// The export settings and the limit on jobs reading at once.
#[derive(Debug)]
pub struct Exports {
    /// Resources per page (one transaction, one chunk of a file).
    pub page_size: usize,
    /// Resources per output file before a type's next file starts.
    pub per_file: i64,
    /// How long a finished job's files are kept.
    pub retention: Duration,
    /// The per-project pseudonym key (BARAZA_DEIDENTIFY_KEY); without it
    /// each de-identified export has its own random key.
    pub project_key: Option<crate::config::Secret>,
    running: tokio::sync::Semaphore,
    /// This instance's id in job leases (`events::Node`), and the lease
    /// as PostgreSQL interval text.
    node: String,
    lease: String,
    /// The jobs running on this instance (never started twice here).
    active: std::sync::Mutex<std::collections::HashSet<String>>,
}

impl Exports {
    pub fn new(settings: &crate::config::Settings, node: &crate::events::Node) -> Exports {
        Exports {
            page_size: settings.export_page_size,
            per_file: 100_000,
            retention: Duration::from_secs(settings.export_retention_secs),
            project_key: settings.deidentify_key.clone(),
            running: tokio::sync::Semaphore::new(2),
            node: node.id.clone(),
            lease: node.lease_interval(),
            active: std::sync::Mutex::default(),
        }
    }

    /// When a job finishing now expires.
    fn expiry(&self) -> DateTime<Utc> {
        Utc::now() + chrono::Duration::from_std(self.retention).unwrap_or(chrono::Duration::days(1))
    }

    /// The pseudonymiser of a de-identified job: its own key, or the
    /// project's.
    fn deidentifier(&self, job_key: Option<&[u8]>) -> Deidentifier {
        match (job_key, &self.project_key) {
            (Some(key), _) => Deidentifier::new(key),
            (None, Some(project)) => Deidentifier::new(project.expose().as_bytes()),
            // A job is stored with a key unless the project has one.
            (None, None) => Deidentifier::new(b"baraza"),
        }
    }
}

const EXPORT_URL: &str = "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export";
const PATIENT_EXPORT_URL: &str =
    "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export";
const GROUP_EXPORT_URL: &str = "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export";

/// The types an export reads depend on its parameters and are checked by
/// [`spec::plan`]; the route itself needs only the `$export` purpose.
fn checked_by_the_plan(_: &Target) -> Vec<(Interaction, String)> {
    Vec::new()
}

pub const DEFINITIONS: &[Definition] = &[
    Definition {
        name: "$export",
        levels: &[OpLevel::System],
        types: &[],
        methods: &["GET", "POST"],
        definition_url: EXPORT_URL,
        needs: checked_by_the_plan,
        purpose: Some("$export"),
        handler: kick_off,
    },
    Definition {
        name: "$export",
        levels: &[OpLevel::Type],
        types: &["Patient"],
        methods: &["GET", "POST"],
        definition_url: PATIENT_EXPORT_URL,
        needs: checked_by_the_plan,
        purpose: Some("$export"),
        handler: kick_off,
    },
    Definition {
        name: "$export",
        levels: &[OpLevel::Instance],
        types: &["Group"],
        methods: &["GET", "POST"],
        definition_url: GROUP_EXPORT_URL,
        needs: checked_by_the_plan,
        purpose: Some("$export"),
        handler: kick_off,
    },
];

fn kick_off<'a>(
    state: &'a AppState,
    ctx: &'a TenantCtx,
    invocation: Invocation,
    req: FhirRequest,
) -> BoxFuture<'a, Result<FhirResponse, ApiError>> {
    Box::pin(start(state, ctx, invocation, req))
}

async fn start(
    state: &AppState,
    ctx: &TenantCtx,
    invocation: Invocation,
    req: FhirRequest,
) -> Result<FhirResponse, ApiError> {
    if !req.respond_async {
        return Err(ApiError::invalid(
            "a Bulk Data kick-off needs the header Prefer: respond-async (async.html)",
        ));
    }
    let body = match &req.body {
        Body::Resource(resource) => Some(resource),
        _ => None,
    };
    let params = Params::read(&req.params, body)?;
    let mut client = state.pool.get().await?;
    let tx = begin(&mut client, ctx, Access::ReadWrite).await?;
    let (level, patients) = match &invocation.target {
        Target::System => (Level::System, Patients::All),
        Target::Type(_) => (Level::Patient, Patients::All),
        Target::Instance(_, group) => {
            let members = group_members(&tx, ctx, group.as_str()).await?;
            (
                Level::Group(group.as_str().to_owned()),
                Patients::Only(members),
            )
        }
    };
    let spec = spec::plan(ctx, level, &params, patients)?;
    let id = uuid::Uuid::new_v4().to_string();
    let key = (spec.deidentify && state.exports.project_key.is_none()).then(random_key);
    let owner = owner(ctx);
    let spec_json = serde_json::to_value(&spec).map_err(ApiError::fault)?;
    let request = request_url(ctx, &req);
    export::insert(
        &tx,
        ctx,
        &export::NewJob {
            id: &id,
            owner: &owner,
            request: &request,
            spec: &spec_json,
            transaction_time: crate::store::now(),
            pseudonym_key: key.as_deref(),
        },
    )
    .await?;
    // Leased here from the start, so that no other instance adopts it.
    export::hold_lease(&tx, ctx, &id, &state.exports.node, &state.exports.lease).await?;
    tx.commit().await?;
    job::spawn(
        state.pool.clone(),
        state.exports.clone(),
        ctx.clone(),
        id.clone(),
    );
    let mut response = FhirResponse::json(
        StatusCode::ACCEPTED,
        fhir::outcome::operation_outcome(&[fhir::Issue::information(
            fhir::IssueCode::Informational,
            format!(
                "export job {id} started; poll {}/$export-status/{id}",
                ctx.base_url
            ),
        )]),
    );
    response.location = Some(format!("$export-status/{id}"));
    for plan in &spec.types {
        for patient in plan.patients.iter().flatten() {
            if !response.touched.patients.contains(patient) {
                response.touched.patients.push(patient.clone());
            }
        }
    }
    Ok(response)
}

/// The ids of a Group's Patient members (Group.member.entity).
async fn group_members(
    db: &impl crate::store::Db,
    ctx: &TenantCtx,
    group: &str,
) -> Result<Vec<String>, ApiError> {
    crate::service::authorize::reach(ctx, Interaction::Read, "Group")?;
    let stored = crate::store::read::read_current(db, ctx, "Group", group).await?;
    let content = stored
        .filter(|s| !s.deleted)
        .and_then(|s| s.content)
        .filter(|content| crate::service::authorize::integrator_may_see(ctx, Some(content)))
        .ok_or_else(|| ApiError::not_found(format!("Group/{group} is not known")))?;
    let group: Value = serde_json::from_str(&content).map_err(ApiError::fault)?;
    let mut members: Vec<String> = group["member"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["entity"]["reference"].as_str())
        .filter_map(|r| r.rsplit_once("Patient/").map(|(_, id)| id.to_owned()))
        .filter(|id| fhir::id::is_valid_id(id))
        .collect();
    members.sort();
    members.dedup();
    Ok(members)
}

/// Who may poll and download: the caller as its token names it (nobody in
/// particular with authentication off).
pub fn owner(ctx: &TenantCtx) -> Value {
    match ctx.caller.as_deref() {
        None => json!({}),
        Some(caller) => json!({
            "sub": caller.subject,
            "client": caller.client_id,
            "integrator": caller.integrator,
            "patient": caller.patient,
        }),
    }
}

/// The kick-off URL, for the manifest's `request`.
fn request_url(ctx: &TenantCtx, req: &FhirRequest) -> String {
    let mut url = format!("{}/{}", ctx.base_url, req.path);
    let query: Vec<&(String, String)> = req
        .params
        .iter()
        .filter(|(n, _)| !["_format", "_pretty"].contains(&n.as_str()))
        .collect();
    if !query.is_empty() {
        let mut pairs = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in query {
            pairs.append_pair(name, value);
        }
        url.push('?');
        url.push_str(&pairs.finish());
    }
    url
}

/// 32 random bytes (two v4 UUIDs' randomness) for a job's pseudonyms.
fn random_key() -> Vec<u8> {
    let mut key = uuid::Uuid::new_v4().as_bytes().to_vec();
    key.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    key
}

/// Removes expired jobs and their files, tenant by tenant, every
/// `interval` (a quarter of the retention, between 1 s and 5 min).
pub fn spawn_cleanup(state: AppState) {
    let retention = state.exports.retention;
    let interval = (retention / 4).clamp(Duration::from_secs(1), Duration::from_secs(300));
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(interval).await;
            for tenant in state.tenants.active() {
                let ctx = TenantCtx::new(&tenant, &state.base_url, state.registries.clone());
                match delete_expired(&state, &ctx).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(tenant, jobs = n, "removed expired $export files"),
                    Err(e) => {
                        tracing::warn!(tenant, error = %e, "cannot remove expired $export files")
                    }
                }
            }
        }
    });
}

async fn delete_expired(state: &AppState, ctx: &TenantCtx) -> Result<u64, ApiError> {
    let mut client = state.pool.get().await?;
    let tx = begin(&mut client, ctx, Access::ReadWrite).await?;
    let n = export::delete_expired(&tx, ctx).await?;
    tx.commit().await?;
    Ok(n)
}

/// Refuses a job's status or files to anyone but its owner (as if it did
/// not exist), and to its owner once its rights no longer cover every type
/// it holds, with the same reach.
fn check_owner(ctx: &TenantCtx, job: &export::Job) -> Result<(), ApiError> {
    let unknown = || ApiError::not_found(format!("no export job {}", job.id));
    if job.owner != owner(ctx) {
        return Err(unknown());
    }
    let spec: spec::Spec = serde_json::from_value(job.spec.clone()).map_err(ApiError::fault)?;
    for plan in &spec.types {
        let reach = crate::service::authorize::reach(ctx, Interaction::Read, &plan.res_type)?;
        let narrowed = matches!(reach, crate::service::authorize::Reach::Patient(_));
        if narrowed && plan.patients.is_none() {
            return Err(ApiError::new(
                Category::Forbidden,
                format!(
                    "your rights on {} changed since the export started",
                    plan.res_type
                ),
            ));
        }
    }
    Ok(())
}
