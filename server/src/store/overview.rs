//! The resource side of a tenant's overview (`service::overview`): how
//! many current resources of each type, and how many versions were
//! written in each of the last hours. Both read indexed columns only.

use super::{Db, TenantCtx};
use chrono::{DateTime, Utc};

/// Current (not deleted) resources per type, largest first.
pub async fn resource_counts(
    db: &impl Db,
    ctx: &TenantCtx,
) -> Result<Vec<(String, i64)>, tokio_postgres::Error> {
    let rows = db
        .query(
            "SELECT res_type, count(*) FROM resources WHERE tenant = $1 AND NOT deleted \
             GROUP BY res_type ORDER BY count(*) DESC, res_type",
            &[&ctx.tenant],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Versions written (creates, updates, deletions) per hour since `since`,
/// only the hours that had any.
pub async fn writes_per_hour(
    db: &impl Db,
    ctx: &TenantCtx,
    since: DateTime<Utc>,
) -> Result<Vec<(DateTime<Utc>, i64)>, tokio_postgres::Error> {
    let rows = db
        .query(
            "SELECT date_trunc('hour', last_updated, 'UTC'), count(*) FROM resource_history \
             WHERE tenant = $1 AND last_updated >= $2 GROUP BY 1 ORDER BY 1",
            &[&ctx.tenant, &since],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}
