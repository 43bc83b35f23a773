//! Parsing search parameters (search.html) into criteria the executor runs.

use super::registry::{ParamKind, Registry, SearchParam};
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

/// Values of one parameter occurrence, OR-ed.
#[derive(Debug, Clone)]
pub struct TokenClause {
    pub param: &'static str,
    pub values: Vec<TokenValue>,
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

/// Values of one reference parameter occurrence, OR-ed.
#[derive(Debug, Clone)]
pub struct ReferenceClause {
    pub param: &'static str,
    pub values: Vec<ReferenceValue>,
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

/// Values of one string parameter occurrence, OR-ed. Values are folded
/// unless `how` is `Exact`.
#[derive(Debug, Clone)]
pub struct StringClause {
    pub param: &'static str,
    pub how: StringMatch,
    pub values: Vec<String>,
}

/// Values of one date parameter occurrence, OR-ed.
#[derive(Debug, Clone)]
pub struct DateClause {
    pub param: &'static str,
    pub values: Vec<(Prefix, DateRange)>,
}

/// Values of one number parameter occurrence, OR-ed.
#[derive(Debug, Clone)]
pub struct NumberClause {
    pub param: &'static str,
    pub values: Vec<(Prefix, NumberRange)>,
}

/// Values of one quantity parameter occurrence, OR-ed.
#[derive(Debug, Clone)]
pub struct QuantityClause {
    pub param: &'static str,
    pub values: Vec<QuantityParam>,
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

/// Values of one uri parameter occurrence, OR-ed.
#[derive(Debug, Clone)]
pub struct UriClause {
    pub param: &'static str,
    pub how: UriMatch,
    pub values: Vec<String>,
}

/// `param:missing=true|false` (search.html#missing).
#[derive(Debug, Clone)]
pub struct MissingClause {
    pub param: &'static str,
    pub table: &'static str,
    pub missing: bool,
}

/// AND of every clause.
#[derive(Debug, Clone, Default)]
pub struct Criteria {
    /// `_id` occurrences; each inner list is OR-ed, the lists AND-ed.
    pub ids: Vec<Vec<String>>,
    pub tokens: Vec<TokenClause>,
    pub references: Vec<ReferenceClause>,
    pub strings: Vec<StringClause>,
    pub dates: Vec<DateClause>,
    pub numbers: Vec<NumberClause>,
    pub quantities: Vec<QuantityClause>,
    pub uris: Vec<UriClause>,
    pub missing: Vec<MissingClause>,
}

impl Criteria {
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
            && self.tokens.is_empty()
            && self.references.is_empty()
            && self.strings.is_empty()
            && self.dates.is_empty()
            && self.numbers.is_empty()
            && self.quantities.is_empty()
            && self.uris.is_empty()
            && self.missing.is_empty()
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

/// Parses `params` for a search of `resource_type`. Absolute reference
/// values under `local_base` are treated as local.
pub fn parse(
    resource_type: &str,
    params: &[(String, String)],
    strictness: Strictness,
    local_base: &str,
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
        let usable = registry
            .param(resource_type, code)
            .filter(|p| modifier_supported(p, modifier));
        let Some(param) = usable else {
            let why = if let (Some(m), Some(_)) = (modifier, registry.param(resource_type, code)) {
                format!("the modifier :{m} on parameter {code} is not supported")
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
        if modifier == Some("missing") {
            let missing = match value.as_str() {
                "true" => true,
                "false" => false,
                _ => {
                    return Err(ApiError::invalid(format!(
                        "{name} takes true or false, not {value:?}"
                    ))
                    .at(name.clone()));
                }
            };
            parsed.criteria.missing.push(MissingClause {
                param: param.code,
                table: param.kind.table(),
                missing,
            });
            parsed.used.push((name.clone(), value.clone()));
            continue;
        }
        let raw_values = split_unescaped(value, ',');
        match param.kind {
            ParamKind::Uri => {
                let how = match modifier {
                    Some("below") => UriMatch::Below,
                    Some("above") => UriMatch::Above,
                    _ => UriMatch::Exact,
                };
                parsed.criteria.uris.push(UriClause {
                    param: param.code,
                    how,
                    values: raw_values.iter().map(|v| unescape(v)).collect(),
                });
            }
            ParamKind::Token => {
                let values = raw_values
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
            }
            ParamKind::Reference => {
                let values = raw_values
                    .iter()
                    .map(|v| parse_reference_value(&unescape(v), modifier, local_base))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| {
                        ApiError::invalid(format!(
                            "{name} value {value:?} is not a reference (Type/id, an id, or a URL)"
                        ))
                        .at(name.clone())
                    })?;
                parsed.criteria.references.push(ReferenceClause {
                    param: param.code,
                    values,
                });
            }
            ParamKind::String => {
                let how = match modifier {
                    Some("exact") => StringMatch::Exact,
                    Some("contains") => StringMatch::Contains,
                    _ => StringMatch::StartsWith,
                };
                let values: Vec<String> = raw_values
                    .iter()
                    .map(|v| {
                        let text = unescape(v);
                        if how == StringMatch::Exact {
                            text
                        } else {
                            fold_string(&text)
                        }
                    })
                    .collect();
                if values.iter().any(String::is_empty) {
                    return Err(ApiError::invalid(format!("{name} needs a non-empty value"))
                        .at(name.clone()));
                }
                parsed.criteria.strings.push(StringClause {
                    param: param.code,
                    how,
                    values,
                });
            }
            ParamKind::Number => {
                let values = raw_values
                    .iter()
                    .map(|v| parse_number_param(&unescape(v)))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| {
                        ApiError::invalid(format!(
                            "{name} value {value:?} is not a valid number search: {e}"
                        ))
                        .at(name.clone())
                    })?;
                parsed.criteria.numbers.push(NumberClause {
                    param: param.code,
                    values,
                });
            }
            ParamKind::Quantity => {
                // The quantity parser handles its own `\|` escapes.
                let values = raw_values
                    .iter()
                    .map(|v| parse_quantity_param(v))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| {
                        ApiError::invalid(format!(
                            "{name} value {value:?} is not a valid quantity search: {e}"
                        ))
                        .at(name.clone())
                    })?;
                parsed.criteria.quantities.push(QuantityClause {
                    param: param.code,
                    values,
                });
            }
            ParamKind::Date => {
                let values = raw_values
                    .iter()
                    .map(|v| parse_date_param(&unescape(v)))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| {
                        ApiError::invalid(format!(
                            "{name} value {value:?} is not a valid date search: {e}"
                        ))
                        .at(name.clone())
                    })?;
                parsed.criteria.dates.push(DateClause {
                    param: param.code,
                    values,
                });
            }
        }
        parsed.used.push((name.clone(), value.clone()));
    }
    Ok(parsed)
}

/// Supported modifiers: `:missing` on every type, `:Type` on references,
/// `:exact` and `:contains` on strings, `:below` and `:above` on uris.
fn modifier_supported(param: &SearchParam, modifier: Option<&str>) -> bool {
    match (param.kind, modifier) {
        (_, None | Some("missing")) => true,
        (ParamKind::Uri, Some(m)) => m == "below" || m == "above",
        (ParamKind::Reference, Some(m)) => ResourceType::parse(m).is_some(),
        (ParamKind::String, Some(m)) => m == "exact" || m == "contains",
        (ParamKind::Token | ParamKind::Date | ParamKind::Number | ParamKind::Quantity, Some(_)) => {
            false
        }
    }
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
        let lenient = parse("Patient", &p(&[("bogus", "1")]), Strictness::Lenient, BASE).unwrap();
        assert_eq!(lenient.warnings.len(), 1);
        let strict = parse("Patient", &p(&[("bogus", "1")]), Strictness::Strict, BASE).unwrap_err();
        assert_eq!(strict.issues[0].expression, vec!["bogus".to_string()]);
    }

    #[test]
    fn identifier_and_id_parse() {
        let parsed = parse(
            "Patient",
            &p(&[("identifier", "urn:s|1,urn:s|2"), ("_id", "a,b")]),
            Strictness::Strict,
            BASE,
        )
        .unwrap();
        assert_eq!(parsed.criteria.tokens[0].values.len(), 2);
        assert_eq!(
            parsed.criteria.ids,
            vec![vec!["a".to_string(), "b".to_string()]]
        );
    }

    #[test]
    fn reference_forms() {
        let check = |name: &str, value: &str, expected: ReferenceValue| {
            let parsed = parse(
                "Observation",
                &p(&[(name, value)]),
                Strictness::Strict,
                BASE,
            )
            .unwrap();
            assert_eq!(
                parsed.criteria.references[0].values,
                vec![expected],
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
            "Observation",
            &p(&[("subject", "Nope/1/2")]),
            Strictness::Strict,
            BASE,
        )
        .unwrap_err();
        assert_eq!(bad.issues[0].expression, vec!["subject".to_string()]);
        let bad_modifier = parse(
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
}
