//! Conditional interactions (http.html#cond-update, #cond-delete,
//! #ccreate): resolving search criteria to the matching ids, strictly, and
//! serialising concurrent requests with the same criteria.

use crate::error::{ApiError, Category};
use crate::search::criteria::{self, Strictness};
use crate::search::execute;
use crate::store::{Db, TenantCtx};
use fhir::ResourceType;

/// Parses a query string (`identifier=a|b&_id=1`) into pairs.
pub fn parse_query(query: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.trim_start_matches('?').as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Up to two ids matching `params`; the caller decides what 0, 1 or 2 mean.
/// Every parameter must be understood: ignoring one could match too much.
/// Takes a transaction-scoped advisory lock on the criteria so that two
/// conditional creates with the same criteria cannot both create.
pub async fn matching_ids(
    db: &impl Db,
    ctx: &TenantCtx,
    t: ResourceType,
    params: &[(String, String)],
) -> Result<Vec<String>, ApiError> {
    let mut parsed = criteria::parse(
        &ctx.registry(),
        t.as_str(),
        params,
        Strictness::Strict,
        &ctx.base_url,
    )?;
    if parsed.criteria.is_empty() {
        return Err(ApiError::invalid(
            "a conditional interaction needs at least one search criterion",
        ));
    }
    let key = format!("{}|{t}|{:?}", ctx.tenant, parsed.used);
    db.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
        &[&key],
    )
    .await?;
    // An integrator's conditions match only its own submissions.
    if let Some(own) = super::authorize::integrator_clause(ctx) {
        parsed.criteria.clauses.push(own);
    }
    // Golden Patients belong to the master patient index and carry every
    // identifier of their sources: a conditional write by identifier
    // targets the source record, never its golden record.
    if t.as_str() == "Patient" {
        parsed
            .criteria
            .clauses
            .push(super::patient_index::not_golden_clause());
    }
    let types = [t.as_str().to_owned()];
    let query = execute::Query {
        types: &types,
        criteria: &parsed.criteria,
        sort: &[],
    };
    let found = execute::find(db, ctx, query, 2, None).await?;
    Ok(found.into_iter().map(|f| f.stored.id).collect())
}

pub fn multiple_matches(t: ResourceType) -> ApiError {
    ApiError::new(
        Category::PreconditionFailed,
        format!("the criteria match more than one {t}; make them more selective"),
    )
    .with_code(fhir::IssueCode::MultipleMatches)
}
