//! Exact FHIR/FHIRPath decimals: an `i128` mantissa with a decimal scale.
//!
//! Written here rather than taken from `rust_decimal` because FHIRPath needs
//! the *written* precision of a decimal (`1.0` and `1.00` are equal but
//! `toString()`, `precision()`, `~` and the boundary functions see their
//! scale), serde_json's `arbitrary_precision` hands us the literal text, and
//! the handful of operations needed (add, subtract, multiply, a bounded
//! division, rounding) are short and exact on a wide integer. Results that
//! would overflow 38 digits yield `None`, which the evaluator maps to empty.

use std::cmp::Ordering;
use std::fmt;

/// The largest scale kept after multiplication or division.
const MAX_SCALE: u32 = 28;
/// Digits kept after the point by a division that does not terminate.
const DIV_SCALE: u32 = 8;

/// A decimal number `mantissa × 10^-scale`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Decimal {
    mantissa: i128,
    scale: u32,
    /// A zero written `-0.0` (only the boundary functions produce one; it
    /// equals zero and prints with its sign).
    negative_zero: bool,
}

fn pow10(n: u32) -> Option<i128> {
    10i128.checked_pow(n)
}

impl Decimal {
    pub const ZERO: Decimal = Decimal {
        mantissa: 0,
        scale: 0,
        negative_zero: false,
    };

    pub fn new(mantissa: i128, scale: u32) -> Decimal {
        Decimal {
            mantissa,
            scale,
            negative_zero: false,
        }
    }

    /// The value with a minus sign even when it is zero (`-0.0`).
    pub fn signed_negative(self) -> Decimal {
        let mut d = self.negated();
        d.negative_zero = d.mantissa == 0;
        d
    }

    pub fn from_i64(v: i64) -> Decimal {
        Decimal::new(i128::from(v), 0)
    }

    pub fn mantissa(self) -> i128 {
        self.mantissa
    }

    /// Digits after the decimal point as written (`1.50` → 2).
    pub fn scale(self) -> u32 {
        self.scale
    }

    /// Parses `-12.340`, `+1`, `1e3`, `1.5E-2` (JSON number text).
    pub fn parse(text: &str) -> Option<Decimal> {
        let (body, exp) = match text.find(['e', 'E']) {
            Some(i) => (&text[..i], text[i + 1..].parse::<i32>().ok()?),
            None => (text, 0),
        };
        let (negative, digits) = match body.as_bytes().first()? {
            b'-' => (true, &body[1..]),
            b'+' => (false, &body[1..]),
            _ => (false, body),
        };
        let (int_part, frac_part) = match digits.split_once('.') {
            Some((i, f)) => (i, f),
            None => (digits, ""),
        };
        if int_part.is_empty()
            || !int_part.bytes().all(|b| b.is_ascii_digit())
            || !frac_part.bytes().all(|b| b.is_ascii_digit())
            || (digits.contains('.') && frac_part.is_empty())
        {
            return None;
        }
        let mut mantissa: i128 = 0;
        for b in int_part.bytes().chain(frac_part.bytes()) {
            mantissa = mantissa
                .checked_mul(10)?
                .checked_add(i128::from(b - b'0'))?;
        }
        if negative {
            mantissa = -mantissa;
        }
        let mut scale = i64::try_from(frac_part.len()).ok()? - i64::from(exp);
        while scale < 0 {
            mantissa = mantissa.checked_mul(10)?;
            scale += 1;
        }
        Some(Decimal::new(mantissa, u32::try_from(scale).ok()?))
    }

    /// The nearest decimal to a float, to 15 significant digits with trailing
    /// zeros removed (so `ln(1)` is `0` and `sqrt(81)` is `9`).
    pub fn from_f64(v: f64) -> Option<Decimal> {
        if !v.is_finite() {
            return None;
        }
        let text = format!("{v:.14e}");
        Decimal::parse(&text).map(Decimal::normalized)
    }

    pub fn to_f64(self) -> f64 {
        self.to_string().parse().unwrap_or(f64::NAN)
    }

    /// The same value with trailing fractional zeros removed.
    pub fn normalized(self) -> Decimal {
        let mut d = self;
        while d.scale > 0 && d.mantissa % 10 == 0 {
            d.mantissa /= 10;
            d.scale -= 1;
        }
        d
    }

    /// The same value written with `scale` digits after the point (rounding
    /// half away from zero when reducing the scale).
    pub fn rescale(self, scale: u32) -> Option<Decimal> {
        match scale.cmp(&self.scale) {
            Ordering::Equal => Some(self),
            Ordering::Greater => Some(Decimal::new(
                self.mantissa.checked_mul(pow10(scale - self.scale)?)?,
                scale,
            )),
            Ordering::Less => {
                let div = pow10(self.scale - scale)?;
                let q = self.mantissa / div;
                let r = self.mantissa % div;
                let adjust = if r.abs() * 2 >= div {
                    self.mantissa.signum()
                } else {
                    0
                };
                Some(Decimal::new(q + adjust, scale))
            }
        }
    }

    fn aligned(self, other: Decimal) -> Option<(i128, i128, u32)> {
        let scale = self.scale.max(other.scale);
        Some((
            self.rescale(scale)?.mantissa,
            other.rescale(scale)?.mantissa,
            scale,
        ))
    }

    pub fn checked_add(self, other: Decimal) -> Option<Decimal> {
        let (a, b, s) = self.aligned(other)?;
        Some(Decimal::new(a.checked_add(b)?, s))
    }

    pub fn checked_sub(self, other: Decimal) -> Option<Decimal> {
        let (a, b, s) = self.aligned(other)?;
        Some(Decimal::new(a.checked_sub(b)?, s))
    }

    pub fn checked_mul(self, other: Decimal) -> Option<Decimal> {
        let m = self.mantissa.checked_mul(other.mantissa)?;
        let d = Decimal::new(m, self.scale + other.scale);
        if d.scale > MAX_SCALE {
            d.rescale(MAX_SCALE)
        } else {
            Some(d)
        }
    }

    /// Division: exact when it terminates within eight digits after the point,
    /// otherwise rounded there; trailing zeros are removed. `None` for a zero
    /// divisor.
    pub fn checked_div(self, other: Decimal) -> Option<Decimal> {
        if other.mantissa == 0 {
            return None;
        }
        let target = DIV_SCALE.max(self.scale).max(other.scale).min(MAX_SCALE);
        // value = (a / 10^sa) / (b / 10^sb); scaled numerator a·10^(target+1+sb-sa).
        let shift = i64::from(target) + 1 + i64::from(other.scale) - i64::from(self.scale);
        let numerator = if shift >= 0 {
            self.mantissa
                .checked_mul(pow10(u32::try_from(shift).ok()?)?)?
        } else {
            self.mantissa / pow10(u32::try_from(-shift).ok()?)?
        };
        let q = numerator / other.mantissa;
        Decimal::new(q, target + 1)
            .rescale(target)
            .map(Decimal::normalized)
    }

    /// Truncated division (`div`) as an integer-valued decimal.
    pub fn div_trunc(self, other: Decimal) -> Option<i128> {
        if other.mantissa == 0 {
            return None;
        }
        let (a, b, _) = self.aligned(other)?;
        Some(a / b)
    }

    /// Remainder of truncated division (`mod`).
    pub fn checked_rem(self, other: Decimal) -> Option<Decimal> {
        if other.mantissa == 0 {
            return None;
        }
        let (a, b, s) = self.aligned(other)?;
        Some(Decimal::new(a % b, s))
    }

    pub fn negated(self) -> Decimal {
        Decimal::new(-self.mantissa, self.scale)
    }

    pub fn abs(self) -> Decimal {
        Decimal::new(self.mantissa.abs(), self.scale)
    }

    pub fn is_zero(self) -> bool {
        self.mantissa == 0
    }

    pub fn is_negative(self) -> bool {
        self.mantissa < 0
    }

    /// Rounds half away from zero to `digits` after the point.
    pub fn round(self, digits: u32) -> Option<Decimal> {
        if digits >= self.scale {
            Some(self)
        } else {
            self.rescale(digits)
        }
    }

    /// The integer part, towards zero.
    pub fn trunc(self) -> i128 {
        match pow10(self.scale) {
            Some(div) => self.mantissa / div,
            None => 0,
        }
    }

    pub fn floor(self) -> i128 {
        let t = self.trunc();
        if self.is_negative() && Decimal::new(t, 0).cmp_value(self) != Ordering::Equal {
            t - 1
        } else {
            t
        }
    }

    pub fn ceiling(self) -> i128 {
        let t = self.trunc();
        if !self.is_negative() && Decimal::new(t, 0).cmp_value(self) != Ordering::Equal {
            t + 1
        } else {
            t
        }
    }

    /// Numeric comparison, ignoring scale.
    pub fn cmp_value(self, other: Decimal) -> Ordering {
        match self.aligned(other) {
            Some((a, b, _)) => a.cmp(&b),
            None => self
                .to_f64()
                .partial_cmp(&other.to_f64())
                .unwrap_or(Ordering::Equal),
        }
    }

    /// Whether the value has no fractional part.
    pub fn is_integral(self) -> bool {
        self.normalized().scale == 0
    }

    /// The integer value, if integral and within `i64`.
    pub fn to_i64(self) -> Option<i64> {
        if self.is_integral() {
            i64::try_from(self.trunc()).ok()
        } else {
            None
        }
    }
}

impl PartialEq for Decimal {
    fn eq(&self, other: &Self) -> bool {
        self.cmp_value(*other) == Ordering::Equal
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.mantissa.unsigned_abs().to_string();
        let sign = if self.mantissa < 0 || self.negative_zero {
            "-"
        } else {
            ""
        };
        let scale = self.scale as usize;
        if scale == 0 {
            return write!(f, "{sign}{digits}");
        }
        let padded = if digits.len() <= scale {
            format!("{}{digits}", "0".repeat(scale + 1 - digits.len()))
        } else {
            digits
        };
        let (int, frac) = padded.split_at(padded.len() - scale);
        write!(f, "{sign}{int}.{frac}")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        Decimal::parse(s).unwrap()
    }

    #[test]
    fn parse_and_print_keep_scale() {
        for s in ["1.0", "-0.50", "12", "0.00000001", "1234567890987654321.0"] {
            assert_eq!(d(s).to_string(), s);
        }
        assert_eq!(d("1e3").to_string(), "1000");
        assert_eq!(d("1.5E-2").to_string(), "0.015");
        assert!(Decimal::parse("1.").is_none());
        assert!(Decimal::parse(".5").is_none());
        assert!(Decimal::parse("1.a").is_none());
    }

    #[test]
    fn arithmetic() {
        assert_eq!(d("1.2").checked_add(d("1.8")).unwrap().to_string(), "3.0");
        assert_eq!(d("1.2").checked_mul(d("1.8")).unwrap(), d("2.16"));
        assert_eq!(
            d("1.2").checked_div(d("1.8")).unwrap().to_string(),
            "0.66666667"
        );
        assert_eq!(d("1").checked_div(d("2")).unwrap().to_string(), "0.5");
        assert_eq!(d("2.2").div_trunc(d("1.8")), Some(1));
        assert_eq!(d("2.2").checked_rem(d("1.8")).unwrap(), d("0.4"));
        assert_eq!(d("3.14159").round(3).unwrap().to_string(), "3.142");
        assert_eq!(d("-2.1").floor(), -3);
        assert_eq!(d("-1.1").ceiling(), -1);
        assert_eq!(d("-1.56").trunc(), -1);
        assert_eq!(
            Decimal::from_f64(2.0f64.ln() / 2.0f64.ln())
                .unwrap()
                .to_string(),
            "1"
        );
    }
}
