//! Parsing search parameters (search.html) into criteria the executor
//! runs: a tree of clauses, AND-ed, each an OR of alternatives, with
//! chained (`subject:Patient.name`) and reverse-chained (`_has`) clauses
//! holding the criteria of the other resource type.

use super::registry::{ParamKind, Registry, SearchParam, composite_key, derived_param, renamed};
use crate::error::{ApiError, Category};
use fhir::search_values::{
    DateRange, NumberRange, Prefix, QuantityParam, fold_string, parse_date_param,
    parse_number_param, parse_quantity_param,
};
use fhir::{Issue, IssueCode, ResourceType};

mod chain;
mod hierarchy;
mod paired;
mod values;

use chain::{parse_chain, parse_has};
pub use hierarchy::{HIERARCHY_MODIFIER, Hierarchy};
use values::{parse_near, parse_reference_value, parse_token};
pub use values::{split_unescaped, unescape};

/// One token value (search.html#token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenValue {
    /// `code`: any system.
    Code(String),
    /// `system|code`
    SystemCode(String, String),
    /// `|code`: no system.
    NoSystem(String),
    /// `system|`: any code in the system.
    System(String),
    /// A code of `system` below (or above) one concept of a stored code
    /// system, matched against the terminology tables in the database:
    /// `:below`/`:above` (and `:in` an is-a value set) of more codes than
    /// are listed (`token_sets`).
    Hierarchy(Hierarchy),
}

/// One reference value (search.html#reference).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReferenceValue {
    /// A resource on this server: `Type/id`, an absolute URL under the base,
    /// or a bare id (any type, unless the `:Type` modifier names one).
    Local {
        target_type: Option<String>,
        id: String,
    },
    /// A resource elsewhere, or a canonical URL.
    Url(String),
    /// A resource of `target_type` on this server, one of `ids` (`None`:
    /// any): the compartments of many patients at once (Bulk Data).
    AnyOf {
        target_type: String,
        ids: Option<Vec<String>>,
    },
}

/// How a string parameter matches (search.html#string).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StringMatch {
    /// The default: the folded value starts with the folded search text.
    StartsWith,
    /// `:exact`: equal as written, case and accents included.
    Exact,
    /// `:contains`: the folded value contains the folded search text.
    Contains,
}

/// How a uri parameter matches (search.html#uri).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UriMatch {
    Exact,
    /// `:below`: the stored URI is the value or lies under its path.
    Below,
    /// `:above`: the stored URI is the value or one of its path prefixes.
    Above,
}

/// Location `near` (search.html#special): within `km` of a point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Near {
    pub latitude: f64,
    pub longitude: f64,
    pub km: f64,
}

/// The distance `near` uses when the value gives none (R4 leaves it to
/// the server).
pub const DEFAULT_NEAR_KM: f64 = 10.0;

/// A condition on one index row.
#[derive(Debug, Clone)]
pub enum Cond {
    Token(TokenValue),
    Reference(ReferenceValue),
    /// Folded unless `Exact`.
    String(StringMatch, String),
    Date(Prefix, DateRange),
    Number(Prefix, NumberRange),
    Quantity(QuantityParam),
    Uri(UriMatch, String),
    Near(Near),
}

/// A row of `param` satisfying `cond`.
#[derive(Debug, Clone)]
pub struct Alternative {
    pub param: String,
    pub cond: Cond,
}

/// One criterion; a resource matches when every clause holds.
#[derive(Debug, Clone)]
pub enum Clause {
    /// `_id`: any of the ids.
    Ids(Vec<String>),
    /// The resource has a row in `table` satisfying any alternative (or,
    /// `negated`, none: token `:not`, which also matches resources without
    /// the element).
    Match {
        table: &'static str,
        negated: bool,
        alternatives: Vec<Alternative>,
    },
    /// `param:missing=true|false` (search.html#missing).
    Missing {
        param: String,
        table: &'static str,
        missing: bool,
    },
    /// A chained parameter (search.html#chaining): the reference `param`
    /// points at a resource of one of the types that meets its criteria.
    Chain {
        param: String,
        targets: Vec<(String, Criteria)>,
    },
    /// `_has:Type:param:...` (search.html#has): some `source_type`
    /// resource meeting `inner` refers to this one through `param`.
    Has {
        source_type: String,
        param: String,
        inner: Criteria,
    },
    /// Per resource type, the clause a resource of that type must meet
    /// (a compartment across types, where each type has its own links).
    ForTypes(Vec<(String, Clause)>),
    /// Any of the criteria holds (Bulk Data `_typeFilter`s of one type, a
    /// Patient that is the patient or linked to it in `$everything`).
    AnyOf(Vec<Criteria>),
}

/// AND of every clause.
#[derive(Debug, Clone, Default)]
pub struct Criteria {
    pub clauses: Vec<Clause>,
}

impl Criteria {
    pub fn is_empty(&self) -> bool {
        self.clauses.is_empty()
    }
}

/// How a parameter the engine cannot use is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strictness {
    /// Search with `Prefer: handling=lenient` (the default): ignore it and
    /// report it in the Bundle's OperationOutcome.
    Lenient,
    /// `Prefer: handling=strict`, and always for conditional interactions,
    /// where ignoring a criterion could match (and change) too much.
    Strict,
}

impl Strictness {
    /// A parameter the server cannot use: with `Strict` a 400 naming it,
    /// else a warning in `warnings` saying it was ignored.
    pub fn unsupported(
        self,
        name: &str,
        why: String,
        warnings: &mut Vec<Issue>,
    ) -> Result<(), ApiError> {
        match self {
            Strictness::Strict => Err(ApiError::new(Category::Invalid, why)
                .with_code(IssueCode::NotSupported)
                .at(name)),
            Strictness::Lenient => {
                warnings.push(
                    Issue::warning(IssueCode::NotSupported, format!("{why}; it was ignored"))
                        .at(name),
                );
                Ok(())
            }
        }
    }
}

/// Parameters that shape results rather than select them; the search
/// service reads them.
pub const RESULT_PARAMETERS: [&str; 14] = [
    "_count",
    "_format",
    "_pretty",
    "_page",
    "_sort",
    "_include",
    "_revinclude",
    "_summary",
    "_elements",
    "_total",
    "_contained",
    "_containedType",
    "_type",
    "_type:exact",
];

#[derive(Debug, Default)]
pub struct Parsed {
    pub criteria: Criteria,
    /// Issues about ignored parameters (lenient mode).
    pub warnings: Vec<Issue>,
    /// The parameters actually used, for the Bundle's self link.
    pub used: Vec<(String, String)>,
}

/// Why one parameter could not be turned into a clause.
#[derive(Debug)]
enum Problem {
    /// Unknown or not supported: ignored (lenient) or 400 (strict).
    Unsupported(String),
    /// A malformed value: always 400.
    Invalid(ApiError),
}

impl From<ApiError> for Problem {
    fn from(e: ApiError) -> Problem {
        Problem::Invalid(e)
    }
}

/// Parses `params` for a search of `resource_type`. Absolute reference
/// values under `local_base` are treated as local.
pub fn parse(
    registry: &Registry,
    resource_type: &str,
    params: &[(String, String)],
    strictness: Strictness,
    local_base: &str,
) -> Result<Parsed, ApiError> {
    let mut parsed = Parsed::default();
    for (name, value) in params {
        if RESULT_PARAMETERS.contains(&name.as_str()) {
            continue;
        }
        match parse_param(registry, resource_type, name, value, local_base) {
            Ok(clause) => {
                parsed.criteria.clauses.push(clause);
                parsed.used.push((name.clone(), value.clone()));
            }
            Err(Problem::Invalid(e)) => return Err(e.at(name.clone())),
            Err(Problem::Unsupported(why)) => {
                strictness.unsupported(name, why, &mut parsed.warnings)?;
            }
        }
    }
    paired::pair_code_and_value(registry, resource_type, &mut parsed.criteria);
    Ok(parsed)
}

/// The clause of a union parameter from its two parts' clauses: a row of
/// either part (one `Match` when they search the same table), or, for
/// `:missing=true` (`both`), missing in both. A negated (`:not`) `Match`
/// of both parts' alternatives holds when no row of either matches, as
/// `:not` on the union means.
fn union_clause(halves: Vec<Clause>, both: bool) -> Clause {
    let mut halves = halves.into_iter();
    match (halves.next(), halves.next()) {
        (
            Some(Clause::Match {
                table,
                negated,
                mut alternatives,
            }),
            Some(Clause::Match {
                table: other_table,
                negated: other_negated,
                alternatives: others,
            }),
        ) if table == other_table && negated == other_negated => {
            alternatives.extend(others);
            Clause::Match {
                table,
                negated,
                alternatives,
            }
        }
        (Some(a), Some(b)) if both => Clause::AnyOf(vec![Criteria {
            clauses: vec![a, b],
        }]),
        (Some(a), Some(b)) => Clause::AnyOf(vec![
            Criteria { clauses: vec![a] },
            Criteria { clauses: vec![b] },
        ]),
        (Some(one), None) => one,
        (None, _) => Clause::AnyOf(Vec::new()),
    }
}

/// One parameter (`name` may be chained or `_has:`) as a clause.
fn parse_param(
    registry: &Registry,
    resource_type: &str,
    name: &str,
    value: &str,
    local_base: &str,
) -> Result<Clause, Problem> {
    if let Some(rest) = name.strip_prefix("_has:") {
        return parse_has(registry, resource_type, name, rest, value, local_base);
    }
    if let Some((head, rest)) = name.split_once('.') {
        return parse_chain(registry, resource_type, head, rest, value, local_base);
    }
    let (code, modifier) = match name.split_once(':') {
        Some((c, m)) => (c, Some(m)),
        None => (name, None),
    };
    if code == "_id" {
        if modifier.is_some() {
            return Err(Problem::Unsupported(format!(
                "the modifier :{} on _id is not supported",
                modifier.unwrap_or_default()
            )));
        }
        let ids: Vec<String> = split_unescaped(value, ',')
            .iter()
            .map(|v| unescape(v))
            .collect();
        if ids.iter().any(|id| !fhir::id::is_valid_id(id)) {
            return Err(ApiError::invalid(format!("_id value {value:?} is not a valid id")).into());
        }
        return Ok(Clause::Ids(ids));
    }
    let Some(param) = registry.param(resource_type, code) else {
        return Err(Problem::Unsupported(
            if registry.is_defined(resource_type, code) {
                format!("search parameter {code} of {resource_type} is not supported")
            } else {
                format!("unknown search parameter {code} for {resource_type}")
            },
        ));
    };
    if let Some(parts) = param.union_of {
        let mut halves = Vec::with_capacity(2);
        for part in parts {
            let part_name = renamed(name, code, part);
            // A problem is told of the parameter as the client named it.
            let told = |text: String| text.replacen(&part_name, name, 1);
            let half = parse_param(registry, resource_type, &part_name, value, local_base)
                .map_err(|problem| match problem {
                    Problem::Unsupported(why) => Problem::Unsupported(told(why)),
                    Problem::Invalid(mut e) => {
                        for issue in &mut e.issues {
                            issue.diagnostics = told(std::mem::take(&mut issue.diagnostics));
                        }
                        Problem::Invalid(e)
                    }
                })?;
            halves.push(half);
        }
        let both = modifier == Some("missing") && value == "true";
        return Ok(union_clause(halves, both));
    }
    let unsupported_modifier = || {
        Problem::Unsupported(format!(
            "the modifier :{} on parameter {code} ({}) is not supported",
            modifier.unwrap_or_default(),
            param.kind.as_str()
        ))
    };
    if modifier == Some("missing") {
        let Some(table) = param.kind.table() else {
            return Err(unsupported_modifier());
        };
        let missing = match value {
            "true" => true,
            "false" => false,
            _ => {
                return Err(ApiError::invalid(format!(
                    "{name} takes true or false, not {value:?}"
                ))
                .into());
            }
        };
        return Ok(Clause::Missing {
            param: code.to_owned(),
            table,
            missing,
        });
    }
    let values: Vec<String> = split_unescaped(value, ',');
    let invalid = |what: &str, detail: String| -> Problem {
        ApiError::invalid(format!(
            "{name} value {value:?} is not a valid {what}{detail}"
        ))
        .into()
    };
    let plain = |table: &'static str, cond: &dyn Fn(&str) -> Result<Cond, Problem>| {
        let alternatives = values
            .iter()
            .map(|v| {
                Ok(Alternative {
                    param: code.to_owned(),
                    cond: cond(v)?,
                })
            })
            .collect::<Result<Vec<_>, Problem>>()?;
        Ok(Clause::Match {
            table,
            negated: false,
            alternatives,
        })
    };
    match (param.kind, modifier) {
        (ParamKind::Token, None | Some("not")) => {
            let alternatives =
                token_alternatives(code, &values).ok_or_else(|| invalid("token", String::new()))?;
            Ok(Clause::Match {
                table: "search_token",
                negated: modifier == Some("not"),
                alternatives,
            })
        }
        (ParamKind::Token, Some(HIERARCHY_MODIFIER)) => {
            let alternatives = values
                .iter()
                .map(|v| {
                    Hierarchy::from_value(v).map(|h| Alternative {
                        param: code.to_owned(),
                        cond: Cond::Token(TokenValue::Hierarchy(h)),
                    })
                })
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| invalid("token", String::new()))?;
            Ok(Clause::Match {
                table: "search_token",
                negated: false,
                alternatives,
            })
        }
        (ParamKind::Token, Some("text")) => {
            let text = derived_param(code, "text");
            string_clause(&text, StringMatch::StartsWith, &values, name)
        }
        (ParamKind::Token, Some("of-type")) => {
            // system|code|value (search.html#token, :of-type).
            let alternatives = values
                .iter()
                .map(|v| {
                    let parts: Vec<String> = split_unescaped(v, '|')
                        .iter()
                        .map(|p| unescape(p))
                        .collect();
                    match parts.as_slice() {
                        [system, type_code, id] if !type_code.is_empty() && !id.is_empty() => {
                            let code = format!("{type_code}|{id}");
                            Some(Alternative {
                                param: derived_param(param.code, "of-type"),
                                cond: Cond::Token(if system.is_empty() {
                                    TokenValue::Code(code)
                                } else {
                                    TokenValue::SystemCode(system.clone(), code)
                                }),
                            })
                        }
                        _ => None,
                    }
                })
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| invalid("identifier type search", " (system|code|value)".into()))?;
            Ok(Clause::Match {
                table: "search_token",
                negated: false,
                alternatives,
            })
        }
        (ParamKind::Reference, Some("identifier")) => {
            let alternatives = token_alternatives(&derived_param(code, "identifier"), &values)
                .ok_or_else(|| invalid("identifier", String::new()))?;
            Ok(Clause::Match {
                table: "search_token",
                negated: false,
                alternatives,
            })
        }
        (ParamKind::Reference, m) if m.is_none() || m.and_then(ResourceType::parse).is_some() => {
            plain("search_reference", &|v| {
                parse_reference_value(&unescape(v), modifier, local_base)
                    .map(Cond::Reference)
                    .ok_or_else(|| invalid("reference", " (Type/id, an id, or a URL)".into()))
            })
        }
        (ParamKind::String, None | Some("exact") | Some("contains")) => {
            let how = match modifier {
                Some("exact") => StringMatch::Exact,
                Some("contains") => StringMatch::Contains,
                _ => StringMatch::StartsWith,
            };
            string_clause(code, how, &values, name)
        }
        (ParamKind::Uri, None | Some("below") | Some("above")) => {
            let how = match modifier {
                Some("below") => UriMatch::Below,
                Some("above") => UriMatch::Above,
                _ => UriMatch::Exact,
            };
            plain("search_uri", &|v| Ok(Cond::Uri(how, unescape(v))))
        }
        (ParamKind::Number, None) => plain("search_number", &|v| {
            let (prefix, range) = parse_number_param(&unescape(v))
                .map_err(|e| invalid("number search", format!(": {e}")))?;
            Ok(Cond::Number(prefix, range))
        }),
        (ParamKind::Date, None) => plain("search_date", &|v| {
            let (prefix, range) = parse_date_param(&unescape(v))
                .map_err(|e| invalid("date search", format!(": {e}")))?;
            Ok(Cond::Date(prefix, range))
        }),
        // The quantity parser handles its own `\|` escapes.
        (ParamKind::Quantity, None) => plain("search_quantity", &|v| {
            parse_quantity_param(v)
                .map(Cond::Quantity)
                .map_err(|e| invalid("quantity search", format!(": {e}")))
        }),
        (ParamKind::Position, None) => plain("search_position", &|v| {
            parse_near(&unescape(v))
                .map(Cond::Near)
                .ok_or_else(|| invalid("near search", " (latitude|longitude|distance|unit)".into()))
        }),
        (ParamKind::Composite, None) => parse_composite(param, name, &values),
        _ => Err(unsupported_modifier()),
    }
}

/// Token values as alternatives of `param`, or None if one is malformed.
fn token_alternatives(param: &str, values: &[String]) -> Option<Vec<Alternative>> {
    values
        .iter()
        .map(|v| {
            Some(Alternative {
                param: param.to_owned(),
                cond: Cond::Token(parse_token(v)?),
            })
        })
        .collect()
}

fn string_clause(
    param: &str,
    how: StringMatch,
    values: &[String],
    name: &str,
) -> Result<Clause, Problem> {
    let alternatives = values
        .iter()
        .map(|v| {
            let text = unescape(v);
            let text = if how == StringMatch::Exact {
                text
            } else {
                fold_string(&text)
            };
            if text.is_empty() {
                return Err(ApiError::invalid(format!("{name} needs a non-empty value")).into());
            }
            Ok(Alternative {
                param: param.to_owned(),
                cond: Cond::String(how, text),
            })
        })
        .collect::<Result<Vec<_>, Problem>>()?;
    Ok(Clause::Match {
        table: "search_string",
        negated: false,
        alternatives,
    })
}

/// The key a composite's rows of a token are found under, for a token
/// value naming one code: `system|code`, `|code` (no system) or `code`
/// (any system), as `index::token_keys` writes them.
fn composite_token_key(token: &TokenValue) -> Option<String> {
    match token {
        TokenValue::Code(c) => Some(c.clone()),
        TokenValue::SystemCode(s, c) => Some(format!("{s}|{c}")),
        TokenValue::NoSystem(c) => Some(format!("|{c}")),
        TokenValue::System(_) | TokenValue::Hierarchy(_) => None,
    }
}

/// `token$value` pairs of a composite (search.html#composite).
fn parse_composite(param: &SearchParam, name: &str, values: &[String]) -> Result<Clause, Problem> {
    let [_, second] = param.components.as_slice() else {
        return Err(Problem::Unsupported(format!(
            "composite parameter {} is not supported",
            param.code
        )));
    };
    let table = second.kind.table().unwrap_or("search_token");
    let bad = |v: &str, why: String| -> Problem {
        ApiError::invalid(format!(
            "{name} value {v:?} is not a valid composite: {why}"
        ))
        .into()
    };
    let alternatives = values
        .iter()
        .map(|v| {
            let parts = split_unescaped(v, '$');
            let [first, rest] = parts.as_slice() else {
                return Err(bad(v, "it needs two parts joined by $".into()));
            };
            let Some(key) = parse_token(first).as_ref().and_then(composite_token_key) else {
                return Err(bad(v, "the first part must be a code".into()));
            };
            let cond = match second.kind {
                ParamKind::Token => {
                    Cond::Token(parse_token(rest).ok_or_else(|| bad(v, "a bad token".into()))?)
                }
                ParamKind::Quantity => {
                    Cond::Quantity(parse_quantity_param(rest).map_err(|e| bad(v, e.to_string()))?)
                }
                ParamKind::Date => {
                    let (p, r) =
                        parse_date_param(&unescape(rest)).map_err(|e| bad(v, e.to_string()))?;
                    Cond::Date(p, r)
                }
                _ => {
                    let text = fold_string(&unescape(rest));
                    Cond::String(StringMatch::StartsWith, text)
                }
            };
            Ok(Alternative {
                param: composite_key(param.code, &key),
                cond,
            })
        })
        .collect::<Result<Vec<_>, Problem>>()?;
    Ok(Clause::Match {
        table,
        negated: false,
        alternatives,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
