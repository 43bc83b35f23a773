//! Compartments in searches (compartment.html): the clause that keeps a
//! search inside a compartment, and the patient compartment that
//! `patient/` scopes confine reads and searches to.

use super::SearchScope;
use crate::error::{ApiError, Category};
use crate::search::criteria::{Alternative, Clause, Cond, Criteria, ReferenceValue};
use crate::search::execute::{self, Query};
use crate::store::{Db, TenantCtx};

/// The clause keeping a `patient/`-scoped search inside the patient's
/// compartment (the patient itself for `Patient`).
pub(super) fn patient_reach_clause(
    scope: &SearchScope,
    types: &[String],
    patient: &str,
) -> Result<Clause, ApiError> {
    match types {
        [only] if only == "Patient" => Ok(Clause::Ids(vec![patient.to_owned()])),
        [_] if !matches!(scope, SearchScope::System) => {
            Ok(compartment_clause("Patient", patient, types))
        }
        _ => Err(ApiError::new(
            Category::Forbidden,
            "with patient/ scopes, search one resource type at a time",
        )),
    }
}

/// Whether `resource_type/id` is the patient or in the patient's
/// compartment (for reads under `patient/` scopes).
pub async fn in_patient_compartment(
    db: &impl Db,
    ctx: &TenantCtx,
    resource_type: &str,
    id: &str,
    patient: &str,
) -> Result<bool, ApiError> {
    if resource_type == "Patient" {
        return Ok(id == patient);
    }
    let types = [resource_type.to_owned()];
    let criteria = Criteria {
        clauses: vec![
            Clause::Ids(vec![id.to_owned()]),
            compartment_clause("Patient", patient, &types),
        ],
    };
    let query = Query {
        types: &types,
        criteria: &criteria,
        sort: &[],
    };
    Ok(execute::count(db, ctx, query).await? > 0)
}

/// Membership of the `compartment`/`id` compartment (compartment.html):
/// for each type, a reference to it through any of the type's links.
pub(super) fn compartment_clause(compartment: &str, id: &str, types: &[String]) -> Clause {
    let per_type: Vec<(String, Clause)> = types
        .iter()
        .filter_map(|t| {
            let params = fhir::compartment::compartment_params(compartment, t)?;
            let alternatives: Vec<Alternative> = params
                .iter()
                .map(|p| Alternative {
                    param: p.clone(),
                    cond: Cond::Reference(ReferenceValue::Local {
                        target_type: Some(compartment.to_owned()),
                        id: id.to_owned(),
                    }),
                })
                .collect();
            (!alternatives.is_empty()).then(|| {
                (
                    t.clone(),
                    Clause::Match {
                        table: "search_reference",
                        negated: false,
                        alternatives,
                    },
                )
            })
        })
        .collect();
    match per_type.as_slice() {
        [(_, only)] => only.clone(),
        _ => Clause::ForTypes(per_type),
    }
}
