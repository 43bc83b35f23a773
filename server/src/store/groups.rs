//! A tenant's own permission groups (table `permission_groups`).

use super::{Db, TenantCtx};
use crate::auth::permissions::Group;
use serde_json::Value;

/// The tenant's groups, by name.
pub async fn list(db: &impl Db, ctx: &TenantCtx) -> Result<Vec<Group>, tokio_postgres::Error> {
    let rows = db
        .query(
            "SELECT name, description, permissions, purposes FROM permission_groups \
             WHERE tenant = $1 ORDER BY name",
            &[&ctx.tenant],
        )
        .await?;
    Ok(rows
        .iter()
        .filter_map(|row| {
            let name: String = row.get(0);
            let description: String = row.get(1);
            let permissions: Value = row.get(2);
            let purposes: Value = row.get(3);
            let document = serde_json::json!({
                "description": description,
                "permissions": permissions,
                "purposes": purposes,
            });
            // Rows are written only from checked documents; one that no
            // longer reads (a purpose since removed) grants nothing.
            Group::from_json(&name, &document).ok()
        })
        .collect())
}

/// Creates or replaces `group`; true when it was created.
pub async fn put(
    db: &impl Db,
    ctx: &TenantCtx,
    group: &Group,
) -> Result<bool, tokio_postgres::Error> {
    let document = group.to_json();
    let rows = db
        .query(
            "INSERT INTO permission_groups (tenant, name, description, permissions, purposes) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (tenant, name) DO UPDATE SET description = EXCLUDED.description, \
             permissions = EXCLUDED.permissions, purposes = EXCLUDED.purposes, updated_at = now() \
             RETURNING (xmax = 0)",
            &[
                &ctx.tenant,
                &group.name,
                &group.description,
                &document["permissions"],
                &document["purposes"],
            ],
        )
        .await?;
    Ok(rows.first().is_some_and(|row| row.get(0)))
}

/// Deletes the group `name`; true when it existed.
pub async fn delete(
    db: &impl Db,
    ctx: &TenantCtx,
    name: &str,
) -> Result<bool, tokio_postgres::Error> {
    let n = db
        .execute(
            "DELETE FROM permission_groups WHERE tenant = $1 AND name = $2",
            &[&ctx.tenant, &name],
        )
        .await?;
    Ok(n > 0)
}
