//! AuditEvent search parameters (auditevent.html#search) read into SQL
//! conditions on the indexed columns of `audit_events`: `patient`,
//! `entity`, `agent`, `date` (with prefixes), `action`, `outcome`,
//! `subtype` and `_id`, plus `_count` and the `_page` cursor. A comma
//! means OR; a repeated parameter means AND.

use crate::error::ApiError;
use crate::search::criteria::Strictness;
use crate::store::{Param, bind};
use chrono::{DateTime, Utc};
use fhir::Issue;
use fhir::reference::{ReferenceTarget, parse_reference};
use fhir::search_values::{Prefix, parse_date_param};

const DEFAULT_COUNT: usize = 50;
const ACTION_SYSTEM: &str = "http://hl7.org/fhir/audit-event-action";
const OUTCOME_SYSTEM: &str = "http://hl7.org/fhir/audit-event-outcome";
const INTERACTION_SYSTEM: &str = "http://hl7.org/fhir/restful-interaction";

/// A parsed AuditEvent search.
#[derive(Debug, Default)]
pub struct AuditQuery {
    /// SQL conditions, ANDed, with placeholders bound in the caller's params.
    pub conditions: Vec<String>,
    pub count: usize,
    /// Continue after this row (recorded, seq): the `_page` cursor.
    pub after: Option<(i64, i64)>,
    /// The criteria as given, to repeat in page links.
    pub echo: Vec<(String, String)>,
    pub warnings: Vec<Issue>,
}

impl AuditQuery {
    /// Reads `params`, binding values after those already in `bound`.
    pub fn parse(
        params: &[(String, String)],
        strictness: Strictness,
        max_count: usize,
        base_url: &str,
        bound: &mut Vec<Param>,
    ) -> Result<AuditQuery, ApiError> {
        let mut q = AuditQuery {
            count: DEFAULT_COUNT.min(max_count),
            ..AuditQuery::default()
        };
        for (name, value) in params {
            let values: Vec<&str> = value.split(',').map(str::trim).collect();
            let condition = match name.as_str() {
                "patient" => {
                    let ids = references(&values, base_url, Some("Patient"), name)?;
                    Some(format!(
                        "patients && {}::text[]",
                        bind(bound, Box::new(ids))
                    ))
                }
                "entity" => {
                    let refs = references(&values, base_url, None, name)?;
                    // A Patient is an entity of every event it is in
                    // `patients` of (as the resource touched, or with the
                    // role Patient), and is kept out of `entities` there
                    // (`chain::row_of`).
                    let patients: Vec<String> = refs
                        .iter()
                        .filter_map(|r| r.strip_prefix("Patient/").map(str::to_owned))
                        .collect();
                    let entities = format!("entities && {}::text[]", bind(bound, Box::new(refs)));
                    Some(if patients.is_empty() {
                        entities
                    } else {
                        format!(
                            "({entities} OR patients && {}::text[])",
                            bind(bound, Box::new(patients))
                        )
                    })
                }
                "agent" => {
                    let agents: Vec<String> = values.iter().map(|v| (*v).to_owned()).collect();
                    Some(format!(
                        "agents && {}::text[]",
                        bind(bound, Box::new(agents))
                    ))
                }
                "date" => Some(dates(&values, bound, name)?),
                "action" => {
                    let codes = tokens(&values, ACTION_SYSTEM, name, |c| {
                        ["C", "R", "U", "D", "E"].contains(&c)
                    })?;
                    Some(format!(
                        "action = ANY({}::text[])",
                        bind(bound, Box::new(codes))
                    ))
                }
                "outcome" => {
                    let codes = tokens(&values, OUTCOME_SYSTEM, name, |c| {
                        ["0", "4", "8", "12"].contains(&c)
                    })?;
                    let codes: Vec<i16> = codes.iter().filter_map(|c| c.parse().ok()).collect();
                    Some(format!(
                        "outcome = ANY({}::int2[])",
                        bind(bound, Box::new(codes))
                    ))
                }
                "subtype" => {
                    let codes = tokens(&values, INTERACTION_SYSTEM, name, |_| true)?;
                    Some(format!(
                        "subtype = ANY({}::text[])",
                        bind(bound, Box::new(codes))
                    ))
                }
                "_id" => {
                    // Ids are sequence numbers; anything else matches nothing.
                    let ids: Vec<i64> = values.iter().filter_map(|v| v.parse().ok()).collect();
                    Some(format!("seq = ANY({}::int8[])", bind(bound, Box::new(ids))))
                }
                "_count" => {
                    q.count = value
                        .parse::<usize>()
                        .map_err(|_| {
                            ApiError::invalid(format!("_count {value:?} is not a whole number"))
                                .at("_count")
                        })?
                        .min(max_count);
                    None
                }
                "_page" => {
                    q.after = Some(cursor(value)?);
                    None
                }
                "_sort" if value == "-date" => None,
                "_format" | "_pretty" => None,
                _ => {
                    let why = format!("AuditEvent search does not support {name:?}");
                    strictness.unsupported(name, why, &mut q.warnings)?;
                    None
                }
            };
            if let Some(condition) = condition {
                q.conditions.push(condition);
                q.echo.push((name.clone(), value.clone()));
            }
        }
        Ok(q)
    }
}

/// `Type/id` (or bare ids with `only`) of reference values: relative,
/// versioned or absolute under this tenant's base.
fn references(
    values: &[&str],
    base_url: &str,
    only: Option<&str>,
    name: &str,
) -> Result<Vec<String>, ApiError> {
    values
        .iter()
        .map(|value| {
            let target = match only {
                Some(_) if fhir::Id::parse(value).is_some() => return Ok((*value).to_owned()),
                _ => parse_reference(value, base_url),
            };
            match (target, only) {
                (
                    Some(ReferenceTarget::Local {
                        resource_type, id, ..
                    }),
                    Some(t),
                ) if resource_type.as_str() == t => Ok(id.to_owned()),
                (
                    Some(ReferenceTarget::Local {
                        resource_type, id, ..
                    }),
                    None,
                ) => Ok(format!("{resource_type}/{id}")),
                _ => Err(ApiError::invalid(match only {
                    Some(t) => format!("{value:?} is not a {t} id or reference"),
                    None => format!("{value:?} is not a Type/id reference"),
                })
                .at(name)),
            }
        })
        .collect()
}

/// Token codes, with or without their system.
fn tokens(
    values: &[&str],
    system: &str,
    name: &str,
    known: impl Fn(&str) -> bool,
) -> Result<Vec<String>, ApiError> {
    values
        .iter()
        .map(|value| {
            let code = match value.split_once('|') {
                Some((s, code)) if s.is_empty() || s == system => code,
                Some(_) => {
                    return Err(ApiError::invalid(format!(
                        "{name} codes are from {system}: {value:?}"
                    ))
                    .at(name));
                }
                None => value,
            };
            if known(code) {
                Ok(code.to_owned())
            } else {
                Err(ApiError::invalid(format!("{value:?} is not a {name} code")).at(name))
            }
        })
        .collect()
}

/// `date` values (ORed) as conditions on `recorded`, an instant: with the
/// value's range `[start, end)`, `eq` is inside it, `lt`/`eb` before it,
/// `gt`/`sa` after it, `ge` from its start, `le` to its end, and `ap`
/// within it widened by 10 % of its distance from now.
fn dates(values: &[&str], bound: &mut Vec<Param>, name: &str) -> Result<String, ApiError> {
    let now = Utc::now().timestamp_micros();
    let mut alternatives = Vec::with_capacity(values.len());
    for value in values {
        let (prefix, range) =
            parse_date_param(value).map_err(|e| ApiError::invalid(e.message).at(name))?;
        let (start, end) = (range.start, range.end);
        let mut at = |micros: i64| -> Result<String, ApiError> {
            let t = DateTime::<Utc>::from_timestamp_micros(micros)
                .ok_or_else(|| ApiError::invalid(format!("{value:?} is out of range")).at(name))?;
            Ok(bind(bound, Box::new(t)))
        };
        alternatives.push(match prefix {
            Prefix::Eq => format!("(recorded >= {} AND recorded < {})", at(start)?, at(end)?),
            Prefix::Ne => format!("(recorded < {} OR recorded >= {})", at(start)?, at(end)?),
            Prefix::Lt | Prefix::Eb => format!("recorded < {}", at(start)?),
            Prefix::Gt | Prefix::Sa => format!("recorded >= {}", at(end)?),
            Prefix::Ge => format!("recorded >= {}", at(start)?),
            Prefix::Le => format!("recorded < {}", at(end)?),
            Prefix::Ap => {
                let gap = if now < start {
                    start - now
                } else {
                    now.saturating_sub(end).max(0)
                };
                let margin = gap / 10;
                format!(
                    "(recorded >= {} AND recorded < {})",
                    at(start.saturating_sub(margin))?,
                    at(end.saturating_add(margin))?
                )
            }
        });
    }
    Ok(format!("({})", alternatives.join(" OR ")))
}

/// The `_page` cursor: `<recorded microseconds>.<seq>`.
pub fn cursor(value: &str) -> Result<(i64, i64), ApiError> {
    value
        .split_once('.')
        .and_then(|(t, s)| Some((t.parse().ok()?, s.parse().ok()?)))
        .ok_or_else(|| {
            ApiError::invalid(format!("_page {value:?} is not a page cursor")).at("_page")
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn check(params: &[(&str, &str)], expected: &[&str]) {
        let params: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let mut bound: Vec<Param> = vec![Box::new("tenant")];
        let q = AuditQuery::parse(
            &params,
            Strictness::Strict,
            100,
            "http://h/fhir",
            &mut bound,
        )
        .unwrap();
        assert_eq!(q.conditions, expected);
    }

    fn rejected(params: &[(&str, &str)]) -> ApiError {
        let params: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        AuditQuery::parse(
            &params,
            Strictness::Strict,
            100,
            "http://h/fhir",
            &mut Vec::new(),
        )
        .unwrap_err()
    }

    #[test]
    fn each_parameter_becomes_one_condition() {
        check(&[("patient", "Patient/p1,p2")], &["patients && $2::text[]"]);
        check(&[("entity", "Observation/o1")], &["entities && $2::text[]"]);
        check(
            &[("entity", "Patient/p1,Observation/o1")],
            &["(entities && $2::text[] OR patients && $3::text[])"],
        );
        check(&[("agent", "alice")], &["agents && $2::text[]"]);
        check(&[("action", "C,R")], &["action = ANY($2::text[])"]);
        check(
            &[("outcome", "http://hl7.org/fhir/audit-event-outcome|4")],
            &["outcome = ANY($2::int2[])"],
        );
        check(
            &[("date", "ge2024-01-01"), ("date", "lt2024-02")],
            &["(recorded >= $2)", "(recorded < $3)"],
        );
        check(
            &[("date", "2024-01-01,eq2024-03")],
            &["((recorded >= $2 AND recorded < $3) OR (recorded >= $4 AND recorded < $5))"],
        );
        check(&[("_count", "10"), ("_format", "json")], &[]);
    }

    #[test]
    fn malformed_values_are_rejected_by_name() {
        for (params, name) in [
            (vec![("patient", "Observation/1")], "patient"),
            (vec![("entity", "1")], "entity"),
            (vec![("action", "X")], "action"),
            (vec![("outcome", "1")], "outcome"),
            (vec![("date", "yesterday")], "date"),
            (vec![("_page", "x")], "_page"),
            (vec![("_count", "-1")], "_count"),
            (vec![("identifier", "x")], "identifier"),
        ] {
            let e = rejected(&params);
            assert!(e.issues[0].expression.contains(&name.to_owned()), "{e}");
        }
    }

    #[test]
    fn page_cursors_round_trip() {
        assert_eq!(
            cursor("1700000000000000.42").unwrap(),
            (1_700_000_000_000_000, 42)
        );
    }
}
