//! Who a batch belongs to and who may see it: an integrator sees only its
//! own batches, a caller with the `tenant-admin` permission sees every
//! batch of the tenant, and no one else uses the ingest API. With
//! authentication off (loopback only) every batch is visible.
//!
//! A batch keeps the principal that opened it, so that the background
//! worker writes its records with that caller's scopes, groups and
//! integrator stamp, exactly as if the caller had posted them.

use crate::auth::{ClaimNames, Principal};
use crate::error::{ApiError, Category};
use crate::store::TenantCtx;
use serde_json::{Map, Value};

/// The purpose permission that sees every batch of a tenant.
pub const TENANT_ADMIN: &str = "tenant-admin";

/// Which batches a caller reaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    /// Every batch of the tenant (tenant admins; authentication off).
    All,
    /// The batches of this integrator.
    Integrator(String),
}

impl Reach {
    /// The integrator to filter on, `None` for every batch.
    pub fn integrator(&self) -> Option<&str> {
        match self {
            Reach::All => None,
            Reach::Integrator(name) => Some(name),
        }
    }
}

/// The caller's reach, or 403 for callers that are neither an integrator
/// nor a tenant admin.
pub fn reach(ctx: &TenantCtx) -> Result<Reach, ApiError> {
    let Some(caller) = ctx.caller.as_deref() else {
        return Ok(Reach::All);
    };
    let admin = ctx
        .rights
        .as_deref()
        .is_some_and(|r| r.has_purpose(TENANT_ADMIN));
    if admin {
        return Ok(Reach::All);
    }
    match &caller.integrator {
        Some(integrator) => Ok(Reach::Integrator(integrator.clone())),
        None => Err(ApiError::new(
            Category::Forbidden,
            "ingest batches are for integrators (an `integrator` claim) and tenant admins",
        )),
    }
}

/// The integrator a new batch is recorded under: the caller's, if any.
pub fn integrator_of(ctx: &TenantCtx) -> Option<String> {
    ctx.caller.as_deref().and_then(|c| c.integrator.clone())
}

/// The label of an integrator in metrics and status: its name, or
/// `anonymous` for batches opened without one.
pub fn label(integrator: Option<&str>) -> String {
    integrator.unwrap_or("anonymous").to_owned()
}

/// The principal as a claim set that [`Principal::from_claims`] reads
/// back (the default claim names).
pub fn to_claims(principal: &Principal) -> Value {
    principal.to_claims()
}

/// Reads a principal stored by [`to_claims`].
pub fn from_claims(claims: &Value) -> Result<Principal, ApiError> {
    let map: Map<String, Value> = claims.as_object().cloned().unwrap_or_default();
    Principal::from_claims(&map, &ClaimNames::default())
        .map_err(|_| ApiError::fault("a batch's stored caller cannot be read"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_stored_principal_reads_back_the_same() {
        let claims = json!({
            "sub": "integrator-a", "client_id": "integrator-a",
            "scope": "system/*.cruds system/Patient.rs openid",
            "tenants": ["acme"], "groups": ["registry-integrator"], "integrator": "lab-a",
        });
        let principal =
            Principal::from_claims(claims.as_object().unwrap(), &ClaimNames::default()).unwrap();
        let back = from_claims(&to_claims(&principal)).unwrap();
        assert_eq!(back, principal);
    }
}
