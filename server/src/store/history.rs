//! History at instance, type and system level (http.html#history), newest
//! first, paged by commit sequence so that pages stay stable under writes.

use super::{Db, Param, TenantCtx, bind, query_built};
use chrono::{DateTime, Utc};

#[derive(Debug, Clone)]
pub enum HistoryScope {
    System,
    Type(String),
    Instance(String, String),
}

#[derive(Debug, Clone, Default)]
pub struct HistoryQuery {
    /// `_since`: versions created at or after this instant.
    pub since: Option<DateTime<Utc>>,
    /// `_at`: versions current at some point in `[start, end)`.
    pub at: Option<(DateTime<Utc>, DateTime<Utc>)>,
    /// Page size.
    pub count: usize,
    /// Continue below this sequence number (exclusive).
    pub before_seq: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct HistoryRow {
    pub seq: i64,
    pub resource_type: String,
    pub id: String,
    pub version_id: i64,
    pub last_updated: DateTime<Utc>,
    pub method: String,
    pub content: Option<String>,
}

/// Returns up to `count + 1` rows, so the caller can tell whether there is a
/// next page.
pub async fn history(
    db: &impl Db,
    ctx: &TenantCtx,
    scope: &HistoryScope,
    query: &HistoryQuery,
) -> Result<Vec<HistoryRow>, tokio_postgres::Error> {
    let mut params: Vec<Param> = vec![Box::new(ctx.tenant.clone())];
    let mut sql = String::from(
        "SELECT h.seq, h.res_type, h.id, h.version_id, h.last_updated, h.method, h.content::text \
         FROM resource_history h WHERE h.tenant = $1",
    );
    match scope {
        HistoryScope::System => {}
        HistoryScope::Type(t) => {
            let p = bind(&mut params, Box::new(t.clone()));
            sql.push_str(&format!(" AND h.res_type = {p}"));
        }
        HistoryScope::Instance(t, id) => {
            let pt = bind(&mut params, Box::new(t.clone()));
            let pi = bind(&mut params, Box::new(id.clone()));
            sql.push_str(&format!(" AND h.res_type = {pt} AND h.id = {pi}"));
        }
    }
    if let Some(since) = query.since {
        let p = bind(&mut params, Box::new(since));
        sql.push_str(&format!(" AND h.last_updated >= {p}"));
    }
    if let Some((start, end)) = query.at {
        let ps = bind(&mut params, Box::new(start));
        let pe = bind(&mut params, Box::new(end));
        sql.push_str(&format!(
            " AND h.last_updated < {pe} AND NOT EXISTS (SELECT 1 FROM resource_history n \
             WHERE n.tenant = h.tenant AND n.res_type = h.res_type AND n.id = h.id \
             AND n.version_id = h.version_id + 1 AND n.last_updated <= {ps})"
        ));
    }
    if let Some(before) = query.before_seq {
        let p = bind(&mut params, Box::new(before));
        sql.push_str(&format!(" AND h.seq < {p}"));
    }
    let limit = i64::try_from(query.count + 1).unwrap_or(i64::MAX);
    let p = bind(&mut params, Box::new(limit));
    sql.push_str(&format!(" ORDER BY h.seq DESC LIMIT {p}"));
    let rows = query_built(db, &sql, &params).await?;
    Ok(rows
        .iter()
        .map(|row| HistoryRow {
            seq: row.get(0),
            resource_type: row.get(1),
            id: row.get(2),
            version_id: row.get(3),
            last_updated: row.get(4),
            method: row.get(5),
            content: row.get(6),
        })
        .collect())
}
