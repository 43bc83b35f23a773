//! The SQL of one condition on an index row, per parameter type: tokens,
//! strings, references, URIs, dates and numbers with their prefixes'
//! range semantics, quantities and `near`.

use super::Sql;
use crate::search::criteria::{Cond, Near, ReferenceValue, StringMatch, TokenValue, UriMatch};
use fhir::fhirpath::Decimal;
use fhir::search_values::{NumberRange, Prefix, uri_prefixes};

impl Sql {
    /// One condition on a row (alias `a`) of the condition's table.
    pub(super) fn cond(&mut self, a: &str, cond: &Cond) -> String {
        match cond {
            Cond::Token(value) => match value {
                TokenValue::Code(code) => format!("{a}.code = {}", self.bind(code.clone())),
                TokenValue::SystemCode(system, code) => {
                    let c = self.bind(code.clone());
                    let s = self.bind(system.clone());
                    format!("({a}.code = {c} AND {a}.system = {s})")
                }
                TokenValue::NoSystem(code) => {
                    let c = self.bind(code.clone());
                    format!("({a}.code = {c} AND {a}.system IS NULL)")
                }
                TokenValue::System(system) => {
                    format!("{a}.system = {}", self.bind(system.clone()))
                }
                TokenValue::Hierarchy(h) => {
                    let (from, to) = if h.below {
                        ("ancestor", "descendant")
                    } else {
                        ("descendant", "ancestor")
                    };
                    let s = self.bind(h.system.clone());
                    let t = self.bind(h.cs_tenant.clone());
                    let id = self.bind(h.system_id);
                    let c = self.bind(h.concept_id);
                    format!(
                        "({a}.system = {s} AND {a}.code IN (SELECT tc.code FROM term_closure tcl \
                         JOIN term_concepts tc ON tc.tenant = tcl.tenant AND tc.system_id = tcl.system_id \
                         AND tc.concept_id = tcl.{to} WHERE tcl.tenant = {t} AND tcl.system_id = {id} \
                         AND tcl.{from} = {c}))"
                    )
                }
            },
            Cond::Reference(value) => match value {
                ReferenceValue::Local {
                    target_type: Some(t),
                    id,
                } => {
                    let i = self.bind(id.clone());
                    let t = self.bind(t.clone());
                    format!("({a}.target_id = {i} AND {a}.target_type = {t})")
                }
                ReferenceValue::Local {
                    target_type: None,
                    id,
                } => format!("{a}.target_id = {}", self.bind(id.clone())),
                ReferenceValue::Url(url) => format!("{a}.url = {}", self.bind(url.clone())),
                ReferenceValue::AnyOf { target_type, ids } => {
                    let t = self.bind(target_type.clone());
                    match ids {
                        Some(ids) => {
                            let i = self.bind(ids.clone());
                            format!("({a}.target_id = ANY({i}) AND {a}.target_type = {t})")
                        }
                        None => format!("{a}.target_type = {t}"),
                    }
                }
            },
            Cond::String(how, value) => match how {
                StringMatch::Exact => format!("{a}.exact = {}", self.bind(value.clone())),
                StringMatch::StartsWith => self.starts_with(&format!("{a}.folded"), value),
                StringMatch::Contains => {
                    let v = self.bind(format!("%{}%", like_escape(value)));
                    format!("{a}.folded LIKE {v}")
                }
            },
            Cond::Date(prefix, range) => self.date(a, *prefix, range.start, range.end),
            Cond::Number(prefix, range) => self.number(&format!("{a}.value"), *prefix, range),
            Cond::Quantity(q) => {
                if let Some((range, base)) = q.canonical() {
                    // Compare in canonical units, so 1.8 g/L finds 180 mg/dL.
                    let b = self.bind(base.to_owned());
                    let c = self.number(&format!("{a}.canon_value"), q.prefix, &range);
                    return format!("({a}.canon_code = {b} AND {c})");
                }
                let mut parts = Vec::new();
                match (&q.system, &q.code) {
                    (Some(system), Some(code)) => {
                        let sys = self.bind(system.clone());
                        let cd = self.bind(code.clone());
                        parts.push(format!("{a}.system = {sys} AND {a}.code = {cd}"));
                    }
                    (None, Some(code)) => {
                        let cd = self.bind(code.clone());
                        parts.push(format!("({a}.code = {cd} OR {a}.unit = {cd})"));
                    }
                    _ => {}
                }
                parts.push(self.number(&format!("{a}.value"), q.prefix, &q.number));
                format!("({})", parts.join(" AND "))
            }
            Cond::Uri(how, value) => match how {
                UriMatch::Exact => format!("{a}.uri = {}", self.bind(value.clone())),
                UriMatch::Below => {
                    let base = value.trim_end_matches('/').to_owned();
                    let under = self.starts_with(&format!("{a}.uri"), &format!("{base}/"));
                    format!("({a}.uri = {} OR {under})", self.bind(base))
                }
                UriMatch::Above => format!("{a}.uri = ANY({})", self.bind(uri_prefixes(value))),
            },
            Cond::Near(near) => self.near(a, near),
        }
    }

    /// search.html#prefix on date ranges, as in
    /// `fhir::search_values::date_matches`. Only the bounds a prefix uses are
    /// bound: PostgreSQL cannot type an unused parameter.
    pub(super) fn date(&mut self, a: &str, prefix: Prefix, start: i64, end: i64) -> String {
        match prefix {
            Prefix::Eq | Prefix::Ne | Prefix::Ge | Prefix::Le => {
                let l = self.bind(start);
                let h = self.bind(end);
                let eq = format!("({a}.lo >= {l} AND {a}.hi <= {h})");
                match prefix {
                    Prefix::Eq => eq,
                    Prefix::Ne => format!("NOT {eq}"),
                    Prefix::Ge => format!("({a}.hi > {h} OR {eq})"),
                    _ => format!("({a}.lo < {l} OR {eq})"),
                }
            }
            Prefix::Gt => format!("{a}.hi > {}", self.bind(end)),
            Prefix::Lt => format!("{a}.lo < {}", self.bind(start)),
            Prefix::Sa => format!("{a}.lo >= {}", self.bind(end)),
            Prefix::Eb => format!("{a}.hi <= {}", self.bind(start)),
            Prefix::Ap => {
                // Approximately: within 10 % of the distance from now.
                let now = chrono::Utc::now().timestamp_micros();
                let gap = if now < start {
                    start.saturating_sub(now)
                } else if now >= end {
                    now.saturating_sub(end)
                } else {
                    0
                };
                let s = self.bind(start.saturating_sub(gap / 10));
                let e = self.bind(end.saturating_add(gap / 10));
                format!("({a}.lo < {e} AND {a}.hi > {s})")
            }
        }
    }

    /// One number comparison (search.html#number), as
    /// `fhir::search_values::number_matches` defines it: `eq`/`ne` use the
    /// value's implicit precision range, the other prefixes the exact value.
    pub(super) fn number(&mut self, column: &str, prefix: Prefix, range: &NumberRange) -> String {
        // Sent as text and cast, so that the parameter is typed text. In a
        // generic plan the cast would be evaluated for every row a filter
        // tests (about a tenth of Q5's time, with 1,638 quantities tested);
        // as a scalar subquery it is evaluated once.
        let generic = self.per_row;
        let mut num = |d: Decimal| {
            let p = self.bind(d.to_string());
            if generic {
                format!("(SELECT {p}::text::numeric)")
            } else {
                format!("{p}::text::numeric")
            }
        };
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

    /// Within `near.km` great-circle kilometres: a bounding box the index
    /// serves, then the haversine distance.
    pub(super) fn near(&mut self, a: &str, near: &Near) -> String {
        const EARTH_KM: f64 = 6371.0088;
        const KM_PER_DEGREE: f64 = 111.195;
        let lat = self.bind(near.latitude);
        let lon = self.bind(near.longitude);
        let km = self.bind(near.km);
        let dlat = near.km / KM_PER_DEGREE;
        let mut bounds = vec![
            format!("{a}.latitude >= {}", self.bind(near.latitude - dlat)),
            format!("{a}.latitude <= {}", self.bind(near.latitude + dlat)),
        ];
        let cos = (near.latitude.abs() + dlat).min(90.0).to_radians().cos();
        if cos > 1e-6 {
            let dlon = dlat / cos;
            if near.longitude - dlon >= -180.0 && near.longitude + dlon <= 180.0 {
                bounds.push(format!(
                    "{a}.longitude >= {}",
                    self.bind(near.longitude - dlon)
                ));
                bounds.push(format!(
                    "{a}.longitude <= {}",
                    self.bind(near.longitude + dlon)
                ));
            }
        }
        format!(
            "({} AND 2 * {EARTH_KM} * asin(least(1, sqrt(power(sin(radians({a}.latitude - {lat}) / 2), 2) \
             + cos(radians({lat})) * cos(radians({a}.latitude)) * power(sin(radians({a}.longitude - {lon}) / 2), 2)))) <= {km})",
            bounds.join(" AND ")
        )
    }
}

/// Escapes LIKE's wildcards (and its escape character, backslash).
fn like_escape(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}
