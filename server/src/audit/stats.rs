//! Figures from a tenant's audit trail for its overview
//! (`service::overview`): requests and refused or failed ones per hour,
//! and each caller's last successful write. Reads under the request's
//! `baraza.tenant`, so row-level security keeps other tenants out too.

use crate::store::{Db, TenantCtx};
use chrono::{DateTime, Utc};

/// One hour of the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HourCounts {
    pub hour: DateTime<Utc>,
    pub requests: i64,
    /// Outcome other than success (4, 8, 12): refused or failed.
    pub errors: i64,
}

/// Requests and errors per hour since `since`, only hours that had any.
pub async fn requests_per_hour(
    db: &impl Db,
    ctx: &TenantCtx,
    since: DateTime<Utc>,
) -> Result<Vec<HourCounts>, tokio_postgres::Error> {
    let rows = db
        .query(
            "SELECT date_trunc('hour', recorded, 'UTC'), count(*), count(*) FILTER (WHERE outcome <> 0) \
             FROM audit_events WHERE tenant = $1 AND recorded >= $2 GROUP BY 1 ORDER BY 1",
            &[&ctx.tenant, &since],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| HourCounts {
            hour: r.get(0),
            requests: r.get(1),
            errors: r.get(2),
        })
        .collect())
}

/// Interactions that write: create, update, patch, delete, and the
/// batches and transactions integrators submit.
const WRITES: &str = "(action IN ('C', 'U', 'D') OR subtype IN ('batch', 'transaction'))";

/// Each agent (user or client id) with its last successful write since
/// `since`, most recent first, at most `limit`.
pub async fn last_successful_writes(
    db: &impl Db,
    ctx: &TenantCtx,
    since: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<(String, DateTime<Utc>)>, tokio_postgres::Error> {
    let sql = format!(
        "SELECT agent, max(recorded) FROM audit_events, unnest(agents) AS agent \
         WHERE tenant = $1 AND recorded >= $2 AND outcome = 0 AND {WRITES} \
         GROUP BY agent ORDER BY 2 DESC LIMIT $3"
    );
    let rows = db.query(&sql, &[&ctx.tenant, &since, &limit]).await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}
