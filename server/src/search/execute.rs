//! Runs criteria against the index tables: one SQL statement per search,
//! keyset-paged by resource id.

use super::criteria::{Criteria, ReferenceValue, StringMatch, TokenValue, UriMatch};
use crate::store::{Db, Param, Stored, TenantCtx, bind, query_built};
use fhir::fhirpath::Decimal;
use fhir::search_values::{NumberRange, Prefix, uri_prefixes};

/// Current, non-deleted resources of `resource_type` matching `criteria`,
/// ordered by id, after `after_id`, at most `limit`.
pub async fn find(
    db: &impl Db,
    ctx: &TenantCtx,
    resource_type: &str,
    criteria: &Criteria,
    limit: usize,
    after_id: Option<&str>,
) -> Result<Vec<Stored>, tokio_postgres::Error> {
    let mut params: Vec<Param> = vec![
        Box::new(ctx.tenant.clone()),
        Box::new(resource_type.to_owned()),
    ];
    let mut sql = String::from(
        "SELECT r.id, r.version_id, r.last_updated, h.content::text \
         FROM resources r JOIN resource_history h \
         ON h.tenant = r.tenant AND h.res_type = r.res_type AND h.id = r.id AND h.version_id = r.version_id \
         WHERE r.tenant = $1 AND r.res_type = $2 AND NOT r.deleted",
    );
    for ids in &criteria.ids {
        let p = bind(&mut params, Box::new(ids.clone()));
        sql.push_str(&format!(" AND r.id = ANY({p})"));
    }
    for clause in &criteria.tokens {
        let param = bind(&mut params, Box::new(clause.param.to_owned()));
        let alternatives: Vec<String> = clause
            .values
            .iter()
            .map(|value| match value {
                TokenValue::Code(code) => {
                    let c = bind(&mut params, Box::new(code.clone()));
                    format!("t.code = {c}")
                }
                TokenValue::SystemCode(system, code) => {
                    let c = bind(&mut params, Box::new(code.clone()));
                    let s = bind(&mut params, Box::new(system.clone()));
                    format!("(t.code = {c} AND t.system = {s})")
                }
                TokenValue::NoSystem(code) => {
                    let c = bind(&mut params, Box::new(code.clone()));
                    format!("(t.code = {c} AND t.system IS NULL)")
                }
                TokenValue::System(system) => {
                    let s = bind(&mut params, Box::new(system.clone()));
                    format!("t.system = {s}")
                }
            })
            .collect();
        push_exists(&mut sql, "search_token", "t", &param, &alternatives);
    }
    for clause in &criteria.references {
        let param = bind(&mut params, Box::new(clause.param.to_owned()));
        let alternatives: Vec<String> = clause
            .values
            .iter()
            .map(|value| match value {
                ReferenceValue::Local {
                    target_type: Some(t),
                    id,
                } => {
                    let i = bind(&mut params, Box::new(id.clone()));
                    let t = bind(&mut params, Box::new(t.clone()));
                    format!("(x.target_id = {i} AND x.target_type = {t})")
                }
                ReferenceValue::Local {
                    target_type: None,
                    id,
                } => {
                    let i = bind(&mut params, Box::new(id.clone()));
                    format!("x.target_id = {i}")
                }
                ReferenceValue::Url(url) => {
                    let u = bind(&mut params, Box::new(url.clone()));
                    format!("x.url = {u}")
                }
            })
            .collect();
        push_exists(&mut sql, "search_reference", "x", &param, &alternatives);
    }
    for clause in &criteria.strings {
        let param = bind(&mut params, Box::new(clause.param.to_owned()));
        let alternatives: Vec<String> = clause
            .values
            .iter()
            .map(|value| match clause.how {
                StringMatch::Exact => {
                    let v = bind(&mut params, Box::new(value.clone()));
                    format!("s.exact = {v}")
                }
                StringMatch::StartsWith => {
                    let v = bind(&mut params, Box::new(format!("{}%", like_escape(value))));
                    format!("s.folded LIKE {v}")
                }
                StringMatch::Contains => {
                    let v = bind(&mut params, Box::new(format!("%{}%", like_escape(value))));
                    format!("s.folded LIKE {v}")
                }
            })
            .collect();
        push_exists(&mut sql, "search_string", "s", &param, &alternatives);
    }
    for clause in &criteria.dates {
        let param = bind(&mut params, Box::new(clause.param.to_owned()));
        let now = chrono::Utc::now().timestamp_micros();
        let alternatives: Vec<String> = clause
            .values
            .iter()
            .map(|(prefix, range)| {
                // search.html#prefix, as in fhir::search_values::date_matches.
                // Only the bounds a prefix uses are bound: PostgreSQL cannot
                // type an unused parameter.
                let mut lo = || bind(&mut params, Box::new(range.start));
                match prefix {
                    Prefix::Eq | Prefix::Ne | Prefix::Ge | Prefix::Le => {
                        let l = lo();
                        let h = bind(&mut params, Box::new(range.end));
                        let eq = format!("(d.lo >= {l} AND d.hi <= {h})");
                        match prefix {
                            Prefix::Eq => eq,
                            Prefix::Ne => format!("NOT {eq}"),
                            Prefix::Ge => format!("(d.hi > {h} OR {eq})"),
                            _ => format!("(d.lo < {l} OR {eq})"),
                        }
                    }
                    Prefix::Gt => format!("d.hi > {}", bind(&mut params, Box::new(range.end))),
                    Prefix::Lt => format!("d.lo < {}", lo()),
                    Prefix::Sa => format!("d.lo >= {}", bind(&mut params, Box::new(range.end))),
                    Prefix::Eb => format!("d.hi <= {}", lo()),
                    Prefix::Ap => {
                        let gap = if now < range.start {
                            range.start.saturating_sub(now)
                        } else if now >= range.end {
                            now.saturating_sub(range.end)
                        } else {
                            0
                        };
                        let start =
                            bind(&mut params, Box::new(range.start.saturating_sub(gap / 10)));
                        let end = bind(&mut params, Box::new(range.end.saturating_add(gap / 10)));
                        format!("(d.lo < {end} AND d.hi > {start})")
                    }
                }
            })
            .collect();
        push_exists(&mut sql, "search_date", "d", &param, &alternatives);
    }
    for clause in &criteria.numbers {
        let param = bind(&mut params, Box::new(clause.param.to_owned()));
        let alternatives: Vec<String> = clause
            .values
            .iter()
            .map(|(prefix, range)| number_condition(&mut params, "n.value", *prefix, range))
            .collect();
        push_exists(&mut sql, "search_number", "n", &param, &alternatives);
    }
    for clause in &criteria.quantities {
        let param = bind(&mut params, Box::new(clause.param.to_owned()));
        let alternatives: Vec<String> = clause
            .values
            .iter()
            .map(|q| {
                if let Some((range, base)) = q.canonical() {
                    // Compare in canonical units, so 1.8 g/L finds 180 mg/dL.
                    let b = bind(&mut params, Box::new(base.to_owned()));
                    let c = number_condition(&mut params, "q.canon_value", q.prefix, &range);
                    return format!("(q.canon_code = {b} AND {c})");
                }
                let mut parts = Vec::new();
                match (&q.system, &q.code) {
                    (Some(system), Some(code)) => {
                        let sys = bind(&mut params, Box::new(system.clone()));
                        let cd = bind(&mut params, Box::new(code.clone()));
                        parts.push(format!("q.system = {sys} AND q.code = {cd}"));
                    }
                    (None, Some(code)) => {
                        let cd = bind(&mut params, Box::new(code.clone()));
                        parts.push(format!("(q.code = {cd} OR q.unit = {cd})"));
                    }
                    _ => {}
                }
                parts.push(number_condition(
                    &mut params,
                    "q.value",
                    q.prefix,
                    &q.number,
                ));
                format!("({})", parts.join(" AND "))
            })
            .collect();
        push_exists(&mut sql, "search_quantity", "q", &param, &alternatives);
    }
    for clause in &criteria.uris {
        let param = bind(&mut params, Box::new(clause.param.to_owned()));
        let alternatives: Vec<String> = clause
            .values
            .iter()
            .map(|value| match clause.how {
                UriMatch::Exact => {
                    format!("u.uri = {}", bind(&mut params, Box::new(value.clone())))
                }
                UriMatch::Below => {
                    let base = value.trim_end_matches('/').to_owned();
                    let under = format!("{}/%", like_escape(&base));
                    let b = bind(&mut params, Box::new(base));
                    let p = bind(&mut params, Box::new(under));
                    format!("(u.uri = {b} OR u.uri LIKE {p})")
                }
                UriMatch::Above => {
                    let prefixes = uri_prefixes(value);
                    format!("u.uri = ANY({})", bind(&mut params, Box::new(prefixes)))
                }
            })
            .collect();
        push_exists(&mut sql, "search_uri", "u", &param, &alternatives);
    }
    for clause in &criteria.missing {
        let param = bind(&mut params, Box::new(clause.param.to_owned()));
        // The table name comes from a closed list (ParamKind::table).
        sql.push_str(&format!(
            " AND {}EXISTS (SELECT 1 FROM {} m WHERE m.tenant = r.tenant AND m.res_type = r.res_type \
             AND m.res_id = r.id AND m.param = {param})",
            if clause.missing { "NOT " } else { "" },
            clause.table
        ));
    }
    if let Some(after) = after_id {
        let p = bind(&mut params, Box::new(after.to_owned()));
        sql.push_str(&format!(" AND r.id > {p}"));
    }
    let p = bind(
        &mut params,
        Box::new(i64::try_from(limit).unwrap_or(i64::MAX)),
    );
    sql.push_str(&format!(" ORDER BY r.id LIMIT {p}"));
    let rows = query_built(db, &sql, &params).await?;
    Ok(rows
        .iter()
        .map(|row| Stored {
            resource_type: resource_type.to_owned(),
            id: row.get(0),
            version_id: row.get(1),
            last_updated: row.get(2),
            deleted: false,
            content: row.get(3),
        })
        .collect())
}

/// Adds `AND EXISTS (a row of `table` for this resource and parameter
/// satisfying any of `alternatives`)`; `alias` is the row's name in them.
fn push_exists(sql: &mut String, table: &str, alias: &str, param: &str, alternatives: &[String]) {
    sql.push_str(&format!(
        " AND EXISTS (SELECT 1 FROM {table} {alias} WHERE {alias}.tenant = r.tenant AND {alias}.res_type = r.res_type \
         AND {alias}.res_id = r.id AND {alias}.param = {param} AND ({}))",
        alternatives.join(" OR ")
    ));
}

/// The SQL for one number comparison (search.html#number), as
/// `fhir::search_values::number_matches` defines it: `eq`/`ne` use the
/// value's implicit precision range, the other prefixes the exact value.
fn number_condition(
    params: &mut Vec<Param>,
    column: &str,
    prefix: Prefix,
    range: &NumberRange,
) -> String {
    // Sent as text and cast, so that the parameter is typed text.
    let mut num = |d: Decimal| format!("{}::text::numeric", bind(params, Box::new(d.to_string())));
    match prefix {
        Prefix::Eq => format!(
            "({column} >= {} AND {column} < {})",
            num(range.low),
            num(range.high)
        ),
        Prefix::Ne => format!(
            "NOT ({column} >= {} AND {column} < {})",
            num(range.low),
            num(range.high)
        ),
        Prefix::Gt => format!("{column} > {}", num(range.value)),
        Prefix::Lt => format!("{column} < {}", num(range.value)),
        Prefix::Ge => format!("{column} >= {}", num(range.value)),
        Prefix::Le => format!("{column} <= {}", num(range.value)),
        Prefix::Sa => format!("{column} >= {}", num(range.high)),
        Prefix::Eb => format!("{column} < {}", num(range.low)),
        Prefix::Ap => {
            let tenth = range
                .value
                .abs()
                .checked_mul(Decimal::new(1, 1))
                .unwrap_or(Decimal::ZERO);
            let below = range.value.checked_sub(tenth).unwrap_or(range.low);
            let above = range.value.checked_add(tenth).unwrap_or(range.high);
            format!(
                "(({column} >= {} AND {column} < {}) OR ({column} >= {} AND {column} <= {}))",
                num(range.low),
                num(range.high),
                num(below),
                num(above)
            )
        }
    }
}

/// Escapes LIKE's wildcards (and its escape character, backslash).
fn like_escape(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}
