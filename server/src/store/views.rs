//! Storage of SQL-on-FHIR ViewDefinitions (migration V28) and their
//! materialised tables in the tenant's schema `analytics_<tenant>`. Table
//! and column names reach SQL only after validation (the view's `name` by
//! [`is_table_name`], columns by `fhir::view`), and are quoted besides.

use super::{Db, TenantCtx};
use crate::error::ApiError;
use chrono::{DateTime, Utc};
use serde_json::Value;

/// A stored view.
#[derive(Debug, Clone)]
pub struct StoredView {
    pub id: String,
    pub name: String,
    pub resource: String,
    pub definition: Value,
    pub updated_at: DateTime<Utc>,
    pub materialized_at: Option<DateTime<Utc>>,
    pub materialized_rows: Option<i64>,
}

/// The column every materialised table starts with: the id of the
/// resource a row came from (for expunge and refreshes).
pub const RESOURCE_COLUMN: &str = "_resource";

/// Whether `name` may name a table: lowercase letters, digits and `_`,
/// starting with a letter, at most 55 bytes (a suffix is added while a
/// table is rebuilt).
pub fn is_table_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && name.len() <= 55
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

const COLUMNS: &str =
    "id, name, resource, definition::text, updated_at, materialized_at, materialized_rows";

fn stored(row: &tokio_postgres::Row) -> StoredView {
    StoredView {
        id: row.get(0),
        name: row.get(1),
        resource: row.get(2),
        definition: serde_json::from_str(&row.get::<_, String>(3)).unwrap_or(Value::Null),
        updated_at: row.get(4),
        materialized_at: row.get(5),
        materialized_rows: row.get(6),
    }
}

pub async fn list(db: &impl Db, ctx: &TenantCtx) -> Result<Vec<StoredView>, ApiError> {
    let sql = format!("SELECT {COLUMNS} FROM view_definitions WHERE tenant = $1 ORDER BY id");
    Ok(db
        .query(&sql, &[&ctx.tenant])
        .await?
        .iter()
        .map(stored)
        .collect())
}

pub async fn get(db: &impl Db, ctx: &TenantCtx, id: &str) -> Result<Option<StoredView>, ApiError> {
    let sql = format!("SELECT {COLUMNS} FROM view_definitions WHERE tenant = $1 AND id = $2");
    Ok(db
        .query(&sql, &[&ctx.tenant, &id])
        .await?
        .first()
        .map(stored))
}

/// Creates or replaces view `id`; whether it was created. A view renamed
/// or retargeted loses its table (it is rebuilt by `$materialize`).
pub async fn put(
    db: &impl Db,
    ctx: &TenantCtx,
    id: &str,
    name: &str,
    resource: &str,
    definition: &Value,
) -> Result<bool, ApiError> {
    let before = get(db, ctx, id).await?;
    if let Some(old) = &before {
        if old.materialized_at.is_some() && (old.name != name || old.resource != resource) {
            drop_table(db, ctx, &old.name).await?;
        }
    }
    let taken = db
        .query(
            "SELECT id FROM view_definitions WHERE tenant = $1 AND name = $2 AND id <> $3",
            &[&ctx.tenant, &name, &id],
        )
        .await?;
    if let Some(row) = taken.first() {
        return Err(ApiError::new(
            crate::error::Category::Conflict,
            format!(
                "the view ViewDefinition/{} already has the name {name}",
                row.get::<_, String>(0)
            ),
        ));
    }
    db.execute(
        "INSERT INTO view_definitions (tenant, id, name, resource, definition) \
         VALUES ($1, $2, $3, $4, $5::text::json) \
         ON CONFLICT (tenant, id) DO UPDATE SET name = excluded.name, resource = excluded.resource, \
         definition = excluded.definition, updated_at = now(), \
         materialized_at = CASE WHEN view_definitions.name = excluded.name \
           AND view_definitions.resource = excluded.resource THEN view_definitions.materialized_at END",
        &[&ctx.tenant, &id, &name, &resource, &definition.to_string()],
    )
    .await?;
    Ok(before.is_none())
}

/// Deletes view `id` and its table; whether it existed.
pub async fn delete(db: &impl Db, ctx: &TenantCtx, id: &str) -> Result<bool, ApiError> {
    let Some(view) = get(db, ctx, id).await? else {
        return Ok(false);
    };
    if view.materialized_at.is_some() {
        drop_table(db, ctx, &view.name).await?;
    }
    db.execute(
        "DELETE FROM view_definitions WHERE tenant = $1 AND id = $2",
        &[&ctx.tenant, &id],
    )
    .await?;
    Ok(true)
}

/// The tenant's analytics schema and reader role, created if needed
/// (`baraza_analytics_prepare`, migration V28).
pub async fn prepare_schema(db: &impl Db) -> Result<(String, String), ApiError> {
    let row = db
        .query(
            "SELECT schema_name, reader FROM baraza_analytics_prepare()",
            &[],
        )
        .await?;
    let row = row
        .first()
        .ok_or_else(|| ApiError::fault("baraza_analytics_prepare returned nothing"))?;
    Ok((row.get(0), row.get(1)))
}

/// The tenant's analytics schema name.
async fn schema_of(db: &impl Db, ctx: &TenantCtx) -> Result<String, ApiError> {
    let row = db
        .query(
            "SELECT baraza_analytics_name('analytics_', $1)",
            &[&ctx.tenant],
        )
        .await?;
    Ok(row.first().map(|r| r.get(0)).unwrap_or_default())
}

fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

async fn drop_table(db: &impl Db, ctx: &TenantCtx, name: &str) -> Result<(), ApiError> {
    let schema = schema_of(db, ctx).await?;
    db.pg()
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {}.{}",
            quoted(&schema),
            quoted(name)
        ))
        .await?;
    Ok(())
}

/// Creates the empty table `table` (the `_resource` column, then
/// `columns` as (name, SQL type)), replacing a leftover of an interrupted
/// build.
pub async fn create_table(
    db: &impl Db,
    schema: &str,
    table: &str,
    columns: &[(String, &str)],
) -> Result<(), ApiError> {
    let mut definitions = vec![format!("{RESOURCE_COLUMN} text NOT NULL")];
    definitions.extend(
        columns
            .iter()
            .map(|(name, t)| format!("{} {t}", quoted(name))),
    );
    let (schema, table) = (quoted(schema), quoted(table));
    db.pg()
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {schema}.{table}; CREATE TABLE {schema}.{table} ({})",
            definitions.join(", ")
        ))
        .await?;
    Ok(())
}

/// A COPY into `table` in CSV, its columns in the order of
/// [`create_table`].
pub async fn copy_into(
    db: &impl Db,
    schema: &str,
    table: &str,
    columns: &[(String, &str)],
) -> Result<tokio_postgres::CopyInSink<bytes::Bytes>, ApiError> {
    let mut names = vec![RESOURCE_COLUMN.to_owned()];
    names.extend(columns.iter().map(|(name, _)| quoted(name)));
    let sql = format!(
        "COPY {}.{} ({}) FROM STDIN (FORMAT csv)",
        quoted(schema),
        quoted(table),
        names.join(", ")
    );
    Ok(db.pg().copy_in(&sql).await?)
}

/// Puts the rebuilt `building` in the place of `name`, indexed by
/// resource and readable by the tenant's reader role.
pub async fn replace(
    db: &impl Db,
    schema: &str,
    building: &str,
    name: &str,
    reader: &str,
) -> Result<(), ApiError> {
    let (s, b, n, r) = (
        quoted(schema),
        quoted(building),
        quoted(name),
        quoted(reader),
    );
    let index = quoted(&format!("{name}_resource"));
    db.pg()
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {s}.{n}; ALTER TABLE {s}.{b} RENAME TO {n}; \
             CREATE INDEX {index} ON {s}.{n} ({RESOURCE_COLUMN}); \
             REVOKE ALL ON {s}.{n} FROM PUBLIC; GRANT SELECT ON {s}.{n} TO {r}; ANALYZE {s}.{n}"
        ))
        .await?;
    Ok(())
}

pub async fn set_materialized(
    db: &impl Db,
    ctx: &TenantCtx,
    id: &str,
    rows: i64,
) -> Result<(), ApiError> {
    db.execute(
        "UPDATE view_definitions SET materialized_at = now(), materialized_rows = $3 \
         WHERE tenant = $1 AND id = $2",
        &[&ctx.tenant, &id, &rows],
    )
    .await?;
    Ok(())
}

/// Removes the rows of the resources `(types[i], ids[i])` from every
/// materialised table of their type (expunge).
pub async fn delete_resources(
    db: &impl Db,
    ctx: &TenantCtx,
    types: &[String],
    ids: &[String],
) -> Result<(), ApiError> {
    let views = db
        .query(
            "SELECT name, resource FROM view_definitions WHERE tenant = $1 \
             AND materialized_at IS NOT NULL AND resource = ANY($2)",
            &[&ctx.tenant, &types],
        )
        .await?;
    if views.is_empty() {
        return Ok(());
    }
    let schema = schema_of(db, ctx).await?;
    for view in views {
        let (name, resource): (String, String) = (view.get(0), view.get(1));
        let of_type: Vec<String> = types
            .iter()
            .zip(ids)
            .filter(|(t, _)| **t == resource)
            .map(|(_, id)| id.clone())
            .collect();
        let sql = format!(
            "DELETE FROM {}.{} WHERE {RESOURCE_COLUMN} = ANY($1)",
            quoted(&schema),
            quoted(&name)
        );
        db.execute(&sql, &[&of_type]).await?;
    }
    Ok(())
}
