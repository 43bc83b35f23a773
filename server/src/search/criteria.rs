//! Parsing search parameters (search.html) into criteria the executor
//! runs: a tree of clauses, AND-ed, each an OR of alternatives, with
//! chained (`subject:Patient.name`) and reverse-chained (`_has`) clauses
//! holding the criteria of the other resource type.

use super::registry::{ParamKind, Registry, SearchParam, composite_key, derived_param};
use crate::error::{ApiError, Category};
use fhir::reference::{ReferenceTarget, parse_reference};
use fhir::search_values::{
    DateRange, NumberRange, Prefix, QuantityParam, fold_string, parse_date_param,
    parse_number_param, parse_quantity_param,
};
use fhir::{Issue, IssueCode, ResourceType};

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
            Err(Problem::Unsupported(why)) => match strictness {
                Strictness::Strict => {
                    return Err(ApiError::new(Category::Invalid, why)
                        .with_code(IssueCode::NotSupported)
                        .at(name.clone()));
                }
                Strictness::Lenient => parsed.warnings.push(
                    Issue::warning(IssueCode::NotSupported, format!("{why}; it was ignored"))
                        .at(name.clone()),
                ),
            },
        }
    }
    Ok(parsed)
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
            let key = match parse_token(first) {
                Some(TokenValue::Code(c)) => c,
                Some(TokenValue::SystemCode(s, c)) => format!("{s}|{c}"),
                Some(TokenValue::NoSystem(c)) => format!("|{c}"),
                _ => return Err(bad(v, "the first part must be a code".into())),
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

/// `latitude|longitude|distance|unit` (search.html#special; units km, m
/// or miles, km by default).
fn parse_near(value: &str) -> Option<Near> {
    let parts: Vec<&str> = value.split('|').collect();
    let number = |s: &str| s.trim().parse::<f64>().ok().filter(|n| n.is_finite());
    let (latitude, longitude) = (number(parts.first()?)?, number(parts.get(1)?)?);
    if !(-90.0..=90.0).contains(&latitude) || !(-180.0..=180.0).contains(&longitude) {
        return None;
    }
    let km = match parts.get(2).filter(|d| !d.is_empty()) {
        None => DEFAULT_NEAR_KM,
        Some(d) => {
            let distance = number(d).filter(|d| *d >= 0.0)?;
            let per_unit = match parts.get(3).map(|u| u.trim()).unwrap_or("km") {
                "km" | "" => 1.0,
                "m" => 0.001,
                "[mi_i]" | "mi" | "[mi_us]" => 1.609_344,
                _ => return None,
            };
            distance * per_unit
        }
    };
    (parts.len() <= 4).then_some(Near {
        latitude,
        longitude,
        km,
    })
}

/// `ref[:Type].rest=value`: the reference's targets (the `:Type` one, or
/// every target type for which `rest` is a parameter) must match `rest`.
fn parse_chain(
    registry: &Registry,
    resource_type: &str,
    head: &str,
    rest: &str,
    value: &str,
    local_base: &str,
) -> Result<Clause, Problem> {
    let (code, type_modifier) = match head.split_once(':') {
        Some((c, m)) => (c, Some(m)),
        None => (head, None),
    };
    let param = registry
        .param(resource_type, code)
        .filter(|p| p.kind == ParamKind::Reference)
        .ok_or_else(|| {
            Problem::Unsupported(format!(
                "{code} is not a reference parameter of {resource_type}, so it cannot be chained"
            ))
        })?;
    let candidates: Vec<String> = match type_modifier {
        Some(t) => {
            let known = ResourceType::parse(t).is_some()
                && (param.targets.is_empty() || param.targets.iter().any(|x| x == t));
            if !known {
                return Err(Problem::Unsupported(format!(
                    "{code} of {resource_type} cannot refer to {t}"
                )));
            }
            vec![t.to_owned()]
        }
        None => param.targets.iter().cloned().collect(),
    };
    let mut targets = Vec::new();
    let mut first_problem = None;
    for target in candidates {
        match parse_param(registry, &target, rest, value, local_base) {
            Ok(clause) => targets.push((
                target,
                Criteria {
                    clauses: vec![clause],
                },
            )),
            Err(Problem::Invalid(e)) => return Err(Problem::Invalid(e)),
            Err(p) => {
                first_problem.get_or_insert(p);
            }
        }
    }
    if targets.is_empty() {
        return Err(first_problem.unwrap_or_else(|| {
            Problem::Unsupported(format!("{code} of {resource_type} has no target types"))
        }));
    }
    Ok(Clause::Chain {
        param: code.to_owned(),
        targets,
    })
}

/// `_has:Type:param:rest=value` (rest may itself be `_has:...`).
fn parse_has(
    registry: &Registry,
    resource_type: &str,
    name: &str,
    rest: &str,
    value: &str,
    local_base: &str,
) -> Result<Clause, Problem> {
    let mut parts = rest.splitn(3, ':');
    let (Some(source), Some(code), Some(inner_name)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(ApiError::invalid(format!(
            "{name} must have the form _has:Type:reference:parameter"
        ))
        .into());
    };
    let Some(source_type) = ResourceType::parse(source) else {
        return Err(ApiError::invalid(format!("{source} in {name} is not a resource type")).into());
    };
    let refers = registry
        .param(source_type.as_str(), code)
        .filter(|p| p.kind == ParamKind::Reference)
        .is_some_and(|p| p.targets.is_empty() || p.targets.iter().any(|t| t == resource_type));
    if !refers {
        return Err(Problem::Unsupported(format!(
            "{source}:{code} is not a reference parameter that can refer to {resource_type}"
        )));
    }
    let clause = parse_param(
        registry,
        source_type.as_str(),
        inner_name,
        value,
        local_base,
    )?;
    Ok(Clause::Has {
        source_type: source_type.as_str().to_owned(),
        param: code.to_owned(),
        inner: Criteria {
            clauses: vec![clause],
        },
    })
}

fn parse_reference_value(
    raw: &str,
    type_modifier: Option<&str>,
    local_base: &str,
) -> Option<ReferenceValue> {
    if let Some(target_type) = type_modifier {
        // With `:Type` the value is the id.
        return fhir::id::is_valid_id(raw).then(|| ReferenceValue::Local {
            target_type: Some(target_type.to_owned()),
            id: raw.to_owned(),
        });
    }
    if fhir::id::is_valid_id(raw) {
        return Some(ReferenceValue::Local {
            target_type: None,
            id: raw.to_owned(),
        });
    }
    match parse_reference(raw, local_base)? {
        ReferenceTarget::Local {
            resource_type, id, ..
        } => Some(ReferenceValue::Local {
            target_type: Some(resource_type.as_str().to_owned()),
            id: id.to_owned(),
        }),
        ReferenceTarget::External(url) => Some(ReferenceValue::Url(url.to_owned())),
        _ => None,
    }
}

fn parse_token(raw: &str) -> Option<TokenValue> {
    let parts: Vec<String> = split_unescaped(raw, '|')
        .iter()
        .map(|p| unescape(p))
        .collect();
    match parts.as_slice() {
        [code] if !code.is_empty() => Some(TokenValue::Code(code.clone())),
        [system, code] => match (system.is_empty(), code.is_empty()) {
            (false, false) => Some(TokenValue::SystemCode(system.clone(), code.clone())),
            (true, false) => Some(TokenValue::NoSystem(code.clone())),
            (false, true) => Some(TokenValue::System(system.clone())),
            (true, true) => None,
        },
        _ => None,
    }
}

/// Splits on `sep` except where escaped with a backslash
/// (search.html#escaping). Only the escape of `sep` itself is removed, so
/// that a later split on another separator still sees its escapes.
pub fn split_unescaped(raw: &str, sep: char) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        let Some(last) = out.last_mut() else { break };
        match c {
            '\\' => match chars.next() {
                Some(next) if next == sep => last.push(next),
                Some(next) => {
                    last.push('\\');
                    last.push(next);
                }
                None => last.push('\\'),
            },
            c if c == sep => out.push(String::new()),
            c => last.push(c),
        }
    }
    out
}

/// Resolves the remaining escapes `\\`, `\$`, `\,` and `\|`.
pub fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        match (c, chars.clone().next()) {
            ('\\', Some(next @ ('\\' | '$' | ',' | '|'))) => {
                out.push(next);
                chars.next();
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const BASE: &str = "https://hie.example.org/fhir";

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn token_forms() {
        assert_eq!(parse_token("a"), Some(TokenValue::Code("a".into())));
        assert_eq!(
            parse_token("s|a"),
            Some(TokenValue::SystemCode("s".into(), "a".into()))
        );
        assert_eq!(parse_token("|a"), Some(TokenValue::NoSystem("a".into())));
        assert_eq!(parse_token("s|"), Some(TokenValue::System("s".into())));
        assert_eq!(parse_token("|"), None);
        assert_eq!(parse_token("a|b|c"), None);
        assert_eq!(
            parse_token(r"s|a\|b"),
            Some(TokenValue::SystemCode("s".into(), "a|b".into()))
        );
    }

    #[test]
    fn escaped_commas_do_not_split() {
        assert_eq!(
            split_unescaped(r"a\,b,c", ','),
            vec!["a,b".to_string(), "c".to_string()]
        );
    }

    #[test]
    fn unknown_parameters_are_warnings_or_errors() {
        let lenient = parse(
            Registry::global(),
            "Patient",
            &p(&[("bogus", "1")]),
            Strictness::Lenient,
            BASE,
        )
        .unwrap();
        assert_eq!(lenient.warnings.len(), 1);
        let strict = parse(
            Registry::global(),
            "Patient",
            &p(&[("bogus", "1")]),
            Strictness::Strict,
            BASE,
        )
        .unwrap_err();
        assert_eq!(strict.issues[0].expression, vec!["bogus".to_string()]);
    }

    #[test]
    fn identifier_and_id_parse() {
        let parsed = parse(
            Registry::global(),
            "Patient",
            &p(&[("identifier", "urn:s|1,urn:s|2"), ("_id", "a,b")]),
            Strictness::Strict,
            BASE,
        )
        .unwrap();
        let Clause::Match { alternatives, .. } = &parsed.criteria.clauses[0] else {
            panic!("identifier is a match clause")
        };
        assert_eq!(alternatives.len(), 2);
        assert!(
            matches!(&parsed.criteria.clauses[1], Clause::Ids(ids) if ids == &["a".to_string(), "b".to_string()])
        );
    }

    #[test]
    fn reference_forms() {
        let check = |name: &str, value: &str, expected: ReferenceValue| {
            let parsed = parse(
                Registry::global(),
                "Observation",
                &p(&[(name, value)]),
                Strictness::Strict,
                BASE,
            )
            .unwrap();
            let Clause::Match { alternatives, .. } = &parsed.criteria.clauses[0] else {
                panic!("a reference is a match clause")
            };
            assert!(
                matches!(&alternatives[0].cond, Cond::Reference(r) if *r == expected),
                "{name}={value}"
            );
        };
        let local = |t: Option<&str>, id: &str| ReferenceValue::Local {
            target_type: t.map(str::to_owned),
            id: id.to_owned(),
        };
        check("subject", "Patient/1", local(Some("Patient"), "1"));
        check("subject", "1", local(None, "1"));
        check("subject:Patient", "1", local(Some("Patient"), "1"));
        check(
            "subject",
            "https://hie.example.org/fhir/Patient/1",
            local(Some("Patient"), "1"),
        );
        check(
            "subject",
            "Patient/1/_history/2",
            local(Some("Patient"), "1"),
        );
        check(
            "subject",
            "http://other.org/fhir/Patient/1",
            ReferenceValue::Url("http://other.org/fhir/Patient/1".into()),
        );
        let bad = parse(
            Registry::global(),
            "Observation",
            &p(&[("subject", "Nope/1/2")]),
            Strictness::Strict,
            BASE,
        )
        .unwrap_err();
        assert_eq!(bad.issues[0].expression, vec!["subject".to_string()]);
        let bad_modifier = parse(
            Registry::global(),
            "Observation",
            &p(&[("subject:Nope", "1")]),
            Strictness::Strict,
            BASE,
        )
        .unwrap_err();
        assert_eq!(
            bad_modifier.issues[0].expression,
            vec!["subject:Nope".to_string()]
        );
    }

    #[test]
    fn chains_and_has_nest() {
        let parsed = parse(
            Registry::global(),
            "Observation",
            &p(&[("subject:Patient.organization.name", "Kenyatta")]),
            Strictness::Strict,
            BASE,
        )
        .unwrap();
        let Clause::Chain { param, targets } = &parsed.criteria.clauses[0] else {
            panic!("a chain")
        };
        assert_eq!(param, "subject");
        assert_eq!(targets.len(), 1);
        assert_eq!(targets[0].0, "Patient");
        assert!(
            matches!(&targets[0].1.clauses[0], Clause::Chain { param, .. } if param == "organization")
        );
        // Without :Type, every target type with a `name` parameter.
        let parsed = parse(
            Registry::global(),
            "Observation",
            &p(&[("subject.name", "x")]),
            Strictness::Strict,
            BASE,
        )
        .unwrap();
        let Clause::Chain { targets, .. } = &parsed.criteria.clauses[0] else {
            panic!("a chain")
        };
        let types: Vec<&str> = targets.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(
            types,
            vec!["Patient", "Location"],
            "Group and Device have no name parameter"
        );
        let parsed = parse(
            Registry::global(),
            "Patient",
            &p(&[(
                "_has:Observation:patient:_has:Provenance:target:agent",
                "Practitioner/1",
            )]),
            Strictness::Strict,
            BASE,
        )
        .unwrap();
        let Clause::Has {
            source_type, inner, ..
        } = &parsed.criteria.clauses[0]
        else {
            panic!("a _has")
        };
        assert_eq!(source_type, "Observation");
        assert!(
            matches!(&inner.clauses[0], Clause::Has { source_type, .. } if source_type == "Provenance")
        );
        for bad in ["_has:Observation:patient", "_has:Nope:patient:code"] {
            let e = parse(
                Registry::global(),
                "Patient",
                &p(&[(bad, "x")]),
                Strictness::Lenient,
                BASE,
            )
            .unwrap_err();
            assert_eq!(e.issues[0].expression, vec![bad.to_string()]);
        }
        let e = parse(
            Registry::global(),
            "Patient",
            &p(&[("_has:Observation:code:code", "x")]),
            Strictness::Strict,
            BASE,
        )
        .unwrap_err();
        assert_eq!(e.issues[0].code, IssueCode::NotSupported);
    }

    #[test]
    fn token_modifiers_and_composites() {
        let one = |name: &str, value: &str| {
            parse(
                Registry::global(),
                "Patient",
                &p(&[(name, value)]),
                Strictness::Strict,
                BASE,
            )
            .map(|p| p.criteria.clauses.into_iter().next().unwrap())
        };
        assert!(matches!(
            one("gender:not", "male").unwrap(),
            Clause::Match { negated: true, .. }
        ));
        assert!(
            matches!(one("identifier:text", "Medical").unwrap(), Clause::Match { table: "search_string", ref alternatives, .. }
                if alternatives[0].param == "identifier:text")
        );
        let Clause::Match { alternatives, .. } =
            one("identifier:of-type", "http://t|MR|123").unwrap()
        else {
            panic!()
        };
        assert!(
            matches!(&alternatives[0].cond, Cond::Token(TokenValue::SystemCode(s, c)) if s == "http://t" && c == "MR|123")
        );
        assert!(one("identifier:of-type", "MR|123").is_err());
        assert!(one("birthdate:not", "2000").is_err(), ":not is for tokens");
        let Clause::Match {
            table,
            alternatives,
            ..
        } = parse(
            Registry::global(),
            "Observation",
            &p(&[(
                "code-value-quantity",
                "http://loinc.org|8480-6$gt100,8462-4$lt90",
            )]),
            Strictness::Strict,
            BASE,
        )
        .unwrap()
        .criteria
        .clauses
        .remove(0)
        else {
            panic!()
        };
        assert_eq!(table, "search_quantity");
        assert_eq!(
            alternatives[0].param,
            "code-value-quantity$http://loinc.org|8480-6"
        );
        assert_eq!(alternatives[1].param, "code-value-quantity$8462-4");
        let bad = parse(
            Registry::global(),
            "Observation",
            &p(&[("code-value-quantity", "8480-6")]),
            Strictness::Strict,
            BASE,
        )
        .unwrap_err();
        assert_eq!(
            bad.issues[0].expression,
            vec!["code-value-quantity".to_string()]
        );
    }

    #[test]
    fn near_values() {
        assert_eq!(
            parse_near("-1.29|36.82|5|km"),
            Some(Near {
                latitude: -1.29,
                longitude: 36.82,
                km: 5.0
            })
        );
        assert_eq!(parse_near("-1.29|36.82|500|m").map(|n| n.km), Some(0.5));
        assert_eq!(
            parse_near("-1.29|36.82").map(|n| n.km),
            Some(DEFAULT_NEAR_KM)
        );
        assert_eq!(parse_near("91|0|1|km"), None);
        assert_eq!(parse_near("1|2|3|parsecs"), None);
        assert_eq!(parse_near("x|2"), None);
    }
}
