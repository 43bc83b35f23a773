//! Runs criteria against the index tables: one SQL statement per search
//! page, keyset-paged by the sort keys and then by (type, id), so that page
//! 50 costs what page 1 costs and pages stay consistent while writes happen.
//!
//! The tenant is bound once (`$1`) and every subquery names it, so that
//! chained and `_has` subqueries are uncorrelated and the planner may run
//! them in either direction.

use super::criteria::{Alternative, Clause, Criteria};
use super::sort::{Cursor, SortBy, SortKey};
use crate::store::{Db, Param, Stored, TenantCtx, bind, query_built, query_built_generic};

mod by_index;
mod conditions;
mod index_first;
mod prefix;
mod probe;
mod total;
mod walk;

pub use total::{EXACT_ESTIMATE_UP_TO, count, estimate};

/// What to search: resource types (one for type-level search, several for
/// system-wide search), criteria and sort order.
#[derive(Debug, Clone, Copy)]
pub struct Query<'a> {
    pub types: &'a [String],
    pub criteria: &'a Criteria,
    pub sort: &'a [SortKey],
}

/// A matching resource and the cursor that continues after it.
#[derive(Debug)]
pub struct Found {
    pub stored: Stored,
    pub cursor: Cursor,
}

/// SQL text and its parameters, with fresh aliases for nested subqueries.
struct Sql {
    params: Vec<Param>,
    aliases: usize,
    /// Per top-level clause: how a `_has` is searched (see [`walk`]).
    walks: Vec<walk::HasPlan>,
    /// Index clauses as per-row probes rather than semi-joins (see
    /// [`probe`]). Such statements also run with generic plans, in which
    /// a cast of a parameter is not folded into a constant: numbers are
    /// then cast once, in an initplan ([`Sql::number`]).
    per_row: bool,
}

/// The resource a condition is about: SQL for its type and its id.
#[derive(Clone)]
struct Subject {
    res_type: String,
    id: String,
}

impl Sql {
    fn new(tenant: &str) -> Sql {
        Sql {
            params: vec![Box::new(tenant.to_owned())],
            aliases: 0,
            walks: Vec::new(),
            per_row: false,
        }
    }

    fn bind<T: tokio_postgres::types::ToSql + Sync + Send + 'static>(
        &mut self,
        value: T,
    ) -> String {
        bind(&mut self.params, Box::new(value))
    }

    /// `column` starts with `text` (see [`prefix`]).
    fn starts_with(&mut self, column: &str, text: &str) -> String {
        let low = self.bind(text.to_owned());
        let high = prefix::successor(text).map(|high| self.bind(high));
        prefix::condition(column, &low, high.as_deref())
    }

    fn alias(&mut self, prefix: &str) -> String {
        self.aliases += 1;
        format!("{prefix}{}", self.aliases)
    }

    /// The WHERE conditions of `criteria` on `subject`.
    fn criteria(&mut self, criteria: &Criteria, subject: &Subject) -> Vec<String> {
        criteria
            .clauses
            .iter()
            .map(|clause| self.clause(clause, subject))
            .collect()
    }

    fn owner(&self, alias: &str, subject: &Subject) -> String {
        format!(
            "{alias}.tenant = $1 AND {alias}.res_type = {} AND {alias}.res_id = {}",
            subject.res_type, subject.id
        )
    }

    fn clause(&mut self, clause: &Clause, subject: &Subject) -> String {
        match clause {
            Clause::Ids(ids) => format!("{} = ANY({})", subject.id, self.bind(ids.clone())),
            Clause::Match {
                table,
                negated,
                alternatives,
            } => {
                let a = self.alias("m");
                let owner = self.owner(&a, subject);
                let test = self.alternatives(&a, alternatives);
                format!(
                    "{}EXISTS (SELECT 1 FROM {table} {a} WHERE {owner} AND {test}{})",
                    if *negated { "NOT " } else { "" },
                    if self.per_row { " OFFSET 0" } else { "" }
                )
            }
            Clause::Missing {
                param,
                table,
                missing,
            } => {
                let a = self.alias("m");
                let owner = self.owner(&a, subject);
                let p = self.bind(param.clone());
                // The table name comes from a closed list (ParamKind::table).
                format!(
                    "{}EXISTS (SELECT 1 FROM {table} {a} WHERE {owner} AND {a}.param = {p})",
                    if *missing { "NOT " } else { "" }
                )
            }
            Clause::Chain { param, targets } => {
                // (type, id) IN (...) rather than nested EXISTS: the
                // subqueries do not refer to the outer row (unless the
                // subject's type is a column, in system-wide search), so
                // the planner may start from the chained criteria.
                let rows = self.chained_rows(param, targets, &subject.res_type);
                format!("{} IN ({rows})", subject.id)
            }
            Clause::ForTypes(per_type) => {
                let ors: Vec<String> = per_type
                    .iter()
                    .map(|(t, clause)| {
                        let t = self.bind(t.clone());
                        let inner = self.clause(clause, subject);
                        format!("({} = {t} AND {inner})", subject.res_type)
                    })
                    .collect();
                format!("({})", ors.join(" OR "))
            }
            Clause::AnyOf(alternatives) => {
                let ors: Vec<String> = alternatives
                    .iter()
                    .map(|criteria| {
                        let ands = self.criteria(criteria, subject);
                        if ands.is_empty() {
                            "true".to_owned()
                        } else {
                            format!("({})", ands.join(" AND "))
                        }
                    })
                    .collect();
                if ors.is_empty() {
                    "false".to_owned()
                } else {
                    format!("({})", ors.join(" OR "))
                }
            }
            Clause::Has {
                source_type,
                param,
                inner,
            } => {
                if let Some(alternatives) = walk::keyed_by_patient(source_type, param, inner) {
                    return self.has_by_patient(source_type, alternatives, subject, false);
                }
                let a = self.alias("h");
                let sources = self.matching_ids(source_type, inner);
                let s = self.bind(source_type.clone());
                let p = self.bind(param.clone());
                format!(
                    "{} IN (SELECT {a}.target_id FROM search_reference {a} WHERE {a}.tenant = $1 \
                     AND {a}.res_type = {s} AND {a}.param = {p} AND {a}.target_type = {} \
                     AND ({a}.res_type, {a}.res_id) IN ({sources}))",
                    subject.id, subject.res_type
                )
            }
        }
    }

    /// `SELECT res_id` of the reference rows of the type `res_type` (SQL)
    /// whose `param` points at a resource of one of `targets` that meets
    /// its criteria.
    fn chained_rows(
        &mut self,
        param: &str,
        targets: &[(String, Criteria)],
        res_type: &str,
    ) -> String {
        let a = self.alias("c");
        let p = self.bind(param.to_owned());
        let per_target: Vec<String> = targets
            .iter()
            .map(|(target_type, inner)| self.matching_ids(target_type, inner))
            .collect();
        format!(
            "SELECT {a}.res_id FROM search_reference {a} WHERE {a}.tenant = $1 \
             AND {a}.res_type = {res_type} AND {a}.param = {p} \
             AND ({a}.target_type, {a}.target_id) IN ({})",
            per_target.join(" UNION ALL ")
        )
    }

    /// `SELECT type, id` of the current resources of `res_type` that match
    /// `criteria`: the other end of a chain or of `_has`.
    fn matching_ids(&mut self, res_type: &str, criteria: &Criteria) -> String {
        self.matching(res_type, criteria, true)
    }

    /// Like [`Sql::matching_ids`], `SELECT type, id` when `with_type`,
    /// else `SELECT id`.
    fn matching(&mut self, res_type: &str, criteria: &Criteria, with_type: bool) -> String {
        let t = self.bind(res_type.to_owned());
        // Index rows exist only for current resources, so a positive
        // condition's own rows can stand for the resources: no visit to
        // `resources` for each of possibly many thousands of matches.
        let positive = criteria
            .clauses
            .iter()
            .position(|c| matches!(c, Clause::Match { negated: false, .. }));
        if let Some(Clause::Match {
            table,
            alternatives,
            ..
        }) = positive.map(|i| &criteria.clauses[i])
        {
            let m = self.alias("x");
            let test = self.alternatives(&m, alternatives);
            let subject = Subject {
                res_type: t.clone(),
                id: format!("{m}.res_id"),
            };
            let mut conditions = vec![
                format!("{m}.tenant = $1"),
                format!("{m}.res_type = {t}"),
                test,
            ];
            for (i, clause) in criteria.clauses.iter().enumerate() {
                if Some(i) != positive {
                    conditions.push(self.clause(clause, &subject));
                }
            }
            let columns = if with_type {
                format!("{m}.res_type, {m}.res_id")
            } else {
                format!("{m}.res_id")
            };
            return format!(
                "SELECT {columns} FROM {table} {m} WHERE {}",
                conditions.join(" AND ")
            );
        }
        let x = self.alias("x");
        let subject = Subject {
            res_type: t.clone(),
            id: format!("{x}.id"),
        };
        let mut conditions = vec![
            format!("{x}.tenant = $1"),
            format!("{x}.res_type = {t}"),
            format!("NOT {x}.deleted"),
        ];
        conditions.extend(self.criteria(criteria, &subject));
        let columns = if with_type {
            format!("{x}.res_type, {x}.id")
        } else {
            format!("{x}.id")
        };
        format!(
            "SELECT {columns} FROM resources {x} WHERE {}",
            conditions.join(" AND ")
        )
    }

    /// `param = p AND (c1 OR c2)` when every alternative has the same
    /// parameter (the usual case, which the indexes serve), else an OR of
    /// (param, condition) pairs.
    fn alternatives(&mut self, a: &str, alternatives: &[Alternative]) -> String {
        let same_param = alternatives
            .windows(2)
            .all(|pair| pair[0].param == pair[1].param);
        match alternatives.first() {
            Some(first) if same_param => {
                let p = self.bind(first.param.clone());
                let conditions: Vec<String> = alternatives
                    .iter()
                    .map(|alt| self.cond(a, &alt.cond))
                    .collect();
                format!("{a}.param = {p} AND ({})", conditions.join(" OR "))
            }
            _ => {
                let pairs: Vec<String> = alternatives
                    .iter()
                    .map(|alt| {
                        let p = self.bind(alt.param.clone());
                        format!("({a}.param = {p} AND {})", self.cond(a, &alt.cond))
                    })
                    .collect();
                format!("({})", pairs.join(" OR "))
            }
        }
    }

    /// The SQL value of a sort key for the resource `r` (search.html#sort):
    /// ascending by a resource's smallest value, descending by its largest.
    fn sort_value(&mut self, key: &SortKey) -> String {
        match &key.by {
            SortBy::Id => "r.id".to_owned(),
            SortBy::LastUpdated => {
                "(extract(epoch from r.last_updated) * 1000000)::bigint".to_owned()
            }
            SortBy::Param {
                param,
                kind,
                union_of,
                ..
            } => {
                let (table, value) = kind.sort_column(key.descending);
                let aggregate = if key.descending { "max" } else { "min" };
                let param_is = match union_of {
                    None => format!("= {}", self.bind(param.clone())),
                    Some(parts) => {
                        let parts: Vec<String> = parts.iter().map(|p| (*p).to_owned()).collect();
                        format!("= ANY({})", self.bind(parts))
                    }
                };
                format!(
                    "(SELECT {aggregate}({value}) FROM {table} k WHERE k.tenant = $1 \
                     AND k.res_type = r.res_type AND k.res_id = r.id AND k.param {param_is})"
                )
            }
        }
    }
}

/// The current, non-deleted resources matching `query`, in its order,
/// after `after`, at most `limit`.
pub async fn find(
    db: &impl Db,
    ctx: &TenantCtx,
    query: Query<'_>,
    limit: usize,
    after: Option<&Cursor>,
) -> Result<Vec<Found>, tokio_postgres::Error> {
    let limit_n = limit;
    let mut b = Sql::new(&ctx.tenant);
    let limit = b.bind(i64::try_from(limit).unwrap_or(i64::MAX));
    if let Some(sql) = b.sorted_by_index(query, &limit, after) {
        let rows = query_built_generic(db, &sql, &b.params).await?;
        return Ok(rows.iter().map(|row| found(row, 1)).collect());
    }
    if let ([res_type], []) = (query.types, query.sort) {
        let mut lead = None;
        match probe::decide(db, ctx, res_type, query.criteria, limit_n).await? {
            Some(probe::Plan::Walk(scan)) => {
                if let Some(page) = probe::walk(db, ctx, query, limit_n, after, scan).await? {
                    return Ok(page);
                }
            }
            Some(probe::Plan::Lead(clause)) => lead = Some(clause),
            None => {}
        }
        if let Some(page) = index_first::page(db, ctx, query, limit_n, after, lead).await? {
            return Ok(page);
        }
        b.walks = walk::decide(db, ctx, res_type, query.criteria).await?;
        for plan in &b.walks {
            match plan {
                walk::HasPlan::In => {}
                walk::HasPlan::Walk => crate::metrics::count_plan("has-walk"),
                walk::HasPlan::WalkHashed => crate::metrics::count_plan("has-walk-hashed"),
                walk::HasPlan::WalkByPatient => crate::metrics::count_plan("has-walk-patient"),
            }
        }
    }
    let mut filters = b.filters(query);
    let key_values: Vec<String> = query.sort.iter().map(|k| b.sort_value(k)).collect();
    let sql = if key_values.is_empty() {
        if let Some(after) = after {
            let t = b.bind(after.res_type.clone());
            let i = b.bind(after.id.clone());
            filters.push(format!("(r.res_type, r.id) > ({t}, {i})"));
        }
        // The page is chosen first and only its resources' content read.
        with_content(
            &format!(
                "SELECT r.res_type, r.id, r.version_id, r.last_updated FROM resources r \
                 WHERE {} ORDER BY r.res_type, r.id LIMIT {limit}",
                filters.join(" AND ")
            ),
            "",
            "q.res_type, q.id",
        )
    } else {
        let keys: Vec<String> = key_values
            .iter()
            .enumerate()
            .map(|(i, v)| format!("{v} AS k{i}"))
            .collect();
        let order: Vec<String> = query
            .sort
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let direction = if k.descending { "DESC" } else { "ASC" };
                format!("(q.k{i} IS NULL), q.k{i} {direction}")
            })
            .chain(["q.res_type, q.id".to_owned()])
            .collect();
        let order = order.join(", ");
        let keyset = match after {
            Some(after) => format!("WHERE {}", b.keyset(query.sort, after)),
            None => String::new(),
        };
        let texts: Vec<String> = (0..key_values.len())
            .map(|i| format!(", q.k{i}::text"))
            .collect();
        with_content(
            &format!(
                "SELECT * FROM (SELECT r.res_type, r.id, r.version_id, r.last_updated, {} \
                 FROM resources r WHERE {}) q {keyset} ORDER BY {order} LIMIT {limit}",
                keys.join(", "),
                filters.join(" AND ")
            ),
            &texts.concat(),
            &order,
        )
    };
    let rows = query_built(db, &sql, &b.params).await?;
    Ok(rows
        .iter()
        .map(|row| found(row, key_values.len()))
        .collect())
}

/// The statement that reads the content of a chosen page: `page` selects
/// `res_type, id, version_id, last_updated` (and any sort keys) of at most
/// a page of resources; `extra` adds columns after the content, and the
/// rows come in `order` (over the alias `q`).
///
/// The content is a scalar subquery rather than a join: planning a join
/// with `resource_history` weighs merge and hash joins (and reads the
/// ends of its index to cost them) for what is always one primary-key
/// probe per row of the page; Q4 of the search benchmark planned in 1.9
/// ms with the join and 1.4 ms with the subquery (docs/search.md).
/// A lateral subquery (alias `h`: `version_id`, `last_updated`, `content`)
/// of the latest version of the resource `res_type`/`id` in its history:
/// one descent of the history key, where a probe of `resources` and then
/// one of the history key are two. It rests on the write path's invariant
/// (ARCHITECTURE.md, Storage) that the current version is the latest, and
/// that a deletion is a version without content: `h.content` is NULL for a
/// resource that is deleted, and no row joins for one that never existed.
fn latest_version(res_type: &str, id: &str) -> String {
    format!(
        "LATERAL (SELECT h.version_id, h.last_updated, h.content FROM resource_history h \
         WHERE h.tenant = $1 AND h.res_type = {res_type} AND h.id = {id} \
         ORDER BY h.version_id DESC LIMIT 1) h"
    )
}

fn with_content(page: &str, extra: &str, order: &str) -> String {
    format!(
        "SELECT q.res_type, q.id, q.version_id, q.last_updated, \
         (SELECT h.content::text FROM resource_history h WHERE h.tenant = $1 \
          AND h.res_type = q.res_type AND h.id = q.id AND h.version_id = q.version_id){extra} \
         FROM ({page}) q ORDER BY {order}"
    )
}

/// A row of a search statement: type, id, version, last updated, content,
/// then `n_keys` sort keys as text.
fn found(row: &tokio_postgres::Row, n_keys: usize) -> Found {
    let res_type: String = row.get(0);
    let id: String = row.get(1);
    let keys = (0..n_keys).map(|i| row.get(5 + i)).collect();
    Found {
        cursor: Cursor {
            res_type: res_type.clone(),
            id: id.clone(),
            keys,
        },
        stored: Stored {
            resource_type: res_type,
            id,
            version_id: row.get(2),
            last_updated: row.get(3),
            deleted: false,
            content: row.get(4),
        },
    }
}

impl Sql {
    /// The conditions selecting the query's resources (alias `r`).
    fn filters(&mut self, query: Query<'_>) -> Vec<String> {
        let mut filters = vec!["r.tenant = $1".to_owned()];
        let res_type = match query.types {
            [one] => {
                let t = self.bind(one.clone());
                filters.push(format!("r.res_type = {t}"));
                t
            }
            many => {
                filters.push(format!("r.res_type = ANY({})", self.bind(many.to_vec())));
                "r.res_type".to_owned()
            }
        };
        filters.push("NOT r.deleted".to_owned());
        let subject = Subject {
            res_type,
            id: "r.id".to_owned(),
        };
        let walks = std::mem::take(&mut self.walks);
        for (i, clause) in query.criteria.clauses.iter().enumerate() {
            filters.push(match clause {
                Clause::Has {
                    source_type,
                    param,
                    inner,
                } if walks.get(i).is_some_and(|plan| *plan != walk::HasPlan::In) => {
                    let plan = walks.get(i).copied().unwrap_or_default();
                    match walk::keyed_by_patient(source_type, param, inner) {
                        Some(alternatives) if plan == walk::HasPlan::WalkByPatient => {
                            self.has_by_patient(source_type, alternatives, &subject, true)
                        }
                        _ => {
                            let hashed = plan == walk::HasPlan::WalkHashed;
                            self.has_walk(source_type, param, inner, &subject, hashed)
                        }
                    }
                }
                _ => self.clause(clause, &subject),
            });
        }
        filters
    }

    /// Rows after the cursor in the sort order: lexicographic over each
    /// key's (is null, value) pair, then (type, id). Null keys sort last
    /// in both directions.
    fn keyset(&mut self, sort: &[SortKey], after: &Cursor) -> String {
        // (SQL expression, descending, bound value) in order.
        let mut parts: Vec<(String, bool, String)> = Vec::new();
        for (i, key) in sort.iter().enumerate() {
            let value = after.keys.get(i).cloned().flatten();
            parts.push((
                format!("(q.k{i} IS NULL)"),
                false,
                if value.is_some() { "false" } else { "true" }.to_owned(),
            ));
            if let Some(value) = value {
                let v = self.bind(value);
                let sql_type = key.sql_type();
                parts.push((
                    format!("q.k{i}"),
                    key.descending,
                    format!("{v}::text::{sql_type}"),
                ));
            }
        }
        let t = self.bind(after.res_type.clone());
        let i = self.bind(after.id.clone());
        parts.push((
            "(q.res_type, q.id)".to_owned(),
            false,
            format!("({t}, {i})"),
        ));
        let ors: Vec<String> = (0..parts.len())
            .map(|j| {
                let mut ands: Vec<String> = parts[..j]
                    .iter()
                    .map(|(e, _, v)| format!("{e} = {v}"))
                    .collect();
                let (e, desc, v) = &parts[j];
                ands.push(format!("{e} {} {v}", if *desc { "<" } else { ">" }));
                format!("({})", ands.join(" AND "))
            })
            .collect();
        format!("({})", ors.join(" OR "))
    }
}
