//! Index extraction: the rows a resource produces in each index table,
//! computed at write time and stored in the same transaction.
//!
//! Besides each parameter's own values, token and reference parameters
//! produce derived rows under `code:modifier` names (the texts behind
//! `:text`, identifier types behind `:of-type`, a reference's identifier
//! behind `:identifier`), and composites produce rows in their second
//! component's table under `code$token` names.

use super::registry::{ParamKind, Registry, SearchParam, composite_key, derived_param};
use fhir::fhirpath::Decimal;
use fhir::fhirpath::{Env, Item, evaluate, evaluate_items};
use fhir::reference::{ReferenceTarget, parse_reference};
use fhir::search_values::{canonical_quantity, date_range, fold_string, string_values};
use serde_json::Value;
use std::borrow::Cow;

/// The `param` column of an index row: a parameter code, or a derived name.
pub type ParamName = Cow<'static, str>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexRow {
    pub param: ParamName,
    pub system: Option<String>,
    pub code: String,
}

/// A reference value: local (`target_type`/`target_id`) or by URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferenceRow {
    pub param: ParamName,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub url: Option<String>,
}

/// A searchable string: folded for the default search, as written for
/// `:exact`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StringRow {
    pub param: ParamName,
    pub folded: String,
    pub exact: String,
}

/// A date value as a half-open range of UTC microseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DateRow {
    pub param: ParamName,
    pub lo: i64,
    pub hi: i64,
}

/// A number value, as exact decimal text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberRow {
    pub param: ParamName,
    pub value: String,
}

/// A quantity value with its unit, and its canonical UCUM form if known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuantityRow {
    pub param: ParamName,
    pub value: String,
    pub system: Option<String>,
    pub code: Option<String>,
    pub unit: Option<String>,
    pub canon_value: Option<String>,
    pub canon_code: Option<String>,
}

/// A Location position (`near`), in degrees.
#[derive(Debug, Clone, PartialEq)]
pub struct PositionRow {
    pub param: ParamName,
    pub latitude: f64,
    pub longitude: f64,
}

/// A uri, url or canonical value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UriRow {
    pub param: ParamName,
    pub uri: String,
}

/// Every index row a resource produces.
#[derive(Debug, Clone, Default)]
pub struct IndexRows {
    pub tokens: Vec<IndexRow>,
    pub references: Vec<ReferenceRow>,
    pub strings: Vec<StringRow>,
    pub dates: Vec<DateRow>,
    pub numbers: Vec<NumberRow>,
    pub quantities: Vec<QuantityRow>,
    pub uris: Vec<UriRow>,
    pub positions: Vec<PositionRow>,
}

fn push_unique<T: PartialEq>(rows: &mut Vec<T>, row: T) {
    if !rows.contains(&row) {
        rows.push(row);
    }
}

/// Evaluates every indexed parameter of the type on `resource`. Absolute
/// references under `local_base` are indexed as local ones.
pub fn index_rows(
    registry: &Registry,
    resource_type: &str,
    resource: &Value,
    local_base: &str,
) -> IndexRows {
    let mut rows = IndexRows::default();
    let env = Env::new();
    // A union parameter's values are its parts' rows.
    for param in registry
        .params(resource_type)
        .iter()
        .filter(|p| p.union_of.is_none())
    {
        let items = match evaluate(&param.expression, resource, &env) {
            Ok(items) => items,
            Err(e) => {
                // A resource the expression cannot be evaluated on is not
                // indexed for that parameter; the write still succeeds.
                tracing::debug!(param = param.code, error = %e, "search expression failed");
                continue;
            }
        };
        let name = || Cow::Borrowed(param.code);
        for item in &items {
            match param.kind {
                ParamKind::Composite => composite_rows(&mut rows, param, resource, item, &env),
                ParamKind::Position => {
                    let json = item.json();
                    let degrees = |key: &str| json?.get(key)?.as_f64();
                    if let (Some(latitude), Some(longitude)) =
                        (degrees("latitude"), degrees("longitude"))
                    {
                        rows.positions.push(PositionRow {
                            param: name(),
                            latitude,
                            longitude,
                        });
                    }
                }
                ParamKind::Token => {
                    value_rows(&mut rows, ParamKind::Token, name(), item, local_base);
                    token_extras(&mut rows, param.code, item);
                }
                ParamKind::Reference => {
                    value_rows(&mut rows, ParamKind::Reference, name(), item, local_base);
                    // The reference's logical identifier, for `:identifier`.
                    let identifier = item.json().and_then(|j| j.get("identifier"));
                    if let (Some(identifier), "Reference") = (identifier, item.type_name()) {
                        let Some(code) = text_of(identifier.get("value")) else {
                            continue;
                        };
                        push_unique(
                            &mut rows.tokens,
                            IndexRow {
                                param: derived_param(param.code, "identifier").into(),
                                system: text_of(identifier.get("system")),
                                code,
                            },
                        );
                    }
                }
                kind => value_rows(&mut rows, kind, name(), item, local_base),
            }
        }
    }
    rows
}

fn text_of(value: Option<&Value>) -> Option<String> {
    value.and_then(Value::as_str).map(str::to_owned)
}

/// The rows of one value of a parameter of `kind`, under `param`.
fn value_rows(
    rows: &mut IndexRows,
    kind: ParamKind,
    param: ParamName,
    item: &Item<'_>,
    local_base: &str,
) {
    match kind {
        ParamKind::Token => tokens_of(item, &mut |system, code| {
            push_unique(
                &mut rows.tokens,
                IndexRow {
                    param: param.clone(),
                    system,
                    code,
                },
            );
        }),
        ParamKind::Reference => {
            if let Some(row) = reference_of(param, item, local_base) {
                push_unique(&mut rows.references, row);
            }
        }
        ParamKind::String => {
            for exact in string_values(item) {
                let folded = fold_string(&exact);
                push_unique(
                    &mut rows.strings,
                    StringRow {
                        param: param.clone(),
                        folded,
                        exact,
                    },
                );
            }
        }
        ParamKind::Number => {
            if let Some(value) = number_of(item) {
                push_unique(
                    &mut rows.numbers,
                    NumberRow {
                        param,
                        value: value.to_string(),
                    },
                );
            }
        }
        ParamKind::Quantity => {
            if let Some(row) = quantity_of(param, item) {
                push_unique(&mut rows.quantities, row);
            }
        }
        ParamKind::Uri => {
            if let Some(uri) = item.to_text().filter(|u| !u.is_empty()) {
                push_unique(
                    &mut rows.uris,
                    UriRow {
                        param,
                        uri: uri.into_owned(),
                    },
                );
            }
        }
        ParamKind::Date => {
            if let Some(range) = date_range(item) {
                push_unique(
                    &mut rows.dates,
                    DateRow {
                        param,
                        lo: range.start,
                        hi: range.end,
                    },
                );
            }
        }
        ParamKind::Composite | ParamKind::Position => {}
    }
}

/// The derived rows of a token value: its texts (`:text`: a
/// CodeableConcept's text and codings' displays, a Coding's display, an
/// Identifier's type text) and an Identifier's type codings with its value
/// (`:of-type`, stored as system = type system, code = `type|value`).
fn token_extras(rows: &mut IndexRows, code: &'static str, item: &Item<'_>) {
    let Some(json) = item.json() else { return };
    let mut texts: Vec<&str> = Vec::new();
    fn display(coding: &Value) -> Option<&str> {
        coding.get("display").and_then(Value::as_str)
    }
    match item.type_name() {
        "CodeableConcept" => {
            texts.extend(json.get("text").and_then(Value::as_str));
            let codings = json.get("coding").and_then(Value::as_array);
            texts.extend(codings.into_iter().flatten().filter_map(display));
        }
        "Coding" => texts.extend(display(json)),
        "Identifier" => {
            let kind = json.get("type");
            texts.extend(kind.and_then(|t| t.get("text")).and_then(Value::as_str));
            let value = json.get("value").and_then(Value::as_str);
            let codings = kind.and_then(|t| t.get("coding")).and_then(Value::as_array);
            for coding in codings.into_iter().flatten() {
                if let (Some(type_code), Some(value)) =
                    (coding.get("code").and_then(Value::as_str), value)
                {
                    push_unique(
                        &mut rows.tokens,
                        IndexRow {
                            param: derived_param(code, "of-type").into(),
                            system: text_of(coding.get("system")),
                            code: format!("{type_code}|{value}"),
                        },
                    );
                }
            }
        }
        _ => {}
    }
    for text in texts {
        push_unique(
            &mut rows.strings,
            StringRow {
                param: derived_param(code, "text").into(),
                folded: fold_string(text),
                exact: text.to_owned(),
            },
        );
    }
}

/// The keys a token value is found by inside a composite: with a system,
/// `system|code` and `code`; without, `|code` and `code`.
pub fn token_keys(system: Option<&str>, code: &str) -> [String; 2] {
    [
        format!("{}|{code}", system.unwrap_or_default()),
        code.to_owned(),
    ]
}

/// Rows of one item of a composite (search.html#composite): the second
/// component's values under `code$key` for each key of each first
/// component token, so that both halves match within the same item.
fn composite_rows(
    rows: &mut IndexRows,
    param: &SearchParam,
    resource: &Value,
    item: &Item<'_>,
    env: &Env<'_>,
) {
    let [first, second] = param.components.as_slice() else {
        return;
    };
    let eval = |expression| evaluate_items(expression, resource, vec![item.clone()], env);
    let (Ok(tokens), Ok(values)) = (eval(&first.expression), eval(&second.expression)) else {
        return;
    };
    let mut keys = Vec::new();
    for token in &tokens {
        tokens_of(token, &mut |system, code| {
            keys.extend(token_keys(system.as_deref(), &code));
        });
    }
    for key in keys {
        for value in &values {
            let name: ParamName = composite_key(param.code, &key).into();
            value_rows(rows, second.kind, name, value, "");
        }
    }
}

/// The reference a Reference, canonical or uri value names
/// (search.html#reference). Contained (`#id`) references are not indexed.
fn reference_of(param: ParamName, item: &Item<'_>, local_base: &str) -> Option<ReferenceRow> {
    let raw = match item.type_name() {
        "Reference" => item.json()?.get("reference")?.as_str()?.to_owned(),
        "canonical" | "uri" | "url" => item.to_text()?.into_owned(),
        _ => return None,
    };
    let row = |target_type: Option<String>, target_id: Option<String>, url: Option<String>| {
        ReferenceRow {
            param: param.clone(),
            target_type,
            target_id,
            url,
        }
    };
    match parse_reference(&raw, local_base)? {
        ReferenceTarget::Local {
            resource_type, id, ..
        } => Some(row(
            Some(resource_type.as_str().to_owned()),
            Some(id.to_owned()),
            None,
        )),
        ReferenceTarget::External(url) => {
            // A canonical may carry a version (`url|1.0`); search matches the URL.
            let url = url.split('|').next().unwrap_or(url);
            Some(row(None, None, Some(url.to_owned())))
        }
        ReferenceTarget::Contained(_)
        | ReferenceTarget::Urn(_)
        | ReferenceTarget::Conditional { .. } => None,
    }
}

/// An integer or decimal element's exact value.
fn number_of(item: &Item<'_>) -> Option<Decimal> {
    match item.type_name() {
        "integer" | "positiveInt" | "unsignedInt" | "decimal" | "Integer" | "Decimal" => {
            item.as_decimal()
        }
        _ => None,
    }
}

/// A Quantity-like element (Quantity, Age, Duration, Distance, Count,
/// SimpleQuantity, Money) with its canonical UCUM form where known.
fn quantity_of(param: ParamName, item: &Item<'_>) -> Option<QuantityRow> {
    const QUANTITY_TYPES: [&str; 7] = [
        "Quantity",
        "Age",
        "Duration",
        "Distance",
        "Count",
        "SimpleQuantity",
        "MoneyQuantity",
    ];
    let json = item.json()?;
    let text = |key: &str| json.get(key).and_then(Value::as_str).map(str::to_owned);
    let (value, system, code) = match item.type_name() {
        t if QUANTITY_TYPES.contains(&t) => (json.get("value")?, text("system"), text("code")),
        // Money: the currency is an ISO 4217 code.
        "Money" => (
            json.get("value")?,
            Some("urn:iso:std:iso:4217".to_owned()),
            text("currency"),
        ),
        _ => return None,
    };
    let value = Decimal::parse(&value.to_string())?;
    let canonical = code
        .as_deref()
        .and_then(|c| canonical_quantity(value, system.as_deref(), c));
    Some(QuantityRow {
        param,
        value: value.to_string(),
        unit: text("unit"),
        system,
        code,
        canon_value: canonical.as_ref().map(|(v, _)| v.to_string()),
        canon_code: canonical.map(|(_, c)| c),
    })
}

/// The (system, code) pairs of one value, by its FHIR type
/// (search.html#token).
fn tokens_of(item: &Item<'_>, emit: &mut dyn FnMut(Option<String>, String)) {
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
    let json = item.json();
    match item.type_name() {
        "Coding" => {
            if let Some(code) = text(json.and_then(|j| j.get("code"))) {
                emit(text(json.and_then(|j| j.get("system"))), code);
            }
        }
        "CodeableConcept" => {
            let codings = json.and_then(|j| j.get("coding")).and_then(Value::as_array);
            for coding in codings.into_iter().flatten() {
                if let Some(code) = text(coding.get("code")) {
                    emit(text(coding.get("system")), code);
                }
            }
        }
        "Identifier" => {
            if let Some(value) = text(json.and_then(|j| j.get("value"))) {
                emit(text(json.and_then(|j| j.get("system"))), value);
            }
        }
        // search.html#token: a ContactPoint's token system is
        // ContactPoint.system (phone, email, …), so `telecom=phone|+254…`
        // finds it; a token without a system still matches any.
        "ContactPoint" => {
            if let Some(value) = text(json.and_then(|j| j.get("value"))) {
                emit(text(json.and_then(|j| j.get("system"))), value);
            }
        }
        "boolean" | "Boolean" => {
            if let Some(b) = json.and_then(Value::as_bool).or_else(|| item.as_bool()) {
                emit(None, b.to_string());
            }
        }
        "code" | "string" | "uri" | "url" | "canonical" | "id" | "oid" | "uuid" | "String" => {
            if let Some(s) = item.to_text() {
                emit(None, s.into_owned());
            }
        }
        _ => {}
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
