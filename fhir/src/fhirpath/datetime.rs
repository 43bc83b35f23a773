//! Partial dates, date-times and times with FHIRPath precision semantics:
//! parsing, printing, precision-aware comparison, calendar arithmetic and the
//! boundary functions.

use crate::cursor::Cursor;
use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, Timelike};
use std::cmp::Ordering;
use std::fmt::Write as _;

/// How much of a date/time is known. `Second` and `Millis` compare as one
/// precision (FHIRPath treats `10:30:00` and `10:30:00.0` as comparable).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Precision {
    Year = 1,
    Month,
    Day,
    Hour,
    Minute,
    Second,
    Millis,
}

/// A partial date, date-time or time (for a time only the clock fields are
/// used). `tz` is the offset in minutes; `zulu` remembers a `Z` spelling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartialDateTime {
    pub year: i32,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
    pub millis: u16,
    pub precision: Precision,
    pub tz: Option<i16>,
    pub zulu: bool,
}

impl PartialDateTime {
    fn empty(precision: Precision) -> PartialDateTime {
        PartialDateTime {
            year: 0,
            month: 1,
            day: 1,
            hour: 0,
            minute: 0,
            second: 0,
            millis: 0,
            precision,
            tz: None,
            zulu: false,
        }
    }

    fn parse_clock(c: &mut Cursor<'_>, v: &mut PartialDateTime) -> Option<()> {
        v.hour = u8::try_from(c.digits(2)?).ok().filter(|h| *h < 24)?;
        v.precision = Precision::Hour;
        if c.eat(b':') {
            v.minute = u8::try_from(c.digits(2)?).ok().filter(|m| *m < 60)?;
            v.precision = Precision::Minute;
            if c.eat(b':') {
                v.second = u8::try_from(c.digits(2)?).ok().filter(|s| *s < 60)?;
                v.precision = Precision::Second;
                if c.peek_digit_after(b'.') {
                    c.i += 1;
                    let start = c.i;
                    while c.s.get(c.i).is_some_and(u8::is_ascii_digit) {
                        c.i += 1;
                    }
                    let frac = &c.s[start..c.i];
                    let mut ms = 0u16;
                    for k in 0..3 {
                        ms = ms * 10 + frac.get(k).map_or(0, |b| u16::from(b - b'0'));
                    }
                    v.millis = ms;
                    v.precision = Precision::Millis;
                }
            }
        }
        Some(())
    }

    /// Parses a date or date-time (`2015`, `2015-02-04T14:34:28.123+10:00`,
    /// `2015T`). With `allow_time` false only a date is accepted.
    pub fn parse_date_time(text: &str, allow_time: bool) -> Option<PartialDateTime> {
        let mut c = Cursor {
            s: text.as_bytes(),
            i: 0,
        };
        let mut v = PartialDateTime::empty(Precision::Year);
        v.year = i32::try_from(c.digits(4)?).ok()?;
        if c.eat(b'-') {
            v.month = u8::try_from(c.digits(2)?)
                .ok()
                .filter(|m| (1..=12).contains(m))?;
            v.precision = Precision::Month;
            if c.eat(b'-') {
                v.day = u8::try_from(c.digits(2)?).ok()?;
                NaiveDate::from_ymd_opt(v.year, u32::from(v.month), u32::from(v.day))?;
                v.precision = Precision::Day;
            }
        }
        if allow_time && c.eat(b'T') && !c.done() {
            if v.precision != Precision::Day {
                return None;
            }
            Self::parse_clock(&mut c, &mut v)?;
            Self::parse_tz(&mut c, &mut v)?;
        }
        c.done().then_some(v)
    }

    fn parse_tz(c: &mut Cursor<'_>, v: &mut PartialDateTime) -> Option<()> {
        if c.eat(b'Z') {
            v.tz = Some(0);
            v.zulu = true;
        } else if let Some(sign) = c.s.get(c.i).copied().filter(|b| *b == b'+' || *b == b'-') {
            c.i += 1;
            let h = i16::try_from(c.digits(2)?).ok()?;
            if !c.eat(b':') {
                return None;
            }
            let m = i16::try_from(c.digits(2)?).ok()?;
            let total = h * 60 + m;
            v.tz = Some(if sign == b'-' { -total } else { total });
        }
        Some(())
    }

    /// Parses a time of day `hh[:mm[:ss[.fff]]]` (no time zone).
    pub fn parse_time(text: &str) -> Option<PartialDateTime> {
        let mut c = Cursor {
            s: text.as_bytes(),
            i: 0,
        };
        let mut v = PartialDateTime::empty(Precision::Hour);
        Self::parse_clock(&mut c, &mut v)?;
        c.done().then_some(v)
    }

    /// The date part only (precision at most day, no zone).
    pub fn date_part(self) -> PartialDateTime {
        let mut v = self;
        v.precision = v.precision.min(Precision::Day);
        v.tz = None;
        v.zulu = false;
        v
    }

    pub fn has_time(self) -> bool {
        self.precision >= Precision::Hour
    }

    fn fmt_clock(self, out: &mut String) {
        let _ = write!(out, "{:02}", self.hour);
        if self.precision >= Precision::Minute {
            let _ = write!(out, ":{:02}", self.minute);
        }
        if self.precision >= Precision::Second {
            let _ = write!(out, ":{:02}", self.second);
        }
        if self.precision >= Precision::Millis {
            let _ = write!(out, ".{:03}", self.millis);
        }
    }

    /// FHIR text of a date or date-time (`1974-12-25`, `2015-02-04T14:34+10:00`).
    pub fn format_date_time(self) -> String {
        let mut out = format!("{:04}", self.year);
        if self.precision >= Precision::Month {
            let _ = write!(out, "-{:02}", self.month);
        }
        if self.precision >= Precision::Day {
            let _ = write!(out, "-{:02}", self.day);
        }
        if self.has_time() {
            out.push('T');
            self.fmt_clock(&mut out);
            match self.tz {
                Some(0) if self.zulu => out.push('Z'),
                Some(tz) => {
                    let sign = if tz < 0 { '-' } else { '+' };
                    let _ = write!(out, "{sign}{:02}:{:02}", tz.abs() / 60, tz.abs() % 60);
                }
                None => {}
            }
        }
        out
    }

    /// Text of a time (`14:34:28.123`).
    pub fn format_time(self) -> String {
        let mut out = String::new();
        self.fmt_clock(&mut out);
        out
    }

    fn naive(self) -> Option<NaiveDateTime> {
        NaiveDate::from_ymd_opt(self.year, u32::from(self.month), u32::from(self.day))?
            .and_hms_milli_opt(
                u32::from(self.hour),
                u32::from(self.minute),
                u32::from(self.second),
                u32::from(self.millis),
            )
    }

    fn with_naive(self, n: NaiveDateTime) -> Option<PartialDateTime> {
        let mut v = self;
        v.year = n.year();
        v.month = u8::try_from(n.month()).ok()?;
        v.day = u8::try_from(n.day()).ok()?;
        v.hour = u8::try_from(n.hour()).ok()?;
        v.minute = u8::try_from(n.minute()).ok()?;
        v.second = u8::try_from(n.second()).ok()?;
        v.millis = u16::try_from(n.and_utc().timestamp_subsec_millis().min(999)).ok()?;
        Some(v)
    }

    fn to_utc(self) -> Option<PartialDateTime> {
        let tz = self.tz?;
        let shifted = self
            .naive()?
            .checked_sub_signed(Duration::minutes(i64::from(tz)))?;
        let mut v = self.with_naive(shifted)?;
        v.tz = Some(0);
        Some(v)
    }

    fn fields(self) -> [i64; 6] {
        [
            i64::from(self.year),
            i64::from(self.month),
            i64::from(self.day),
            i64::from(self.hour),
            i64::from(self.minute),
            i64::from(self.second) * 1000 + i64::from(self.millis),
        ]
    }

    fn level(p: Precision) -> usize {
        match p {
            Precision::Year => 1,
            Precision::Month => 2,
            Precision::Day => 3,
            Precision::Hour => 4,
            Precision::Minute => 5,
            Precision::Second | Precision::Millis => 6,
        }
    }

    /// Precision-aware comparison of two dates/date-times: `None` when the
    /// values agree on every common field but differ in precision, or when
    /// only one has a time zone.
    pub fn compare(self, other: PartialDateTime) -> Option<Ordering> {
        let (mut a, mut b) = (self, other);
        let common = Self::level(a.precision).min(Self::level(b.precision));
        if common > 3 {
            match (a.tz, b.tz) {
                (Some(_), Some(_)) => {
                    a = a.to_utc()?;
                    b = b.to_utc()?;
                }
                (None, None) => {}
                _ => return None,
            }
        }
        Self::compare_fields(a.fields(), b.fields(), 0, common, a.precision, b.precision)
    }

    /// Comparison of two times of day.
    pub fn compare_time(self, other: PartialDateTime) -> Option<Ordering> {
        let common = Self::level(self.precision).min(Self::level(other.precision));
        Self::compare_fields(
            self.fields(),
            other.fields(),
            3,
            common,
            self.precision,
            other.precision,
        )
    }

    fn compare_fields(
        a: [i64; 6],
        b: [i64; 6],
        from: usize,
        common: usize,
        pa: Precision,
        pb: Precision,
    ) -> Option<Ordering> {
        for k in from..common {
            match a[k].cmp(&b[k]) {
                Ordering::Equal => {}
                other => return Some(other),
            }
        }
        (Self::level(pa) == Self::level(pb)).then_some(Ordering::Equal)
    }

    /// Adds `amount` of a calendar unit (`year`, `month`, `week`, `day`,
    /// `hour`, `minute`, `second`, `millisecond`); `None` on overflow or an
    /// unknown unit. Units finer than the value's precision are converted
    /// down to it (whole units only).
    pub fn add(self, amount: i64, unit: &str, is_time: bool) -> Option<PartialDateTime> {
        let (mut amount, mut unit) = (amount, unit);
        let rank = |u: &str| match u {
            "year" => 1,
            "month" => 2,
            "week" | "day" => 3,
            "hour" => 4,
            "minute" => 5,
            _ => 6,
        };
        // Bring a too-fine unit up to the value's precision.
        while rank(unit) > Self::level(self.precision) && !is_time {
            (amount, unit) = match unit {
                "millisecond" => (amount / 1000, "second"),
                "second" => (amount / 60, "minute"),
                "minute" => (amount / 60, "hour"),
                "hour" => (amount / 24, "day"),
                "week" | "day" => (
                    amount.saturating_mul(if unit == "week" { 7 } else { 1 }) / 30,
                    "month",
                ),
                _ => (amount / 12, "year"),
            };
        }
        let mut v = self;
        match unit {
            "year" | "month" => {
                let months = if unit == "year" {
                    amount.checked_mul(12)?
                } else {
                    amount
                };
                let total =
                    (i64::from(v.year) * 12 + i64::from(v.month) - 1).checked_add(months)?;
                v.year = i32::try_from(total.div_euclid(12)).ok()?;
                v.month = u8::try_from(total.rem_euclid(12) + 1).ok()?;
                if v.precision >= Precision::Day {
                    let mut day = v.day;
                    while NaiveDate::from_ymd_opt(v.year, u32::from(v.month), u32::from(day))
                        .is_none()
                    {
                        day = day.checked_sub(1)?;
                    }
                    v.day = day;
                }
                Some(v)
            }
            _ => {
                let d = match unit {
                    "week" => Duration::try_weeks(amount)?,
                    "day" => Duration::try_days(amount)?,
                    "hour" => Duration::try_hours(amount)?,
                    "minute" => Duration::try_minutes(amount)?,
                    "second" => Duration::try_seconds(amount)?,
                    "millisecond" => Duration::try_milliseconds(amount)?,
                    _ => return None,
                };
                let base = if is_time {
                    let mut t = v;
                    t.year = 2000;
                    t.month = 1;
                    t.day = 1;
                    t
                } else {
                    v
                };
                let n = base.naive()?.checked_add_signed(d)?;
                let r = base.with_naive(n)?;
                if is_time {
                    v.hour = r.hour;
                    v.minute = r.minute;
                    v.second = r.second;
                    v.millis = r.millis;
                    Some(v)
                } else {
                    Some(r)
                }
            }
        }
    }

    /// Precision in digits as FHIRPath `precision()` reports it.
    pub fn precision_digits(self, is_time: bool) -> i64 {
        let date = match self.precision {
            Precision::Year => 4,
            Precision::Month => 6,
            Precision::Day => 8,
            Precision::Hour => 10,
            Precision::Minute => 12,
            Precision::Second => 14,
            Precision::Millis => 17,
        };
        if is_time { date - 8 } else { date }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn dt(s: &str) -> PartialDateTime {
        PartialDateTime::parse_date_time(s, true).unwrap()
    }

    #[test]
    fn parse_and_format() {
        for s in [
            "2015",
            "2015-02",
            "2015-02-04",
            "2015-02-04T14:34:28.123+10:00",
            "2015-02-04T14Z",
        ] {
            assert_eq!(dt(s).format_date_time(), s);
        }
        assert_eq!(dt("2015T").precision, Precision::Year);
        assert!(PartialDateTime::parse_date_time("2015-13", true).is_none());
        assert!(PartialDateTime::parse_date_time("2015-02-04T14", false).is_none());
        assert_eq!(
            PartialDateTime::parse_time("14:34").unwrap().format_time(),
            "14:34"
        );
    }

    #[test]
    fn precision_comparison() {
        assert_eq!(dt("2012-04-15").compare(dt("2012-04-15T10:00:00")), None);
        assert_eq!(
            dt("1974-12-25").compare(dt("2026-01-01T10:00:00Z")),
            Some(Ordering::Less)
        );
        assert_eq!(
            dt("2017-11-05T01:30:00.0-04:00").compare(dt("2017-11-05T00:30:00.0-05:00")),
            Some(Ordering::Equal)
        );
        assert_eq!(
            dt("2012-04-15T15:30:31").compare(dt("2012-04-15T15:30:31.0")),
            Some(Ordering::Equal)
        );
    }

    #[test]
    fn arithmetic() {
        assert_eq!(
            dt("1973-12-25")
                .add(1, "month", false)
                .unwrap()
                .format_date_time(),
            "1974-01-25"
        );
        assert_eq!(
            dt("2012-01-31")
                .add(1, "month", false)
                .unwrap()
                .format_date_time(),
            "2012-02-29"
        );
        assert_eq!(
            dt("1973-12-25T00:00:00.000+10:00")
                .add(10, "millisecond", false)
                .unwrap()
                .format_date_time(),
            "1973-12-25T00:00:00.010+10:00"
        );
    }
}
