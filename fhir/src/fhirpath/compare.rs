//! Equality (`=`), equivalence (`~`) and ordering of items, with FHIRPath's
//! implicit conversions (Integer → Decimal, Date → DateTime, FHIR primitives
//! → System values) and three-valued results (`None` means empty).

use super::value::{FhirType, Item, is_quantity_node};
use serde_json::Value as Json;
use std::cmp::Ordering;

/// `=` on two items: `Some(false)` for values of unrelated types, `None`
/// when precision makes the answer unknown.
pub fn equal(a: &Item<'_>, b: &Item<'_>) -> Option<bool> {
    if let (Item::Fhir(x), Item::Fhir(y)) = (a, b) {
        let complex = |t: FhirType| matches!(t, FhirType::Node(_));
        if complex(x.ty) || complex(y.ty) {
            let (Some(xv), Some(yv)) = (x.value, y.value) else {
                return Some(false);
            };
            let quantity = |t: FhirType| matches!(t, FhirType::Node(id) if is_quantity_node(id));
            if quantity(x.ty) && quantity(y.ty) {
                if let (Some(qa), Some(qb)) = (a.as_quantity(), b.as_quantity()) {
                    return qa.compare(&qb).map(|o| o == Ordering::Equal);
                }
            }
            return Some(json_equal(xv, yv));
        }
    }
    let (Some(x), Some(y)) = (a.to_system(), b.to_system()) else {
        return Some(false);
    };
    match (&x, &y) {
        (Item::Boolean(p), Item::Boolean(q)) => Some(p == q),
        (Item::String(p), Item::String(q)) => Some(p == q),
        (Item::Integer(p), Item::Integer(q)) => Some(p == q),
        (Item::Integer(_) | Item::Decimal(_), Item::Integer(_) | Item::Decimal(_)) => {
            Some(x.as_decimal()? == y.as_decimal()?)
        }
        (Item::Date(p) | Item::DateTime(p), Item::Date(q) | Item::DateTime(q)) => {
            p.compare(*q).map(|o| o == Ordering::Equal)
        }
        (Item::Time(p), Item::Time(q)) => p.compare_time(*q).map(|o| o == Ordering::Equal),
        (Item::Quantity(p), Item::Quantity(q)) => p.compare(q).map(|o| o == Ordering::Equal),
        (Item::Type(p), Item::Type(q)) => Some(p == q),
        _ => Some(false),
    }
}

/// Deep JSON equality where numbers compare by value.
fn json_equal(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Number(x), Json::Number(y)) => {
            match (
                super::decimal::Decimal::parse(x.as_str()),
                super::decimal::Decimal::parse(y.as_str()),
            ) {
                (Some(p), Some(q)) => p == q,
                _ => x == y,
            }
        }
        (Json::Array(x), Json::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_equal(p, q))
        }
        (Json::Object(x), Json::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

fn normalize_ws(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// `~` on two items (never unknown).
pub fn equivalent(a: &Item<'_>, b: &Item<'_>) -> bool {
    if let (Item::Fhir(x), Item::Fhir(y)) = (a, b) {
        if matches!(x.ty, FhirType::Node(_)) || matches!(y.ty, FhirType::Node(_)) {
            if let (Some(qa), Some(qb)) = (a.as_quantity(), b.as_quantity()) {
                return quantity_equivalent(&qa, &qb);
            }
            return match (x.value, y.value) {
                (Some(p), Some(q)) => json_equal(p, q),
                _ => false,
            };
        }
    }
    let (Some(x), Some(y)) = (a.to_system(), b.to_system()) else {
        return false;
    };
    match (&x, &y) {
        (Item::String(p), Item::String(q)) => normalize_ws(p) == normalize_ws(q),
        (Item::Integer(_) | Item::Decimal(_), Item::Integer(_) | Item::Decimal(_)) => {
            match (x.as_decimal(), y.as_decimal()) {
                (Some(p), Some(q)) => {
                    let scale = p.scale().min(q.scale());
                    match (p.round(scale), q.round(scale)) {
                        (Some(p), Some(q)) => p == q,
                        _ => false,
                    }
                }
                _ => false,
            }
        }
        (Item::Date(p) | Item::DateTime(p), Item::Date(q) | Item::DateTime(q)) => {
            p.compare(*q) == Some(Ordering::Equal)
        }
        (Item::Time(p), Item::Time(q)) => p.compare_time(*q) == Some(Ordering::Equal),
        (Item::Quantity(p), Item::Quantity(q)) => quantity_equivalent(p, q),
        _ => equal(&x, &y) == Some(true),
    }
}

fn quantity_equivalent(a: &super::ucum::Quantity, b: &super::ucum::Quantity) -> bool {
    let Some(b) = a.convert_to_unit_of(b) else {
        return false;
    };
    let scale = a.value.scale().min(b.value.scale());
    matches!((a.value.round(scale), b.value.round(scale)), (Some(p), Some(q)) if p == q)
}

/// Why two items could not be ordered.
#[derive(Debug, PartialEq, Eq)]
pub enum OrderError {
    /// The types cannot be compared (an evaluation error).
    Incomparable,
}

/// Orders two items for `<`, `>`, `<=`, `>=` and `sort()`. `Ok(None)` when
/// precision leaves it unknown.
pub fn order(a: &Item<'_>, b: &Item<'_>) -> Result<Option<Ordering>, OrderError> {
    let (Some(x), Some(y)) = (a.to_system(), b.to_system()) else {
        return Err(OrderError::Incomparable);
    };
    Ok(match (&x, &y) {
        (Item::String(p), Item::String(q)) => Some(p.cmp(q)),
        (Item::Integer(p), Item::Integer(q)) => Some(p.cmp(q)),
        (Item::Integer(_) | Item::Decimal(_), Item::Integer(_) | Item::Decimal(_)) => {
            match (x.as_decimal(), y.as_decimal()) {
                (Some(p), Some(q)) => Some(p.cmp_value(q)),
                _ => None,
            }
        }
        (Item::Date(p) | Item::DateTime(p), Item::Date(q) | Item::DateTime(q)) => p.compare(*q),
        (Item::Time(p), Item::Time(q)) => p.compare_time(*q),
        (Item::Quantity(p), Item::Quantity(q)) => match p.compare(q) {
            Some(o) => Some(o),
            None => return Err(OrderError::Incomparable),
        },
        (Item::Boolean(p), Item::Boolean(q)) => Some(p.cmp(q)),
        _ => return Err(OrderError::Incomparable),
    })
}
