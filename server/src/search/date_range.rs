//! FHIR date, dateTime and instant values as half-open UTC ranges at their
//! precision (search.html#date): `2020` is the whole year, `2020-03-04T10:00Z`
//! is that minute.

use chrono::{
    DateTime, Duration, FixedOffset, Months, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc,
};

/// Parses a date/dateTime/instant into `[start, end)`. Values without a
/// timezone are taken as UTC. Returns `None` for malformed input.
pub fn parse_range(raw: &str) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let (date_part, time_part) = match raw.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (raw, None),
    };
    let pieces: Vec<&str> = date_part.split('-').collect();
    let year: i32 = digits(pieces.first()?, 4)?;
    match (pieces.len(), time_part) {
        (1, None) => {
            let start = NaiveDate::from_ymd_opt(year, 1, 1)?;
            Some(utc_range(start, start.checked_add_months(Months::new(12))?))
        }
        (2, None) => {
            let start = NaiveDate::from_ymd_opt(year, digits(pieces[1], 2)?, 1)?;
            Some(utc_range(start, start.checked_add_months(Months::new(1))?))
        }
        (3, None) => {
            let start =
                NaiveDate::from_ymd_opt(year, digits(pieces[1], 2)?, digits(pieces[2], 2)?)?;
            Some(utc_range(start, start.succ_opt()?))
        }
        (3, Some(time)) => {
            let date = NaiveDate::from_ymd_opt(year, digits(pieces[1], 2)?, digits(pieces[2], 2)?)?;
            parse_time_range(date, time)
        }
        _ => None,
    }
}

fn parse_time_range(date: NaiveDate, time: &str) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let (clock, offset) = split_offset(time)?;
    let fields: Vec<&str> = clock.split(':').collect();
    let hour: u32 = digits(fields.first()?, 2)?;
    let minute: u32 = digits(fields.get(1)?, 2)?;
    let (second, nanos, width) = match fields.get(2) {
        None => (0, 0, Duration::minutes(1)),
        Some(sec) => match sec.split_once('.') {
            None => (digits(sec, 2)?, 0, Duration::seconds(1)),
            Some((whole, frac)) => {
                if frac.is_empty() || frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                let scale = 10u32.pow(9 - frac.len() as u32);
                let nanos = frac.parse::<u32>().ok()? * scale;
                (
                    digits(whole, 2)?,
                    nanos,
                    Duration::nanoseconds(i64::from(scale)),
                )
            }
        },
    };
    if fields.len() > 3 {
        return None;
    }
    let naive = NaiveDateTime::new(
        date,
        NaiveTime::from_hms_nano_opt(hour, minute, second, nanos)?,
    );
    let start = offset
        .from_local_datetime(&naive)
        .single()?
        .with_timezone(&Utc);
    Some((start, start + width))
}

fn split_offset(time: &str) -> Option<(&str, FixedOffset)> {
    if let Some(clock) = time.strip_suffix('Z') {
        return Some((clock, FixedOffset::east_opt(0)?));
    }
    if let Some(pos) = time.rfind(['+', '-']) {
        let (clock, tz) = time.split_at(pos);
        let sign = if tz.starts_with('-') { -1 } else { 1 };
        let (h, m) = tz[1..].split_once(':')?;
        let secs = sign * (digits::<i32>(h, 2)? * 3600 + digits::<i32>(m, 2)? * 60);
        return Some((clock, FixedOffset::east_opt(secs)?));
    }
    Some((time, FixedOffset::east_opt(0)?))
}

fn digits<T: std::str::FromStr>(s: &str, width: usize) -> Option<T> {
    (s.len() == width && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

fn utc_range(start: NaiveDate, end: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
    let midnight = NaiveTime::MIN;
    (
        Utc.from_utc_datetime(&start.and_time(midnight)),
        Utc.from_utc_datetime(&end.and_time(midnight)),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn check(raw: &str, start: &str, end: &str) {
        let (s, e) = parse_range(raw).unwrap_or_else(|| panic!("{raw} did not parse"));
        assert_eq!(s.to_rfc3339(), start, "{raw} start");
        assert_eq!(e.to_rfc3339(), end, "{raw} end");
    }

    #[test]
    fn ranges_follow_precision() {
        check(
            "2020",
            "2020-01-01T00:00:00+00:00",
            "2021-01-01T00:00:00+00:00",
        );
        check(
            "2020-02",
            "2020-02-01T00:00:00+00:00",
            "2020-03-01T00:00:00+00:00",
        );
        check(
            "2020-02-29",
            "2020-02-29T00:00:00+00:00",
            "2020-03-01T00:00:00+00:00",
        );
        check(
            "2020-02-29T10:00+02:00",
            "2020-02-29T08:00:00+00:00",
            "2020-02-29T08:01:00+00:00",
        );
        check(
            "2020-02-29T10:00:05Z",
            "2020-02-29T10:00:05+00:00",
            "2020-02-29T10:00:06+00:00",
        );
        check(
            "2020-02-29T10:00:05.5Z",
            "2020-02-29T10:00:05.500+00:00",
            "2020-02-29T10:00:05.600+00:00",
        );
    }

    #[test]
    fn malformed_values_are_rejected() {
        for bad in [
            "20",
            "2020-13",
            "2021-02-29",
            "2020-01-01T25:00Z",
            "2020-01-01T10",
            "x",
            "2020-01-01T10:00:00.Z",
        ] {
            assert!(parse_range(bad).is_none(), "{bad}");
        }
    }
}
