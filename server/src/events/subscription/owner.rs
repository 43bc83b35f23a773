//! A subscription's owner: the caller who wrote it, kept as claims in its
//! consumer row, and turned back into a principal (with the rights of its
//! groups now) for each delivery.

use super::diagnostics;
use crate::auth::Principal;
use crate::auth::scopes::Scopes;
use crate::service::AppState;
use crate::store::TenantCtx;
use serde_json::Value;

/// The claims that stand for `principal` when its subscription is
/// delivered (the tenant and group rights are re-checked each time).
pub fn owner_claims(principal: &Principal) -> Value {
    principal.to_claims()
}

pub(super) fn owner_principal(claims: &Value) -> Option<Principal> {
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let text = |v: &Value| v.as_str().map(str::to_owned);
    Some(Principal {
        subject: claims["sub"].as_str()?.to_owned(),
        client_id: text(&claims["client_id"]),
        scopes: Scopes::parse(claims["scope"].as_str().unwrap_or_default()),
        tenants: strings(&claims["tenants"]),
        groups: strings(&claims["groups"]),
        integrator: text(&claims["integrator"]),
        patient: text(&claims["patient"]),
    })
}

/// The tenant context a subscription's deliveries run as: its owner with
/// the rights of the owner's groups now, or no caller for a subscription
/// written without authentication.
pub(super) async fn owner_context(
    state: &AppState,
    ctx: &TenantCtx,
    owner: Option<&Value>,
) -> Result<TenantCtx, String> {
    let mut ctx = ctx.clone();
    let Some(claims) = owner else {
        return Ok(ctx);
    };
    let principal = owner_principal(claims)
        .ok_or_else(|| "the subscription's owner is not known".to_owned())?;
    if !principal.tenants.contains(&ctx.tenant) {
        return Err("the subscription's owner no longer has access to this tenant".to_owned());
    }
    let rights = state
        .groups
        .rights(state, &ctx, &principal.groups)
        .await
        .map_err(|e| format!("cannot read the owner's groups: {}", diagnostics(&e)))?;
    ctx.caller = Some(std::sync::Arc::new(principal));
    ctx.rights = Some(std::sync::Arc::new(rights));
    Ok(ctx)
}
