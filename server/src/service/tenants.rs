//! Which tenant a request is for (issue 4): `/fhir/{tenant}/...` names a
//! tenant, `/fhir/...` the tenant `default`. A tenant that does not exist,
//! is disabled, or is not the caller's gets the same 404, so that a caller
//! cannot tell which tenants exist.

use super::AppState;
use super::route::split_tenant;
use crate::error::ApiError;
use crate::store::TenantCtx;
use crate::store::tenants::DEFAULT_TENANT;

/// The one answer for a tenant the caller may not use, whatever the reason.
pub fn tenant_not_found() -> ApiError {
    ApiError::not_found("there is no FHIR base at this address")
}

/// The tenant named by `path` (relative to `/fhir`), if it is active, and
/// the path relative to the tenant's base.
pub async fn resolve(state: &AppState, path: &str) -> Result<(TenantCtx, String), ApiError> {
    let (tenant, rest) = split_tenant(path);
    let tenant = tenant.unwrap_or(DEFAULT_TENANT);
    if !state.tenants.is_active(tenant).await? {
        return Err(tenant_not_found());
    }
    let mut ctx = TenantCtx::new(tenant, &state.base_url, state.registries.clone());
    ctx.mpi = state.mpi.clone();
    ctx.mpi_queued = state.mpi_queued;
    Ok((ctx, rest.to_owned()))
}
