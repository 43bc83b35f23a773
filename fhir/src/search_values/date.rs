//! Date search values (search.html#date): every date, dateTime, instant,
//! Period and Timing is indexed as a half-open UTC range of microseconds
//! since the Unix epoch, and search prefixes compare such ranges.

use super::{Prefix, ValueError};
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

struct Cursor<'s> {
    s: &'s [u8],
    i: usize,
}

impl Cursor<'_> {
    fn digits(&mut self, n: usize) -> Option<u32> {
        let chunk = self.s.get(self.i..self.i + n)?;
        if !chunk.iter().all(u8::is_ascii_digit) {
            return None;
        }
        self.i += n;
        Some(
            chunk
                .iter()
                .fold(0, |acc, b| acc * 10 + u32::from(b - b'0')),
        )
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
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
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::fhirpath::{Env, Expression, evaluate};
    use chrono::DateTime;
    use serde_json::json;

    /// Micros of an RFC 3339 instant, or the open ends `-inf`/`+inf`.
    fn t(s: &str) -> i64 {
        match s {
            "-inf" => NEG_INFINITY,
            "+inf" => POS_INFINITY,
            _ => DateTime::parse_from_rfc3339(s).unwrap().timestamp_micros(),
        }
    }

    fn r(start: &str, end: &str) -> DateRange {
        DateRange::new(t(start), t(end))
    }

    #[track_caller]
    fn check(input: &str, expected: Option<(&str, &str)>) {
        let got = parse_date_value(input);
        assert_eq!(
            got,
            expected.map(|(s, e)| r(s, e)),
            "parse_date_value({input:?})"
        );
    }

    #[test]
    fn value_ranges_at_their_precision() {
        check(
            "1980",
            Some(("1980-01-01T00:00:00Z", "1981-01-01T00:00:00Z")),
        );
        check(
            "2020-02",
            Some(("2020-02-01T00:00:00Z", "2020-03-01T00:00:00Z")),
        );
        check(
            "2021-02",
            Some(("2021-02-01T00:00:00Z", "2021-03-01T00:00:00Z")),
        );
        check(
            "2020-12",
            Some(("2020-12-01T00:00:00Z", "2021-01-01T00:00:00Z")),
        );
        check(
            "2020-02-29",
            Some(("2020-02-29T00:00:00Z", "2020-03-01T00:00:00Z")),
        );
        check(
            "2000-02-29",
            Some(("2000-02-29T00:00:00Z", "2000-03-01T00:00:00Z")),
        );
        check("1900-02-29", None);
        check("2021-02-29", None);
        check("2020-04-31", None);
        check(
            "2020-12-31",
            Some(("2020-12-31T00:00:00Z", "2021-01-01T00:00:00Z")),
        );
        check(
            "2020-03-04T10Z",
            Some(("2020-03-04T10:00:00Z", "2020-03-04T11:00:00Z")),
        );
        check(
            "2020-03-04T10:00Z",
            Some(("2020-03-04T10:00:00Z", "2020-03-04T10:01:00Z")),
        );
        check(
            "2020-03-04T10:00:00Z",
            Some(("2020-03-04T10:00:00Z", "2020-03-04T10:00:01Z")),
        );
        check(
            "2020-03-04T10:00:00.1Z",
            Some(("2020-03-04T10:00:00.1Z", "2020-03-04T10:00:00.2Z")),
        );
        check(
            "2020-03-04T10:00:00.120Z",
            Some(("2020-03-04T10:00:00.12Z", "2020-03-04T10:00:00.121Z")),
        );
        check(
            "2020-03-04T10:00:00.123456Z",
            Some(("2020-03-04T10:00:00.123456Z", "2020-03-04T10:00:00.123457Z")),
        );
        check(
            "2020-03-04T10:00:00.1234567Z",
            Some(("2020-03-04T10:00:00.123456Z", "2020-03-04T10:00:00.123457Z")),
        );
        check(
            "2020-03-04T23:59:59.999Z",
            Some(("2020-03-04T23:59:59.999Z", "2020-03-05T00:00:00Z")),
        );
        check(
            "2020-12-31T23:59:59Z",
            Some(("2020-12-31T23:59:59Z", "2021-01-01T00:00:00Z")),
        );
    }

    #[test]
    fn value_ranges_with_time_zones() {
        check(
            "2020-02-29T23:30:00-05:00",
            Some(("2020-03-01T04:30:00Z", "2020-03-01T04:30:01Z")),
        );
        check(
            "2020-03-01T02:00:00+05:30",
            Some(("2020-02-29T20:30:00Z", "2020-02-29T20:30:01Z")),
        );
        check(
            "2020-01-01T00:00+14:00",
            Some(("2019-12-31T10:00:00Z", "2019-12-31T10:01:00Z")),
        );
        check(
            "2020-12-31T23:30:00-05:00",
            Some(("2021-01-01T04:30:00Z", "2021-01-01T04:30:01Z")),
        );
        check(
            "2024-02-28T22:00:00-03:00",
            Some(("2024-02-29T01:00:00Z", "2024-02-29T01:00:01Z")),
        );
        check(
            "2023-02-28T22:00:00-03:00",
            Some(("2023-03-01T01:00:00Z", "2023-03-01T01:00:01Z")),
        );
        check(
            "2020-01-01T00:00:00-00:00",
            Some(("2020-01-01T00:00:00Z", "2020-01-01T00:00:01Z")),
        );
        check(
            "2020-01-01T00:00:00+00:00",
            Some(("2020-01-01T00:00:00Z", "2020-01-01T00:00:01Z")),
        );
        check(
            "2020-06-15T12:00:00",
            Some(("2020-06-15T12:00:00Z", "2020-06-15T12:00:01Z")),
        );
        check(
            "2020-06-15T12:00:00.5",
            Some(("2020-06-15T12:00:00.5Z", "2020-06-15T12:00:00.6Z")),
        );
        check("2020-06-15T12:00:00+0200", None);
        check("2020-06-15T12:00:00+24:00", None);
        check("2020-06-15T12:00:00 02:00", None);
    }

    #[test]
    fn value_rejects_malformed() {
        for bad in [
            "",
            "20",
            "20201",
            "2020-1",
            "2020-13",
            "2020-00",
            "2020-01-1",
            "2020-01-00",
            "2020T10:00Z",
            "2020-01T10:00Z",
            "2020-01-01T",
            "2020-01-01T25:00Z",
            "2020-01-01T10:60Z",
            "2020-01-01T10:00:60Z",
            "2020-01-01T10:00:00.Z",
            "2020-01-01Z",
            "2020-01-01T10:00Zjunk",
            "abcd",
            "2020/01/01",
        ] {
            check(bad, None);
        }
    }

    #[track_caller]
    fn check_param(input: &str, expected: Option<(Prefix, &str, &str)>) {
        let got = parse_date_param(input).ok();
        assert_eq!(
            got,
            expected.map(|(p, s, e)| (p, r(s, e))),
            "parse_date_param({input:?})"
        );
    }

    #[test]
    fn params_with_prefixes() {
        check_param(
            "2020",
            Some((Prefix::Eq, "2020-01-01T00:00:00Z", "2021-01-01T00:00:00Z")),
        );
        check_param(
            "eq2020-03",
            Some((Prefix::Eq, "2020-03-01T00:00:00Z", "2020-04-01T00:00:00Z")),
        );
        check_param(
            "ne2020-03-04",
            Some((Prefix::Ne, "2020-03-04T00:00:00Z", "2020-03-05T00:00:00Z")),
        );
        check_param(
            "gt2020-03-04T10:00Z",
            Some((Prefix::Gt, "2020-03-04T10:00:00Z", "2020-03-04T10:01:00Z")),
        );
        check_param(
            "lt2020-03-04T10:00:00+01:00",
            Some((Prefix::Lt, "2020-03-04T09:00:00Z", "2020-03-04T09:00:01Z")),
        );
        check_param(
            "ge1980",
            Some((Prefix::Ge, "1980-01-01T00:00:00Z", "1981-01-01T00:00:00Z")),
        );
        check_param(
            "le1980-12",
            Some((Prefix::Le, "1980-12-01T00:00:00Z", "1981-01-01T00:00:00Z")),
        );
        check_param(
            "sa2020-02-29",
            Some((Prefix::Sa, "2020-02-29T00:00:00Z", "2020-03-01T00:00:00Z")),
        );
        check_param(
            "eb2020-02-29T23:30:00-05:00",
            Some((Prefix::Eb, "2020-03-01T04:30:00Z", "2020-03-01T04:30:01Z")),
        );
        check_param(
            "ap2020-06-15T12:00:00.250Z",
            Some((
                Prefix::Ap,
                "2020-06-15T12:00:00.25Z",
                "2020-06-15T12:00:00.251Z",
            )),
        );
        check_param("xx2020", None);
        check_param("eq", None);
        check_param("ge", None);
        check_param("gte2020", None);
        check_param("EQ2020", None);
        check_param("2021-02-29", None);
        assert!(
            parse_date_param("junk")
                .unwrap_err()
                .to_string()
                .contains("junk")
        );
    }

    /// Whether a value range matches `param` (parsed) with `now` fixed at
    /// 2020-01-01T00:00:00Z.
    #[track_caller]
    fn check_match(param: &str, value: (&str, &str), expected: bool) {
        let (prefix, search) = parse_date_param(param).unwrap();
        let now = t("2020-01-01T00:00:00Z");
        let got = date_matches(prefix, search, r(value.0, value.1), now);
        assert_eq!(got, expected, "{param} against {value:?}");
    }

    #[test]
    fn prefix_semantics() {
        let day = ("2020-03-04T00:00:00Z", "2020-03-05T00:00:00Z");
        let minute = ("2020-03-04T10:00:00Z", "2020-03-04T10:01:00Z");
        let open_end = ("2020-03-04T10:00:00Z", "+inf");
        let open_start = ("-inf", "2020-03-04T10:00:00Z");
        let straddle = ("2020-03-03T12:00:00Z", "2020-03-04T12:00:00Z");
        // eq: search range contains value range
        check_match("eq2020", minute, true);
        check_match("eq2020-03-04", minute, true);
        check_match("eq2020-03-04", day, true);
        check_match("eq2020-03-04T10:00Z", day, false);
        check_match("eq2020-03-04", straddle, false);
        check_match("eq2020-03-04", open_end, false);
        check_match("2020-03-05", minute, false);
        check_match("eq2020-03-04T10:00Z", minute, true);
        check_match("eq2020-03-04T05:00-05:00", minute, true);
        // ne: negation of eq
        check_match("ne2020-03-04", minute, false);
        check_match("ne2020-03-04", straddle, true);
        check_match("ne2020-03-05", minute, true);
        check_match("ne2020-03-04T10:00Z", day, true);
        // gt: value extends above the search range
        check_match("gt2020-03-04", minute, false);
        check_match("gt2020-03-03", minute, true);
        check_match("gt2020-03-04T09:59Z", minute, true);
        check_match("gt2020-03-04T10:00Z", minute, false);
        check_match("gt2020-03-04T10:00:30Z", minute, true);
        check_match("gt2020-03-04", open_end, true);
        check_match("gt2020-03-04", open_start, false);
        check_match("gt2020-03-03", straddle, true);
        // lt: value extends below the search range
        check_match("lt2020-03-04", minute, false);
        check_match("lt2020-03-05", minute, true);
        check_match("lt2020-03-04T10:01Z", minute, true);
        check_match("lt2020-03-04T10:00Z", minute, false);
        check_match("lt2020-03-04T10:00:30Z", minute, true);
        check_match("lt2020-03-04", straddle, true);
        check_match("lt2000", open_start, true);
        check_match("lt2030", open_end, true);
        check_match("lt2020-03-04T10:00Z", open_end, false);
        // ge: gt or eq
        check_match("ge2020-03-04", minute, true);
        check_match("ge2020-03-04T10:00Z", minute, true);
        check_match("ge2020-03-04T10:01Z", minute, false);
        check_match("ge2020-03-05", day, false);
        check_match("ge2020-03-04", straddle, false);
        check_match("ge2020-03-03", straddle, true);
        check_match("ge2020-03-04", open_start, false);
        // le: lt or eq
        check_match("le2020-03-04", minute, true);
        check_match("le2020-03-04T10:00Z", minute, true);
        check_match("le2020-03-04T09:59Z", minute, false);
        check_match("le2020-03-03", day, false);
        check_match("le2020-03-04", straddle, true);
        check_match("le2020-03-04", open_end, false);
        // sa: starts after the end of the search range (no overlap)
        check_match("sa2020-03-03", minute, true);
        check_match("sa2020-03-03", day, true);
        check_match("sa2020-03-04", minute, false);
        check_match("sa2020-03-04T09:59Z", minute, true);
        check_match("sa2020-03-04T10:00Z", minute, false);
        check_match("sa2020-03-03", straddle, false);
        check_match("sa2020-03-03", open_end, true);
        check_match("sa2020-03-03", open_start, false);
        // eb: ends before the start of the search range (no overlap)
        check_match("eb2020-03-05", minute, true);
        check_match("eb2020-03-04", minute, false);
        check_match("eb2020-03-04T10:01Z", minute, true);
        check_match("eb2020-03-04T10:00Z", minute, false);
        check_match("eb2020-03-04T10:00Z", open_start, true);
        check_match("eb2030", open_end, false);
        // ap: within 10% of the gap to now (2020-01-01); the search day
        // 2020-11-01 is 305 days away, so about 30.5 days either side
        check_match(
            "ap2020-11-01",
            ("2020-10-02T00:00:00Z", "2020-10-02T00:00:01Z"),
            true,
        );
        check_match(
            "ap2020-11-01",
            ("2020-09-30T00:00:00Z", "2020-09-30T00:00:01Z"),
            false,
        );
        check_match(
            "ap2020-11-01",
            ("2020-12-01T12:00:00Z", "2020-12-01T12:00:01Z"),
            true,
        );
        check_match(
            "ap2020-11-01",
            ("2020-12-03T00:00:00Z", "2020-12-03T00:00:01Z"),
            false,
        );
        // 2010-01-01 is ten years before now: about a year either side
        check_match(
            "ap2010-01-01",
            ("2009-02-01T00:00:00Z", "2009-02-02T00:00:00Z"),
            true,
        );
        check_match(
            "ap2010-01-01",
            ("2008-12-01T00:00:00Z", "2008-12-02T00:00:00Z"),
            false,
        );
        // now inside the search range: plain overlap
        check_match(
            "ap2020",
            ("2019-12-31T23:59:59Z", "2020-01-01T00:00:01Z"),
            true,
        );
        check_match(
            "ap2020",
            ("2019-12-31T23:59:59Z", "2020-01-01T00:00:00Z"),
            false,
        );
        check_match("ap2020", open_start, true);
        check_match("ap2020", ("2021-01-01T00:00:00Z", "+inf"), false);
    }

    fn ranges(resource: serde_json::Value, path: &str) -> Vec<Option<DateRange>> {
        let expr = Expression::parse(path).unwrap();
        let items = evaluate(&expr, &resource, &Env::new()).unwrap();
        items.iter().map(date_range).collect()
    }

    #[test]
    fn element_ranges() {
        let patient = json!({"resourceType": "Patient", "birthDate": "1980",
                             "name": [{"family": "X", "period": {"start": "2001-02-03"}}],
                             "deceasedDateTime": "2020-03-04T10:00Z"});
        assert_eq!(
            ranges(patient.clone(), "Patient.birthDate"),
            [Some(r("1980-01-01T00:00:00Z", "1981-01-01T00:00:00Z"))]
        );
        assert_eq!(
            ranges(patient.clone(), "Patient.deceased"),
            [Some(r("2020-03-04T10:00:00Z", "2020-03-04T10:01:00Z"))]
        );
        assert_eq!(
            ranges(patient.clone(), "Patient.name.period"),
            [Some(r("2001-02-03T00:00:00Z", "+inf"))]
        );
        assert_eq!(ranges(patient.clone(), "Patient.name"), [None]);
        assert_eq!(
            ranges(patient.clone(), "@2014-01-25T14:30"),
            [Some(r("2014-01-25T14:30:00Z", "2014-01-25T14:31:00Z"))]
        );
        assert_eq!(
            ranges(patient, "@2014-01"),
            [Some(r("2014-01-01T00:00:00Z", "2014-02-01T00:00:00Z"))]
        );
        let enc = json!({"resourceType": "Encounter", "status": "finished", "class": {"code": "x"},
                         "period": {"end": "2020-02-29T23:30:00-05:00"}});
        assert_eq!(
            ranges(enc, "Encounter.period"),
            [Some(r("-inf", "2020-03-01T04:30:01Z"))]
        );
        let enc = json!({"resourceType": "Encounter", "status": "finished", "class": {"code": "x"},
                         "period": {"start": "2020-01", "end": "2020-02-15"}});
        assert_eq!(
            ranges(enc, "Encounter.period"),
            [Some(r("2020-01-01T00:00:00Z", "2020-02-16T00:00:00Z"))]
        );
        let enc = json!({"resourceType": "Encounter", "status": "finished", "class": {"code": "x"},
                         "period": {"id": "p"}});
        assert_eq!(ranges(enc, "Encounter.period"), [None]);
        let req = json!({"resourceType": "MedicationRequest", "status": "active", "intent": "order",
                         "subject": {"reference": "Patient/1"},
                         "medicationCodeableConcept": {"text": "x"},
                         "dosageInstruction": [
                            {"timing": {"event": ["2020-05-02", "2020-05-01T08:00:00Z", "2020-06"]}},
                            {"timing": {"repeat": {"boundsPeriod": {"start": "2020-01-01", "end": "2020-01-31"}}}},
                            {"timing": {"repeat": {"boundsDuration": {"value": 5, "unit": "d"}}}}
                         ],
                         "authoredOn": "2020-04-30T12:00:00.5+02:00"});
        assert_eq!(
            ranges(req.clone(), "MedicationRequest.dosageInstruction.timing"),
            [
                Some(r("2020-05-01T08:00:00Z", "2020-07-01T00:00:00Z")),
                Some(r("2020-01-01T00:00:00Z", "2020-02-01T00:00:00Z")),
                None,
            ]
        );
        assert_eq!(
            ranges(req, "MedicationRequest.authoredOn"),
            [Some(r("2020-04-30T10:00:00.5Z", "2020-04-30T10:00:00.6Z"))]
        );
        let obs = json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                         "issued": "2020-03-04T10:00:00.123Z", "valueString": "2020"});
        assert_eq!(
            ranges(obs.clone(), "Observation.issued"),
            [Some(r(
                "2020-03-04T10:00:00.123Z",
                "2020-03-04T10:00:00.124Z"
            ))]
        );
        assert_eq!(ranges(obs, "Observation.value"), [None]);
    }
}
