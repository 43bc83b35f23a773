//! Parsing search parameters (search.html) into criteria the executor runs.

use super::registry::Registry;
use crate::error::{ApiError, Category};
use fhir::{Issue, IssueCode};

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

/// Values of one parameter occurrence, OR-ed.
#[derive(Debug, Clone)]
pub struct TokenClause {
    pub param: &'static str,
    pub values: Vec<TokenValue>,
}

/// AND of every clause.
#[derive(Debug, Clone, Default)]
pub struct Criteria {
    /// `_id` occurrences; each inner list is OR-ed, the lists AND-ed.
    pub ids: Vec<Vec<String>>,
    pub tokens: Vec<TokenClause>,
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

/// Parameters that shape results rather than select them.
pub const RESULT_PARAMETERS: [&str; 4] = ["_count", "_format", "_pretty", "_page"];

#[derive(Debug, Default)]
pub struct Parsed {
    pub criteria: Criteria,
    /// Issues about ignored parameters (lenient mode).
    pub warnings: Vec<Issue>,
    /// The parameters actually used, for the Bundle's self link.
    pub used: Vec<(String, String)>,
}

pub fn parse(
    resource_type: &str,
    params: &[(String, String)],
    strictness: Strictness,
) -> Result<Parsed, ApiError> {
    let registry = Registry::global();
    let mut parsed = Parsed::default();
    for (name, value) in params {
        if RESULT_PARAMETERS.contains(&name.as_str()) {
            continue;
        }
        if name == "_id" {
            let ids: Vec<String> = split_unescaped(value, ',')
                .iter()
                .map(|v| unescape(v))
                .collect();
            if ids.iter().any(|id| !fhir::id::is_valid_id(id)) {
                return Err(
                    ApiError::invalid(format!("_id value {value:?} is not a valid id"))
                        .at(name.clone()),
                );
            }
            parsed.criteria.ids.push(ids);
            parsed.used.push((name.clone(), value.clone()));
            continue;
        }
        let (code, modifier) = match name.split_once(':') {
            Some((c, m)) => (c, Some(m)),
            None => (name.as_str(), None),
        };
        let param = registry
            .token_param(resource_type, code)
            .filter(|_| modifier.is_none());
        let Some(param) = param else {
            let why = if modifier.is_some() && registry.token_param(resource_type, code).is_some() {
                format!(
                    "the modifier :{} on parameter {code} is not supported yet",
                    modifier.unwrap_or_default()
                )
            } else if registry.is_defined(resource_type, code) {
                format!("search parameter {code} of {resource_type} is not supported yet")
            } else {
                format!("unknown search parameter {name} for {resource_type}")
            };
            match strictness {
                Strictness::Strict => {
                    return Err(ApiError::new(Category::Invalid, why)
                        .with_code(IssueCode::NotSupported)
                        .at(name.clone()));
                }
                Strictness::Lenient => {
                    parsed.warnings.push(
                        Issue::warning(IssueCode::NotSupported, format!("{why}; it was ignored"))
                            .at(name.clone()),
                    );
                    continue;
                }
            }
        };
        let values = split_unescaped(value, ',')
            .into_iter()
            .map(|v| parse_token(&v))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                ApiError::invalid(format!("{name} value {value:?} is not a valid token"))
                    .at(name.clone())
            })?;
        parsed.criteria.tokens.push(TokenClause {
            param: param.code,
            values,
        });
        parsed.used.push((name.clone(), value.clone()));
    }
    Ok(parsed)
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
        let lenient = parse("Patient", &p(&[("bogus", "1")]), Strictness::Lenient).unwrap();
        assert_eq!(lenient.warnings.len(), 1);
        let strict = parse("Patient", &p(&[("bogus", "1")]), Strictness::Strict).unwrap_err();
        assert_eq!(strict.issues[0].expression, vec!["bogus".to_string()]);
    }

    #[test]
    fn identifier_and_id_parse() {
        let parsed = parse(
            "Patient",
            &p(&[("identifier", "urn:s|1,urn:s|2"), ("_id", "a,b")]),
            Strictness::Strict,
        )
        .unwrap();
        assert_eq!(parsed.criteria.tokens[0].values.len(), 2);
        assert_eq!(
            parsed.criteria.ids,
            vec![vec!["a".to_string(), "b".to_string()]]
        );
    }
}
