//! Totals of a search: `_total=accurate` counts, `_total=estimate` counts
//! up to a bound and then asks the planner.

use super::{Query, Sql};
use crate::store::{Db, TenantCtx, query_built};

/// The planner's row estimate from an `EXPLAIN (FORMAT JSON)` answer.
pub(super) fn planned_rows(rows: &[tokio_postgres::Row]) -> Option<f64> {
    rows.first()
        .and_then(|row| row.try_get::<_, serde_json::Value>(0).ok())
        .and_then(|plan| plan[0]["Plan"]["Plan Rows"].as_f64())
}

/// How many current resources match (`_total=accurate`).
pub async fn count(
    db: &impl Db,
    ctx: &TenantCtx,
    query: Query<'_>,
) -> Result<i64, tokio_postgres::Error> {
    let mut b = Sql::new(&ctx.tenant);
    let filters = b.filters(query);
    let sql = format!(
        "SELECT count(*) FROM resources r WHERE {}",
        filters.join(" AND ")
    );
    let rows = query_built(db, &sql, &b.params).await?;
    Ok(rows.first().map_or(0, |row| row.get(0)))
}

/// Up to this many matches, `_total=estimate` counts them exactly.
pub const EXACT_ESTIMATE_UP_TO: i64 = 1_000;

/// `_total=estimate`: the exact count when there are at most
/// [`EXACT_ESTIMATE_UP_TO`] matches (counting stops there, so the cost is
/// bounded), else the planner's row estimate (at least that bound).
pub async fn estimate(
    db: &impl Db,
    ctx: &TenantCtx,
    query: Query<'_>,
) -> Result<i64, tokio_postgres::Error> {
    let mut b = Sql::new(&ctx.tenant);
    let filters = b.filters(query).join(" AND ");
    let limit = EXACT_ESTIMATE_UP_TO + 1;
    let sql =
        format!("SELECT count(*) FROM (SELECT 1 FROM resources r WHERE {filters} LIMIT {limit}) m");
    let rows = query_built(db, &sql, &b.params).await?;
    let counted: i64 = rows.first().map_or(0, |row| row.get(0));
    if counted <= EXACT_ESTIMATE_UP_TO {
        return Ok(counted);
    }
    let explain = format!("EXPLAIN (FORMAT JSON) SELECT 1 FROM resources r WHERE {filters}");
    let rows = query_built(db, &explain, &b.params).await?;
    let planned = planned_rows(&rows).unwrap_or_default();
    Ok((planned as i64).max(limit))
}
