//! Parsing single search values: tokens, references, `near`, and the
//! escapes of search.html#escaping.

use super::{DEFAULT_NEAR_KM, Near, ReferenceValue, TokenValue};
use fhir::reference::{ReferenceTarget, parse_reference};

pub(super) fn parse_token(raw: &str) -> Option<TokenValue> {
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

pub(super) fn parse_reference_value(
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

/// `latitude|longitude|distance|unit` (search.html#special; units km, m
/// or miles, km by default).
pub(super) fn parse_near(value: &str) -> Option<Near> {
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
