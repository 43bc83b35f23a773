//! Number and quantity search values (search.html#number,
//! search.html#quantity): parameter parsing with the implicit precision
//! range of the written value, and the prefix comparison against an exact
//! resource value.

use super::units::unit_factor;
use super::{Prefix, ValueError};
use crate::fhirpath::Decimal;
use std::cmp::Ordering;

/// A number as written in a search: its `value` and the implicit range
/// `[low, high)` its significant figures give (`100` → `[99.5, 100.5)`,
/// `100.00` → `[99.995, 100.005)`, `1e2` → `[50, 150)`, `1.5e2` →
/// `[145, 155)`): half a unit of the last written digit either side.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NumberRange {
    pub value: Decimal,
    pub low: Decimal,
    pub high: Decimal,
}

impl NumberRange {
    /// Parses `[+|-]digits[.digits][(e|E)[+|-]digits]`.
    pub fn parse(text: &str) -> Option<NumberRange> {
        let (body, exp) = match text.find(['e', 'E']) {
            Some(i) => (&text[..i], text[i + 1..].parse::<i32>().ok()?),
            None => (text, 0),
        };
        let frac_len = match body.split_once('.') {
            Some((_, f)) => i32::try_from(f.len()).ok()?,
            None => 0,
        };
        let value = Decimal::parse(text)?;
        // The last written digit is worth 10^(exp - frac_len); half of it
        // is 5 × 10^(exp - frac_len - 1).
        let k = exp.checked_sub(frac_len)?.checked_sub(1)?;
        let half = if k < 0 {
            Decimal::new(5, k.unsigned_abs())
        } else {
            Decimal::new(5i128.checked_mul(10i128.checked_pow(k.unsigned_abs())?)?, 0)
        };
        Some(NumberRange {
            value,
            low: value.checked_sub(half)?,
            high: value.checked_add(half)?,
        })
    }

    /// Every bound multiplied by `factor` (a positive unit factor).
    fn scaled(self, factor: Decimal) -> Option<NumberRange> {
        Some(NumberRange {
            value: self.value.checked_mul(factor)?.normalized(),
            low: self.low.checked_mul(factor)?.normalized(),
            high: self.high.checked_mul(factor)?.normalized(),
        })
    }
}

/// Parses a number search parameter value: an optional prefix (`eq ne gt
/// lt ge le sa eb ap`, default `eq`) and a number, with its implicit
/// precision range (see [`NumberRange`]).
pub fn parse_number_param(text: &str) -> Result<(Prefix, NumberRange), ValueError> {
    let (prefix, rest) = Prefix::split(text.trim());
    NumberRange::parse(rest)
        .map(|r| (prefix, r))
        .ok_or_else(|| ValueError::new(format!("'{text}' is not a number")))
}

/// Whether an exact resource value `target` matches a number search
/// (search.html#number and #prefix):
///
/// * `eq`: `low <= target < high` (the implicit precision range); `ne`:
///   not so;
/// * `gt`, `lt`, `ge`, `le`: compare with the exact value, as the spec's
///   examples say (`lt100`: "less than exactly 100");
/// * `sa`: `target >= high` (starts after the whole range); `eb`:
///   `target < low`;
/// * `ap`: within 10% of the value or inside the precision range, whichever
///   is wider (`ap100` matches 90 to 110 inclusive).
pub fn number_matches(prefix: Prefix, search: &NumberRange, target: Decimal) -> bool {
    let cmp = |a: Decimal| target.cmp_value(a);
    let eq = cmp(search.low) != Ordering::Less && cmp(search.high) == Ordering::Less;
    match prefix {
        Prefix::Eq => eq,
        Prefix::Ne => !eq,
        Prefix::Gt => cmp(search.value) == Ordering::Greater,
        Prefix::Lt => cmp(search.value) == Ordering::Less,
        Prefix::Ge => cmp(search.value) != Ordering::Less,
        Prefix::Le => cmp(search.value) != Ordering::Greater,
        Prefix::Sa => cmp(search.high) != Ordering::Less,
        Prefix::Eb => cmp(search.low) == Ordering::Less,
        Prefix::Ap => {
            let tenth = search
                .value
                .abs()
                .checked_mul(Decimal::new(1, 1))
                .unwrap_or(Decimal::ZERO);
            let below = search.value.checked_sub(tenth).unwrap_or(search.low);
            let above = search.value.checked_add(tenth).unwrap_or(search.high);
            eq || (cmp(below) != Ordering::Less && cmp(above) != Ordering::Greater)
        }
    }
}

/// A quantity search parameter value: `[prefix]number`,
/// `[prefix]number|system|code` or `[prefix]number||code` (search.html#quantity).
/// An empty system or code is `None`; with no system the code is to be
/// matched against a resource Quantity's `code` or `unit`.
#[derive(Clone, Debug, PartialEq)]
pub struct QuantityParam {
    pub prefix: Prefix,
    pub number: NumberRange,
    pub system: Option<String>,
    pub code: Option<String>,
}

impl QuantityParam {
    /// The number converted to the canonical UCUM unit (see
    /// [`canonical_quantity`](super::canonical_quantity)) with that unit's
    /// code, when the system is UCUM and the code is in the table.
    pub fn canonical(&self) -> Option<(NumberRange, &'static str)> {
        if self.system.as_deref() != Some(super::UCUM) {
            return None;
        }
        let (factor, base) = unit_factor(self.code.as_deref()?)?;
        Some((self.number.scaled(factor)?, base))
    }
}

/// Splits on `|` not escaped by `\`, unescaping `\|`, `\$`, `\,` and `\\`.
fn split_pipes(text: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        let Some(current) = parts.last_mut() else {
            break;
        };
        match c {
            '\\' => match chars.next() {
                Some(next) => current.push(next),
                None => current.push('\\'),
            },
            '|' => parts.push(String::new()),
            _ => current.push(c),
        }
    }
    parts
}

/// Parses a quantity search parameter value (see [`QuantityParam`]).
pub fn parse_quantity_param(text: &str) -> Result<QuantityParam, ValueError> {
    let err = || ValueError::new(format!("'{text}' is not a quantity search value"));
    let (prefix, rest) = Prefix::split(text.trim());
    let parts = split_pipes(rest);
    let non_empty = |s: &String| (!s.is_empty()).then(|| s.clone());
    let (number, system, code) = match parts.as_slice() {
        [n] => (n, None, None),
        [n, s, c] => (n, non_empty(s), non_empty(c)),
        _ => return Err(err()),
    };
    let number = NumberRange::parse(number).ok_or_else(err)?;
    if system.is_some() && code.is_none() {
        return Err(err());
    }
    Ok(QuantityParam {
        prefix,
        number,
        system,
        code,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        Decimal::parse(s).unwrap()
    }

    /// `expected` is `(prefix, low, value, high)`.
    #[track_caller]
    fn check(input: &str, expected: Option<(Prefix, &str, &str, &str)>) {
        let got = parse_number_param(input).ok();
        let want = expected.map(|(p, low, value, high)| {
            (
                p,
                NumberRange {
                    value: d(value),
                    low: d(low),
                    high: d(high),
                },
            )
        });
        assert_eq!(got, want, "parse_number_param({input:?})");
    }

    #[test]
    fn implicit_precision_ranges() {
        check("100", Some((Prefix::Eq, "99.5", "100", "100.5")));
        check("eq100", Some((Prefix::Eq, "99.5", "100", "100.5")));
        check("eq100.00", Some((Prefix::Eq, "99.995", "100", "100.005")));
        check("eq1e2", Some((Prefix::Eq, "50", "100", "150")));
        check("eq1E2", Some((Prefix::Eq, "50", "100", "150")));
        check("eq1.5e2", Some((Prefix::Eq, "145", "150", "155")));
        check("eq1.00e2", Some((Prefix::Eq, "99.5", "100", "100.5")));
        check("eq1e-2", Some((Prefix::Eq, "0.005", "0.01", "0.015")));
        check(
            "eq1.5e-3",
            Some((Prefix::Eq, "0.00145", "0.0015", "0.00155")),
        );
        check("eq1e+2", Some((Prefix::Eq, "50", "100", "150")));
        check("0", Some((Prefix::Eq, "-0.5", "0", "0.5")));
        check("0.0", Some((Prefix::Eq, "-0.05", "0", "0.05")));
        check("-5", Some((Prefix::Eq, "-5.5", "-5", "-4.5")));
        check("-0.25", Some((Prefix::Eq, "-0.255", "-0.25", "-0.245")));
        check("+7", Some((Prefix::Eq, "6.5", "7", "7.5")));
        check("ne100", Some((Prefix::Ne, "99.5", "100", "100.5")));
        check("gt100", Some((Prefix::Gt, "99.5", "100", "100.5")));
        check("lt0.1", Some((Prefix::Lt, "0.05", "0.1", "0.15")));
        check("ge12", Some((Prefix::Ge, "11.5", "12", "12.5")));
        check("le12.5", Some((Prefix::Le, "12.45", "12.5", "12.55")));
        check("sa3", Some((Prefix::Sa, "2.5", "3", "3.5")));
        check("eb3", Some((Prefix::Eb, "2.5", "3", "3.5")));
        check("ap100", Some((Prefix::Ap, "99.5", "100", "100.5")));
        check("", None);
        check("eq", None);
        check("abc", None);
        check("1.", None);
        check(".5", None);
        check("1e", None);
        check("1,5", None);
        check("gte100", None);
        check("100mg", None);
    }

    #[track_caller]
    fn check_match(param: &str, target: &str, expected: bool) {
        let (prefix, range) = parse_number_param(param).unwrap();
        assert_eq!(
            number_matches(prefix, &range, d(target)),
            expected,
            "{param} against {target}"
        );
    }

    #[test]
    fn prefix_semantics() {
        check_match("100", "100", true);
        check_match("100", "99.5", true);
        check_match("100", "99.4999", false);
        check_match("100", "100.4999", true);
        check_match("100", "100.5", false);
        check_match("100.00", "100.004", true);
        check_match("100.00", "100.005", false);
        check_match("100.00", "99.995", true);
        check_match("100.00", "99.994", false);
        check_match("1e2", "149", true);
        check_match("1e2", "150", false);
        check_match("1e2", "50", true);
        check_match("1e2", "49.99", false);
        check_match("ne100", "100.2", false);
        check_match("ne100", "100.5", true);
        check_match("ne100", "99", true);
        check_match("gt100", "100", false);
        check_match("gt100", "100.1", true);
        check_match("gt100", "99", false);
        check_match("lt100", "100", false);
        check_match("lt100", "99.9", true);
        check_match("lt100", "101", false);
        check_match("ge100", "100", true);
        check_match("ge100", "99.99", false);
        check_match("ge100", "1000", true);
        check_match("le100", "100", true);
        check_match("le100", "100.01", false);
        check_match("le100", "-3", true);
        check_match("sa100", "100.4", false);
        check_match("sa100", "100.5", true);
        check_match("eb100", "99.5", false);
        check_match("eb100", "99.49", true);
        check_match("ap100", "90", true);
        check_match("ap100", "89.9", false);
        check_match("ap100", "110", true);
        check_match("ap100", "110.1", false);
        check_match("ap-100", "-91", true);
        check_match("ap-100", "-89", false);
        check_match("ap0", "0.4", true);
        check_match("ap0", "0.5", false);
        check_match("ap1", "1.4", true);
        check_match("ap1", "1.5", false);
    }

    /// `expected` is `(prefix, value, system, code)`; `value` is as written.
    #[track_caller]
    fn check_quantity(input: &str, expected: Option<(Prefix, &str, Option<&str>, Option<&str>)>) {
        let got = parse_quantity_param(input).ok();
        let want = expected.map(|(prefix, value, system, code)| QuantityParam {
            prefix,
            number: NumberRange::parse(value).unwrap(),
            system: system.map(str::to_owned),
            code: code.map(str::to_owned),
        });
        assert_eq!(got, want, "parse_quantity_param({input:?})");
    }

    const U: Option<&str> = Some("http://unitsofmeasure.org");

    #[test]
    fn quantity_params() {
        check_quantity(
            "5.4|http://unitsofmeasure.org|mg",
            Some((Prefix::Eq, "5.4", U, Some("mg"))),
        );
        check_quantity(
            "le5.4|http://unitsofmeasure.org|mg",
            Some((Prefix::Le, "5.4", U, Some("mg"))),
        );
        check_quantity("5.4||mg", Some((Prefix::Eq, "5.4", None, Some("mg"))));
        check_quantity(
            "gt5.40e-3||mg",
            Some((Prefix::Gt, "5.40e-3", None, Some("mg"))),
        );
        check_quantity("ap5.4", Some((Prefix::Ap, "5.4", None, None)));
        check_quantity("5.4||", Some((Prefix::Eq, "5.4", None, None)));
        check_quantity(
            "120|http://unitsofmeasure.org|mm[Hg]",
            Some((Prefix::Eq, "120", U, Some("mm[Hg]"))),
        );
        check_quantity(
            "1|urn:x|a\\|b",
            Some((Prefix::Eq, "1", Some("urn:x"), Some("a|b"))),
        );
        check_quantity("1||a\\\\b", Some((Prefix::Eq, "1", None, Some("a\\b"))));
        check_quantity("1|http://unitsofmeasure.org|", None);
        check_quantity("5.4|mg", None);
        check_quantity("5.4|a|b|c", None);
        check_quantity("|http://unitsofmeasure.org|mg", None);
        check_quantity("abc||mg", None);
        check_quantity("", None);
        let q = parse_quantity_param("5.4|http://unitsofmeasure.org|mg").unwrap();
        assert_eq!(q.number.low, d("5.35"));
        assert_eq!(q.number.high, d("5.45"));
    }

    /// `expected` is `(low, value, high, base)` after canonicalisation.
    #[track_caller]
    fn check_canonical(input: &str, expected: Option<(&str, &str, &str, &str)>) {
        let got = parse_quantity_param(input).unwrap().canonical();
        let want = expected.map(|(low, value, high, base)| {
            (
                NumberRange {
                    value: d(value),
                    low: d(low),
                    high: d(high),
                },
                base,
            )
        });
        assert_eq!(got, want, "canonical({input:?})");
    }

    #[test]
    fn canonical_params() {
        check_canonical(
            "5.4|http://unitsofmeasure.org|mg",
            Some(("0.00535", "0.0054", "0.00545", "g")),
        );
        check_canonical(
            "2|http://unitsofmeasure.org|kg",
            Some(("1500", "2000", "2500", "g")),
        );
        check_canonical(
            "100|http://unitsofmeasure.org|mg/dL",
            Some(("0.995", "1", "1.005", "g/L")),
        );
        check_canonical(
            "37|http://unitsofmeasure.org|Cel",
            Some(("36.5", "37", "37.5", "Cel")),
        );
        check_canonical("5.4||mg", None);
        check_canonical("5.4|http://snomed.info/sct|258684004", None);
        check_canonical("5.4|http://unitsofmeasure.org|furlong", None);
        check_canonical("5.4", None);
    }
}
