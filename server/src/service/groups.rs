//! Permission groups (issue 4): each tenant's own groups, cached in memory
//! and read once per tenant until an admin changes them; a caller's rights
//! (the union of its groups, system and tenant ones); and the operations
//! of the admin API (`/admin/groups`), which only `tenant-admin` may use.

use super::AppState;
use crate::auth::permissions::{Group, Rights, system_groups};
use crate::error::{ApiError, Category};
use crate::store::transaction::{Access, begin};
use crate::store::{TenantCtx, groups};
use actix_web::http::StatusCode;
use dashmap::DashMap;
use serde_json::{Value, json};
use std::sync::{Arc, OnceLock};

/// Each tenant's own groups, as last read. A change drops the tenant's
/// entry here and, through LISTEN/NOTIFY, on every other instance
/// (`events::notify`).
#[derive(Debug, Default)]
pub struct GroupCache {
    tenants: DashMap<String, Arc<Vec<Group>>>,
}

fn shipped() -> &'static [Group] {
    static GROUPS: OnceLock<Vec<Group>> = OnceLock::new();
    GROUPS.get_or_init(system_groups)
}

impl GroupCache {
    /// What a caller in the groups `names` may do in `ctx`'s tenant.
    pub async fn rights(
        &self,
        state: &AppState,
        ctx: &TenantCtx,
        names: &[String],
    ) -> Result<Rights, ApiError> {
        let own = self.tenant_groups(state, ctx).await?;
        Ok(Rights::of(shipped().iter().chain(own.iter()), names))
    }

    async fn tenant_groups(
        &self,
        state: &AppState,
        ctx: &TenantCtx,
    ) -> Result<Arc<Vec<Group>>, ApiError> {
        if let Some(groups) = self.tenants.get(&ctx.tenant) {
            return Ok(groups.clone());
        }
        let mut client = state.pool.get().await?;
        let tx = begin(&mut client, ctx, Access::ReadOnly).await?;
        let loaded = Arc::new(groups::list(&tx, ctx).await?);
        tx.commit().await?;
        self.tenants.insert(ctx.tenant.clone(), loaded.clone());
        Ok(loaded)
    }

    /// Drops a tenant's groups (changed here or on another instance).
    pub fn forget(&self, tenant: &str) {
        self.tenants.remove(tenant);
    }

    /// Drops every tenant's groups.
    pub fn forget_all(&self) {
        self.tenants.clear();
    }
}

/// The admin API's answer: a status and a JSON body.
pub type AdminAnswer = (StatusCode, Value);

/// Refuses callers without `tenant-admin` (everything is allowed with
/// authentication off, on loopback).
fn require_admin(ctx: &TenantCtx) -> Result<(), ApiError> {
    if ctx.caller.is_none() {
        return Ok(());
    }
    match ctx.rights.as_deref() {
        Some(rights) if rights.has_purpose("tenant-admin") => Ok(()),
        _ => Err(ApiError::new(
            Category::Forbidden,
            "managing groups needs the tenant-admin permission",
        )),
    }
}

/// `GET /admin/groups`: the system groups, then the tenant's own.
pub async fn list(state: &AppState, ctx: &TenantCtx) -> Result<AdminAnswer, ApiError> {
    require_admin(ctx)?;
    let own = state.groups.tenant_groups(state, ctx).await?;
    let all: Vec<Value> = shipped()
        .iter()
        .chain(own.iter())
        .map(Group::to_json)
        .collect();
    Ok((StatusCode::OK, json!({ "groups": all })))
}

/// `GET /admin/groups/{name}`.
pub async fn read(state: &AppState, ctx: &TenantCtx, name: &str) -> Result<AdminAnswer, ApiError> {
    require_admin(ctx)?;
    let own = state.groups.tenant_groups(state, ctx).await?;
    shipped()
        .iter()
        .chain(own.iter())
        .find(|g| g.name == name)
        .map(|g| (StatusCode::OK, g.to_json()))
        .ok_or_else(|| ApiError::not_found(format!("there is no group {name}")))
}

/// `PUT /admin/groups/{name}`: creates or replaces a tenant group.
pub async fn put(
    state: &AppState,
    ctx: &TenantCtx,
    name: &str,
    body: &Value,
) -> Result<AdminAnswer, ApiError> {
    require_admin(ctx)?;
    refuse_system(name)?;
    let group =
        Group::from_json(name, body).map_err(|p| ApiError::invalid(p.message).at(p.path))?;
    let mut client = state.pool.get().await?;
    let tx = begin(&mut client, ctx, Access::ReadWrite).await?;
    let created = groups::put(&tx, ctx, &group).await?;
    changed(&tx, ctx).await?;
    tx.commit().await?;
    state.groups.forget(&ctx.tenant);
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, group.to_json()))
}

/// `DELETE /admin/groups/{name}`.
pub async fn delete(
    state: &AppState,
    ctx: &TenantCtx,
    name: &str,
) -> Result<AdminAnswer, ApiError> {
    require_admin(ctx)?;
    refuse_system(name)?;
    let mut client = state.pool.get().await?;
    let tx = begin(&mut client, ctx, Access::ReadWrite).await?;
    let existed = groups::delete(&tx, ctx, name).await?;
    changed(&tx, ctx).await?;
    tx.commit().await?;
    state.groups.forget(&ctx.tenant);
    if existed {
        Ok((StatusCode::NO_CONTENT, Value::Null))
    } else {
        Err(ApiError::not_found(format!("there is no group {name}")))
    }
}

fn refuse_system(name: &str) -> Result<(), ApiError> {
    if shipped().iter().any(|g| g.name == name) {
        return Err(ApiError::new(
            Category::Forbidden,
            format!("{name} is a system group and cannot be changed"),
        )
        .at("name"));
    }
    Ok(())
}

/// Tells the other instances to drop their copy of the tenant's groups.
async fn changed(tx: &crate::store::TenantTx<'_>, ctx: &TenantCtx) -> Result<(), ApiError> {
    crate::events::notify::send(
        tx,
        crate::events::notify::Message::Groups(ctx.tenant.clone()),
    )
    .await
}
