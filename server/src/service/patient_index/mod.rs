//! The master patient index in the server (issue 6, docs/mpi.md): the
//! `mpi` crate scores and links, its `store` keeps the index; this module
//! puts them in the write path (`link`: every Patient create, update and
//! delete is linked in the transaction that writes it; or, with
//! `BARAZA_MPI_LINKING=queued`, just after it commits, by the outbox
//! consumer of `queue`) and serves the operations:
//!
//! - `Patient/$match` (R4) and IHE PIXm `Patient/$ihe-pix` (`query`);
//! - `Patient/$merge`, `Patient/$unmerge` (after R5's `$merge`), the review
//!   queue `Patient/$mpi-review` and its decisions `Patient/$mpi-decide`
//!   (`steward`), with the `mpi-review` permission; a merge repoints the
//!   references to the source onto the target (`repoint`);
//! - `Patient/$mpi-relink` (`relink`), the whole index re-scored as a
//!   background job under a lease, with the `tenant-admin` permission,
//!   and the periodic refresh of the name frequencies.
//!
//! Golden Patients (`Patient/golden-…`, tagged golden) belong to the MPI:
//! clients cannot write them; the MPI rewrites them as their clusters
//! change.

mod erase;
mod link;
mod query;
pub mod queue;
mod relink;
mod repoint;
mod steward;

pub use erase::expunge_linked;
pub use link::{LinkPlan, after_store, apply_outcome, before_store};
pub use relink::{adopt as adopt_relinks, spawn_frequency_refresh};

use super::operations::{Definition, Level, Target, reads_the_type, updates_the_type};
use crate::auth::Interaction;
use crate::error::{ApiError, Category};
use crate::store::TenantCtx;
use mpi::store::StoreError;
use serde_json::Value;

/// The prefix of golden Patient ids (`mpi::store::golden_id`).
pub const GOLDEN_PREFIX: &str = "golden-";

/// The actor of link changes made by the server itself in the link log.
const SERVER_ACTOR: &str = "mpi";

pub const DEFINITIONS: &[Definition] = &[
    Definition {
        name: "$match",
        levels: &[Level::Type],
        types: &["Patient"],
        methods: &["POST"],
        definition_url: "http://hl7.org/fhir/OperationDefinition/Patient-match",
        needs: searches_patients,
        purpose: Some("$match"),
        handler: query::match_handler,
    },
    Definition {
        name: "$ihe-pix",
        levels: &[Level::Type],
        types: &["Patient"],
        methods: &["GET", "POST"],
        definition_url: "https://profiles.ihe.net/ITI/PIXm/OperationDefinition/IHE.PIXm.pix",
        needs: reads_the_type,
        purpose: None,
        handler: query::pix_handler,
    },
    Definition {
        name: "$merge",
        levels: &[Level::Type],
        types: &["Patient"],
        methods: &["POST"],
        definition_url: "http://hl7.org/fhir/OperationDefinition/Patient-merge",
        needs: updates_the_type,
        purpose: Some("mpi-review"),
        handler: steward::merge_handler,
    },
    Definition {
        name: "$unmerge",
        levels: &[Level::Type],
        types: &["Patient"],
        methods: &["POST"],
        definition_url: "https://baraza.dev/fhir/OperationDefinition/Patient-unmerge",
        needs: updates_the_type,
        purpose: Some("mpi-review"),
        handler: steward::unmerge_handler,
    },
    Definition {
        name: "$mpi-review",
        levels: &[Level::Type],
        types: &["Patient"],
        methods: &["GET", "POST"],
        definition_url: "https://baraza.dev/fhir/OperationDefinition/Patient-mpi-review",
        needs: reads_the_type,
        purpose: Some("mpi-review"),
        handler: steward::review_handler,
    },
    Definition {
        name: "$mpi-decide",
        levels: &[Level::Type],
        types: &["Patient"],
        methods: &["POST"],
        definition_url: "https://baraza.dev/fhir/OperationDefinition/Patient-mpi-decide",
        needs: updates_the_type,
        purpose: Some("mpi-review"),
        handler: steward::decide_handler,
    },
    Definition {
        name: "$mpi-relink",
        levels: &[Level::Type],
        types: &["Patient"],
        methods: &["GET", "POST"],
        definition_url: "https://baraza.dev/fhir/OperationDefinition/Patient-mpi-relink",
        needs: updates_the_type,
        purpose: Some("tenant-admin"),
        handler: relink::relink_handler,
    },
];

/// `$match` reads and searches Patients.
fn searches_patients(_: &Target) -> Vec<(Interaction, String)> {
    vec![
        (Interaction::Read, "Patient".to_owned()),
        (Interaction::Search, "Patient".to_owned()),
    ]
}

/// The index, or 404 when the server runs without it (`BARAZA_MPI=off`).
fn linker(ctx: &TenantCtx) -> Result<&mpi::store::Linker, ApiError> {
    ctx.mpi.as_deref().ok_or_else(|| {
        ApiError::not_found("the master patient index is off on this server (BARAZA_MPI=off)")
            .with_code(fhir::IssueCode::NotSupported)
    })
}

/// A search clause leaving golden Patients out (by their tag).
pub fn not_golden_clause() -> crate::search::criteria::Clause {
    use crate::search::criteria::{Alternative, Clause, Cond, TokenValue};
    Clause::Match {
        table: "search_token",
        negated: true,
        alternatives: vec![Alternative {
            param: "_tag".to_owned(),
            cond: Cond::Token(TokenValue::SystemCode(
                mpi::golden::MPI_TAG_SYSTEM.to_owned(),
                mpi::golden::GOLDEN_CODE.to_owned(),
            )),
        }],
    }
}

/// Whether `id` names a golden Patient.
pub fn is_golden(id: &str) -> bool {
    id.starts_with(GOLDEN_PREFIX)
}

/// Who a record comes from, for survivorship's source priority: the
/// integrator the caller submits for, else its client, else `direct`.
fn source_of(ctx: &TenantCtx) -> String {
    let Some(caller) = ctx.caller.as_deref() else {
        return "direct".to_owned();
    };
    caller
        .integrator
        .clone()
        .or_else(|| caller.client_id.clone())
        .unwrap_or_else(|| caller.subject.clone())
}

/// Who made a decision, for the link log and the review queue.
fn actor_of(ctx: &TenantCtx) -> String {
    match ctx.caller.as_deref() {
        Some(caller) => caller.subject.clone(),
        None => "local".to_owned(),
    }
}

fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::Db(e) => e.into(),
        StoreError::NotFound(m) => ApiError::not_found(m),
        StoreError::Conflict(m) => {
            ApiError::new(Category::Conflict, m).with_code(fhir::IssueCode::BusinessRule)
        }
        StoreError::Invalid(m) => ApiError::invalid(m),
        StoreError::Config(e) => ApiError::fault(e),
    }
}

/// `Patient/{id}` to `id` (also accepts a bare id); `expression` names
/// the parameter in errors.
fn patient_id(reference: &str, expression: &str) -> Result<String, ApiError> {
    let id = reference.strip_prefix("Patient/").unwrap_or(reference);
    match fhir::Id::parse(id) {
        Some(_) if !reference.contains("://") => Ok(id.to_owned()),
        _ => Err(ApiError::invalid(format!(
            "{reference:?} is not a reference to a Patient of this server (Patient/id)"
        ))
        .at(expression)),
    }
}

/// The `valueReference.reference` (or a plain string) of a parameter.
fn reference_param(
    params: &terminology::params::Params,
    name: &str,
) -> Result<Option<(String, String)>, ApiError> {
    if let Some((value, at)) = params.json(name).ok().flatten() {
        let reference = value
            .get("reference")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::invalid(format!("{name} needs a reference")).at(at))?;
        return Ok(Some((patient_id(reference, at)?, at.to_owned())));
    }
    match params.text(name)? {
        Some((text, at)) => Ok(Some((patient_id(text, at)?, at.to_owned()))),
        None => Ok(None),
    }
}
