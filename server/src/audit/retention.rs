//! Retention of the audit trail: monthly partitions (UTC months) created
//! ahead of time, and partitions that end more than the retention period
//! ago dropped whole, by a task the server runs at start-up and hourly.
//! Dropping moves the chain's anchor in the same transaction (migration
//! V12, `audit_drop_partitions_before`), so verification starts at the
//! oldest kept row.

use chrono::{DateTime, Months, Utc};
use deadpool_postgres::Pool;
use std::time::Duration;

/// How often the task runs.
const PERIOD: Duration = Duration::from_secs(3600);
/// Months created ahead of the current one.
const MONTHS_AHEAD: u32 = 2;
/// The shortest retention accepted (also enforced in SQL).
pub const MIN_RETENTION_DAYS: u32 = 30;
/// About seven years.
pub const DEFAULT_RETENTION_DAYS: u32 = 2557;

/// Starts the task on the current runtime.
pub fn spawn(pool: Pool, retention_days: u32) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(PERIOD);
        loop {
            ticks.tick().await;
            let result = match pool.get().await {
                Ok(client) => maintain(&client, retention_days, Utc::now()).await,
                Err(e) => {
                    tracing::warn!(error = %e, "audit retention: no database connection");
                    continue;
                }
            };
            match result {
                Ok(dropped) if !dropped.is_empty() => {
                    tracing::info!(partitions = ?dropped, retention_days, "dropped expired audit partitions");
                }
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "audit retention failed"),
            }
        }
    })
}

/// Creates the partitions for the month of `now` and the next two, and
/// drops those that end before `now` minus `retention_days`. Returns the
/// names of the partitions dropped.
pub async fn maintain(
    client: &tokio_postgres::Client,
    retention_days: u32,
    now: DateTime<Utc>,
) -> Result<Vec<String>, tokio_postgres::Error> {
    for ahead in 0..=MONTHS_AHEAD {
        let month = now.checked_add_months(Months::new(ahead)).unwrap_or(now);
        client
            .query_one("SELECT audit_create_partition($1)", &[&month])
            .await?;
    }
    let cutoff = now - chrono::Duration::days(i64::from(retention_days));
    let rows = client
        .query("SELECT audit_drop_partitions_before($1)", &[&cutoff])
        .await?;
    Ok(rows.iter().map(|row| row.get(0)).collect())
}
