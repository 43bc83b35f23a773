//! Reads of the current version (read) and of one version (vread).

use super::{Db, Stored, TenantCtx};
use tokio_postgres::Row;

/// The current version of one resource; a macro so that the locking
/// variant can extend the literal.
macro_rules! read_current_sql {
    () => {
        "SELECT r.version_id, r.last_updated, r.deleted, h.content::text
FROM resources r
JOIN resource_history h
  ON h.tenant = r.tenant AND h.res_type = r.res_type AND h.id = r.id AND h.version_id = r.version_id
WHERE r.tenant = $1 AND r.res_type = $2 AND r.id = $3"
    };
}

const READ_CURRENT: &str = read_current_sql!();
const READ_CURRENT_FOR_UPDATE: &str = concat!(read_current_sql!(), "\nFOR UPDATE OF r");

const READ_VERSION: &str = "\
SELECT version_id, last_updated, method = 'DELETE', content::text
FROM resource_history
WHERE tenant = $1 AND res_type = $2 AND id = $3 AND version_id = $4";

/// The current version, or `None` if the resource never existed. A deleted
/// resource comes back with `deleted` set and no content.
pub async fn read_current(
    db: &impl Db,
    ctx: &TenantCtx,
    resource_type: &str,
    id: &str,
) -> Result<Option<Stored>, tokio_postgres::Error> {
    current(db, READ_CURRENT, ctx, resource_type, id).await
}

/// One version by number.
pub async fn read_version(
    db: &impl Db,
    ctx: &TenantCtx,
    resource_type: &str,
    id: &str,
    version_id: i64,
) -> Result<Option<Stored>, tokio_postgres::Error> {
    let rows = db
        .query(
            READ_VERSION,
            &[&ctx.tenant, &resource_type, &id, &version_id],
        )
        .await?;
    Ok(rows.first().map(|row| stored(row, resource_type, id)))
}

fn stored(row: &Row, resource_type: &str, id: &str) -> Stored {
    Stored {
        resource_type: resource_type.to_owned(),
        id: id.to_owned(),
        version_id: row.get(0),
        last_updated: row.get(1),
        deleted: row.get(2),
        content: row.get(3),
    }
}

/// The current version, locked until the transaction ends (for patch).
pub async fn read_current_for_update(
    db: &impl Db,
    ctx: &TenantCtx,
    resource_type: &str,
    id: &str,
) -> Result<Option<Stored>, tokio_postgres::Error> {
    current(db, READ_CURRENT_FOR_UPDATE, ctx, resource_type, id).await
}

async fn current(
    db: &impl Db,
    sql: &str,
    ctx: &TenantCtx,
    resource_type: &str,
    id: &str,
) -> Result<Option<Stored>, tokio_postgres::Error> {
    let rows = db.query(sql, &[&ctx.tenant, &resource_type, &id]).await?;
    Ok(rows.first().map(|row| stored(row, resource_type, id)))
}

/// Each key's latest version in its history, one descent of the history
/// key per key: the write path keeps the current version the latest and
/// writes a deletion as a version without content (ARCHITECTURE.md,
/// Storage), so `resources` need not be probed first (for the 22
/// resources a page of the search benchmark's Q8 includes, 89 of 199
/// buffer visits were that probe).
const READ_MANY: &str = "\
SELECT k.res_type, k.id, h.version_id, h.last_updated, h.content::text
FROM unnest($2::text[], $3::text[]) AS k(res_type, id)
JOIN LATERAL (SELECT h.version_id, h.last_updated, h.content FROM resource_history h
   WHERE h.tenant = $1 AND h.res_type = k.res_type AND h.id = k.id
   ORDER BY h.version_id DESC LIMIT 1) h ON h.content IS NOT NULL";

/// The current versions of the given (type, id) pairs that exist and are
/// not deleted, in no particular order.
pub async fn read_many(
    db: &impl Db,
    ctx: &TenantCtx,
    keys: &[(String, String)],
) -> Result<Vec<Stored>, tokio_postgres::Error> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let (types, ids): (Vec<&str>, Vec<&str>) =
        keys.iter().map(|(t, i)| (t.as_str(), i.as_str())).unzip();
    let rows = db
        .query_generic(READ_MANY, &[&ctx.tenant, &types, &ids])
        .await?;
    Ok(rows.iter().map(current_row).collect())
}

/// A current version from a row of type, id, version, last updated and
/// content (as `READ_MANY` and the include statements select them).
pub fn current_row(row: &tokio_postgres::Row) -> Stored {
    Stored {
        resource_type: row.get(0),
        id: row.get(1),
        version_id: row.get(2),
        last_updated: row.get(3),
        deleted: false,
        content: row.get(4),
    }
}
