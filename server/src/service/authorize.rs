//! What the caller's SMART scopes allow (issue 4): each interaction is
//! mapped to one of the five SMART v2 permissions on a resource type and
//! checked before anything is read or written. `patient/` scopes reach only
//! the patient compartment of the token's `patient` claim: searches are
//! narrowed to that compartment, reads outside it answer 404 (as if the
//! resource did not exist), and included resources outside it are left out.
//!
//! With authentication off (`ctx.caller` is `None`, loopback only) every
//! interaction is allowed.

use super::route::{HistoryKind, Route, SearchScope, TerminologyOp};
use crate::auth::permissions::Rights;
use crate::auth::{Context, Interaction, Principal};
use crate::error::{ApiError, Category};
use crate::search::criteria::{Alternative, Clause, Cond, TokenValue};
use crate::store::{Stored, TenantCtx};
use fhir::compartment::patient_compartment_params;

/// Every resource type, for interactions that reach all of them.
const ALL_TYPES: &str = "*";

/// Admits the caller to `ctx`'s tenant and works out its rights: the
/// token must grant the tenant (else the same 404 as for a tenant that does
/// not exist), and the rights are the union of the caller's groups.
pub async fn admit(state: &super::AppState, ctx: &mut TenantCtx) -> Result<(), ApiError> {
    let Some(caller) = ctx.caller.clone() else {
        return Ok(());
    };
    if !caller.tenants.contains(&ctx.tenant) {
        return Err(super::tenants::tenant_not_found());
    }
    let rights = state.groups.rights(state, ctx, &caller.groups).await?;
    ctx.rights = Some(std::sync::Arc::new(rights));
    Ok(())
}

/// The integrator the caller submits for, if any.
pub fn integrator(ctx: &TenantCtx) -> Option<&str> {
    ctx.caller.as_deref()?.integrator.as_deref()
}

/// The clause keeping an integrator's searches to its own submissions
/// (those carrying its `meta.tag`), or `None` for other callers.
pub fn integrator_clause(ctx: &TenantCtx) -> Option<Clause> {
    let integrator = integrator(ctx)?;
    Some(Clause::Match {
        table: "search_token",
        negated: false,
        alternatives: vec![Alternative {
            param: "_tag".to_owned(),
            cond: Cond::Token(TokenValue::SystemCode(
                crate::auth::integrator::TAG_SYSTEM.to_owned(),
                integrator.to_owned(),
            )),
        }],
    })
}

/// Whether the stored JSON `content` is visible to the caller as an
/// integrator's (always true for other callers).
pub fn integrator_may_see(ctx: &TenantCtx, content: Option<&str>) -> bool {
    let Some(integrator) = integrator(ctx) else {
        return true;
    };
    content
        .and_then(|text| serde_json::from_str::<serde_json::Value>(text).ok())
        .is_some_and(|resource| crate::auth::integrator::submitted_by(&resource, integrator))
}

/// For a read, vread or instance history: the resource must be in the
/// patient's compartment under `patient/` scopes, and one of the caller's
/// own submissions for an integrator. Otherwise 404, as if it did not exist.
pub async fn check_target(
    db: &impl crate::store::Db,
    ctx: &TenantCtx,
    route: &Route,
    reach: &Reach,
) -> Result<(), ApiError> {
    let target = match route {
        Route::Read(t, id) | Route::Vread(t, id, _) => Some((t, id)),
        Route::History(HistoryKind::Instance(t, id)) => Some((t, id)),
        _ => None,
    };
    let unknown = |t: &fhir::id::ResourceType, id: &fhir::id::Id| {
        ApiError::not_found(format!("{t}/{id} is not known"))
    };
    if let Reach::Patient(patient) = reach {
        if let Some((t, id)) = target {
            let inside =
                super::search::in_patient_compartment(db, ctx, t.as_str(), id.as_str(), patient)
                    .await?;
            if !inside {
                return Err(unknown(t, id));
            }
        } else if matches!(route, Route::History(_)) {
            return Err(ApiError::new(
                Category::Forbidden,
                "with patient/ scopes, history is available per resource only",
            ));
        }
    }
    if let (Some(_), Some((t, id))) = (integrator(ctx), target) {
        let current = crate::store::read::read_current(db, ctx, t.as_str(), id.as_str()).await?;
        if !integrator_may_see(ctx, current.as_ref().and_then(|s| s.content.as_deref())) {
            return Err(unknown(t, id));
        }
    }
    Ok(())
}

/// How a permitted request must be narrowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    /// Whatever the route names.
    Everything,
    /// Only the patient compartment of this patient.
    Patient(String),
}

/// Checks `route` against the caller's scopes; `params` are the request's
/// query parameters (for `_type`).
pub fn check(
    ctx: &TenantCtx,
    route: &Route,
    params: &[(String, String)],
) -> Result<Reach, ApiError> {
    let Some(caller) = ctx.caller.as_deref() else {
        return Ok(Reach::Everything);
    };
    let no_rights = Rights::default();
    let rights = ctx.rights.as_deref().unwrap_or(&no_rights);
    let needs = needed(route, params);
    let mut reach = Reach::Everything;
    for (interaction, resource_type) in &needs {
        if let Reach::Patient(patient) = reach_of(caller, rights, *interaction, resource_type)? {
            reach = Reach::Patient(patient);
        }
    }
    if let Some(purpose) = purpose_needed(route, &needs) {
        if !rights.has_purpose(purpose) {
            return Err(ApiError::new(
                Category::Forbidden,
                format!("this needs the {purpose} permission, which none of your groups has"),
            ));
        }
    }
    Ok(reach)
}

/// What `interaction` on `resource_type` reaches for the caller of `ctx`
/// (everything with authentication off), or why it is refused: for
/// operations that work out the types they touch from their parameters
/// (`$export`, `$everything`, `$run`).
pub fn reach(
    ctx: &TenantCtx,
    interaction: Interaction,
    resource_type: &str,
) -> Result<Reach, ApiError> {
    let Some(caller) = ctx.caller.as_deref() else {
        return Ok(Reach::Everything);
    };
    let no_rights = Rights::default();
    let rights = ctx.rights.as_deref().unwrap_or(&no_rights);
    reach_of(caller, rights, interaction, resource_type)
}

fn reach_of(
    caller: &Principal,
    rights: &Rights,
    interaction: Interaction,
    resource_type: &str,
) -> Result<Reach, ApiError> {
    let reach = match caller.scopes.granted_by(interaction, resource_type) {
        None => return Err(insufficient(interaction, resource_type)),
        Some(Context::Patient) => patient_reach(caller, interaction, resource_type)?,
        Some(_) => Reach::Everything,
    };
    if !rights.allows(interaction, resource_type) {
        return Err(ApiError::new(
            Category::Forbidden,
            format!(
                "none of your groups allows {} on {resource_type}",
                interaction_name(interaction)
            ),
        ));
    }
    Ok(reach)
}

/// The purpose permission `route` needs besides its basic permissions.
fn purpose_needed(route: &Route, needs: &[(Interaction, String)]) -> Option<&'static str> {
    match route {
        Route::Reindex(_) | Route::ReindexStatus(_) => Some("tenant-admin"),
        Route::Terminology(TerminologyOp::Load, ..) => Some("terminology-load"),
        Route::Operation(invocation) if invocation.definition.purpose.is_some() => {
            invocation.definition.purpose
        }
        // Bulk reads: the job's files, SQL-on-FHIR views and their tables.
        Route::ExportStatus(_) | Route::ExportFile(..) | Route::View(_) => Some("$export"),
        _ if needs.iter().any(|(_, t)| t == "AuditEvent") => Some("audit-read"),
        _ => None,
    }
}

fn interaction_name(interaction: Interaction) -> &'static str {
    match interaction {
        Interaction::Create => "create",
        Interaction::Read => "read",
        Interaction::Update => "update",
        Interaction::Delete => "delete",
        Interaction::Search => "search",
    }
}

/// The permissions `route` needs, as (interaction, resource type) pairs.
fn needed(route: &Route, params: &[(String, String)]) -> Vec<(Interaction, String)> {
    let one = |i: Interaction, t: &str| vec![(i, t.to_owned())];
    match route {
        // Batch entries are checked one by one as they are handled, and
        // transaction entries before the transaction starts.
        Route::Capabilities | Route::Transaction => Vec::new(),
        Route::Read(t, _) | Route::Vread(t, _, _) | Route::Validate(t, _) => {
            one(Interaction::Read, t.as_str())
        }
        Route::Create(t) => one(Interaction::Create, t.as_str()),
        Route::Update(t, _)
        | Route::ConditionalUpdate(t)
        | Route::Patch(t, _)
        | Route::ConditionalPatch(t) => one(Interaction::Update, t.as_str()),
        Route::Delete(t, _) | Route::ConditionalDelete(t) => one(Interaction::Delete, t.as_str()),
        Route::History(kind) => match kind {
            HistoryKind::System => one(Interaction::Read, ALL_TYPES),
            HistoryKind::Type(t) | HistoryKind::Instance(t, _) => {
                one(Interaction::Read, t.as_str())
            }
        },
        Route::Search(scope) => match scope {
            SearchScope::Type(t) => one(Interaction::Search, t.as_str()),
            SearchScope::System => {
                let listed: Vec<(Interaction, String)> = params
                    .iter()
                    .filter(|(name, _)| name == "_type")
                    .flat_map(|(_, value)| value.split(','))
                    .map(|t| (Interaction::Search, t.trim().to_owned()))
                    .collect();
                if listed.is_empty() {
                    one(Interaction::Search, ALL_TYPES)
                } else {
                    listed
                }
            }
            SearchScope::Compartment {
                compartment,
                target,
                ..
            } => {
                let mut needs = one(Interaction::Read, compartment.as_str());
                needs.push((
                    Interaction::Search,
                    target.map_or(ALL_TYPES, |t| t.as_str()).to_owned(),
                ));
                needs
            }
        },
        // Terminology operations read the type; $load adds content.
        Route::Terminology(TerminologyOp::Load, t, _) => one(Interaction::Create, t.as_str()),
        Route::Terminology(_, t, _) => one(Interaction::Read, t.as_str()),
        // Operations on every type: the server's administrators only.
        Route::Reindex(_) | Route::ReindexStatus(_) => one(Interaction::Update, ALL_TYPES),
        Route::Operation(invocation) => (invocation.definition.needs)(&invocation.target),
        // A job's status and files are its owner's, checked against the
        // job (service::export::poll); a view's type is known once the
        // view is read (service::views).
        Route::ExportStatus(_) | Route::ExportFile(..) | Route::View(_) => Vec::new(),
        // An import job is its owner's, an integrator or tenant admin
        // (ingest::import::poll).
        Route::ImportStatus(_) | Route::ImportErrors(..) => Vec::new(),
    }
}

/// What a `patient/` grant of `interaction` on `resource_type` allows.
fn patient_reach(
    caller: &Principal,
    interaction: Interaction,
    resource_type: &str,
) -> Result<Reach, ApiError> {
    let Some(patient) = caller.patient.clone() else {
        return Err(ApiError::new(
            Category::Forbidden,
            "patient/ scopes need a patient in context (the token has no patient claim)",
        ));
    };
    if !in_patient_compartment(resource_type) {
        // Shared resources (Medication, Practitioner, …) are not anybody's
        // record; a patient/ scope on them reaches them all.
        return Ok(Reach::Everything);
    }
    match interaction {
        Interaction::Read | Interaction::Search => Ok(Reach::Patient(patient)),
        _ => Err(ApiError::new(
            Category::Forbidden,
            format!(
                "patient/ scopes do not allow writing {resource_type}: use a user/ or system/ scope"
            ),
        )),
    }
}

/// Whether resources of `resource_type` can belong to a patient's record.
pub fn in_patient_compartment(resource_type: &str) -> bool {
    resource_type == ALL_TYPES
        || resource_type == "Patient"
        || patient_compartment_params(resource_type).is_some()
}

/// 403 naming a scope that would allow the request.
fn insufficient(interaction: Interaction, resource_type: &str) -> ApiError {
    let letter = match interaction {
        Interaction::Create => "c",
        Interaction::Read => "r",
        Interaction::Update => "u",
        Interaction::Delete => "d",
        Interaction::Search => "s",
    };
    ApiError::new(
        Category::Forbidden,
        format!(
            "the access token's scopes do not allow this request (it needs a scope such as user/{resource_type}.{letter})"
        ),
    )
}

/// Whether the caller may see `stored` as an included resource: read
/// permission on its type, and for `patient/` grants only the patient in
/// context among the types of the patient compartment (an include can lead
/// to another patient's record).
pub fn may_include(ctx: &TenantCtx, stored: &Stored) -> bool {
    let Some(caller) = ctx.caller.as_deref() else {
        return true;
    };
    if !integrator_may_see(ctx, stored.content.as_deref()) {
        return false;
    }
    let rights_allow = ctx
        .rights
        .as_deref()
        .is_some_and(|r| r.allows(Interaction::Read, &stored.resource_type));
    if !rights_allow {
        return false;
    }
    match caller
        .scopes
        .granted_by(Interaction::Read, &stored.resource_type)
    {
        None => false,
        Some(Context::Patient) => {
            !in_patient_compartment(&stored.resource_type)
                || (stored.resource_type == "Patient"
                    && caller.patient.as_deref() == Some(stored.id.as_str()))
        }
        Some(_) => true,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::auth::Scopes;
    use fhir::id::{Id, ResourceType};
    use std::sync::Arc;

    fn ctx(scopes: &str, patient: Option<&str>) -> TenantCtx {
        let mut ctx = TenantCtx::default_tenant("http://x/fhir", Arc::default());
        ctx.caller = Some(Arc::new(Principal {
            subject: "s".into(),
            client_id: None,
            scopes: Scopes::parse(scopes),
            tenants: vec![],
            groups: vec![],
            integrator: None,
            patient: patient.map(str::to_owned),
        }));
        let admin = vec!["tenant-admin".to_owned()];
        ctx.rights = Some(Arc::new(Rights::of(
            &crate::auth::permissions::system_groups(),
            &admin,
        )));
        ctx
    }

    fn t(name: &str) -> ResourceType {
        ResourceType::parse(name).unwrap()
    }

    fn read(name: &str) -> Route {
        Route::Read(t(name), Id::parse("x").unwrap())
    }

    fn check_route(scopes: &str, patient: Option<&str>, route: Route) -> Result<Reach, u16> {
        check(&ctx(scopes, patient), &route, &[]).map_err(|e| e.status().as_u16())
    }

    #[test]
    fn scopes_decide_each_interaction() {
        let p = Some("p1");
        let patient = Ok(Reach::Patient("p1".into()));
        for (scopes, route, expected) in [
            (
                "user/Observation.rs",
                read("Observation"),
                Ok(Reach::Everything),
            ),
            ("user/Observation.s", read("Observation"), Err(403)),
            ("user/Observation.rs", read("Condition"), Err(403)),
            (
                "system/*.cruds",
                Route::Create(t("Patient")),
                Ok(Reach::Everything),
            ),
            ("system/*.rs", Route::Create(t("Patient")), Err(403)),
            (
                "user/*.write",
                Route::Delete(t("Patient"), Id::parse("a").unwrap()),
                Ok(Reach::Everything),
            ),
            (
                "user/*.read",
                Route::Search(SearchScope::Type(t("Encounter"))),
                Ok(Reach::Everything),
            ),
            (
                "patient/*.rs",
                Route::Search(SearchScope::Type(t("Encounter"))),
                patient.clone(),
            ),
            ("patient/*.rs", read("Medication"), Ok(Reach::Everything)),
            ("patient/*.cruds", Route::Create(t("Observation")), Err(403)),
            ("user/Observation.rs", Route::Reindex(None), Err(403)),
            (
                "system/*.cruds",
                Route::Reindex(None),
                Ok(Reach::Everything),
            ),
            (
                "user/Patient.rs",
                Route::History(HistoryKind::System),
                Err(403),
            ),
        ] {
            assert_eq!(
                check_route(scopes, p, route.clone()),
                expected,
                "{scopes} {route:?}"
            );
        }
        assert_eq!(
            check_route("patient/*.rs", None, read("Observation")),
            Err(403)
        );
    }

    #[test]
    fn terminology_load_needs_its_purpose() {
        let load = Route::Terminology(TerminologyOp::Load, t("CodeSystem"), None);
        let expand = Route::Terminology(TerminologyOp::Expand, t("ValueSet"), None);
        let mut clinician = ctx("system/*.cruds", None);
        clinician.rights = Some(Arc::new(Rights::of(
            &crate::auth::permissions::system_groups(),
            &["clinician".to_owned()],
        )));
        assert_eq!(
            check(&clinician, &load, &[]).map_err(|e| e.status().as_u16()),
            Err(403)
        );
        assert!(check(&clinician, &expand, &[]).is_ok());
        assert!(check(&ctx("system/*.cruds", None), &load, &[]).is_ok());
        assert!(check(&ctx("system/ValueSet.s", None), &expand, &[]).is_err());
    }

    #[test]
    fn system_search_needs_each_listed_type() {
        let route = Route::Search(SearchScope::System);
        let params = [("_type".to_owned(), "Patient,Practitioner".to_owned())];
        let allowed = ctx("user/Patient.s user/Practitioner.s", None);
        assert_eq!(check(&allowed, &route, &params).unwrap(), Reach::Everything);
        let partial = ctx("user/Patient.s", None);
        assert!(check(&partial, &route, &params).is_err());
        assert!(check(&allowed, &route, &[]).is_err());
    }
}
