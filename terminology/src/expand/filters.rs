//! The SQL of one system include: `compose.include.filter` (is-a,
//! descendent-of, is-not-a, generalizes, =, in, not-in, regex, exists on
//! the concept, its display, parent, child and properties; is-a and
//! descendent-of on code-valued properties; SNOMED CT reference sets), the
//! text filter over the word index, active-only and the membership
//! restriction, as one statement over `term_concepts`.

use super::{Item, Request, SMALL_SYSTEM, too_costly};
use crate::store::CodeSystemRow;
use crate::{TermError, Tx};
use serde_json::Value;
use std::collections::HashMap;
use tokio_postgres::types::ToSql;

type Param = Box<dyn ToSql + Sync + Send>;

struct Sql {
    conditions: Vec<String>,
    params: Vec<Param>,
    /// One code is probed (`$validate-code`, binding checks): hierarchy
    /// conditions look that concept's ancestors up instead of listing a
    /// subtree, a plan that stays right when the statement is prepared
    /// once and planned generically.
    probe: bool,
}

impl Sql {
    fn bind(&mut self, value: Param) -> String {
        self.params.push(value);
        format!("${}", self.params.len())
    }
}

/// The concept id of `code`, as a scalar subquery.
fn concept_of(code: &str, sql: &mut Sql) -> String {
    let code = sql.bind(Box::new(code.to_owned()));
    format!(
        "(SELECT concept_id FROM term_concepts WHERE tenant = $1 AND system_id = $2 AND code = {code})"
    )
}

fn closure_below(code: &str, sql: &mut Sql, strict: bool) -> String {
    let root = concept_of(code, sql);
    let not_self = if strict {
        " AND descendant <> ancestor"
    } else {
        ""
    };
    if sql.probe {
        // A scalar subquery is never turned into a join, so the one
        // concept is found by its code first and its closure row probed.
        return format!(
            "(SELECT true FROM term_closure WHERE tenant = $1 AND system_id = $2 \
             AND descendant = c.concept_id AND ancestor = {root}{not_self} LIMIT 1) IS NOT NULL"
        );
    }
    format!(
        "c.concept_id IN (SELECT descendant FROM term_closure WHERE tenant = $1 AND system_id = $2 \
         AND ancestor = {root}{not_self})"
    )
}

/// The codes of `code` and its descendants (without itself if `strict`),
/// as a subquery.
fn closure_codes(code: &str, sql: &mut Sql, strict: bool) -> String {
    let root = concept_of(code, sql);
    let not_self = if strict {
        " AND cl.descendant <> cl.ancestor"
    } else {
        ""
    };
    format!(
        "SELECT d.code FROM term_closure cl JOIN term_concepts d ON d.tenant = cl.tenant \
         AND d.system_id = cl.system_id AND d.concept_id = cl.descendant \
         WHERE cl.tenant = $1 AND cl.system_id = $2 AND cl.ancestor = {root}{not_self}"
    )
}

/// The members of the reference sets `refsets` (their codes).
fn refset_members(refsets: Vec<String>, sql: &mut Sql) -> String {
    let refsets = sql.bind(Box::new(refsets));
    format!(
        "c.concept_id IN (SELECT m.concept_id FROM term_refset_members m WHERE m.tenant = $1 \
         AND m.system_id = $2 AND m.refset_id IN (SELECT r.concept_id FROM term_concepts r \
         WHERE r.tenant = $1 AND r.system_id = $2 AND r.code = ANY({refsets}::text[])))"
    )
}

fn filter_condition(filter: &Value, sql: &mut Sql, system: &str) -> Result<String, TermError> {
    let s = |k: &str| filter.get(k).and_then(Value::as_str).unwrap_or("");
    let (property, op, value) = (s("property"), s("op"), s("value"));
    let list = || -> Vec<String> { value.split(',').map(|v| v.trim().to_owned()).collect() };
    let unsupported = || {
        TermError::unprocessable(
            fhir::IssueCode::NotSupported,
            format!("the filter {property} {op} {value:?} on {system} is not supported"),
        )
    };
    let snomed = system == crate::formats::rf2::URL;
    let condition = match (property, op) {
        // snomedct.html: `concept in <refset id>` selects the members of
        // reference sets (several ids: any of them).
        ("concept", "in") if snomed => refset_members(list(), sql),
        ("concept", "not-in") if snomed => format!("NOT ({})", refset_members(list(), sql)),
        ("concept" | "code", "is-a") => closure_below(value, sql, false),
        ("concept" | "code", "descendent-of") => closure_below(value, sql, true),
        ("concept" | "code", "is-not-a") => format!("NOT ({})", closure_below(value, sql, false)),
        ("concept" | "code", "generalizes") => {
            let leaf = concept_of(value, sql);
            format!(
                "c.concept_id IN (SELECT ancestor FROM term_closure WHERE tenant = $1 AND system_id = $2 \
                 AND descendant = {leaf})"
            )
        }
        ("concept" | "code", "=") => format!("c.code = {}", sql.bind(Box::new(value.to_owned()))),
        ("concept" | "code", "in") => {
            format!("c.code = ANY({}::text[])", sql.bind(Box::new(list())))
        }
        ("concept" | "code", "not-in") => {
            format!("c.code <> ALL({}::text[])", sql.bind(Box::new(list())))
        }
        ("concept" | "code", "regex") => {
            format!("c.code ~ {}", sql.bind(Box::new(anchored(value))))
        }
        ("display", "=") => format!("c.display = {}", sql.bind(Box::new(value.to_owned()))),
        ("display", "regex") => format!("c.display ~ {}", sql.bind(Box::new(anchored(value)))),
        ("parent", "=") => format!(
            "c.concept_id IN (SELECT child FROM term_edges WHERE tenant = $1 AND system_id = $2 AND parent = {})",
            concept_of(value, sql)
        ),
        ("child", "=") => format!(
            "c.concept_id IN (SELECT parent FROM term_edges WHERE tenant = $1 AND system_id = $2 AND child = {})",
            concept_of(value, sql)
        ),
        ("inactive", "=") => match value {
            "true" => "NOT c.active".to_owned(),
            "false" => "c.active".to_owned(),
            _ => return Err(unsupported()),
        },
        // A property whose values are codes of this system (SNOMED CT
        // attributes): the value is the code or one of its descendants.
        (_, "is-a" | "descendent-of") if !property.is_empty() => {
            let p = sql.bind(Box::new(property.to_owned()));
            let below = closure_codes(value, sql, op == "descendent-of");
            format!(
                "c.concept_id IN (SELECT concept_id FROM term_properties WHERE tenant = $1 \
                 AND system_id = $2 AND property = {p} AND kind = 'code' AND value IN ({below}))"
            )
        }
        (_, "=" | "in" | "not-in" | "regex" | "exists") if !property.is_empty() => {
            let p = sql.bind(Box::new(property.to_owned()));
            let values = |cond: String| {
                format!(
                    "c.concept_id IN (SELECT concept_id FROM term_properties WHERE tenant = $1 \
                     AND system_id = $2 AND property = {p}{cond})"
                )
            };
            match op {
                "=" => values(format!(
                    " AND value = {}",
                    sql.bind(Box::new(value.to_owned()))
                )),
                "in" => values(format!(
                    " AND value = ANY({}::text[])",
                    sql.bind(Box::new(list()))
                )),
                "not-in" => format!(
                    "NOT {}",
                    values(format!(
                        " AND value = ANY({}::text[])",
                        sql.bind(Box::new(list()))
                    ))
                ),
                "regex" => values(format!(
                    " AND value ~ {}",
                    sql.bind(Box::new(anchored(value)))
                )),
                _ => match value {
                    "false" => format!("NOT {}", values(String::new())),
                    _ => values(String::new()),
                },
            }
        }
        _ => return Err(unsupported()),
    };
    Ok(condition)
}

/// FHIR regexes match the whole value.
fn anchored(pattern: &str) -> String {
    format!("^(?:{pattern})$")
}

/// The items of one system include.
pub async fn query(
    tx: &Tx<'_>,
    cs: &CodeSystemRow,
    filters: Vec<&Value>,
    req: &Request,
) -> Result<Vec<Item>, TermError> {
    let mut sql = Sql {
        conditions: Vec::new(),
        params: vec![Box::new(cs.tenant.clone()), Box::new(cs.id)],
        probe: req.only.is_some(),
    };
    let n_filters = filters.len();
    for filter in filters {
        let condition = filter_condition(filter, &mut sql, &cs.url)?;
        sql.conditions.push(condition);
    }
    if let Some((_, code)) = &req.only {
        let code = sql.bind(Box::new(code.clone()));
        sql.conditions.push(format!("c.code = {code}"));
    }
    if req.active_only {
        sql.conditions.push("c.active".to_owned());
    }
    let indexed_text = req
        .filter
        .as_ref()
        .is_some_and(|_| cs.concept_count > SMALL_SYSTEM);
    let mut filter_words = 0;
    if let (true, Some(filter)) = (indexed_text, &req.filter) {
        let words = crate::text::words(filter);
        filter_words = words.len();
        // The rarest word narrows the statement; the ranking checks the
        // others (a common word such as "acute" would make the planner
        // read much of the index).
        if let Some(word) = rarest(tx, cs, &words).await? {
            let lo = sql.bind(Box::new(word.clone()));
            let hi = sql.bind(Box::new(crate::text::prefix_upper_bound(&word)));
            sql.conditions.push(format!(
                "c.concept_id IN (SELECT concept_id FROM term_words WHERE tenant = $1 AND system_id = $2 \
                 AND word >= {lo} AND word < {hi})"
            ));
        }
    }
    let limit = sql.bind(Box::new((req.limit + 1) as i64));
    let mut statement = "SELECT c.code, c.display, c.active FROM term_concepts c \
                         WHERE c.tenant = $1 AND c.system_id = $2"
        .to_owned();
    for condition in &sql.conditions {
        statement.push_str(" AND ");
        statement.push_str(condition);
    }
    statement.push_str(&format!(" ORDER BY c.concept_id LIMIT {limit}"));
    let refs: Vec<&(dyn ToSql + Sync)> = sql
        .params
        .iter()
        .map(|p| p.as_ref() as &(dyn ToSql + Sync))
        .collect();
    // The text of a statement of at most one filter comes from a small set
    // of shapes, so it may join the connection's statement cache; more
    // filters could make any number of texts.
    let rows = if n_filters <= 1 {
        tx.query(&statement, &refs).await?
    } else {
        tx.query_unshared(&statement, &refs).await?
    };
    if rows.len() > req.limit {
        return Err(too_costly(req.limit));
    }
    let version = Some(cs.version.clone()).filter(|v| !v.is_empty());
    let mut items = Vec::with_capacity(rows.len());
    for row in rows {
        let display: Option<String> = row.get(1);
        let code: String = row.get(0);
        let rank = match &req.filter {
            None => 0,
            Some(filter) => {
                match crate::text::rank(filter, display.as_deref().unwrap_or(&code)) {
                    Some(rank) => rank,
                    // Matched through a designation's words.
                    None if indexed_text && filter_words == 1 => 4,
                    None => continue,
                }
            }
        };
        items.push(Item {
            system: cs.url.clone(),
            version: version.clone(),
            code,
            display,
            active: row.get(2),
            rank,
        });
    }
    Ok(items)
}

/// The most word-index rows a word is counted to.
const COUNT_BOUND: i64 = 5_000;

/// Words of a code system known to start at least [`COUNT_BOUND`] words
/// ("concept", "disorder", …), by (tenant, code system id, word): counting
/// them again is skipped while a rarer word is at hand. Only the choice of
/// the driving word depends on it, never the answer, so it needs no
/// invalidation; it is emptied when it grows past a bound.
fn common_words() -> &'static dashmap::DashSet<(String, i64, String)> {
    static COMMON: std::sync::OnceLock<dashmap::DashSet<(String, i64, String)>> =
        std::sync::OnceLock::new();
    COMMON.get_or_init(dashmap::DashSet::new)
}

/// The filter word that starts the fewest words of the code system
/// (counted up to a bound, from the index alone). Words known to be common
/// are counted last, and each count stops at the best so far.
async fn rarest(
    tx: &Tx<'_>,
    cs: &CodeSystemRow,
    words: &[String],
) -> Result<Option<String>, TermError> {
    if words.len() < 2 {
        return Ok(words.first().cloned());
    }
    let key = |w: &String| (cs.tenant.clone(), cs.id, w.clone());
    let (common, mut ordered): (Vec<&String>, Vec<&String>) =
        words.iter().partition(|w| common_words().contains(&key(w)));
    ordered.extend(common.iter().copied());
    let mut best: Option<(i64, &String)> = None;
    for word in ordered {
        let bound = best.map_or(COUNT_BOUND, |(n, _)| n);
        if bound == 0 || (best.is_some() && common.contains(&word)) {
            break;
        }
        let upper = crate::text::prefix_upper_bound(word);
        let n: i64 = tx
            .query_one(
                "SELECT count(*) FROM (SELECT 1 FROM term_words WHERE tenant = $1 AND system_id = $2 \
                 AND word >= $3 AND word < $4 LIMIT $5) x",
                &[&cs.tenant, &cs.id, word, &upper, &bound],
            )
            .await?
            .get(0);
        if n >= COUNT_BOUND {
            if common_words().len() >= 10_000 {
                common_words().clear();
            }
            common_words().insert(key(word));
        }
        if best.is_none_or(|(m, _)| n < m) {
            best = Some((n, word));
        }
    }
    Ok(best.map(|(_, w)| w.clone()))
}

/// Display and status of the listed codes that exist.
pub async fn by_codes(
    tx: &Tx<'_>,
    cs: &CodeSystemRow,
    codes: &[String],
) -> Result<HashMap<String, (Option<String>, bool)>, TermError> {
    let rows = tx
        .query(
            "SELECT code, display, active FROM term_concepts WHERE tenant = $1 AND system_id = $2 \
             AND code = ANY($3::text[])",
            &[&cs.tenant, &cs.id, &codes],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2))))
        .collect())
}
