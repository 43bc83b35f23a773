//! Primitive datatype checks (datatypes.html#primitive): the JSON type each
//! primitive must have, and its lexical form, written by hand to match the
//! regexes in the R4 primitive StructureDefinitions, plus the rules those
//! regexes cannot express (real calendar dates, integer ranges, xhtml sanity).

use crate::definitions::Primitive;
use serde_json::Value;

/// Why a primitive value is invalid.
pub(crate) type Reason = String;

const MAX_STRING_LEN: usize = 1024 * 1024;

/// Checks one JSON value (never `null`) against a primitive type.
pub(crate) fn check(primitive: Primitive, value: &Value) -> Result<(), Reason> {
    match primitive {
        Primitive::Boolean => match value {
            Value::Bool(_) => Ok(()),
            _ => Err(format!(
                "expected JSON true or false, found {}",
                describe(value)
            )),
        },
        Primitive::Integer | Primitive::PositiveInt | Primitive::UnsignedInt => {
            check_integer(primitive, value)
        }
        Primitive::Decimal => match value {
            Value::Number(n) if is_decimal(n.as_str()) => Ok(()),
            Value::Number(n) => Err(format!("'{}' is not a valid decimal", n.as_str())),
            _ => Err(format!(
                "a decimal must be a JSON number, found {}",
                describe(value)
            )),
        },
        _ => match value {
            Value::String(s) => check_string(primitive, s),
            _ => Err(format!(
                "a {} must be a JSON string, found {}",
                primitive.code(),
                describe(value)
            )),
        },
    }
}

/// Whether the JSON type (not the content) fits the primitive.
pub(crate) fn json_type_ok(primitive: Primitive, value: &Value) -> bool {
    match primitive {
        Primitive::Boolean => value.is_boolean(),
        Primitive::Integer
        | Primitive::PositiveInt
        | Primitive::UnsignedInt
        | Primitive::Decimal => value.is_number(),
        _ => value.is_string(),
    }
}

pub(crate) fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn check_integer(primitive: Primitive, value: &Value) -> Result<(), Reason> {
    let code = primitive.code();
    let Value::Number(n) = value else {
        return Err(format!(
            "a {code} must be a JSON number, found {}",
            describe(value)
        ));
    };
    let text = n.as_str();
    let signed = primitive == Primitive::Integer;
    let digits = if signed {
        text.strip_prefix('-').unwrap_or(text)
    } else {
        text
    };
    let lexical_ok = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    if !lexical_ok {
        return Err(format!(
            "'{text}' is not a valid {code} (whole number expected)"
        ));
    }
    let (min, max) = match primitive {
        Primitive::PositiveInt => (1, i64::from(i32::MAX)),
        Primitive::UnsignedInt => (0, i64::from(i32::MAX)),
        _ => (i64::from(i32::MIN), i64::from(i32::MAX)),
    };
    match text.parse::<i64>() {
        Ok(v) if (min..=max).contains(&v) => Ok(()),
        _ => Err(format!("{text} is out of range for {code} ({min}..{max})")),
    }
}

/// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
fn is_decimal(s: &str) -> bool {
    let s = s.strip_prefix('-').unwrap_or(s);
    let int_len = s.bytes().take_while(u8::is_ascii_digit).count();
    if int_len == 0 || (int_len > 1 && s.starts_with('0')) {
        return false;
    }
    let mut rest = &s[int_len..];
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return false;
        }
        rest = &frac[n..];
    }
    if let Some(exp) = rest.strip_prefix(['e', 'E']) {
        let exp = exp.strip_prefix(['+', '-']).unwrap_or(exp);
        return !exp.is_empty() && exp.bytes().all(|b| b.is_ascii_digit());
    }
    rest.is_empty()
}

fn check_string(primitive: Primitive, s: &str) -> Result<(), Reason> {
    if s.is_empty() {
        return Err("empty strings are not allowed; omit the element instead".into());
    }
    if let Some(c) = s
        .chars()
        .find(|c| (*c as u32) < 32 && !matches!(c, '\t' | '\r' | '\n'))
    {
        return Err(format!(
            "control character U+{:04X} is not allowed in a {}",
            c as u32,
            primitive.code()
        ));
    }
    if primitive == Primitive::String
        && s.len() > MAX_STRING_LEN
        && s.chars().count() > MAX_STRING_LEN
    {
        return Err(format!(
            "longer than the maximum of {MAX_STRING_LEN} characters"
        ));
    }
    let ok = match primitive {
        Primitive::String | Primitive::Markdown => true,
        Primitive::Code => is_code(s),
        Primitive::Id => crate::id::is_valid_id(s),
        Primitive::Uri | Primitive::Url | Primitive::Canonical => !s.chars().any(is_regex_ws),
        Primitive::Oid => s.strip_prefix("urn:oid:").is_some_and(is_oid),
        Primitive::Uuid => s.strip_prefix("urn:uuid:").is_some_and(is_lower_uuid),
        Primitive::Base64Binary => is_base64(s),
        Primitive::Date => return check_date(s, DateForm::Date),
        Primitive::DateTime => return check_date(s, DateForm::DateTime),
        Primitive::Instant => return check_date(s, DateForm::Instant),
        Primitive::Time => parse_time(s.as_bytes()).filter(|n| *n == s.len()).is_some(),
        Primitive::Xhtml => return check_xhtml(s),
        Primitive::Boolean
        | Primitive::Integer
        | Primitive::PositiveInt
        | Primitive::UnsignedInt
        | Primitive::Decimal => true,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "'{}' is not a valid {}",
            truncate(s),
            primitive.code()
        ))
    }
}

fn truncate(s: &str) -> &str {
    match s.char_indices().nth(80) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// `\s` of the spec's regexes (XML Schema / Java semantics): ASCII whitespace
/// only, so U+00A0 is an ordinary character.
fn is_regex_ws(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0C' | '\x0B')
}

/// `[^\s]+(\s[^\s]+)*`: no leading, trailing or repeated whitespace.
fn is_code(s: &str) -> bool {
    let mut previous_ws = true;
    for c in s.chars() {
        let ws = is_regex_ws(c);
        if ws && previous_ws {
            return false;
        }
        previous_ws = ws;
    }
    !previous_ws
}

/// `[0-2](\.(0|[1-9][0-9]*))+` (after `urn:oid:`).
fn is_oid(s: &str) -> bool {
    let mut arcs = s.split('.');
    let first_ok = matches!(arcs.next(), Some("0" | "1" | "2"));
    let mut count = 0;
    let rest_ok = arcs.all(|arc| {
        count += 1;
        !arc.is_empty()
            && arc.bytes().all(|b| b.is_ascii_digit())
            && (arc == "0" || !arc.starts_with('0'))
    });
    first_ok && rest_ok && count > 0
}

/// `[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}` (after `urn:uuid:`).
fn is_lower_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_digit() || (b'a'..=b'f').contains(c),
        })
}

/// `(\s*([0-9a-zA-Z\+/=]){4}\s*)+`, with `=` only as trailing padding.
fn is_base64(s: &str) -> bool {
    let mut n = 0usize;
    let mut padding = 0usize;
    for b in s.bytes() {
        match b {
            b' ' | b'\t' | b'\r' | b'\n' | b'\x0c' => continue,
            b'=' => padding += 1,
            _ if padding > 0 => return false,
            b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z' | b'+' | b'/' => {}
            _ => return false,
        }
        n += 1;
    }
    n > 0 && n % 4 == 0 && padding <= 2
}

#[derive(Clone, Copy, PartialEq)]
enum DateForm {
    Date,
    DateTime,
    Instant,
}

fn check_date(s: &str, form: DateForm) -> Result<(), Reason> {
    let b = s.as_bytes();
    let name = match form {
        DateForm::Date => "date",
        DateForm::DateTime => "dateTime",
        DateForm::Instant => "instant",
    };
    let bad = || -> Reason {
        let expected = match form {
            DateForm::Date => "YYYY, YYYY-MM or YYYY-MM-DD",
            DateForm::DateTime => "YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm:ss(.sss)+zz:zz",
            DateForm::Instant => "YYYY-MM-DDThh:mm:ss(.sss)+zz:zz",
        };
        format!(
            "'{}' is not a valid {name} (expected {expected})",
            truncate(s)
        )
    };
    let year = digits(b, 0, 4).filter(|y| *y != 0).ok_or_else(bad)?;
    let mut pos = 4;
    let mut parts = 1;
    if b.get(pos) == Some(&b'-') {
        let month = digits(b, pos + 1, 2)
            .filter(|m| (1..=12).contains(m))
            .ok_or_else(bad)?;
        pos += 3;
        parts = 2;
        if b.get(pos) == Some(&b'-') {
            let day = digits(b, pos + 1, 2).filter(|d| *d >= 1).ok_or_else(bad)?;
            if day > 31 {
                return Err(bad());
            }
            if day > days_in_month(year, month) {
                return Err(format!(
                    "'{s}' is not a valid {name}: {year:04}-{month:02} has no day {day}"
                ));
            }
            pos += 3;
            parts = 3;
        }
    }
    if pos == b.len() {
        return if form == DateForm::Instant {
            Err(bad())
        } else {
            Ok(())
        };
    }
    if form == DateForm::Date || parts != 3 || b[pos] != b'T' {
        return Err(bad());
    }
    pos += 1;
    pos += parse_time(&b[pos..]).ok_or_else(bad)?;
    let rest = &b[pos..];
    if rest.is_empty() {
        return Err(format!(
            "'{s}' is not a valid {name}: a time zone (Z or +hh:mm) is required when a time is given"
        ));
    }
    is_timezone(rest).then_some(()).ok_or_else(bad)
}

/// `([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?`; returns the
/// number of bytes matched.
fn parse_time(b: &[u8]) -> Option<usize> {
    digits(b, 0, 2).filter(|h| *h <= 23)?;
    (b.get(2) == Some(&b':')).then_some(())?;
    digits(b, 3, 2).filter(|m| *m <= 59)?;
    (b.get(5) == Some(&b':')).then_some(())?;
    digits(b, 6, 2).filter(|s| *s <= 60)?;
    let mut pos = 8;
    if b.get(pos) == Some(&b'.') {
        let n = b[pos + 1..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        if n == 0 {
            return None;
        }
        pos += 1 + n;
    }
    Some(pos)
}

/// `Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00)`
fn is_timezone(b: &[u8]) -> bool {
    if b == b"Z" {
        return true;
    }
    if b.len() != 6 || !matches!(b[0], b'+' | b'-') || b[3] != b':' {
        return false;
    }
    match (digits(b, 1, 2), digits(b, 4, 2)) {
        (Some(h), Some(m)) => (h <= 13 && m <= 59) || (h == 14 && m == 0),
        _ => false,
    }
}

fn digits(b: &[u8], at: usize, n: usize) -> Option<u32> {
    let slice = b.get(at..at + n)?;
    slice.iter().try_fold(0u32, |acc, c| {
        c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
    })
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Basic xhtml sanity for `Narrative.div` (not full XHTML validation): a
/// single `<div ...>...</div>` element.
fn check_xhtml(s: &str) -> Result<(), Reason> {
    let t = s.trim();
    let opens = t
        .strip_prefix("<div")
        .and_then(|rest| rest.chars().next())
        .is_some_and(|c| c == '>' || c.is_whitespace() || c == '/');
    if !opens || !t.ends_with("</div>") {
        return Err("narrative div must be xhtml starting with <div and ending with </div>".into());
    }
    Ok(())
}

/// A warning for a well-formed narrative div whose opening tag does not
/// declare the XHTML namespace (narrative.html requires it).
pub(crate) fn xhtml_warning(value: &Value) -> Option<&'static str> {
    let opening = value.as_str()?.trim_start().split('>').next()?;
    let declared = opening.contains("xmlns=\"http://www.w3.org/1999/xhtml\"")
        || opening.contains("xmlns='http://www.w3.org/1999/xhtml'");
    (!declared).then_some("narrative div should declare xmlns=\"http://www.w3.org/1999/xhtml\"")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ok(p: Primitive, v: Value) -> bool {
        check(p, &v).is_ok()
    }

    #[test]
    fn dates() {
        for s in ["2023", "2023-02", "2023-02-28", "2024-02-29", "0001"] {
            assert!(ok(Primitive::Date, json!(s)), "{s}");
        }
        for s in [
            "0000",
            "2023-02-30",
            "2023-13",
            "2023-1-01",
            "23",
            "2023-02-28T10:00:00Z",
            "2100-02-29",
        ] {
            assert!(!ok(Primitive::Date, json!(s)), "{s}");
        }
    }

    #[test]
    fn date_times_and_instants() {
        for s in [
            "2015",
            "2015-02-07T13:28:17-05:00",
            "2017-01-01T00:00:00.123456Z",
            "2015-02-07T13:28:17+14:00",
        ] {
            assert!(ok(Primitive::DateTime, json!(s)), "{s}");
        }
        for s in [
            "2015-02-07T13:28:17",
            "2015-02-07T13:28Z",
            "2015-02T10:00:00Z",
            "2015-02-07T24:00:00Z",
            "2015-02-07T13:28:17+14:30",
        ] {
            assert!(!ok(Primitive::DateTime, json!(s)), "{s}");
        }
        assert!(ok(
            Primitive::Instant,
            json!("2015-02-07T13:28:17.239+02:00")
        ));
        assert!(!ok(Primitive::Instant, json!("2015-02-07")));
        assert!(ok(Primitive::Time, json!("23:59:60.5")));
        assert!(!ok(Primitive::Time, json!("23:59")));
    }

    #[test]
    fn numbers() {
        let n = |s: &str| -> Value { serde_json::from_str(s).unwrap() };
        assert!(ok(Primitive::Decimal, n("1.50")));
        assert!(ok(Primitive::Decimal, n("-1e-3")));
        assert!(!ok(Primitive::Decimal, json!("1.5")));
        assert!(ok(Primitive::Integer, n("-2147483648")));
        assert!(!ok(Primitive::Integer, n("2147483648")));
        assert!(!ok(Primitive::Integer, n("1.0")));
        assert!(!ok(Primitive::Integer, n("1e2")));
        assert!(!ok(Primitive::PositiveInt, n("0")));
        assert!(ok(Primitive::UnsignedInt, n("0")));
        assert!(!ok(Primitive::UnsignedInt, n("-1")));
        assert!(!ok(Primitive::Integer, json!("1")));
    }

    #[test]
    fn strings() {
        assert!(ok(Primitive::Code, json!("a b")));
        for bad in [" a", "a ", "a  b", ""] {
            assert!(!ok(Primitive::Code, json!(bad)), "{bad:?}");
        }
        assert!(ok(Primitive::String, json!(" padded \n")));
        assert!(!ok(Primitive::String, json!("bell\u{7}")));
        assert!(!ok(Primitive::Uri, json!("http://a b")));
        assert!(ok(Primitive::Oid, json!("urn:oid:1.2.3")));
        assert!(!ok(Primitive::Oid, json!("1.2.3")));
        assert!(ok(
            Primitive::Uuid,
            json!("urn:uuid:a76d9bbf-f293-4fb7-ad4c-2851cac77162")
        ));
        assert!(!ok(
            Primitive::Uuid,
            json!("urn:uuid:A76D9BBF-F293-4FB7-AD4C-2851CAC77162")
        ));
        assert!(ok(Primitive::Base64Binary, json!("SGVsbG8=")));
        assert!(!ok(Primitive::Base64Binary, json!("SGVsbG8")));
        assert!(!ok(Primitive::Base64Binary, json!("SG=sbG8=")));
        assert!(ok(
            Primitive::Xhtml,
            json!("<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>")
        ));
        assert!(!ok(Primitive::Xhtml, json!("<p>x</p>")));
        assert!(!ok(Primitive::Id, json!("a_b")));
    }
}
