//! A search of one positive index clause (`Patient?name=smi`,
//! `Observation?patient=Patient/1`), unsorted: the page's ids are chosen
//! from the clause's index rows before any resource is visited.
//!
//! As a semi-join, PostgreSQL reads the clause's rows, hashes their ids,
//! probes `resources` for every one (to test `deleted` and to order by
//! id) and only then keeps a page: 720 probes of `resources_pkey` (2,887
//! buffer visits) for the 51 rows of `Patient?name=smi` on the benchmark's
//! 10,000 Patients. Here the distinct ids are sorted (or, for one token
//! or reference value, read in the index's own id order and cut after a
//! page), and `resources` is probed for the page alone: 480 buffer visits
//! in all for the same search.
//!
//! This leans on an invariant of the write path: index rows exist only
//! for current, non-deleted resources (a delete removes them in its own
//! transaction, as `Sql::matching` also assumes). Should a chosen id name
//! a resource that is missing or deleted, the page would come up short
//! and end the paging early; such a page is not returned, and the caller
//! runs the general statement instead.
//!
//! A clause matching a large share of the type is walked instead (see
//! [`super::probe`], which [`super::find`] tries first): sorting every
//! matching id would cost more than visiting a page of resources in id
//! order.

use super::{Found, Query, Sql, found, with_content};
use crate::search::criteria::Clause;
use crate::search::sort::Cursor;
use crate::store::{Db, TenantCtx, query_built};

/// The page of `query` read index first, or `None` when the query is not
/// one positive index clause of one type, unsorted, or when a chosen id
/// did not name a current resource (the caller then runs the general
/// statement).
pub(super) async fn page(
    db: &impl Db,
    ctx: &TenantCtx,
    query: Query<'_>,
    limit: usize,
    after: Option<&Cursor>,
) -> Result<Option<Vec<Found>>, tokio_postgres::Error> {
    let ([res_type], [], [clause]) = (query.types, query.sort, query.criteria.clauses.as_slice())
    else {
        return Ok(None);
    };
    let Clause::Match {
        table,
        negated: false,
        alternatives,
    } = clause
    else {
        return Ok(None);
    };
    if after.is_some_and(|a| a.res_type != *res_type) {
        return Ok(None);
    }
    let mut b = Sql::new(&ctx.tenant);
    let limit_sql = b.bind(i64::try_from(limit).unwrap_or(i64::MAX));
    let t = b.bind(res_type.clone());
    let test = b.alternatives("m", alternatives);
    let after_sql = match after {
        Some(after) => format!(" AND m.res_id > {}", b.bind(after.id.clone())),
        None => String::new(),
    };
    // `gone`: the chosen id has no current resource (see the module
    // comment); its other columns are then NULL.
    let page = format!(
        "SELECT {t}::text AS res_type, d.res_id AS id, r.version_id, r.last_updated, \
         (r.deleted IS NOT FALSE) AS gone FROM \
         (SELECT DISTINCT m.res_id FROM {table} m WHERE m.tenant = $1 AND m.res_type = {t} \
          AND {test}{after_sql} ORDER BY m.res_id LIMIT {limit_sql}) d \
         LEFT JOIN resources r ON r.tenant = $1 AND r.res_type = {t} AND r.id = d.res_id"
    );
    let sql = with_content(&page, ", q.gone", "q.id");
    let rows = query_built(db, &sql, &b.params).await?;
    if rows.iter().any(|row| row.get::<_, bool>(5)) {
        crate::metrics::count_plan("index-first-fallback");
        return Ok(None);
    }
    crate::metrics::count_plan("index-first");
    Ok(Some(rows.iter().map(|row| found(row, 0)).collect()))
}
