//! DHIS2 ISO period identifiers (`20240131`, `2024W5`, `2024AprilS1`, ...)
//! parsed into exact first and last days, as the DHIS2 period types define
//! them for the ISO 8601 calendar (Web API "Date and period format").
//!
//! Weeks follow `java.time.WeekFields.of(startDay, 4)`, which DHIS2 uses:
//! week 1 is the week (starting on its start day) that contains 4 January,
//! so a year has 52 or 53 of them. Bi-weeks pair ISO weeks (BiW n = weeks
//! 2n-1 and 2n), 26 a year. The November-based types are named after the
//! year they end in: `2024NovS1` is November 2023 to April 2024, and
//! `2024Nov` is November 2023 to October 2024.

use chrono::{Datelike, Days, NaiveDate, Weekday};
use serde_json::{Value, json};
use std::fmt;

/// The first and last day of a period (both inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeriodRange {
    pub start: NaiveDate,
    pub end: NaiveDate,
}

impl PeriodRange {
    /// The FHIR `Period` (date precision: `end` covers its whole day).
    pub fn to_fhir(&self) -> Value {
        json!({
            "start": self.start.format("%Y-%m-%d").to_string(),
            "end": self.end.format("%Y-%m-%d").to_string(),
        })
    }
}

/// A period identifier that names no DHIS2 period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeriodError {
    pub value: String,
    pub reason: String,
}

impl fmt::Display for PeriodError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid DHIS2 period {:?}: {}", self.value, self.reason)
    }
}

impl std::error::Error for PeriodError {}

/// Parses a DHIS2 ISO period identifier.
pub fn parse_period(iso: &str) -> Result<PeriodRange, PeriodError> {
    let fail = |reason: &str| PeriodError {
        value: iso.to_owned(),
        reason: reason.to_owned(),
    };
    let (year_text, rest) = match (iso.get(..4), iso.get(4..)) {
        (Some(year), Some(rest)) if year.bytes().all(|b| b.is_ascii_digit()) => (year, rest),
        _ => return Err(fail("expected a four-digit year first")),
    };
    let year: i32 = year_text
        .parse()
        .map_err(|_| fail("expected a four-digit year first"))?;
    parse_suffix(year, rest).map_err(|reason| fail(&reason))
}

/// Everything after the year; the error is the reason only.
fn parse_suffix(year: i32, rest: &str) -> Result<PeriodRange, String> {
    if rest.is_empty() {
        return months_from(year, 1, 12);
    }
    if rest.bytes().all(|b| b.is_ascii_digit()) {
        return match rest.len() {
            2 => months_from(year, number(rest, 1, 12, "month")?, 1),
            4 => {
                let month = number(&rest[..2], 1, 12, "month")?;
                let day = number(&rest[2..], 1, 31, "day")?;
                let date = NaiveDate::from_ymd_opt(year, month, day)
                    .ok_or_else(|| format!("{year}-{month:02}-{day:02} is not a calendar date"))?;
                Ok(PeriodRange {
                    start: date,
                    end: date,
                })
            }
            _ => Err("digits after the year must be a month (MM) or a day (MMdd)".into()),
        };
    }
    if let Some(month) = rest.strip_suffix('B') {
        if month.len() == 2 && month.bytes().all(|b| b.is_ascii_digit()) {
            let month = number(month, 1, 12, "bi-month start")?;
            if month % 2 == 0 {
                return Err("a bi-month starts in an odd month (01, 03, ..., 11)".into());
            }
            return months_from(year, month, 2);
        }
    }
    match rest {
        "April" => return months_from(year, 4, 12),
        "July" => return months_from(year, 7, 12),
        "Oct" => return months_from(year, 10, 12),
        "Nov" => return months_from(year - 1, 11, 12),
        _ => {}
    }
    for (prefix, first_month_of_first, length) in [
        ("Q", (year, 1), 3),
        ("NovQ", (year - 1, 11), 3),
        ("S", (year, 1), 6),
        ("AprilS", (year, 4), 6),
        ("NovS", (year - 1, 11), 6),
    ] {
        if let Some(index) = indexed(rest, prefix) {
            let count = 12 / length;
            let index = number(index, 1, count, "period number")?;
            let (first_year, first_month) = first_month_of_first;
            let offset = (index - 1) * length;
            return months_from(first_year, first_month + offset, length);
        }
    }
    if let Some(index) = indexed(rest, "BiW") {
        let index = number(index, 1, 26, "bi-week number")?;
        let start = week_one(year, Weekday::Mon) + Days::new(u64::from(index - 1) * 14);
        return Ok(PeriodRange {
            start,
            end: start + Days::new(13),
        });
    }
    for (prefix, start_day) in [
        ("WedW", Weekday::Wed),
        ("ThuW", Weekday::Thu),
        ("SatW", Weekday::Sat),
        ("SunW", Weekday::Sun),
        ("W", Weekday::Mon),
    ] {
        if let Some(index) = indexed(rest, prefix) {
            let first = week_one(year, start_day);
            let next_first = week_one(year + 1, start_day);
            let weeks = u32::try_from((next_first - first).num_days() / 7).unwrap_or(52);
            let index = number(index, 1, weeks, "week number")?;
            let start = first + Days::new(u64::from(index - 1) * 7);
            return Ok(PeriodRange {
                start,
                end: start + Days::new(6),
            });
        }
    }
    Err(
        "not a DHIS2 period format (daily, weekly, bi-weekly, monthly, bi-monthly, \
         quarterly, six-monthly, yearly or financial year)"
            .into(),
    )
}

/// The digits after `prefix`, when `rest` is exactly `prefix` and digits.
fn indexed<'a>(rest: &'a str, prefix: &str) -> Option<&'a str> {
    rest.strip_prefix(prefix)
        .filter(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
}

/// A one- or two-digit number within `min..=max`.
fn number(text: &str, min: u32, max: u32, what: &str) -> Result<u32, String> {
    if text.is_empty() || text.len() > 2 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("expected a {what} after the year"));
    }
    let value: u32 = text
        .parse()
        .map_err(|_| format!("expected a {what} after the year"))?;
    if value < min || value > max {
        return Err(format!("{what} {value} is outside {min}..={max}"));
    }
    Ok(value)
}

/// `length` months starting at month `month` of `year`, where `month` may
/// run past 12 into the following year.
fn months_from(year: i32, month: u32, length: u32) -> Result<PeriodRange, String> {
    let start = first_of(year, month)?;
    let after = first_of(year, month + length)?;
    let end = after
        .pred_opt()
        .ok_or_else(|| "date out of range".to_owned())?;
    Ok(PeriodRange { start, end })
}

/// The first day of month `month` (1-based, may exceed 12) counted from `year`.
fn first_of(year: i32, month: u32) -> Result<NaiveDate, String> {
    let zero_based = month - 1;
    let year = year + i32::try_from(zero_based / 12).unwrap_or(0);
    NaiveDate::from_ymd_opt(year, zero_based % 12 + 1, 1).ok_or_else(|| "date out of range".into())
}

/// The first day of week 1 for weeks starting on `start_day`: the start of
/// the week that contains 4 January.
fn week_one(year: i32, start_day: Weekday) -> NaiveDate {
    let jan4 = NaiveDate::from_ymd_opt(year, 1, 4).unwrap_or_default();
    let back = (i64::from(jan4.weekday().num_days_from_monday())
        - i64::from(start_day.num_days_from_monday()))
    .rem_euclid(7);
    jan4 - Days::new(u64::try_from(back).unwrap_or(0))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
