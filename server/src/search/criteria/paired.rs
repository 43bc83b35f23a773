//! Observation's `code` with a value parameter, searched through their
//! composite: `Observation?code=http://loinc.org|2339-0&value-quantity=gt180`
//! reads the `code-value-quantity` rows of that code whose value is above
//! 180, one index range, instead of finding every Observation of the code
//! and then probing each one's value.
//!
//! The two forms select the same Observations. `Observation.code` is 1..1
//! and `Observation.value[x]` 0..1, and the composite is indexed as every
//! token of the code paired with the value (`index::composite_rows`), each
//! pair under `code-value-quantity$system|code` and `…$code` (`|code`
//! without a system). So an Observation has a code token matching `K` and
//! a value matching `V` exactly when it has a composite row under `K`'s
//! key whose value matches `V`. That holds only where the value
//! parameter's rows are the composite's second component's:
//! - `value-quantity` is `(value as Quantity) | (value as SampledData)`
//!   and the component `value.as(Quantity)`; a SampledData gives no
//!   quantity row, so the rows agree.
//! - `value-concept` and its component are both `value as CodeableConcept`.
//! - Not `value-string`, which also holds the text of a CodeableConcept
//!   value, nor `value-date`, whose component is written
//!   `value.as(DateTime)`.
//!
//! Only plain values pair: a code clause of `code`, `system|code` or
//! `|code` values (not `:not`, `:text`, `:in`, `system|`), and value
//! clauses without modifiers. Several codes and several values pair as
//! every code with every value, up to [`MAX_PAIRS`].

use super::{Alternative, Clause, Cond, Criteria, TokenValue, composite_token_key};
use crate::search::registry::{ParamKind, R4_DEFINITIONS, Registry, composite_key};

/// The value parameters of Observation that pair with `code`, and the
/// composite that holds both: (value parameter, its definition, composite,
/// its definition).
const PAIRS: [(&str, &str, &str, &str); 2] = [
    (
        "value-quantity",
        "Observation-value-quantity",
        "code-value-quantity",
        "Observation-code-value-quantity",
    ),
    (
        "value-concept",
        "Observation-value-concept",
        "code-value-concept",
        "Observation-code-value-concept",
    ),
];

const CODE_DEFINITION: &str = "clinical-code";

/// The most alternatives a paired clause may have (codes × values).
const MAX_PAIRS: usize = 16;

/// Rewrites `criteria` of a search of `resource_type` so that value
/// clauses of Observation search their composite with the code, and the
/// code clause, then implied, is dropped. Anything else is left as it is.
pub(super) fn pair_code_and_value(
    registry: &Registry,
    resource_type: &str,
    criteria: &mut Criteria,
) {
    if resource_type != "Observation" || !is_standard(registry, "code", CODE_DEFINITION) {
        return;
    }
    let Some((code_at, keys)) = criteria
        .clauses
        .iter()
        .enumerate()
        .find_map(|(at, clause)| code_keys(clause).map(|keys| (at, keys)))
    else {
        return;
    };
    let mut paired_any = false;
    for clause in &mut criteria.clauses {
        let Clause::Match {
            negated: false,
            alternatives,
            ..
        } = clause
        else {
            continue;
        };
        let Some(composite) = composite_for(registry, alternatives) else {
            continue;
        };
        if keys.len() * alternatives.len() > MAX_PAIRS {
            continue;
        }
        *alternatives = keys
            .iter()
            .flat_map(|key| {
                alternatives.iter().map(move |alt| Alternative {
                    param: composite_key(composite, key),
                    cond: alt.cond.clone(),
                })
            })
            .collect();
        paired_any = true;
    }
    if paired_any {
        criteria.clauses.remove(code_at);
    }
}

/// The composite keys of a plain `code` clause ([`composite_token_key`]).
fn code_keys(clause: &Clause) -> Option<Vec<String>> {
    let Clause::Match {
        table: "search_token",
        negated: false,
        alternatives,
    } = clause
    else {
        return None;
    };
    alternatives
        .iter()
        .map(|alt| match &alt.cond {
            Cond::Token(token) if alt.param == "code" => composite_token_key(token),
            _ => None,
        })
        .collect::<Option<Vec<_>>>()
        .filter(|keys| !keys.is_empty())
}

/// The composite a value clause's alternatives pair into, when all are of
/// one pairing value parameter with a plain value.
fn composite_for(registry: &Registry, alternatives: &[Alternative]) -> Option<&'static str> {
    let first = alternatives.first()?;
    let (value, value_definition, composite, composite_definition) =
        PAIRS.iter().find(|(value, ..)| first.param == *value)?;
    let plain = alternatives.iter().all(|alt| {
        alt.param == *value
            && match &alt.cond {
                Cond::Quantity(_) => true,
                Cond::Token(token) => matches!(
                    token,
                    TokenValue::Code(_)
                        | TokenValue::SystemCode(..)
                        | TokenValue::NoSystem(_)
                        | TokenValue::System(_)
                ),
                _ => false,
            }
    });
    let indexed = registry.param("Observation", composite).is_some_and(|p| {
        p.kind == ParamKind::Composite
            && p.url.strip_prefix(R4_DEFINITIONS) == Some(composite_definition)
    });
    (plain && indexed && is_standard(registry, value, value_definition)).then_some(*composite)
}

/// Whether Observation's parameter `code` is the R4 definition `name`, not
/// a custom one of the same code.
fn is_standard(registry: &Registry, code: &str, name: &str) -> bool {
    registry
        .param("Observation", code)
        .is_some_and(|p| p.url.strip_prefix(R4_DEFINITIONS) == Some(name))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::{Strictness, parse};
    use super::*;

    /// Each clause as its table and its alternatives' parameters.
    fn shape(resource_type: &str, query: &[(&str, &str)]) -> Vec<(&'static str, Vec<String>)> {
        let params: Vec<(String, String)> = query
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        let parsed = parse(
            Registry::global(),
            resource_type,
            &params,
            Strictness::Strict,
            "https://hie.example.org/fhir",
        )
        .unwrap();
        parsed
            .criteria
            .clauses
            .iter()
            .map(|clause| match clause {
                Clause::Match {
                    table,
                    alternatives,
                    ..
                } => (
                    *table,
                    alternatives.iter().map(|a| a.param.clone()).collect(),
                ),
                other => panic!("unexpected clause {other:?}"),
            })
            .collect()
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn code_and_value_quantity_become_one_composite_clause() {
        assert_eq!(
            shape(
                "Observation",
                &[
                    ("code", "http://loinc.org|2339-0"),
                    ("value-quantity", "gt180")
                ]
            ),
            [(
                "search_quantity",
                strings(&["code-value-quantity$http://loinc.org|2339-0"])
            )]
        );
        // Every key form of the code, as the index writes them.
        assert_eq!(
            shape(
                "Observation",
                &[("value-quantity", "gt1"), ("code", "2339-0,|x")]
            ),
            [(
                "search_quantity",
                strings(&["code-value-quantity$2339-0", "code-value-quantity$|x"])
            )]
        );
        // Several values, repeated value parameters: every code with every
        // value, each repetition its own clause.
        assert_eq!(
            shape(
                "Observation",
                &[
                    ("code", "a,b"),
                    ("value-quantity", "gt1,lt0"),
                    ("value-quantity", "le9")
                ]
            ),
            [
                (
                    "search_quantity",
                    strings(&[
                        "code-value-quantity$a",
                        "code-value-quantity$a",
                        "code-value-quantity$b",
                        "code-value-quantity$b"
                    ])
                ),
                (
                    "search_quantity",
                    strings(&["code-value-quantity$a", "code-value-quantity$b"])
                )
            ]
        );
        assert_eq!(
            shape("Observation", &[("code", "s|c"), ("value-concept", "t|v")]),
            [("search_token", strings(&["code-value-concept$s|c"]))]
        );
    }

    #[test]
    fn other_forms_are_left_alone() {
        let unchanged = |query: &[(&str, &str)]| {
            let clauses = shape("Observation", query);
            assert_eq!(clauses.len(), 2, "{query:?}: {clauses:?}");
        };
        unchanged(&[("code:not", "s|c"), ("value-quantity", "gt1")]);
        unchanged(&[("code", "s|"), ("value-quantity", "gt1")]);
        unchanged(&[("code:text", "glucose"), ("value-quantity", "gt1")]);
        unchanged(&[("code", "s|c"), ("value-string", "high")]);
        unchanged(&[("code", "s|c"), ("value-date", "ge2020")]);
        unchanged(&[("code", "s|c"), ("value-concept:text", "high")]);
        unchanged(&[("code", "s|c"), ("value-concept:not", "t|v")]);
        unchanged(&[("code", "s|c"), ("component-value-quantity", "gt1")]);
        // More pairs than MAX_PAIRS.
        unchanged(&[("code", "a,b,c,d,e"), ("value-quantity", "gt1,gt2,gt3,gt4")]);
        // Only Observation's code is 1..1 with a 0..1 value.
        assert_eq!(
            shape("Condition", &[("code", "s|c"), ("onset-date", "ge2020")]).len(),
            2
        );
        // Without a value clause the code clause stays.
        assert_eq!(
            shape("Observation", &[("code", "s|c"), ("status", "final")]),
            [
                ("search_token", strings(&["code"])),
                ("search_token", strings(&["status"]))
            ]
        );
    }
}
