//! Conjunctions of common values walked from the searched resources.
//!
//! A search such as `Patient?birthdate=ge1980-01-01&gender=female` ANDs
//! clauses that each match a large share of the type. As semi-joins, each
//! clause's index rows are all read (thousands) and the page is sorted out
//! of their intersection. Walking the searched resources in id order and
//! testing each with one index probe per clause (a per-row subplan, kept
//! from being flattened into a join by `OFFSET 0`) fills a page after
//! `limit / selectivity` resources: 250 Patients and about 500 probes for
//! that search, instead of some 9,000 index rows and a sort. PostgreSQL
//! does not see this (it estimates a semi-join from the distinct ids of
//! every type), so Baraza decides, from planner estimates of each clause
//! alone (which the index tables' extended statistics make good):
//!
//! - the selectivity of the conjunction, assuming independent clauses;
//! - the resources a walk is expected to visit, `limit / selectivity`;
//! - walk when that many resources times the clauses costs fewer probes
//!   than [`WALK_BUDGET`] and than the smallest clause's own rows (from
//!   which the planner could drive the search instead).
//!
//! The assumption of independence can be wrong (clauses that rarely hold
//! together), so the walk is bounded: it visits at most [`SCAN_SLACK`]
//! times the expected resources. When that bound ends the walk before the
//! page is full, the search is run again as semi-joins; the cost of a bad
//! guess is a bounded number of probes.
//!
//! A conjunction that is not walked may still be led by one clause
//! ([`Plan::Lead`]): a positive `system|code` token, whose lookup index
//! holds the matching ids in id order, when the other clauses are
//! expected to keep enough of them that a page needs at most
//! [`LEAD_BUDGET`] probes (`Observation?code=…|2339-0&value-quantity=gt180`).
//! The page is then read the index-first way ([`super::index_first`]):
//! the token's ids in order, each probed for the other clauses, and only
//! the page's resources read. The general statement would probe the same
//! ids after merge-joining them with the walk of every Observation between
//! them, and would be planned for each execution.
//!
//! A walk's positive clauses on [`COVERED`] tables are not probed but
//! merged ([`merged`]): their owner index holds one type's rows in id
//! order, so the walked range's rows are read in order, about a hundred
//! a leaf page, where each probe descends the index. So is a dense
//! leading clause's page ([`Lead`]).
//!
//! Planner estimates are reused for [`ESTIMATE_TTL`] per statement and
//! parameters ([`remembered`]): they only choose a plan, never a result.

use super::{Found, Query, Sql, Subject, found, with_content};
use crate::search::criteria::{Alternative, Clause, Cond, Criteria, ReferenceValue, TokenValue};
use crate::search::sort::Cursor;
use crate::store::{Db, TenantCtx, query_built, query_built_generic, query_built_merged};
use dashmap::DashMap;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

/// Most probes a walk is expected to need.
const WALK_BUDGET: f64 = 1_500.0;
/// Most probes a page led by an ordered clause is expected to need.
const LEAD_BUDGET: f64 = 3_000.0;
/// The walk visits at most this many times the expected resources...
const SCAN_SLACK: f64 = 8.0;
/// ...and at least this many.
const MIN_SCAN: f64 = 1_000.0;
/// How long a planner estimate is reused.
const ESTIMATE_TTL: Duration = Duration::from_secs(60);
/// Cached estimates at most; the cache is emptied when full.
const ESTIMATES_KEPT: usize = 10_000;

/// The resources to visit at most, when a walk pays: the expected
/// resources for a page of `limit` at `selectivity`, over `clauses`
/// clauses whose smallest positive one has `smallest` rows.
pub(super) fn walk_scan(
    limit: usize,
    clauses: usize,
    selectivity: f64,
    smallest: f64,
) -> Option<i64> {
    if selectivity <= 0.0 || clauses == 0 {
        return None;
    }
    let expected = limit as f64 / selectivity;
    let probes = expected * clauses as f64;
    if probes > WALK_BUDGET || probes > smallest {
        return None;
    }
    Some((expected * SCAN_SLACK).max(MIN_SCAN).ceil() as i64)
}

/// How a conjunction of plain index clauses is searched, when not as the
/// general statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Plan {
    /// Walked, visiting at most this many resources ([`walk`]).
    Walk(i64),
    /// Led by this clause's index rows in id order ([`super::index_first`]),
    /// the other clauses probed per id, or merged with them ([`Lead`]).
    Lead(Lead),
}

/// Whether `criteria` on `res_type` is walked (and then the resources to
/// visit at most), or led by one clause: only conjunctions of plain index
/// clauses, one of them positive.
pub(super) async fn decide(
    db: &impl Db,
    ctx: &TenantCtx,
    res_type: &str,
    criteria: &Criteria,
    limit: usize,
) -> Result<Option<Plan>, tokio_postgres::Error> {
    let plain = |c: &Clause| matches!(c, Clause::Match { .. });
    let positive = |c: &Clause| matches!(c, Clause::Match { negated: false, .. });
    if !criteria.clauses.iter().all(plain) || !criteria.clauses.iter().any(positive) {
        return Ok(None);
    }
    if pinpointed(criteria) {
        return Ok(None);
    }
    let mut b = Sql::new(&ctx.tenant);
    let t = b.bind(res_type.to_owned());
    let sql = format!(
        "SELECT 1 FROM resources r WHERE r.tenant = $1 AND r.res_type = {t} AND NOT r.deleted"
    );
    let searched = estimated_rows(db, &sql, &b).await?.max(1.0);
    let mut selectivity = 1.0;
    let mut smallest = f64::MAX;
    let mut shares = Vec::with_capacity(criteria.clauses.len());
    for clause in &criteria.clauses {
        let Clause::Match {
            table,
            negated,
            alternatives,
        } = clause
        else {
            return Ok(None);
        };
        let mut b = Sql::new(&ctx.tenant);
        let t = b.bind(res_type.to_owned());
        let test = b.alternatives("m", alternatives);
        let sql =
            format!("SELECT 1 FROM {table} m WHERE m.tenant = $1 AND m.res_type = {t} AND {test}");
        let rows = estimated_rows(db, &sql, &b).await?;
        let share = (rows / searched).min(1.0);
        let kept = if *negated { 1.0 - share } else { share };
        if !*negated {
            smallest = smallest.min(rows);
        }
        selectivity *= kept;
        shares.push(kept);
    }
    if let Some(scan) = walk_scan(limit, criteria.clauses.len(), selectivity, smallest) {
        return Ok(Some(Plan::Walk(scan)));
    }
    let Some(lead) = criteria.clauses.iter().position(ordered) else {
        return Ok(None);
    };
    let kept: f64 = shares
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != lead)
        .map(|(_, share)| share)
        .product();
    let lead = Lead {
        clause: lead,
        merged: shares[lead] >= MERGE_SHARE,
    };
    Ok(lead_pays(limit, criteria.clauses.len(), kept).then_some(Plan::Lead(lead)))
}

/// The leading clause of a [`Plan::Lead`], and whether the other clauses
/// on [`COVERED`] tables are merged with its ids rather than probed for
/// each ([`merged`]): when the leading clause matches at least
/// [`MERGE_SHARE`] of the type, so that the merge reads the rows of a few
/// resources for each leading id (a leaf page holds about a hundred),
/// where a probe descends an index (four buffer visits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Lead {
    pub clause: usize,
    pub merged: bool,
}

/// The smallest share of the type a leading clause merged with the
/// others matches (see [`Lead`]).
const MERGE_SHARE: f64 = 0.02;

/// Whether a clause's index rows are in id order for one value: one
/// `system|code` token (the lookup index ends with the id).
fn ordered(clause: &Clause) -> bool {
    matches!(clause, Clause::Match { table: "search_token", negated: false, alternatives }
        if matches!(&alternatives[..],
            [alt] if matches!(alt.cond, Cond::Token(TokenValue::SystemCode(..)))))
}

/// Whether leading from an ordered clause's rows pays: the rows expected
/// to fill a page of `limit` when the other clauses keep `kept` of them,
/// times those clauses' probes, within [`LEAD_BUDGET`]. (The general
/// statement, merge-joining the searched resources with the same rows,
/// probes as many, after walking the resources between them.)
pub(super) fn lead_pays(limit: usize, clauses: usize, kept: f64) -> bool {
    kept > 0.0 && limit as f64 / kept * clauses.saturating_sub(1) as f64 <= LEAD_BUDGET
}

/// Whether every alternative names one resource (a reference to an id)
/// or one identifier: such a clause matches few resources, from which the
/// planner drives the search, so no estimate is asked (they would differ
/// for every patient, and be asked again each time).
pub(super) fn pinpoint(alternatives: &[Alternative]) -> bool {
    alternatives.iter().all(|alt| match &alt.cond {
        Cond::Reference(ReferenceValue::Local { .. }) => true,
        Cond::Token(TokenValue::SystemCode(..) | TokenValue::Code(_)) => alt.param == "identifier",
        _ => false,
    })
}

/// Whether `criteria` has a positive clause that names one resource or
/// identifier ([`pinpoint`]).
pub(super) fn pinpointed(criteria: &Criteria) -> bool {
    criteria.clauses.iter().any(|c| {
        matches!(c, Clause::Match { negated: false, alternatives, .. } if pinpoint(alternatives))
    })
}

/// The page walked: at most `scan` resources after `after`, each tested
/// clause by clause. `None` when the bound ended the walk before the page
/// was full: the caller searches again with semi-joins.
pub(super) async fn walk(
    db: &impl Db,
    ctx: &TenantCtx,
    query: Query<'_>,
    limit: usize,
    after: Option<&Cursor>,
    scan: i64,
) -> Result<Option<Vec<Found>>, tokio_postgres::Error> {
    let walked = |b: &mut Sql| {
        let mut base = b.filters(Query {
            criteria: &Criteria::default(),
            ..query
        });
        if let Some(after) = after {
            let t = b.bind(after.res_type.clone());
            let i = b.bind(after.id.clone());
            base.push(format!("(r.res_type, r.id) > ({t}, {i})"));
        }
        let bound = b.bind(scan);
        format!(
            "SELECT r.tenant, r.res_type, r.id, r.version_id, r.last_updated, r.deleted \
             FROM resources r WHERE {} ORDER BY r.res_type, r.id LIMIT {bound}",
            base.join(" AND ")
        )
    };
    let mut b = Sql::new(&ctx.tenant);
    let page = b.bind(i64::try_from(limit).unwrap_or(i64::MAX));
    let visit = walked(&mut b);
    b.per_row = true;
    let t = b.bind(query.types.first().cloned().unwrap_or_default());
    let subject = Subject {
        res_type: t.clone(),
        id: "r.id".to_owned(),
    };
    let (joins, tests) = merged_or_tested(&mut b, &query.criteria.clauses, &subject, after, true);
    let merged = !joins.is_empty();
    let sql = with_content(
        &format!(
            "SELECT r.res_type, r.id, r.version_id, r.last_updated FROM ({visit}) r{joins} \
             WHERE {} ORDER BY r.id LIMIT {page}",
            tests.join(" AND ")
        ),
        "",
        "q.res_type, q.id",
    );
    let rows = if merged {
        query_built_merged(db, &sql, &b.params).await?
    } else {
        query_built_generic(db, &sql, &b.params).await?
    };
    let page: Vec<Found> = rows.iter().map(|row| found(row, 0)).collect();
    if merged {
        crate::metrics::count_plan("merge");
    }
    if page.len() >= limit {
        crate::metrics::count_plan("walk");
        return Ok(Some(page));
    }
    // Short of a page: complete only if the walk reached the last resource.
    let mut b = Sql::new(&ctx.tenant);
    let visit = walked(&mut b);
    let sql = format!("SELECT count(*) FROM ({visit}) s");
    let visited: i64 = query_built(db, &sql, &b.params)
        .await?
        .first()
        .map_or(0, |row| row.get(0));
    if visited < scan {
        crate::metrics::count_plan("walk");
        return Ok(Some(page));
    }
    crate::metrics::count_plan("walk-fallback");
    Ok(None)
}

/// The tables whose owner index covers the columns a condition tests
/// (`tenant, res_type, res_id, param` and the values): their rows of a
/// range of resources are read in id order without visiting the table.
const COVERED: [&str; 5] = [
    "search_token",
    "search_reference",
    "search_date",
    "search_number",
    "search_quantity",
];

/// A positive clause on a [`COVERED`] table as a merge join with the
/// walked resources (or the leading ids) whose id is `id`: its matching
/// ids of type `t` (after the cursor's id) in id order, which the owner
/// index gives. Reading the
/// rows of the walked range in order costs about one buffer visit for
/// every hundred rows, where probing each walked resource descends the
/// index (four visits): `Patient?birthdate=ge1980-01-01&gender=female`'s
/// page took 173 buffer visits merged and about 1,400 probed. The merge
/// ends with the walk, so the bound on the walk bounds every scan; led
/// by a clause, it ends with the page.
fn merged(
    b: &mut Sql,
    clause: &Clause,
    t: &str,
    id: &str,
    after: Option<&Cursor>,
) -> Option<String> {
    let Clause::Match {
        table,
        negated: false,
        alternatives,
    } = clause
    else {
        return None;
    };
    if !COVERED.contains(table) {
        return None;
    }
    let a = b.alias("j");
    let test = b.alternatives(&a, alternatives);
    // Bound here, only when used: PostgreSQL refuses a parameter it
    // cannot type.
    let after = after.map_or(String::new(), |after| {
        format!(" AND {a}.res_id > {}", b.bind(after.id.clone()))
    });
    Some(format!(
        " JOIN (SELECT DISTINCT {a}.res_id FROM {table} {a} WHERE {a}.tenant = $1 \
         AND {a}.res_type = {t} AND {test}{after}) {a} ON {a}.res_id = {id}"
    ))
}

/// `clauses` on `subject` (whose id is a column and whose type a bound
/// parameter): as merge joins ([`merged`]) where `merge` allows and the
/// clause can be, and the rest as per-row tests; the tests are `true`
/// when there are none.
pub(super) fn merged_or_tested<'c>(
    b: &mut Sql,
    clauses: impl IntoIterator<Item = &'c Clause>,
    subject: &Subject,
    after: Option<&Cursor>,
    merge: bool,
) -> (String, Vec<String>) {
    let mut joins = String::new();
    let mut tests = Vec::new();
    for clause in clauses {
        let join = merge
            .then(|| merged(b, clause, &subject.res_type, &subject.id, after))
            .flatten();
        match join {
            Some(join) => joins.push_str(&join),
            None => tests.push(b.clause(clause, subject)),
        }
    }
    if tests.is_empty() {
        tests.push("true".to_owned());
    }
    (joins, tests)
}

/// The planner's row estimate of `sql` with the parameters of `b`, reused
/// for [`ESTIMATE_TTL`].
pub(super) async fn estimated_rows(
    db: &impl Db,
    sql: &str,
    b: &Sql,
) -> Result<f64, tokio_postgres::Error> {
    remembered(format!("{sql}\u{0}{:?}", b.params), async {
        let rows = query_built(db, &format!("EXPLAIN (FORMAT JSON) {sql}"), &b.params).await?;
        Ok(super::total::planned_rows(&rows).unwrap_or(f64::MAX))
    })
    .await
}

/// A figure that only steers a plan, computed by `compute` and reused for
/// [`ESTIMATE_TTL`] under `key` (which must name the tenant).
pub(super) async fn remembered(
    key: String,
    compute: impl Future<Output = Result<f64, tokio_postgres::Error>>,
) -> Result<f64, tokio_postgres::Error> {
    static FIGURES: LazyLock<DashMap<String, (f64, Instant)>> = LazyLock::new(DashMap::new);
    if let Some(hit) = FIGURES.get(&key) {
        let (figure, at) = *hit;
        if at.elapsed() < ESTIMATE_TTL {
            return Ok(figure);
        }
    }
    let figure = compute.await?;
    if FIGURES.len() >= ESTIMATES_KEPT {
        FIGURES.clear();
    }
    FIGURES.insert(key, (figure, Instant::now()));
    Ok(figure)
}

#[cfg(test)]
mod tests {
    use super::{lead_pays, walk_scan};

    #[test]
    fn walks_only_conjunctions_that_fill_a_page_within_the_budget() {
        // Women born since 1980, a fifth of 10,000 Patients: 51 / 0.2 =
        // 255 Patients, 510 probes, fewer than the 4,000 birth dates.
        assert_eq!(walk_scan(51, 2, 0.2, 4_000.0), Some(2_040));
        // A rare conjunction: too many resources to visit.
        assert_eq!(walk_scan(51, 2, 0.001, 4_000.0), None);
        // One patient's Observations: drive from the patient's 100 rows.
        assert_eq!(walk_scan(51, 3, 0.5, 100.0), None);
        // A common single clause: at least MIN_SCAN resources visited.
        assert_eq!(walk_scan(51, 1, 0.9, 9_000.0), Some(1_000));
        // No match expected at all.
        assert_eq!(walk_scan(51, 1, 0.0, 0.0), None);
    }

    #[test]
    fn leads_from_an_ordered_clause_when_its_page_needs_few_probes() {
        // Glucose Observations, a thirtieth of them over 180 by the
        // estimates: 1,530 rows and as many quantity probes.
        assert!(lead_pays(51, 2, 1.0 / 30.0));
        // Two more clauses: twice the probes.
        assert!(!lead_pays(51, 3, 1.0 / 30.0));
        // A rare second clause: the general statement.
        assert!(!lead_pays(51, 2, 0.001));
        assert!(!lead_pays(51, 2, 0.0));
    }
}
