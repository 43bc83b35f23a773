//! Date search values (search.html#date): every date, dateTime, instant,
//! Period and Timing is indexed as a half-open UTC range of microseconds
//! since the Unix epoch, and search prefixes compare such ranges.

use super::{Prefix, ValueError};
use crate::cursor::Cursor;
use crate::fhirpath::Item;
use chrono::{Duration, NaiveDate, NaiveDateTime};
use serde_json::Value as Json;

/// The open start of a range (a Period without `start`).
pub const NEG_INFINITY: i64 = i64::MIN;
/// The open end of a range (a Period without `end`).
pub const POS_INFINITY: i64 = i64::MAX;

/// A half-open range `[start, end)` of UTC microseconds since
/// 1970-01-01T00:00:00Z. [`NEG_INFINITY`] and [`POS_INFINITY`] stand for
/// open ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DateRange {
    pub start: i64,
    pub end: i64,
}

impl DateRange {
    pub fn new(start: i64, end: i64) -> DateRange {
        DateRange { start, end }
    }

    /// Whether the two ranges share at least one instant.
    pub fn overlaps(self, other: DateRange) -> bool {
        self.start < other.end && other.start < self.end
    }

    /// Whether `other` lies entirely inside this range.
    pub fn contains(self, other: DateRange) -> bool {
        self.start <= other.start && other.end <= self.end
    }
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Unit {
    Year,
    Month,
    Day,
    Hour,
    Minute,
    Second,
    /// Fractional seconds with this many digits.
    Fraction(u32),
}

fn micros(t: NaiveDateTime) -> i64 {
    t.and_utc().timestamp_micros()
}

/// The range a date, dateTime or instant text covers at its precision:
/// `1980` is the whole of 1980, `2020-03` all of March, `2020-03-04T10:00Z`
/// that minute, `10:00:00.12Z` those 10 ms (a fraction with more than six
/// digits covers the microsecond it starts in). A time zone offset is
/// applied (`2020-02-29T23:30:00-05:00` starts at 2020-03-01T04:30Z).
/// Values without a time zone, including plain dates, are taken as UTC.
/// `hh` alone after `T` is accepted as an hour precision. `None` for text
/// that is not such a value (including impossible dates like `2021-02-29`).
pub fn parse_date_value(text: &str) -> Option<DateRange> {
    let mut c = Cursor {
        s: text.as_bytes(),
        i: 0,
    };
    let year = i32::try_from(c.digits(4)?).ok()?;
    let (mut month, mut day) = (1, 1);
    let (mut hour, mut minute, mut second, mut micro) = (0, 0, 0, 0);
    let mut unit = Unit::Year;
    let mut offset_minutes = 0i64;
    if c.eat(b'-') {
        month = c.digits(2)?;
        unit = Unit::Month;
        if c.eat(b'-') {
            day = c.digits(2)?;
            unit = Unit::Day;
        }
    }
    if c.eat(b'T') {
        if unit != Unit::Day {
            return None;
        }
        hour = c.digits(2)?;
        unit = Unit::Hour;
        if c.eat(b':') {
            minute = c.digits(2)?;
            unit = Unit::Minute;
            if c.eat(b':') {
                second = c.digits(2)?;
                unit = Unit::Second;
                if c.eat(b'.') {
                    let start = c.i;
                    while c.s.get(c.i).is_some_and(u8::is_ascii_digit) {
                        c.i += 1;
                    }
                    let frac = &c.s[start..c.i];
                    if frac.is_empty() {
                        return None;
                    }
                    for k in 0..6 {
                        micro = micro * 10 + frac.get(k).map_or(0, |b| u32::from(b - b'0'));
                    }
                    unit = Unit::Fraction(u32::try_from(frac.len()).ok()?);
                }
            }
        }
        if c.eat(b'Z') {
        } else if let Some(&sign) = c.s.get(c.i).filter(|b| **b == b'+' || **b == b'-') {
            c.i += 1;
            let h = c.digits(2)?;
            if !c.eat(b':') {
                return None;
            }
            let m = c.digits(2)?;
            if h > 23 || m > 59 {
                return None;
            }
            offset_minutes = i64::from(h * 60 + m);
            if sign == b'-' {
                offset_minutes = -offset_minutes;
            }
        }
    }
    if c.i != c.s.len() {
        return None;
    }
    let start = NaiveDate::from_ymd_opt(year, month, day)?
        .and_hms_micro_opt(hour, minute, second, micro)?;
    let end = match unit {
        Unit::Year => NaiveDate::from_ymd_opt(year + 1, 1, 1)?.and_hms_opt(0, 0, 0)?,
        Unit::Month => {
            let (y, m) = if month == 12 {
                (year + 1, 1)
            } else {
                (year, month + 1)
            };
            NaiveDate::from_ymd_opt(y, m, 1)?.and_hms_opt(0, 0, 0)?
        }
        Unit::Day => start.checked_add_signed(Duration::days(1))?,
        Unit::Hour => start.checked_add_signed(Duration::hours(1))?,
        Unit::Minute => start.checked_add_signed(Duration::minutes(1))?,
        Unit::Second => start.checked_add_signed(Duration::seconds(1))?,
        Unit::Fraction(n) => {
            let step = 10i64.pow(6u32.saturating_sub(n.min(6)));
            start.checked_add_signed(Duration::microseconds(step))?
        }
    };
    let shift = offset_minutes * 60_000_000;
    Some(DateRange::new(
        micros(start).checked_sub(shift)?,
        micros(end).checked_sub(shift)?,
    ))
}

fn period_range(period: &Json) -> Option<DateRange> {
    let start = period.get("start").and_then(Json::as_str);
    let end = period.get("end").and_then(Json::as_str);
    if start.is_none() && end.is_none() {
        return None;
    }
    Some(DateRange::new(
        match start {
            Some(s) => parse_date_value(s)?.start,
            None => NEG_INFINITY,
        },
        match end {
            Some(e) => parse_date_value(e)?.end,
            None => POS_INFINITY,
        },
    ))
}

fn timing_range(timing: &Json) -> Option<DateRange> {
    let events: Vec<DateRange> = timing
        .get("event")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .filter_map(Json::as_str)
        .filter_map(parse_date_value)
        .collect();
    if events.is_empty() {
        return period_range(timing.get("repeat")?.get("boundsPeriod")?);
    }
    Some(DateRange::new(
        events.iter().map(|r| r.start).min()?,
        events.iter().map(|r| r.end).max()?,
    ))
}

/// The range an element covers (search.html#date):
///
/// * `date`, `dateTime`, `instant` (and FHIRPath System Date/DateTime
///   values): their text's range per [`parse_date_value`];
/// * `Period`: from the start of `start` to the end of `end`; a missing
///   end is [`NEG_INFINITY`]/[`POS_INFINITY`] (`None` if both are missing);
/// * `Timing`: from the earliest `event` start to the latest event end,
///   or, without parseable events, `repeat.boundsPeriod` as a Period.
///
/// `None` for other elements and for unparseable values.
pub fn date_range(item: &Item<'_>) -> Option<DateRange> {
    if let Item::Date(d) | Item::DateTime(d) = item {
        return parse_date_value(&d.format_date_time());
    }
    match item.type_name() {
        "date" | "dateTime" | "instant" => parse_date_value(item.as_str()?),
        "Period" => period_range(item.json()?),
        "Timing" => timing_range(item.json()?),
        _ => None,
    }
}

/// Parses a date search parameter value: an optional prefix (`eq ne gt lt
/// ge le sa eb ap`, default `eq`) and a date, dateTime or instant at any
/// precision, with or without a time zone (without one the value is taken
/// as UTC; see [`parse_date_value`]). The caller URL-decodes first (a `+`
/// in an offset is `%2B` in a URL).
pub fn parse_date_param(text: &str) -> Result<(Prefix, DateRange), ValueError> {
    let (prefix, rest) = Prefix::split(text.trim());
    match parse_date_value(rest) {
        Some(r) => Ok((prefix, r)),
        None => Err(ValueError::new(format!(
            "'{text}' is not a date, dateTime or instant"
        ))),
    }
}

/// Whether a resource value covering `value` matches a date search with
/// `prefix` and range `search` (search.html#prefix):
///
/// * `eq`: `search` fully contains `value`; `ne`: it does not;
/// * `gt`: the range above `search` overlaps `value` (`value` ends after
///   `search` ends); `lt`: the range below `search` overlaps `value`;
/// * `ge`: `gt` or `eq`; `le`: `lt` or `eq`;
/// * `sa`: `value` does not overlap `search` and starts after it; `eb`:
///   `value` does not overlap `search` and ends before it;
/// * `ap`: `value` overlaps `search` widened on both sides by 10% of the
///   gap between `now` and `search` (zero when `now` falls inside
///   `search`, so then `ap` is plain overlap).
///
/// `now` is in the same unit as the ranges (UTC microseconds).
pub fn date_matches(prefix: Prefix, search: DateRange, value: DateRange, now: i64) -> bool {
    let eq = search.contains(value);
    let above = value.end > search.end;
    let below = value.start < search.start;
    match prefix {
        Prefix::Eq => eq,
        Prefix::Ne => !eq,
        Prefix::Gt => above,
        Prefix::Lt => below,
        Prefix::Ge => above || eq,
        Prefix::Le => below || eq,
        Prefix::Sa => value.start >= search.end,
        Prefix::Eb => value.end <= search.start,
        Prefix::Ap => {
            let gap = if now < search.start {
                i128::from(search.start) - i128::from(now)
            } else if now >= search.end {
                i128::from(now) - i128::from(search.end)
            } else {
                0
            };
            let margin = gap / 10;
            let start = i128::from(search.start) - margin;
            let end = i128::from(search.end) + margin;
            start < i128::from(value.end) && i128::from(value.start) < end
        }
    }
}

#[cfg(test)]
#[path = "date_tests.rs"]
mod tests;
