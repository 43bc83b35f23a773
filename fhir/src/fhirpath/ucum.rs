//! FHIRPath quantities and the small part of UCUM they need: parsing unit
//! expressions (prefixes, exponents, `.`, `/`, brackets, annotations) into a
//! factor and a dimension vector, so that `4 'g' = 4000 'mg'`,
//! `7 days = 1 'wk'` and `2 'cm' * 2 'm' = 0.04 'm2'` hold. Calendar
//! durations (`1 year`) are kept apart from UCUM's `a`/`mo`, as FHIRPath says.

use super::decimal::Decimal;
use std::cmp::Ordering;

/// Base dimensions: m, s, g, rad, K, C, cd, mol.
pub type Dims = [i8; 8];

/// A FHIRPath quantity. `unit` is a UCUM code, or a calendar keyword
/// (`year`, `month`, `week`, `day`, `hour`, `minute`, `second`,
/// `millisecond`) when `calendar` is set.
#[derive(Clone, Debug, PartialEq)]
pub struct Quantity {
    pub value: Decimal,
    pub unit: String,
    pub calendar: bool,
}

/// The singular calendar keyword for a FHIRPath duration word, if any.
pub fn calendar_unit(word: &str) -> Option<&'static str> {
    Some(match word {
        "year" | "years" => "year",
        "month" | "months" => "month",
        "week" | "weeks" => "week",
        "day" | "days" => "day",
        "hour" | "hours" => "hour",
        "minute" | "minutes" => "minute",
        "second" | "seconds" => "second",
        "millisecond" | "milliseconds" => "millisecond",
        _ => return None,
    })
}

/// The UCUM code a calendar keyword is equal to (`year`/`month` are not
/// equal to `a`/`mo`, so they have none).
fn calendar_ucum(unit: &str) -> Option<&'static str> {
    Some(match unit {
        "week" => "wk",
        "day" => "d",
        "hour" => "h",
        "minute" => "min",
        "second" => "s",
        "millisecond" => "ms",
        _ => return None,
    })
}

/// The calendar unit a quantity may be added to a date with: calendar
/// keywords, and the UCUM codes for definite durations (`d`, `wk`, `h`,
/// `min`, `s`, `ms`); `a` and `mo` are rejected.
pub fn date_arithmetic_unit(q: &Quantity) -> Option<&'static str> {
    if let Some(u) = calendar_unit(&q.unit) {
        return Some(u);
    }
    Some(match q.unit.as_str() {
        "wk" => "week",
        "d" => "day",
        "h" => "hour",
        "min" => "minute",
        "s" => "second",
        "ms" => "millisecond",
        _ => return None,
    })
}

impl Quantity {
    pub fn new(value: Decimal, unit: &str) -> Quantity {
        match calendar_unit(unit) {
            Some(u) => Quantity {
                value,
                unit: u.to_owned(),
                calendar: true,
            },
            None => Quantity {
                value,
                unit: unit.to_owned(),
                calendar: false,
            },
        }
    }

    /// The UCUM code used for conversion (`None` for `year`/`month`).
    fn ucum(&self) -> Option<&str> {
        if self.calendar {
            calendar_ucum(&self.unit)
        } else {
            Some(&self.unit)
        }
    }

    /// FHIRPath text: `1 'wk'`, `1 week`.
    pub fn format(&self) -> String {
        if self.calendar {
            format!("{} {}", self.value, self.unit)
        } else {
            format!("{} '{}'", self.value, self.unit)
        }
    }

    /// The value in canonical (base) units and the dimensions.
    fn canonical(&self) -> Option<(Decimal, Dims)> {
        let (factor, dims) = parse_unit(self.ucum()?)?;
        Some((self.value.checked_mul(factor)?, dims))
    }

    /// Orders two quantities when their units are comparable.
    pub fn compare(&self, other: &Quantity) -> Option<Ordering> {
        if self.unit == other.unit && self.calendar == other.calendar {
            return Some(self.value.cmp_value(other.value));
        }
        let (a, da) = self.canonical()?;
        let (b, db) = other.canonical()?;
        (da == db).then(|| a.cmp_value(b))
    }

    /// Whether the units measure the same dimension.
    pub fn comparable(&self, other: &Quantity) -> bool {
        self.compare(other).is_some()
    }

    /// `other` expressed in this quantity's unit.
    pub fn convert_to_unit_of(&self, other: &Quantity) -> Option<Quantity> {
        if self.unit == other.unit && self.calendar == other.calendar {
            return Some(other.clone());
        }
        let (fa, da) = parse_unit(self.ucum()?)?;
        let (fb, db) = parse_unit(other.ucum()?)?;
        if da != db {
            return None;
        }
        let value = other.value.checked_mul(fb)?.checked_div(fa)?;
        Some(Quantity {
            value,
            unit: self.unit.clone(),
            calendar: self.calendar,
        })
    }

    pub fn add(&self, other: &Quantity, subtract: bool) -> Option<Quantity> {
        let b = self.convert_to_unit_of(other)?;
        let value = if subtract {
            self.value.checked_sub(b.value)?
        } else {
            self.value.checked_add(b.value)?
        };
        Some(Quantity {
            value,
            unit: self.unit.clone(),
            calendar: self.calendar,
        })
    }

    pub fn multiply(&self, other: &Quantity, divide: bool) -> Option<Quantity> {
        let (ua, ub) = (self.ucum()?, other.ucum()?);
        let value = if divide {
            self.value.checked_div(other.value)?
        } else {
            self.value.checked_mul(other.value)?
        };
        let wrap = |u: &str| {
            if u.contains(['.', '/']) {
                format!("({u})")
            } else {
                u.to_owned()
            }
        };
        let unit = match (ua == "1", ub == "1", divide) {
            (_, true, _) => ua.to_owned(),
            (true, false, false) => ub.to_owned(),
            (_, _, true) => format!("{}/{}", wrap(ua), wrap(ub)),
            _ => format!("{}.{}", wrap(ua), wrap(ub)),
        };
        Some(Quantity::new(value, &unit))
    }
}

const PREFIXES: [(&str, i32); 20] = [
    ("da", 1),
    ("Y", 24),
    ("Z", 21),
    ("E", 18),
    ("P", 15),
    ("T", 12),
    ("G", 9),
    ("M", 6),
    ("k", 3),
    ("h", 2),
    ("d", -1),
    ("c", -2),
    ("m", -3),
    ("u", -6),
    ("μ", -6),
    ("n", -9),
    ("p", -12),
    ("f", -15),
    ("a", -18),
    ("z", -21),
];

/// (code, metric, factor text, dimensions m s g rad K C cd mol).
const ATOMS: &[(&str, bool, &str, Dims)] = &[
    ("m", true, "1", [1, 0, 0, 0, 0, 0, 0, 0]),
    ("s", true, "1", [0, 1, 0, 0, 0, 0, 0, 0]),
    ("g", true, "1", [0, 0, 1, 0, 0, 0, 0, 0]),
    ("rad", true, "1", [0, 0, 0, 1, 0, 0, 0, 0]),
    ("K", true, "1", [0, 0, 0, 0, 1, 0, 0, 0]),
    ("C", true, "1", [0, 0, 0, 0, 0, 1, 0, 0]),
    ("cd", true, "1", [0, 0, 0, 0, 0, 0, 1, 0]),
    ("mol", true, "1", [0, 0, 0, 0, 0, 0, 0, 1]),
    ("eq", true, "1", [0, 0, 0, 0, 0, 0, 0, 1]),
    ("kat", true, "1", [0, -1, 0, 0, 0, 0, 0, 1]),
    ("U", true, "0.000001", [0, -1, 0, 0, 0, 0, 0, 1]),
    ("L", true, "0.001", [3, 0, 0, 0, 0, 0, 0, 0]),
    ("l", true, "0.001", [3, 0, 0, 0, 0, 0, 0, 0]),
    ("t", true, "1000000", [0, 0, 1, 0, 0, 0, 0, 0]),
    ("Hz", true, "1", [0, -1, 0, 0, 0, 0, 0, 0]),
    ("N", true, "1000", [1, -2, 1, 0, 0, 0, 0, 0]),
    ("Pa", true, "1000", [-1, -2, 1, 0, 0, 0, 0, 0]),
    ("J", true, "1000", [2, -2, 1, 0, 0, 0, 0, 0]),
    ("W", true, "1000", [2, -3, 1, 0, 0, 0, 0, 0]),
    ("A", true, "1", [0, -1, 0, 0, 0, 1, 0, 0]),
    ("V", true, "1000", [2, -2, 1, 0, 0, -1, 0, 0]),
    ("bar", true, "100000000", [-1, -2, 1, 0, 0, 0, 0, 0]),
    ("m[Hg]", true, "133322000", [-1, -2, 1, 0, 0, 0, 0, 0]),
    ("m[H2O]", true, "9806650", [-1, -2, 1, 0, 0, 0, 0, 0]),
    ("cal", true, "4184", [2, -2, 1, 0, 0, 0, 0, 0]),
    ("min", false, "60", [0, 1, 0, 0, 0, 0, 0, 0]),
    ("h", false, "3600", [0, 1, 0, 0, 0, 0, 0, 0]),
    ("d", false, "86400", [0, 1, 0, 0, 0, 0, 0, 0]),
    ("wk", false, "604800", [0, 1, 0, 0, 0, 0, 0, 0]),
    ("mo", false, "2629800", [0, 1, 0, 0, 0, 0, 0, 0]),
    ("a", false, "31557600", [0, 1, 0, 0, 0, 0, 0, 0]),
    ("deg", false, "0.0174532925199433", [0, 0, 0, 1, 0, 0, 0, 0]),
    ("%", false, "0.01", [0; 8]),
    ("[ppm]", false, "0.000001", [0; 8]),
    ("[lb_av]", false, "453.59237", [0, 0, 1, 0, 0, 0, 0, 0]),
    ("[oz_av]", false, "28.349523125", [0, 0, 1, 0, 0, 0, 0, 0]),
    ("[in_i]", false, "0.0254", [1, 0, 0, 0, 0, 0, 0, 0]),
    ("[ft_i]", false, "0.3048", [1, 0, 0, 0, 0, 0, 0, 0]),
    ("[yd_i]", false, "0.9144", [1, 0, 0, 0, 0, 0, 0, 0]),
    ("[mi_i]", false, "1609.344", [1, 0, 0, 0, 0, 0, 0, 0]),
    (
        "[gal_us]",
        false,
        "0.003785411784",
        [3, 0, 0, 0, 0, 0, 0, 0],
    ),
    ("[pt_us]", false, "0.000473176473", [3, 0, 0, 0, 0, 0, 0, 0]),
    (
        "[foz_us]",
        false,
        "0.0000295735295625",
        [3, 0, 0, 0, 0, 0, 0, 0],
    ),
];

fn atom(code: &str) -> Option<(Decimal, Dims)> {
    let find = |c: &str| ATOMS.iter().find(|a| a.0 == c);
    if let Some(a) = find(code) {
        return Some((Decimal::parse(a.2)?, a.3));
    }
    for (prefix, exp) in PREFIXES {
        if let Some(rest) = code.strip_prefix(prefix) {
            if let Some(a) = find(rest).filter(|a| a.1) {
                let f = Decimal::parse(a.2)?.checked_mul(pow10(exp)?)?;
                return Some((f, a.3));
            }
        }
    }
    None
}

fn pow10(exp: i32) -> Option<Decimal> {
    if exp >= 0 {
        Some(Decimal::new(10i128.checked_pow(exp.unsigned_abs())?, 0))
    } else {
        Some(Decimal::new(1, exp.unsigned_abs()))
    }
}

fn power(base: (Decimal, Dims), exp: i32) -> Option<(Decimal, Dims)> {
    let mut factor = Decimal::new(1, 0);
    for _ in 0..exp.unsigned_abs() {
        factor = factor.checked_mul(base.0)?;
    }
    if exp < 0 {
        factor = Decimal::new(1, 0).checked_div(factor)?;
    }
    let mut dims = base.1;
    for d in &mut dims {
        *d = d.checked_mul(i8::try_from(exp).ok()?)?;
    }
    Some((factor, dims))
}

struct UnitParser<'s> {
    s: &'s str,
    i: usize,
}

impl UnitParser<'_> {
    fn peek(&self) -> Option<char> {
        self.s[self.i..].chars().next()
    }

    fn term(&mut self) -> Option<(Decimal, Dims)> {
        let mut acc = if self.peek() == Some('/') {
            (Decimal::new(1, 0), [0; 8])
        } else {
            self.component()?
        };
        while let Some(op) = self.peek().filter(|c| *c == '.' || *c == '/') {
            self.i += 1;
            let rhs = self.component()?;
            let rhs = if op == '/' { power(rhs, -1)? } else { rhs };
            acc.0 = acc.0.checked_mul(rhs.0)?;
            for (a, b) in acc.1.iter_mut().zip(rhs.1) {
                *a = a.checked_add(b)?;
            }
        }
        Some(acc)
    }

    fn annotation(&mut self) -> Option<()> {
        if self.peek() == Some('{') {
            let end = self.s[self.i..].find('}')?;
            self.i += end + 1;
        }
        Some(())
    }

    fn component(&mut self) -> Option<(Decimal, Dims)> {
        if self.peek() == Some('(') {
            self.i += 1;
            let inner = self.term()?;
            if self.peek() != Some(')') {
                return None;
            }
            self.i += 1;
            return Some(inner);
        }
        if self.peek() == Some('{') {
            self.annotation()?;
            return Some((Decimal::new(1, 0), [0; 8]));
        }
        // Simple unit: up to an operator, annotation or exponent digits.
        let rest = &self.s[self.i..];
        let mut end = 0;
        let mut in_bracket = false;
        for (k, c) in rest.char_indices() {
            match c {
                '[' => in_bracket = true,
                ']' => in_bracket = false,
                '.' | '/' | '(' | ')' | '{' if !in_bracket => break,
                _ => {}
            }
            end = k + c.len_utf8();
        }
        let word = &rest[..end];
        // Split trailing exponent (`m2`, `s-1`, `10*3`).
        let (code, exp) = split_exponent(word)?;
        self.i += end;
        self.annotation()?;
        let base = if code == "1" {
            (Decimal::new(1, 0), [0; 8])
        } else if code == "10*" || code == "10^" {
            return Some((pow10(exp)?, [0; 8]));
        } else {
            atom(code)?
        };
        power(base, exp)
    }
}

fn split_exponent(word: &str) -> Option<(&str, i32)> {
    if word.is_empty() {
        return None;
    }
    if let Some(rest) = word
        .strip_prefix("10*")
        .or_else(|| word.strip_prefix("10^"))
    {
        return Some((&word[..3], rest.parse().ok()?));
    }
    if word.ends_with(']') || word.chars().all(|c| c.is_ascii_digit()) {
        return Some((word, 1));
    }
    let digits_start = word
        .char_indices()
        .rev()
        .take_while(|(_, c)| c.is_ascii_digit() || *c == '-' || *c == '+')
        .last()
        .map_or(word.len(), |(k, _)| k);
    if digits_start == word.len() {
        return Some((word, 1));
    }
    Some((&word[..digits_start], word[digits_start..].parse().ok()?))
}

/// Parses a UCUM unit expression into its factor to base units and its
/// dimensions; `None` for units outside the supported table.
pub fn parse_unit(unit: &str) -> Option<(Decimal, Dims)> {
    if unit.is_empty() {
        return None;
    }
    let mut p = UnitParser { s: unit, i: 0 };
    let result = p.term()?;
    (p.i == unit.len()).then_some(result)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn q(v: &str, u: &str) -> Quantity {
        Quantity::new(Decimal::parse(v).unwrap(), u)
    }

    #[test]
    fn conversions() {
        assert_eq!(q("4", "g").compare(&q("4000", "mg")), Some(Ordering::Equal));
        assert_eq!(q("7", "days").compare(&q("1", "wk")), Some(Ordering::Equal));
        assert_eq!(q("1", "year").compare(&q("1", "a")), None);
        assert_eq!(
            q("185", "[lb_av]").compare(&q("200", "[lb_av]")),
            Some(Ordering::Less)
        );
        let area = q("2.0", "cm").multiply(&q("2.0", "m"), false).unwrap();
        assert_eq!(area.compare(&q("0.040", "m2")), Some(Ordering::Equal));
        let ratio = q("4.0", "g").multiply(&q("2.0", "m"), true).unwrap();
        assert_eq!(ratio.compare(&q("2", "g/m")), Some(Ordering::Equal));
        assert_eq!(
            q("1", "m")
                .multiply(&q("1", "m"), true)
                .unwrap()
                .compare(&q("1", "1")),
            Some(Ordering::Equal)
        );
        assert!(q("1", "cm").comparable(&q("1", "[in_i]")));
        assert!(!q("1", "cm").comparable(&q("1", "s")));
        assert!(parse_unit("mmol/L").is_some());
        assert!(parse_unit("10*9/L").is_some());
        assert!(parse_unit("{beats}/min").is_some());
        assert!(parse_unit("kg/m2").is_some());
    }
}
