//! Reverse chaining (`_has`) walked from the searched resources.
//!
//! `_has` is normally `id IN (targets of the matching sources)`: every
//! matching source's reference is read, then sorted. When the sources are
//! many and spread over a good share of the searched type (Patients with
//! an HbA1c Observation: 30,039 Observations of 3,009 of 10,000
//! Patients), the page is found far sooner by walking the searched
//! resources in id order and asking, for each, whether one of the sources
//! referring to it matches (a per-row subplan, kept from being flattened
//! into a join by `OFFSET 0`): 170 Patients and 6,235 probes instead of
//! 30,039 probes and a sort. PostgreSQL cannot see this (it estimates the
//! semi-join from the distinct ids of every type), so Baraza decides,
//! with three bounded probes before the search ([`dense`]):
//!
//! - the number of matching sources, counted up to [`COUNT_UP_TO`] (and
//!   beyond it, the planner's estimate, which the index tables' extended
//!   statistics make good for a code or a reference);
//! - the distinct targets of the first [`SAMPLE`] of them;
//! - the planner's estimate of the searched type's resources.
//!
//! It walks when at least [`WALK_MIN_SOURCES`] sources match and their
//! estimated targets are at least 1 in [`DENSITY`] of the searched
//! resources, so that a page needs a bounded walk; a rare or concentrated
//! source set keeps the `IN` form. The decision is reused for a minute
//! ([`super::probe::remembered`]): it steers the plan, not the result.
//!
//! When PostgreSQL would hash the matching sources (their estimated rows
//! fit its `work_mem`; Baraza asks with `EXPLAIN`), the walk does not
//! probe the sources' criteria for each source of each resource: the ids
//! of the matching sources are read once into a hash table (a hashed
//! subplan, kept from being flattened into a join by `IS TRUE`), and each
//! reference of a walked resource is looked up there. For the HbA1c search
//! that is 30,039 ids read in index order instead of 6,235 random probes
//! (22.7 ms instead of 45 ms warm in psql, 362 ms cold). Otherwise the
//! form would be an unhashed subplan that reads the sources again for
//! every reference, so the walk probes instead.

use super::{Sql, Subject};
use crate::search::criteria::{Alternative, Clause, Criteria};
use crate::search::patient_keyed;
use crate::store::{Db, TenantCtx, query_built};

/// Sources counted at most.
const COUNT_UP_TO: i64 = 5_000;
/// Fewer matching sources than this: the `IN` form is cheap enough.
const WALK_MIN_SOURCES: i64 = 2_000;
/// Sources whose targets are counted to judge how spread they are.
const SAMPLE: i64 = 200;
/// The estimated targets must be at least 1 in this many of the searched
/// resources.
const DENSITY: i64 = 20;

/// How a `_has` clause is searched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) enum HasPlan {
    /// `id IN (targets of the matching sources)`.
    #[default]
    In,
    /// Walked, probing each source's criteria.
    Walk,
    /// Walked, looking each source up among the hashed matching sources.
    WalkHashed,
    /// Walked, one probe of the token rows keyed by Patient per resource
    /// ([`keyed_by_patient`]).
    WalkByPatient,
}

impl HasPlan {
    /// The plan as a remembered figure ([`super::probe::remembered`]).
    fn code(self) -> f64 {
        match self {
            HasPlan::In => 0.0,
            HasPlan::Walk => 1.0,
            HasPlan::WalkHashed => 2.0,
            HasPlan::WalkByPatient => 3.0,
        }
    }

    fn from_code(code: f64) -> HasPlan {
        if code >= 3.0 {
            HasPlan::WalkByPatient
        } else if code >= 2.0 {
            HasPlan::WalkHashed
        } else if code >= 1.0 {
            HasPlan::Walk
        } else {
            HasPlan::In
        }
    }
}

/// Whether a walk pays, from the probes: `sources` matching (counted up
/// to [`COUNT_UP_TO`]), `distinct` targets among the first [`SAMPLE`] of
/// them, and `searched` resources of the searched type.
pub(super) fn walk_pays(sources: i64, distinct: i64, searched: i64) -> bool {
    if sources < WALK_MIN_SOURCES {
        return false;
    }
    let sampled = sources.clamp(1, SAMPLE);
    let targets = sources.saturating_mul(distinct) / sampled;
    targets.saturating_mul(DENSITY) >= searched
}

/// For each top-level clause of `criteria`, how it is searched if it is a
/// `_has`.
pub(super) async fn decide(
    db: &impl Db,
    ctx: &TenantCtx,
    res_type: &str,
    criteria: &Criteria,
) -> Result<Vec<HasPlan>, tokio_postgres::Error> {
    let mut walks = Vec::with_capacity(criteria.clauses.len());
    for clause in &criteria.clauses {
        walks.push(match clause {
            Clause::Has {
                source_type,
                param,
                inner,
            } => {
                let key = format!(
                    "walk\u{0}{}\u{0}{res_type}\u{0}{source_type}\u{0}{param}\u{0}{inner:?}",
                    ctx.tenant
                );
                let dense = dense(db, ctx, res_type, source_type, param, inner);
                let code = super::probe::remembered(key, async { Ok(dense.await?.code()) }).await?;
                HasPlan::from_code(code)
            }
            _ => HasPlan::In,
        });
    }
    Ok(walks)
}

/// The three probes of the module comment, [`walk_pays`], and whether
/// PostgreSQL would hash the matching sources.
async fn dense(
    db: &impl Db,
    ctx: &TenantCtx,
    res_type: &str,
    source_type: &str,
    param: &str,
    inner: &Criteria,
) -> Result<HasPlan, tokio_postgres::Error> {
    let mut b = Sql::new(&ctx.tenant);
    let sources = b.matching_ids(source_type, inner);
    let sql = format!("SELECT count(*) FROM ({sources} LIMIT {COUNT_UP_TO}) s");
    let mut counted: i64 = first_i64(&query_built(db, &sql, &b.params).await?);
    if counted < WALK_MIN_SOURCES {
        return Ok(HasPlan::In);
    }
    if counted >= COUNT_UP_TO {
        let explain = format!("EXPLAIN (FORMAT JSON) {sources}");
        let rows = query_built(db, &explain, &b.params).await?;
        let planned = super::total::planned_rows(&rows).unwrap_or_default();
        counted = counted.max(planned.min(i64::MAX as f64) as i64);
    }
    let mut b = Sql::new(&ctx.tenant);
    let sources = b.matching_ids(source_type, inner);
    let p = b.bind(param.to_owned());
    let t = b.bind(res_type.to_owned());
    let sql = format!(
        "SELECT count(DISTINCT h.target_id) FROM ({sources} LIMIT {SAMPLE}) s(res_type, res_id) \
         JOIN search_reference h ON h.tenant = $1 AND h.res_type = s.res_type \
         AND h.res_id = s.res_id AND h.param = {p} AND h.target_type = {t}"
    );
    let distinct = first_i64(&query_built(db, &sql, &b.params).await?);
    let mut b = Sql::new(&ctx.tenant);
    let t = b.bind(res_type.to_owned());
    let sql = format!(
        "EXPLAIN (FORMAT JSON) SELECT 1 FROM resources r \
         WHERE r.tenant = $1 AND r.res_type = {t} AND NOT r.deleted"
    );
    let rows = query_built(db, &sql, &b.params).await?;
    let searched = super::total::planned_rows(&rows).unwrap_or(f64::MAX);
    if !walk_pays(counted, distinct, searched.min(i64::MAX as f64) as i64) {
        return Ok(HasPlan::In);
    }
    if keyed_by_patient(source_type, param, inner).is_some() {
        return Ok(HasPlan::WalkByPatient);
    }
    // PostgreSQL hashes an uncorrelated `IN` subplan only when its
    // estimated rows fit `work_mem` (times `hash_mem_multiplier`); ask it.
    let mut b = Sql::new(&ctx.tenant);
    let sources = b.matching(source_type, inner, false);
    let s = b.bind(source_type.to_owned());
    let p = b.bind(param.to_owned());
    let sql = format!(
        "EXPLAIN SELECT 1 FROM search_reference w WHERE w.tenant = $1 AND w.res_type = {s} \
         AND w.param = {p} AND (w.res_id IN ({sources})) IS TRUE"
    );
    let plan = query_built(db, &sql, &b.params).await?;
    let hashed = plan.iter().any(|row| {
        row.try_get::<_, String>(0)
            .is_ok_and(|line| line.contains("hashed SubPlan"))
    });
    Ok(if hashed {
        HasPlan::WalkHashed
    } else {
        HasPlan::Walk
    })
}

fn first_i64(rows: &[tokio_postgres::Row]) -> i64 {
    rows.first().map_or(0, |row| row.get(0))
}

/// The token alternatives of a `_has` that token rows keyed by Patient
/// answer ([`patient_keyed`]): the sources refer by `patient`, their type
/// refers to one Patient at most, and `inner` is one positive token
/// clause.
pub(super) fn keyed_by_patient<'c>(
    source_type: &str,
    param: &str,
    inner: &'c Criteria,
) -> Option<&'c [Alternative]> {
    if param != patient_keyed::PARAM || !patient_keyed::single_patient(source_type) {
        return None;
    }
    match &inner.clauses[..] {
        [
            Clause::Match {
                table: "search_token",
                negated: false,
                alternatives,
            },
        ] => Some(alternatives),
        _ => None,
    }
}

impl Sql {
    /// `_has` answered from the token rows of `source_type` keyed by
    /// Patient: when `walk`, a per-row probe of `subject` (one index probe
    /// for a Patient), else `subject` among the keyed rows' Patients. Only
    /// a Patient can match.
    pub(super) fn has_by_patient(
        &mut self,
        source_type: &str,
        alternatives: &[Alternative],
        subject: &Subject,
        walk: bool,
    ) -> String {
        let k = self.alias("k");
        let s = self.bind(source_type.to_owned());
        let patient = self.bind("Patient".to_owned());
        let test = self.alternatives(&k, alternatives);
        let rows = format!("search_token {k} WHERE {k}.tenant = $1 AND {k}.res_type = {s}");
        let keyed = if walk {
            format!(
                "EXISTS (SELECT 1 FROM {rows} AND {k}.patient = {} AND {test} OFFSET 0)",
                subject.id
            )
        } else {
            format!(
                "{} IN (SELECT {k}.patient FROM {rows} AND {k}.patient IS NOT NULL AND {test})",
                subject.id
            )
        };
        format!("({} = {patient} AND {keyed})", subject.res_type)
    }

    /// `_has` as a per-row test of `subject`: one of the sources of
    /// `source_type` referring to it by `param` matches `inner` (looked up
    /// among the hashed matching sources when `hashed`).
    pub(super) fn has_walk(
        &mut self,
        source_type: &str,
        param: &str,
        inner: &Criteria,
        subject: &Subject,
        hashed: bool,
    ) -> String {
        let a = self.alias("w");
        let s = self.bind(source_type.to_owned());
        let p = self.bind(param.to_owned());
        let source = Subject {
            res_type: format!("{a}.res_type"),
            id: format!("{a}.res_id"),
        };
        let mut conditions = vec![
            format!("{a}.tenant = $1"),
            format!("{a}.target_type = {}", subject.res_type),
            format!("{a}.target_id = {}", subject.id),
            format!("{a}.res_type = {s}"),
            format!("{a}.param = {p}"),
        ];
        if hashed {
            let sources = self.matching_ids(source_type, inner);
            conditions.push(format!(
                "(({a}.res_type, {a}.res_id) IN ({sources})) IS TRUE"
            ));
        } else {
            conditions.extend(self.criteria(inner, &source));
        }
        format!(
            "EXISTS (SELECT 1 FROM search_reference {a} WHERE {} OFFSET 0)",
            conditions.join(" AND ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::walk_pays;

    #[test]
    fn walks_only_for_many_sources_spread_over_the_searched_type() {
        // HbA1c: 30,039 Observations, 185 distinct Patients among 200 of
        // them, 10,000 Patients.
        assert!(walk_pays(30_039, 185, 10_000));
        // The same proportions in a million Patients (3 million results).
        assert!(walk_pays(3_000_000, 185, 1_000_000));
        // 5,000 results spread over a million Patients: too sparse.
        assert!(!walk_pays(5_000, 185, 1_000_000));
        // Few sources: the IN form.
        assert!(!walk_pays(1_999, 200, 2_000));
        // Many sources about a handful of targets (one monitored patient).
        assert!(!walk_pays(5_000, 3, 10_000));
        // Every Patient has the code.
        assert!(walk_pays(5_000, 200, 10_000));
    }
}
