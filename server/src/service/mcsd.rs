//! The facility registry's rules beyond plain FHIR (IHE mCSD, issue 7,
//! docs/registry.md):
//!
//! - **Facility codes are unique per tenant**: a Location or Organization
//!   may not carry an identifier (`system` and `value`) that another
//!   resource of the same type already carries. Checked in the write's own
//!   transaction after its index rows are stored, under a transaction
//!   advisory lock per code, so two concurrent writes of one code cannot
//!   both pass.
//! - **`$hierarchy`**: `GET Location/{id}/$hierarchy` (or Organization)
//!   answers a searchset Bundle of the resource and everything under it
//!   through `partOf`, at any depth (cycles end).

use super::bundle_out::{Bundle, Embedded, Entry, search_match};
use super::operations::{Definition, Invocation, Level, Target, reads_the_type};
use super::{AppState, FhirRequest, FhirResponse, ResponseBody};
use crate::error::{ApiError, Category};
use crate::store::write::WriteResult;
use crate::store::{Access, Db, TenantCtx, begin};
use actix_web::http::StatusCode;
use fhir::IssueCode;
use futures_util::future::BoxFuture;
use serde_json::Value;

/// The types whose identifiers are facility codes.
const REGISTRY_TYPES: [&str; 2] = ["Location", "Organization"];

/// The most resources `$hierarchy` returns.
const MAX_HIERARCHY: i64 = 10_000;

/// Refuses the writes if a Location or Organization they stored shares an
/// identifier with another resource of its type (409, `duplicate`, at
/// `Type.identifier[i]`).
pub async fn check_facility_codes(
    db: &impl Db,
    ctx: &TenantCtx,
    results: &[WriteResult],
) -> Result<(), ApiError> {
    let mut codes: Vec<(String, String, String, String, usize)> = Vec::new();
    for result in results {
        let WriteResult::Stored { stored, .. } = result else {
            continue;
        };
        if stored.deleted || !REGISTRY_TYPES.contains(&stored.resource_type.as_str()) {
            continue;
        }
        let Some(resource) = stored
            .content
            .as_deref()
            .and_then(|text| serde_json::from_str::<Value>(text).ok())
        else {
            continue;
        };
        let identifiers = resource["identifier"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for (i, identifier) in identifiers.iter().enumerate() {
            if let (Some(system), Some(value)) =
                (identifier["system"].as_str(), identifier["value"].as_str())
            {
                codes.push((
                    stored.resource_type.clone(),
                    system.to_owned(),
                    value.to_owned(),
                    stored.id.clone(),
                    i,
                ));
            }
        }
    }
    // One lock order for every writer, so that two writes of overlapping
    // codes cannot deadlock.
    codes.sort();
    for (resource_type, system, value, id, index) in &codes {
        let key = format!("mcsd|{}|{resource_type}|{system}|{value}", ctx.tenant);
        db.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            &[&key],
        )
        .await?;
        let rows = db
            .query(
                "SELECT res_id FROM search_token WHERE tenant = $1 AND res_type = $2 \
                 AND param = 'identifier' AND system = $3 AND code = $4 AND res_id <> $5 LIMIT 1",
                &[&ctx.tenant, resource_type, system, value, id],
            )
            .await?;
        if let Some(row) = rows.first() {
            let other: String = row.get(0);
            return Err(ApiError::new(
                Category::Conflict,
                format!(
                    "the facility code {system}|{value} is already used by {resource_type}/{other}; \
                     codes are unique per tenant"
                ),
            )
            .with_code(IssueCode::Duplicate)
            .at(format!("{resource_type}.identifier[{index}]")));
        }
    }
    Ok(())
}

pub const DEFINITIONS: &[Definition] = &[Definition {
    name: "$hierarchy",
    levels: &[Level::Instance],
    types: &["Location", "Organization"],
    methods: &["GET"],
    definition_url: "https://baraza.dev/fhir/OperationDefinition/hierarchy",
    needs: reads_the_type,
    purpose: None,
    handler: hierarchy_handler,
}];

fn hierarchy_handler<'a>(
    state: &'a AppState,
    ctx: &'a TenantCtx,
    invocation: Invocation,
    _: FhirRequest,
) -> BoxFuture<'a, Result<FhirResponse, ApiError>> {
    Box::pin(hierarchy(state, ctx, invocation))
}

async fn hierarchy(
    state: &AppState,
    ctx: &TenantCtx,
    invocation: Invocation,
) -> Result<FhirResponse, ApiError> {
    let Target::Instance(resource_type, id) = &invocation.target else {
        return Err(ApiError::invalid(
            "$hierarchy is invoked on one Location or Organization",
        ));
    };
    let resource_type = resource_type.as_str();
    let mut client = state.pool.get().await?;
    let tx = begin(&mut client, ctx, Access::ReadOnly).await?;
    let root = crate::store::read::read_current(&tx, ctx, resource_type, id.as_str()).await?;
    let visible = root.as_ref().is_some_and(|stored| {
        !stored.deleted && super::authorize::integrator_may_see(ctx, stored.content.as_deref())
    });
    if !visible {
        return Err(ApiError::not_found(format!(
            "{resource_type}/{id} is not known"
        )));
    }
    // UNION (not UNION ALL) drops ids already found, so a cycle of partOf
    // references ends.
    let rows = tx
        .query(
            "WITH RECURSIVE below(id) AS ( \
               SELECT $3::text \
               UNION \
               SELECT r.res_id FROM search_reference r JOIN below b ON r.target_id = b.id \
               WHERE r.tenant = $1 AND r.res_type = $2 AND r.param = 'partof' AND r.target_type = $2 \
             ) SELECT id FROM below LIMIT $4",
            &[&ctx.tenant, &resource_type, &id.as_str(), &(MAX_HIERARCHY + 1)],
        )
        .await?;
    if rows.len() as i64 > MAX_HIERARCHY {
        return Err(ApiError::new(
            Category::TooLarge,
            format!("more than {MAX_HIERARCHY} resources lie under {resource_type}/{id}"),
        )
        .with_code(IssueCode::TooCostly));
    }
    let keys: Vec<(String, String)> = rows
        .iter()
        .map(|row| (resource_type.to_owned(), row.get::<_, String>(0)))
        .collect();
    let mut stored = crate::store::read::read_many(&tx, ctx, &keys).await?;
    stored.retain(|s| super::authorize::integrator_may_see(ctx, s.content.as_deref()));
    // The root first, then by id, so the answer is stable.
    stored.sort_by(|a, b| (a.id != id.as_str(), &a.id).cmp(&(b.id != id.as_str(), &b.id)));
    let mut bundle = Bundle::new("searchset");
    bundle.total = Some(stored.len() as u64);
    let mut touched = crate::audit::Touched::default();
    for s in stored {
        touched.add_stored(&s);
        bundle.entry.push(Entry {
            full_url: Some(format!("{}/{}/{}", ctx.base_url, s.resource_type, s.id)),
            resource: s.content.map(Embedded::stored),
            search: search_match(),
            ..Entry::default()
        });
    }
    Ok(FhirResponse {
        status: StatusCode::OK,
        body: ResponseBody::Text(bundle.to_text()?),
        location: None,
        version_id: None,
        last_modified: None,
        touched,
    })
}
