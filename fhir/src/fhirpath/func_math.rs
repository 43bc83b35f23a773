//! Math functions (`abs`, `round`, `ln`, `power`...) and the precision
//! functions (`lowBoundary`, `highBoundary`, `precision`, `comparable`).

use super::datetime::{PartialDateTime, Precision};
use super::decimal::Decimal;
use super::eval::{Evaluator, Res, Scope, err, singleton};
use super::functions::{Func, arg, int_arg};
use super::parser::Expr;
use super::value::{Collection, Item};
use chrono::NaiveDate;

fn dec<'a>(d: Option<Decimal>) -> Res<'a> {
    Ok(d.map(Item::Decimal).into_iter().collect())
}

fn int<'a>(i: i128) -> Res<'a> {
    Ok(i64::try_from(i)
        .ok()
        .map(Item::Integer)
        .into_iter()
        .collect())
}

/// `lowBoundary`/`highBoundary` of a decimal written with `d.scale()`
/// digits, as the reference implementation computes them: the edge of the
/// half-unit interval around the magnitude, cut to `precision` digits
/// (truncating the low edge, rounding the high edge on the next digit), with
/// the sign applied afterwards (so a negative value's low boundary is the
/// negated high boundary of its magnitude).
fn decimal_boundary(d: Decimal, precision: Option<i64>, high: bool) -> Option<Decimal> {
    let p = u32::try_from(precision.unwrap_or(8))
        .ok()
        .filter(|p| *p <= 28)?;
    if d.is_negative() {
        return decimal_boundary(d.abs(), Some(i64::from(p)), !high).map(Decimal::signed_negative);
    }
    let half = if d.is_zero() {
        Decimal::new(5, 1)
    } else {
        Decimal::new(5, d.scale() + 1)
    };
    let edge = if high {
        d.checked_add(half)?
    } else {
        d.checked_sub(half)?
    };
    if p >= edge.scale() {
        return edge.rescale(p);
    }
    let drop = edge.scale() - p;
    let mut m = edge.mantissa() / 10i128.checked_pow(drop)?;
    let next = (edge.mantissa() / 10i128.checked_pow(drop - 1)?) % 10;
    if high && next >= 5 {
        m += 1;
    }
    Some(Decimal::new(m, p))
}

/// `lowBoundary`/`highBoundary` to `digits` of precision.
pub fn date_boundary(
    this: PartialDateTime,
    digits: i64,
    high: bool,
    is_time: bool,
) -> Option<PartialDateTime> {
    let digits = if is_time { digits + 8 } else { digits };
    let precision = match digits {
        4 => Precision::Year,
        6 => Precision::Month,
        8 => Precision::Day,
        10 => Precision::Hour,
        12 => Precision::Minute,
        14 => Precision::Second,
        17 => Precision::Millis,
        _ => return None,
    };
    let mut v = this;
    // An hour alone is not a FHIR time: read `T08` as `T08:00`.
    if v.precision == Precision::Hour {
        v.precision = Precision::Minute;
    }
    if precision <= v.precision {
        v.precision = precision;
        if precision <= Precision::Day {
            v.tz = None;
        }
        return Some(v);
    }
    let known = v.precision;
    if known < Precision::Month {
        v.month = if high { 12 } else { 1 };
    }
    if known < Precision::Day {
        v.day = if high {
            (28..=31)
                .rev()
                .find(|d| NaiveDate::from_ymd_opt(v.year, u32::from(v.month), *d).is_some())
                .and_then(|d| u8::try_from(d).ok())
                .unwrap_or(28)
        } else {
            1
        };
    }
    if known < Precision::Hour {
        v.hour = if high { 23 } else { 0 };
    }
    if known < Precision::Minute {
        v.minute = if high { 59 } else { 0 };
    }
    if known < Precision::Second {
        v.second = if high { 59 } else { 0 };
    }
    if known < Precision::Millis {
        v.millis = if high { 999 } else { 0 };
    }
    v.precision = precision;
    if !is_time && precision > Precision::Day && v.tz.is_none() {
        v.tz = Some(if high { -12 * 60 } else { 14 * 60 });
    }
    Some(v)
}

pub fn call<'a>(
    ev: &Evaluator<'_, '_, 'a>,
    func: Func,
    input: Collection<'a>,
    args: &'a [Expr],
    scope: Scope<'_, 'a>,
) -> Res<'a> {
    if !matches!(
        func,
        Func::Abs
            | Func::Ceiling
            | Func::Exp
            | Func::Floor
            | Func::Ln
            | Func::Log
            | Func::Power
            | Func::Round
            | Func::Sqrt
            | Func::Truncate
            | Func::LowBoundary
            | Func::HighBoundary
            | Func::Precision
            | Func::Comparable
    ) {
        return super::func_fhir::call(ev, func, input, args, scope);
    }
    let Some(x) = singleton(&input, func.name())? else {
        return Ok(Vec::new());
    };
    let Some(v) = x.to_system() else {
        return err(format!("{}() expects a number", func.name()));
    };
    match (func, &v) {
        (Func::Abs, Item::Integer(i)) => {
            Ok(i.checked_abs().map(Item::Integer).into_iter().collect())
        }
        (Func::Abs, Item::Decimal(d)) => dec(Some(d.abs())),
        (Func::Abs, Item::Quantity(q)) => {
            let mut q = q.clone();
            q.value = q.value.abs();
            Ok(vec![Item::Quantity(q)])
        }
        (Func::Precision, Item::Decimal(d)) => int(i128::from(d.scale())),
        (Func::Precision, Item::Integer(_)) => int(0),
        (Func::Precision, Item::Date(d) | Item::DateTime(d)) => {
            int(i128::from(d.precision_digits(false)))
        }
        (Func::Precision, Item::Time(t)) => int(i128::from(t.precision_digits(true))),
        (Func::LowBoundary | Func::HighBoundary, _) => {
            let high = func == Func::HighBoundary;
            let p = int_arg(ev, args, 0, scope)?;
            let out = match v {
                Item::Integer(i) => {
                    decimal_boundary(Decimal::from_i64(i), p, high).map(Item::Decimal)
                }
                Item::Decimal(d) => decimal_boundary(d, p, high).map(Item::Decimal),
                Item::Quantity(mut q) => decimal_boundary(q.value, p, high).map(|d| {
                    q.value = d;
                    Item::Quantity(q)
                }),
                Item::Date(d) => date_boundary(d, p.unwrap_or(8), high, false).map(Item::Date),
                Item::DateTime(d) => {
                    date_boundary(d, p.unwrap_or(17), high, false).map(Item::DateTime)
                }
                Item::Time(t) => date_boundary(t, p.unwrap_or(9), high, true).map(Item::Time),
                _ => return err("boundary functions expect a number, quantity or date"),
            };
            Ok(out.into_iter().collect())
        }
        (Func::Comparable, Item::Quantity(q)) => {
            let other = arg(ev, args, 0, scope)?;
            let Some(o) = singleton(&other, "comparable")? else {
                return Ok(Vec::new());
            };
            match o.as_quantity() {
                Some(oq) => Ok(vec![Item::Boolean(q.comparable(&oq))]),
                None => err("comparable() expects a quantity"),
            }
        }
        (_, Item::Integer(_) | Item::Decimal(_)) => {
            let d = v.as_decimal().unwrap_or(Decimal::ZERO);
            let f = d.to_f64();
            let float = |r: f64| dec(Decimal::from_f64(r));
            match func {
                Func::Ceiling => int(d.ceiling()),
                Func::Floor => int(d.floor()),
                Func::Truncate => int(d.trunc()),
                Func::Round => {
                    let digits = int_arg(ev, args, 0, scope)?.unwrap_or(0);
                    let Ok(digits) = u32::try_from(digits) else {
                        return err("round() precision must be non-negative");
                    };
                    dec(d.round(digits))
                }
                Func::Exp => float(f.exp()),
                Func::Ln => float(f.ln()),
                Func::Sqrt => float(f.sqrt()),
                Func::Log | Func::Power => {
                    let a = arg(ev, args, 0, scope)?;
                    let Some(b) = singleton(&a, func.name())? else {
                        return Ok(Vec::new());
                    };
                    let Some(bd) = b.as_decimal() else {
                        return err(format!("{}() expects a number", func.name()));
                    };
                    if func == Func::Log {
                        return float(f.ln() / bd.to_f64().ln());
                    }
                    if let (Item::Integer(base), Some(Item::Integer(e))) = (&v, b.to_system()) {
                        if let Ok(e) = u32::try_from(e) {
                            return Ok(base
                                .checked_pow(e)
                                .map(Item::Integer)
                                .into_iter()
                                .collect());
                        }
                    }
                    float(f.powf(bd.to_f64()))
                }
                _ => err(format!("{}() does not apply to numbers", func.name())),
            }
        }
        _ => err(format!("{}() does not apply to this value", func.name())),
    }
}
