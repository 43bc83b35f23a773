//! Reading DHIS2 JSON: fields that have two names (the legacy API's and the
//! 2.36+ tracker's), values sent as strings or numbers, and DHIS2 dates and
//! timestamps (local time without an offset) turned into FHIR ones.

use chrono::{NaiveDate, NaiveDateTime, Timelike};
use serde_json::Value;

/// The first of `names` that holds a non-empty string (or a number).
pub fn text(object: &Value, names: &[&str]) -> Option<String> {
    names
        .iter()
        .filter_map(|name| object.get(*name))
        .find_map(scalar)
}

/// A JSON scalar as text; empty strings count as absent.
pub fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(text) if !text.trim().is_empty() => Some(text.trim().to_owned()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

/// The array under `name`, if there is one.
pub fn array<'a>(object: &'a Value, name: &str) -> Option<&'a [Value]> {
    object
        .get(name)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
}

/// A DHIS2 date or timestamp as a FHIR `date` or `dateTime`.
///
/// DHIS2 sends `2024-03-05`, `2024-03-05T00:00:00.000` (local time of the
/// server, no offset) or, from newer versions, a `Z` or offset. A local
/// midnight becomes the date alone (DHIS2 stores dates as midnight); any
/// other local time gets `offset`.
pub fn date_time(text: &str, offset: &str) -> Result<String, String> {
    let bad = || format!("{text:?} is not a DHIS2 date or timestamp");
    // Spreadsheets write `2024-01-15 09:30`.
    let spaced;
    let text = if text.as_bytes().get(10) == Some(&b' ') {
        spaced = format!("{}T{}", &text[..10], &text[11..]);
        spaced.as_str()
    } else {
        text
    };
    if text.len() == 10 {
        let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| bad())?;
        return Ok(date.format("%Y-%m-%d").to_string());
    }
    let (local, zone) = split_zone(text);
    let parsed = ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(local, format).ok())
        .ok_or_else(bad)?;
    let midnight = parsed.time().num_seconds_from_midnight() == 0 && parsed.nanosecond() == 0;
    if zone.is_none() && midnight {
        return Ok(parsed.format("%Y-%m-%d").to_string());
    }
    let zone = match zone {
        Some("Z") | Some("+00:00") => "Z".to_owned(),
        Some(zone) => zone.to_owned(),
        None => offset.to_owned(),
    };
    let fraction = if parsed.nanosecond() == 0 {
        String::new()
    } else {
        parsed.format("%.3f").to_string()
    };
    Ok(format!(
        "{}{fraction}{zone}",
        parsed.format("%Y-%m-%dT%H:%M:%S")
    ))
}

/// The date part of a DHIS2 date or timestamp, as a FHIR `date`.
pub fn date(text: &str) -> Result<String, String> {
    let day = text.get(..10).unwrap_or(text);
    let rest_ok = text.len() == 10 || text.as_bytes().get(10) == Some(&b'T');
    match NaiveDate::parse_from_str(day, "%Y-%m-%d") {
        Ok(date) if rest_ok => Ok(date.format("%Y-%m-%d").to_string()),
        _ => Err(format!("{text:?} is not a DHIS2 date")),
    }
}

/// Splits a trailing `Z` or `±hh:mm` off a timestamp.
fn split_zone(text: &str) -> (&str, Option<&str>) {
    if let Some(local) = text.strip_suffix('Z') {
        return (local, Some("Z"));
    }
    if text.len() > 16 {
        let (local, zone) = text.split_at(text.len() - 6);
        let bytes = zone.as_bytes();
        if matches!(bytes[0], b'+' | b'-') && bytes[3] == b':' {
            return (local, Some(zone));
        }
    }
    (text, None)
}

#[cfg(test)]
mod tests {
    use super::{date, date_time};

    #[test]
    fn dhis2_timestamps_become_fhir_dates_or_date_times() {
        let cases = [
            ("2024-03-05", "2024-03-05"),
            ("2024-03-05T00:00:00.000", "2024-03-05"),
            ("2024-03-05T09:30:00.000", "2024-03-05T09:30:00+03:00"),
            ("2024-03-05T09:30:15.250", "2024-03-05T09:30:15.250+03:00"),
            ("2024-03-05T09:30", "2024-03-05T09:30:00+03:00"),
            ("2024-03-05 09:30", "2024-03-05T09:30:00+03:00"),
            ("2024-03-05T09:30:00.000Z", "2024-03-05T09:30:00Z"),
            ("2024-03-05T00:00:00Z", "2024-03-05T00:00:00Z"),
            ("2024-03-05T09:30:00-05:00", "2024-03-05T09:30:00-05:00"),
        ];
        for (input, expected) in cases {
            assert_eq!(
                date_time(input, "+03:00").as_deref(),
                Ok(expected),
                "{input}"
            );
        }
        for bad in ["2024-02-30", "05/03/2024", "2024-03-05T25:00:00", ""] {
            assert!(date_time(bad, "Z").is_err(), "{bad}");
        }
    }

    #[test]
    fn dates_drop_the_time() {
        assert_eq!(date("1998-07-14T00:00:00.000").as_deref(), Ok("1998-07-14"));
        assert_eq!(date("1998-07-14").as_deref(), Ok("1998-07-14"));
        assert!(date("1998-13-14").is_err());
        assert!(date("1998-07-14x").is_err());
    }
}
