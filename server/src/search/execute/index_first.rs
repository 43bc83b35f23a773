//! Unsorted searches whose page's ids are chosen from one clause's index
//! rows before any resource is visited.
//!
//! As a semi-join, PostgreSQL reads the clause's rows, hashes their ids,
//! probes `resources` for every one (to test `deleted` and to order by
//! id) and only then keeps a page: 720 probes of `resources_pkey` (2,887
//! buffer visits) for the 51 rows of `Patient?name=smi` on the benchmark's
//! 10,000 Patients. Here the distinct ids are sorted (or, for one token
//! or reference value, read in the index's own id order and cut after a
//! page), and `resources` is probed for the page alone: 480 buffer visits
//! in all for the same search. These shapes are read this way:
//!
//! - one positive index clause (`Patient?name=smi`,
//!   `Observation?patient=Patient/1`);
//! - several clauses, one of which names one resource or identifier
//!   ([`super::probe::pinpoint`]: `Observation?patient=Patient/1&code=…&date=…`).
//!   That clause's few ids lead, and each is tested against the other
//!   clauses by per-row index probes before its resource is visited:
//!   `resources` is probed for the 8 Observations of the page instead of
//!   the patient's 55. When the named resource is the `patient` of a type
//!   whose token rows are keyed by Patient and another clause is a
//!   `system|code` token, the token rows of that code and Patient lead
//!   instead ([`keyed_lead`]): the 8 Observations' ids come straight off
//!   `search_token_patient`, and the other clauses are probed for those 8
//!   rather than for the Patient's 55. The `patient` clause itself is not
//!   probed again: the keyed rows already answer it;
//! - a chain to one resource or identifier
//!   (`Encounter?patient.identifier=…`): the reference rows pointing at
//!   the far end's few matches, in id order;
//! - several clauses led by one `system|code` token clause when
//!   [`super::probe::decide`] finds that a page needs few of its ids
//!   (`Observation?code=…|2339-0&value-quantity=gt180`): its lookup index
//!   holds them in id order, each is probed for the other clauses, and no
//!   Observation between them is visited;
//! - `Patient?_has:Observation:patient:code=system|code`, answered by the
//!   token rows keyed by Patient ([`crate::search::patient_keyed`]): their
//!   index holds the Patients of one code in id order, so the first page
//!   of distinct Patients is read off it (297 buffer visits instead of
//!   1,068 for the benchmark's HbA1c search).
//!
//! The first two lean on an invariant of the write path: index rows exist
//! only for current, non-deleted resources (a delete removes them in its
//! own transaction, as `Sql::matching` also assumes). Should a chosen id
//! name a resource that is missing or deleted, the page would come up
//! short and end the paging early; such a page is not returned, and the
//! caller runs the general statement instead. They read each chosen id's
//! latest version from `resource_history` alone: a resource's current
//! version is its latest (a deletion is a version without content), so
//! `resources` is not visited at all. The third joins `resources` before
//! the page is cut, since a reference may name a Patient that is gone.
//!
//! A clause matching a large share of the type is walked instead (see
//! [`super::probe`], which [`super::find`] tries first): sorting every
//! matching id would cost more than visiting a page of resources in id
//! order.

use super::{Found, Query, Sql, Subject, found, latest_version, probe, walk, with_content};
use crate::search::criteria::{Alternative, Clause, Cond, ReferenceValue, TokenValue};
use crate::search::patient_keyed;
use crate::search::sort::Cursor;
use crate::store::{Db, TenantCtx, query_built_generic, query_built_merged};

/// The page of `query` read index first, or `None` when the query has none
/// of the shapes above, or when a chosen id did not name a current
/// resource (the caller then runs the general statement).
pub(super) async fn page(
    db: &impl Db,
    ctx: &TenantCtx,
    query: Query<'_>,
    limit: usize,
    after: Option<&Cursor>,
    lead: Option<probe::Lead>,
) -> Result<Option<Vec<Found>>, tokio_postgres::Error> {
    let ([res_type], []) = (query.types, query.sort) else {
        return Ok(None);
    };
    if after.is_some_and(|a| a.res_type != *res_type) {
        return Ok(None);
    }
    let clauses = query.criteria.clauses.as_slice();
    if let [
        Clause::Has {
            source_type,
            param,
            inner,
        },
    ] = clauses
        && let Some(alternatives) = walk::keyed_by_patient(source_type, param, inner)
    {
        return keyed_page(db, ctx, res_type, source_type, alternatives, limit, after).await;
    }
    let ordered = lead.is_some();
    let merge = lead.is_some_and(|lead| lead.merged);
    let lead = lead.map(|lead| lead.clause);
    let chain = match clauses {
        [Clause::Chain { param, targets }]
            if !ordered && targets.iter().all(|(_, inner)| probe::pinpointed(inner)) =>
        {
            Some((param, targets))
        }
        _ => None,
    };
    let Some(lead) = lead
        .or_else(|| leading_clause(clauses))
        .or(chain.map(|_| 0))
    else {
        return Ok(None);
    };
    let mut b = Sql::new(&ctx.tenant);
    b.per_row = true;
    let limit_sql = b.bind(i64::try_from(limit).unwrap_or(i64::MAX));
    let t = b.bind(res_type.clone());
    let keyed = if ordered {
        None
    } else {
        keyed_lead(res_type, clauses)
    };
    // A clause the leading rows answer exactly, besides the lead itself.
    let mut answered = None;
    let (led, lead, plan) = match (keyed, chain) {
        (None, Some((param, targets))) => {
            let rows = b.chained_rows(param, targets, &t);
            let after_sql = after_id(&mut b, "c.res_id", after);
            let led = format!(
                "SELECT DISTINCT c.res_id FROM ({rows}) c WHERE true{after_sql} ORDER BY c.res_id"
            );
            (led, 0, "index-first-chained")
        }
        (Some(Keyed { token, patient, by }), _) => {
            let Clause::Match { alternatives, .. } = &clauses[token] else {
                return Ok(None);
            };
            answered = Some(by);
            let test = b.alternatives("k", alternatives);
            let patient = b.bind(patient.to_owned());
            let after_sql = after_id(&mut b, "k.res_id", after);
            let led = format!(
                "SELECT DISTINCT k.res_id FROM search_token k WHERE k.tenant = $1 \
                 AND k.res_type = {t} AND {test} AND k.patient = {patient}{after_sql} \
                 ORDER BY k.res_id"
            );
            (led, token, "index-first-keyed")
        }
        (None, None) => {
            let Clause::Match {
                table,
                alternatives,
                ..
            } = &clauses[lead]
            else {
                return Ok(None);
            };
            let test = b.alternatives("m", alternatives);
            let after_sql = after_id(&mut b, "m.res_id", after);
            let led = format!(
                "SELECT DISTINCT m.res_id FROM {table} m WHERE m.tenant = $1 AND m.res_type = {t} \
                 AND {test}{after_sql} ORDER BY m.res_id"
            );
            let plan = if ordered {
                "index-first-ordered"
            } else {
                "index-first"
            };
            (led, lead, plan)
        }
    };
    let mut merged = false;
    let probed = clauses.len() - 1 - usize::from(answered.is_some());
    let chosen = if probed == 0 {
        format!("{led} LIMIT {limit_sql}")
    } else {
        // The other clauses, merged with the leading ids or tested for
        // each in turn.
        let subject = Subject {
            res_type: t.clone(),
            id: "d.res_id".to_owned(),
        };
        let others = clauses
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != lead && Some(*i) != answered)
            .map(|(_, clause)| clause);
        let (joins, tests) = probe::merged_or_tested(&mut b, others, &subject, after, merge);
        merged = !joins.is_empty();
        format!(
            "SELECT d.res_id FROM ({led}) d{joins} WHERE {} ORDER BY d.res_id LIMIT {limit_sql}",
            tests.join(" AND ")
        )
    };
    // Each chosen id's latest version ([`latest_version`]). `gone`: the
    // chosen id has no current resource, its latest version being a
    // deletion or missing (see the module comment).
    let latest = latest_version(&t, "d.res_id");
    let sql = format!(
        "SELECT {t}::text AS res_type, d.res_id AS id, h.version_id, h.last_updated, \
         h.content::text, (h.content IS NULL) AS gone FROM ({chosen}) d \
         LEFT JOIN {latest} ON true ORDER BY d.res_id"
    );
    let rows = if merged {
        query_built_merged(db, &sql, &b.params).await?
    } else {
        query_built_generic(db, &sql, &b.params).await?
    };
    if rows.iter().any(|row| row.get::<_, bool>(5)) {
        crate::metrics::count_plan("index-first-fallback");
        return Ok(None);
    }
    crate::metrics::count_plan(plan);
    if merged {
        crate::metrics::count_plan("merge");
    }
    Ok(Some(rows.iter().map(|row| found(row, 0)).collect()))
}

/// The clause whose index rows lead: the only clause, when it is one
/// positive index clause; among several plain clauses, the first positive
/// one that names one resource or identifier.
fn leading_clause(clauses: &[Clause]) -> Option<usize> {
    match clauses {
        [Clause::Match { negated: false, .. }] => Some(0),
        [_] | [] => None,
        _ => clauses.iter().position(|c| {
            matches!(c, Clause::Match { negated: false, alternatives, .. }
                if probe::pinpoint(alternatives))
        }),
    }
}

/// With a clause `patient=Patient/x` (or a bare id) on a type whose token
/// rows are keyed by their Patient ([`patient_keyed`]), the first positive
/// token clause of `system|code` values and that Patient: their rows lead
/// (`Observation?patient=…&code=…&date=…` reads the Patient's few
/// Observations of that code, not all of the Patient's Observations).
///
/// The `patient` clause is answered by those rows: a token row's
/// `patient` is set only from a `patient` reference row of type Patient
/// and that id ([`patient_keyed::patient_of`]), which is what the clause
/// matches (`patient=x` or `patient=Patient/x`, a versioned reference
/// indexed under its id). So it is not probed again for each id.
fn keyed_lead<'c>(res_type: &str, clauses: &'c [Clause]) -> Option<Keyed<'c>> {
    if !patient_keyed::single_patient(res_type) {
        return None;
    }
    let (by, patient) = clauses.iter().enumerate().find_map(|(i, c)| match c {
        Clause::Match {
            table: "search_reference",
            negated: false,
            alternatives,
        } => match &alternatives[..] {
            [
                Alternative {
                    param,
                    cond: Cond::Reference(ReferenceValue::Local { target_type, id }),
                },
            ] if param == patient_keyed::PARAM
                && target_type.as_deref().is_none_or(|t| t == "Patient") =>
            {
                Some((i, id.as_str()))
            }
            _ => None,
        },
        _ => None,
    })?;
    let token = clauses.iter().position(|c| {
        matches!(c, Clause::Match { table: "search_token", negated: false, alternatives }
        if !alternatives.is_empty() && alternatives.iter().all(|alt| {
            matches!(alt.cond, Cond::Token(TokenValue::SystemCode(..)))
        }))
    })?;
    Some(Keyed { token, patient, by })
}

/// The leading token clause of [`keyed_lead`], its Patient, and the
/// `patient` clause that named it.
struct Keyed<'c> {
    token: usize,
    patient: &'c str,
    by: usize,
}

/// `_has` of sources keyed by Patient whose one token alternative is a
/// `system|code` (the index holds its Patients in id order): the first
/// `limit` distinct Patients after `after` that exist. `None` for any
/// other token test, whose Patients would all be read and sorted.
async fn keyed_page(
    db: &impl Db,
    ctx: &TenantCtx,
    res_type: &str,
    source_type: &str,
    alternatives: &[Alternative],
    limit: usize,
    after: Option<&Cursor>,
) -> Result<Option<Vec<Found>>, tokio_postgres::Error> {
    let [
        Alternative {
            cond: Cond::Token(TokenValue::SystemCode(..)),
            ..
        },
    ] = alternatives
    else {
        return Ok(None);
    };
    if res_type != "Patient" {
        return Ok(None);
    }
    let mut b = Sql::new(&ctx.tenant);
    let limit_sql = b.bind(i64::try_from(limit).unwrap_or(i64::MAX));
    let s = b.bind(source_type.to_owned());
    let t = b.bind(res_type.to_owned());
    let test = b.alternatives("k", alternatives);
    let after_sql = after_id(&mut b, "k.patient", after);
    let page = format!(
        "SELECT r.res_type, r.id, r.version_id, r.last_updated FROM \
         (SELECT DISTINCT k.patient FROM search_token k WHERE k.tenant = $1 AND k.res_type = {s} \
          AND k.patient IS NOT NULL AND {test}{after_sql} ORDER BY k.patient) d \
         JOIN resources r ON r.tenant = $1 AND r.res_type = {t} AND r.id = d.patient \
         AND NOT r.deleted ORDER BY r.id LIMIT {limit_sql}"
    );
    let sql = with_content(&page, "", "q.id");
    // The generic plan with merge joins only: the Patients of the code in
    // id order merged with `resources` in id order (297 buffer visits for
    // the benchmark's Q7), which is also what planning for the values
    // chose, at 0.3-0.6 ms of planning per search. The generic plan the
    // planner prefers probes `resources` for each Patient (491; Q7 alone
    // ran at 633 and 651 searches/s with it against 728 and 683).
    let rows = query_built_merged(db, &sql, &b.params).await?;
    crate::metrics::count_plan("has-keyed-first");
    Ok(Some(rows.iter().map(|row| found(row, 0)).collect()))
}

/// ` AND column > (the cursor's id)`, or nothing on the first page.
fn after_id(b: &mut Sql, column: &str, after: Option<&Cursor>) -> String {
    match after {
        Some(after) => format!(" AND {column} > {}", b.bind(after.id.clone())),
        None => String::new(),
    }
}
