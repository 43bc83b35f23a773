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
    forget_live(ctx);
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
    forget_live(ctx);
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

/// How many rows `schema.table` holds.
pub async fn count_rows(db: &impl Db, schema: &str, table: &str) -> Result<i64, ApiError> {
    let sql = format!("SELECT count(*) FROM {}.{}", quoted(schema), quoted(table));
    Ok(db.query(&sql, &[]).await?.first().map_or(0, |r| r.get(0)))
}

/// Indexes the table being built by resource (for the catch-up before
/// the swap, refreshes after writes, and expunge).
pub async fn index_by_resource(db: &impl Db, schema: &str, building: &str) -> Result<(), ApiError> {
    let index = quoted(&format!("{building}_resource"));
    db.pg()
        .batch_execute(&format!(
            "CREATE INDEX {index} ON {}.{} ({RESOURCE_COLUMN})",
            quoted(schema),
            quoted(building)
        ))
        .await?;
    Ok(())
}

/// Puts the rebuilt `building` in the place of `name`, readable by the
/// tenant's reader role.
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
    let built_index = quoted(&format!("{building}_resource"));
    let index = quoted(&format!("{name}_resource"));
    db.pg()
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {s}.{n}; ALTER TABLE {s}.{b} RENAME TO {n}; \
             ALTER INDEX {s}.{built_index} RENAME TO {index}; \
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
    forget_live(ctx);
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

/// A materialised view as writes keep it current.
struct Live {
    name: String,
    resource: String,
    view: fhir::view::ViewDefinition,
}

/// A tenant's materialised views, and when they were read.
type LiveViews = (std::time::Instant, std::sync::Arc<Vec<Live>>);

/// Each tenant's materialised views, read at most every [`LIVE_TTL`] (or
/// again at once after this application changed them), so that writes to
/// a tenant without any cost nothing. One per application (one database):
/// it lives in the application's shared tenant state, never in a static,
/// because two applications in one process (the tests) serve different
/// databases with the same tenant names.
#[derive(Default)]
pub struct LiveCache(dashmap::DashMap<String, LiveViews>);

impl std::fmt::Debug for LiveCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LiveCache({} tenants)", self.0.len())
    }
}

/// How stale the list of a tenant's materialised views may be in another
/// process (a view materialised elsewhere is kept current from then on).
const LIVE_TTL: std::time::Duration = std::time::Duration::from_secs(2);

/// Forgets the tenant's materialised views (after `$materialize`, a new
/// or deleted view).
fn forget_live(ctx: &TenantCtx) {
    ctx.registries.live_views.0.remove(&ctx.tenant);
}

async fn live_views(db: &impl Db, ctx: &TenantCtx) -> Result<std::sync::Arc<Vec<Live>>, ApiError> {
    let cache = &ctx.registries.live_views.0;
    if let Some(entry) = cache.get(&ctx.tenant) {
        if entry.0.elapsed() < LIVE_TTL {
            return Ok(entry.1.clone());
        }
    }
    let rows = db
        .query(
            "SELECT name, resource, definition::text FROM view_definitions \
             WHERE tenant = $1 AND materialized_at IS NOT NULL ORDER BY name",
            &[&ctx.tenant],
        )
        .await?;
    let views: Vec<Live> = rows
        .iter()
        .filter_map(|row| {
            let definition: Value = serde_json::from_str(&row.get::<_, String>(2)).ok()?;
            Some(Live {
                name: row.get(0),
                resource: row.get(1),
                view: fhir::view::ViewDefinition::parse(&definition).ok()?,
            })
        })
        .collect();
    let views = std::sync::Arc::new(views);
    cache.insert(
        ctx.tenant.clone(),
        (std::time::Instant::now(), views.clone()),
    );
    Ok(views)
}

/// Keeps the materialised tables current after a write: the rows of each
/// written resource are replaced by the view's rows for its new content
/// (none for a deletion), in the write's transaction. A resource the view
/// cannot evaluate, or whose rows do not fit the table, keeps no rows and
/// is logged; the write itself never fails for a view.
pub async fn refresh_written(
    db: &impl Db,
    ctx: &TenantCtx,
    written: &[&super::Stored],
) -> Result<(), ApiError> {
    let views = live_views(db, ctx).await?;
    if views.is_empty() {
        return Ok(());
    }
    let mut schema: Option<String> = None;
    for live in views.iter() {
        let of_type: Vec<&super::Stored> = written
            .iter()
            .filter(|s| s.resource_type == live.resource)
            .copied()
            .collect();
        if of_type.is_empty() {
            continue;
        }
        // Shares the lock `$materialize` takes before it swaps tables, so
        // a rebuild sees this write or this write sees the rebuilt table.
        db.execute(
            "SELECT 1 FROM view_definitions WHERE tenant = $1 AND name = $2 FOR SHARE",
            &[&ctx.tenant, &live.name],
        )
        .await?;
        if schema.is_none() {
            schema = Some(schema_of(db, ctx).await?);
        }
        let schema = schema.as_deref().unwrap_or_default();
        replace_rows(db, ctx, schema, &live.name, &live.view, &of_type).await?;
    }
    Ok(())
}

/// Replaces the rows of `resources` in table `schema.name` by `view`'s
/// rows for their content (none for a deletion). A resource the view
/// cannot evaluate, or whose rows do not fit the table, is logged and
/// keeps no rows.
pub async fn replace_rows(
    db: &impl Db,
    ctx: &TenantCtx,
    schema: &str,
    name: &str,
    view: &fhir::view::ViewDefinition,
    resources: &[&super::Stored],
) -> Result<(), ApiError> {
    let table = format!("{}.{}", quoted(schema), quoted(name));
    let ids: Vec<String> = resources.iter().map(|s| s.id.clone()).collect();
    let mut rows = Vec::new();
    for stored in resources {
        let Some(content) = &stored.content else {
            continue;
        };
        let resource: Value = serde_json::from_str(content).map_err(ApiError::fault)?;
        match view.evaluate(&resource) {
            Ok(evaluated) => rows.extend(evaluated.into_iter().map(|row| {
                let mut object = view.row_object(row);
                object.insert(RESOURCE_COLUMN.to_owned(), Value::String(stored.id.clone()));
                Value::Object(object)
            })),
            Err(e) => tracing::warn!(
                tenant = ctx.tenant, view = name, resource = stored.id, error = %e,
                "a resource has no rows in its materialised view"
            ),
        }
    }
    let delete = format!("DELETE FROM {table} WHERE {RESOURCE_COLUMN} = ANY($1)");
    db.execute(&delete, &[&ids]).await?;
    if rows.is_empty() {
        return Ok(());
    }
    let insert = format!(
        "INSERT INTO {table} SELECT * FROM json_populate_recordset(NULL::{table}, $1::text::json)"
    );
    let rows = Value::Array(rows).to_string();
    db.pg().batch_execute("SAVEPOINT view_refresh").await?;
    match db.execute(&insert, &[&rows]).await {
        Ok(_) => {
            db.pg()
                .batch_execute("RELEASE SAVEPOINT view_refresh")
                .await?
        }
        Err(e) => {
            tracing::warn!(tenant = ctx.tenant, view = name, error = %e,
                "rows do not fit their materialised view");
            db.pg()
                .batch_execute("ROLLBACK TO SAVEPOINT view_refresh")
                .await?;
        }
    }
    Ok(())
}

/// Locks view `id` against concurrent refreshes by writes (until the
/// transaction ends), for the swap of a rebuilt table.
pub async fn lock_for_swap(db: &impl Db, ctx: &TenantCtx, id: &str) -> Result<(), ApiError> {
    db.execute(
        "SELECT 1 FROM view_definitions WHERE tenant = $1 AND id = $2 FOR UPDATE",
        &[&ctx.tenant, &id],
    )
    .await?;
    Ok(())
}

/// The resources of `res_type` changed since `since` (current content,
/// `None` when deleted): what a rebuild catches up on before its swap.
pub async fn changed_since(
    db: &impl Db,
    ctx: &TenantCtx,
    res_type: &str,
    since: DateTime<Utc>,
) -> Result<Vec<super::Stored>, ApiError> {
    let rows = db
        .query(
            "SELECT r.id, r.version_id, r.last_updated, r.deleted, h.content::text FROM resources r \
             LEFT JOIN resource_history h ON h.tenant = r.tenant AND h.res_type = r.res_type \
               AND h.id = r.id AND h.version_id = r.version_id \
             WHERE r.tenant = $1 AND r.res_type = $2 AND r.last_updated >= $3",
            &[&ctx.tenant, &res_type, &since],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| super::Stored {
            resource_type: res_type.to_owned(),
            id: row.get(0),
            version_id: row.get(1),
            last_updated: row.get(2),
            deleted: row.get(3),
            content: row.get(4),
        })
        .collect())
}
