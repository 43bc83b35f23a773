//! The value operators: equality and equivalence over collections,
//! membership, ordering comparisons, `&`, and arithmetic on numbers,
//! strings, quantities and dates (calendar durations).

use super::EvalError;
use super::compare::{OrderError, equal, equivalent, order};
use super::decimal::Decimal;
use super::eval::{Res, boolean, err, singleton};
use super::navigate::describe;
use super::parser::BinOp;
use super::ucum::{Quantity, date_arithmetic_unit};
use super::value::Item;
use std::borrow::Cow;
use std::cmp::Ordering;

/// Whether `op` is an equality, equivalence, membership or ordering operator.
pub fn is_comparison(op: BinOp) -> bool {
    matches!(
        op,
        BinOp::Eq
            | BinOp::Ne
            | BinOp::Equiv
            | BinOp::NotEquiv
            | BinOp::In
            | BinOp::Contains
            | BinOp::Lt
            | BinOp::Gt
            | BinOp::Le
            | BinOp::Ge
    )
}

/// A comparison operator's result as a three-valued boolean (`None` is empty).
pub fn compare_bool(
    op: BinOp,
    left: &[Item<'_>],
    right: &[Item<'_>],
) -> Result<Option<bool>, EvalError> {
    match op {
        BinOp::Eq | BinOp::Ne => {
            if left.is_empty() || right.is_empty() {
                return Ok(None);
            }
            let mut result = Some(left.len() == right.len());
            if result == Some(true) {
                for (a, b) in left.iter().zip(right) {
                    match equal(a, b) {
                        Some(true) => {}
                        Some(false) => {
                            result = Some(false);
                            break;
                        }
                        None => result = None,
                    }
                }
            }
            Ok(result.map(|r| r == (op == BinOp::Eq)))
        }
        BinOp::Equiv | BinOp::NotEquiv => {
            let mut r = left.len() == right.len();
            if r {
                let mut used = vec![false; right.len()];
                for a in left {
                    let found = right
                        .iter()
                        .enumerate()
                        .position(|(k, b)| !used[k] && equivalent(a, b));
                    match found {
                        Some(k) => used[k] = true,
                        None => {
                            r = false;
                            break;
                        }
                    }
                }
            }
            Ok(Some(r == (op == BinOp::Equiv)))
        }
        BinOp::In | BinOp::Contains => {
            let (needle, hay) = if op == BinOp::In {
                (left, right)
            } else {
                (right, left)
            };
            let Some(x) = singleton(needle, "membership")? else {
                return Ok(None);
            };
            Ok(Some(hay.iter().any(|h| equal(x, h) == Some(true))))
        }
        BinOp::Lt | BinOp::Gt | BinOp::Le | BinOp::Ge => {
            let (Some(a), Some(b)) = (
                singleton(left, "comparison")?,
                singleton(right, "comparison")?,
            ) else {
                return Ok(None);
            };
            let o = order(a, b).map_err(|OrderError::Incomparable| {
                EvalError::new(format!(
                    "cannot compare {} with {}",
                    describe(a),
                    describe(b)
                ))
            })?;
            Ok(o.map(|o| match op {
                BinOp::Lt => o == Ordering::Less,
                BinOp::Gt => o == Ordering::Greater,
                BinOp::Le => o != Ordering::Greater,
                _ => o != Ordering::Less,
            }))
        }
        _ => Ok(None),
    }
}

/// Every binary operator but `|` (and the boolean ones), on borrowed operands.
pub fn compare_or_compute<'a>(op: BinOp, left: &[Item<'a>], right: &[Item<'a>]) -> Res<'a> {
    if is_comparison(op) {
        return Ok(boolean(compare_bool(op, left, right)?));
    }
    match op {
        BinOp::Concat => {
            let text = |c: &[Item<'a>]| -> Result<String, EvalError> {
                match singleton(c, "&")? {
                    None => Ok(String::new()),
                    Some(x) => x
                        .to_text()
                        .map(Cow::into_owned)
                        .ok_or_else(|| EvalError::new("& expects strings")),
                }
            };
            Ok(vec![Item::String(Cow::Owned(text(left)? + &text(right)?))])
        }
        _ => {
            let (Some(a), Some(b)) = (
                singleton(left, "arithmetic")?,
                singleton(right, "arithmetic")?,
            ) else {
                return Ok(Vec::new());
            };
            let (Some(x), Some(y)) = (a.to_system(), b.to_system()) else {
                return err("arithmetic on a non-primitive value");
            };
            arithmetic(op, x, y)
        }
    }
}

fn arithmetic<'a>(op: BinOp, x: Item<'a>, y: Item<'a>) -> Res<'a> {
    let num = |o: Option<Item<'a>>| Ok(o.into_iter().collect());
    match (&x, &y) {
        (Item::Integer(a), Item::Integer(b)) => {
            let (a, b) = (*a, *b);
            num(match op {
                BinOp::Add => a.checked_add(b).map(Item::Integer),
                BinOp::Sub => a.checked_sub(b).map(Item::Integer),
                BinOp::Mul => a.checked_mul(b).map(Item::Integer),
                BinOp::Div => Decimal::from_i64(a)
                    .checked_div(Decimal::from_i64(b))
                    .map(Item::Decimal),
                BinOp::IntDiv => a.checked_div(b).map(Item::Integer),
                BinOp::Mod => a.checked_rem(b).map(Item::Integer),
                _ => None,
            })
        }
        (Item::Integer(_) | Item::Decimal(_), Item::Integer(_) | Item::Decimal(_)) => {
            let (Some(a), Some(b)) = (x.as_decimal(), y.as_decimal()) else {
                return Ok(Vec::new());
            };
            num(match op {
                BinOp::Add => a.checked_add(b).map(Item::Decimal),
                BinOp::Sub => a.checked_sub(b).map(Item::Decimal),
                BinOp::Mul => a.checked_mul(b).map(Item::Decimal),
                BinOp::Div => a.checked_div(b).map(Item::Decimal),
                BinOp::IntDiv => a
                    .div_trunc(b)
                    .and_then(|i| i64::try_from(i).ok())
                    .map(Item::Integer),
                BinOp::Mod => a.checked_rem(b).map(Item::Decimal),
                _ => None,
            })
        }
        (Item::String(a), Item::String(b)) if op == BinOp::Add => {
            Ok(vec![Item::String(Cow::Owned(format!("{a}{b}")))])
        }
        (Item::Quantity(a), Item::Quantity(b)) => {
            let r = match op {
                BinOp::Add => a.add(b, false),
                BinOp::Sub => a.add(b, true),
                BinOp::Mul => a.multiply(b, false),
                BinOp::Div => a.multiply(b, true),
                _ => return err("unsupported quantity operation"),
            };
            match r {
                Some(q) => Ok(vec![Item::Quantity(Box::new(q))]),
                None if matches!(op, BinOp::Add | BinOp::Sub) => {
                    err(format!("incompatible units '{}' and '{}'", a.unit, b.unit))
                }
                None => Ok(Vec::new()),
            }
        }
        (Item::Quantity(q), Item::Integer(_) | Item::Decimal(_))
        | (Item::Integer(_) | Item::Decimal(_), Item::Quantity(q))
            if matches!(op, BinOp::Mul | BinOp::Div) =>
        {
            let n = if matches!(x, Item::Quantity(_)) {
                &y
            } else {
                &x
            };
            let n = Quantity::new(n.as_decimal().unwrap_or(Decimal::ZERO), "1");
            let r = if matches!(x, Item::Quantity(_)) {
                q.multiply(&n, op == BinOp::Div)
            } else {
                n.multiply(q, op == BinOp::Div)
            };
            Ok(r.map(|q| Item::Quantity(Box::new(q))).into_iter().collect())
        }
        (Item::Date(d) | Item::DateTime(d) | Item::Time(d), Item::Quantity(q))
            if matches!(op, BinOp::Add | BinOp::Sub) =>
        {
            let unit = date_arithmetic_unit(q)
                .ok_or_else(|| EvalError::new(format!("cannot add '{}' to a date", q.unit)))?;
            let amount = i64::try_from(q.value.trunc())
                .map_err(|_| EvalError::new("duration out of range"))?;
            let amount = if op == BinOp::Sub { -amount } else { amount };
            let is_time = matches!(x, Item::Time(_));
            let Some(r) = d.add(amount, unit, is_time) else {
                return Ok(Vec::new());
            };
            Ok(vec![match x {
                Item::Date(_) => Item::Date(r),
                Item::Time(_) => Item::Time(r),
                _ => Item::DateTime(r),
            }])
        }
        _ => err(format!(
            "cannot apply {op:?} to {} and {}",
            describe(&x),
            describe(&y)
        )),
    }
}
