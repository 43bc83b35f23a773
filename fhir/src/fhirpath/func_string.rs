//! String functions (`substring`, `matches`, `replace`, `split`, `encode`...)
//! and the conversion functions (`toInteger`, `convertsToDate`,
//! `toQuantity`...).

use super::EvalError;
use super::datetime::PartialDateTime;
use super::decimal::Decimal;
use super::eval::{Evaluator, Res, Scope, err, singleton};
use super::functions::{Func, arg, int_arg};
use super::parser::Expr;
use super::ucum::{Quantity, calendar_unit};
use super::value::{Collection, Item};
use base64::Engine as _;
use std::borrow::Cow;

/// The single string input of a string function (`None` when empty).
fn input_str<'a>(input: &[Item<'a>], what: &str) -> Result<Option<Cow<'a, str>>, EvalError> {
    match singleton(input, what)? {
        None => Ok(None),
        Some(x) => match x.to_system() {
            Some(Item::String(s)) => Ok(Some(s)),
            _ => err(format!("{what}() expects a string")),
        },
    }
}

/// A string argument; `None` when empty.
fn str_arg<'a>(
    ev: &Evaluator<'_, '_, 'a>,
    args: &'a [Expr],
    k: usize,
    scope: Scope<'_, 'a>,
) -> Result<Option<String>, EvalError> {
    let v = arg(ev, args, k, scope)?;
    match singleton(&v, "argument")? {
        None => Ok(None),
        Some(x) => x
            .as_str()
            .map(|s| Some(s.to_owned()))
            .ok_or_else(|| EvalError::new("expected a string argument")),
    }
}

fn string<'a>(s: impl Into<Cow<'a, str>>) -> Res<'a> {
    Ok(vec![Item::String(s.into())])
}

fn regex(pattern: &str, full: bool) -> Result<regex::Regex, EvalError> {
    let p = if full {
        format!("(?s)^(?:{pattern})$")
    } else {
        format!("(?s){pattern}")
    };
    regex::Regex::new(&p).map_err(|e| EvalError::new(format!("bad regular expression: {e}")))
}

fn char_index(s: &str, byte: usize) -> i64 {
    i64::try_from(s[..byte].chars().count()).unwrap_or(-1)
}

pub fn call<'a>(
    ev: &Evaluator<'_, '_, 'a>,
    func: Func,
    input: Collection<'a>,
    args: &'a [Expr],
    scope: Scope<'_, 'a>,
) -> Res<'a> {
    let name = func.name();
    match func {
        Func::Join => {
            let sep = str_arg(ev, args, 0, scope)?.unwrap_or_default();
            let parts: Option<Vec<Cow<'a, str>>> = input.iter().map(Item::to_text).collect();
            match parts {
                Some(p) => string(p.join(&sep)),
                None => err("join() expects strings"),
            }
        }
        Func::IndexOf
        | Func::LastIndexOf
        | Func::Substring
        | Func::StartsWith
        | Func::EndsWith
        | Func::Contains
        | Func::Upper
        | Func::Lower
        | Func::Replace
        | Func::Matches
        | Func::MatchesFull
        | Func::ReplaceMatches
        | Func::Length
        | Func::ToChars
        | Func::Trim
        | Func::Split
        | Func::Encode
        | Func::Decode
        | Func::Escape
        | Func::Unescape => {
            let Some(s) = input_str(&input, name)? else {
                return Ok(Vec::new());
            };
            string_fn(ev, func, s, args, scope)
        }
        Func::ToBoolean
        | Func::ToInteger
        | Func::ToDecimal
        | Func::ToStringFn
        | Func::ToDate
        | Func::ToDateTime
        | Func::ToTime
        | Func::ToQuantity => {
            let Some(x) = singleton(&input, name)? else {
                return Ok(Vec::new());
            };
            let unit = str_arg(ev, args, 0, scope)?;
            Ok(convert(func, x, unit.as_deref()).into_iter().collect())
        }
        Func::ConvertsToBoolean
        | Func::ConvertsToInteger
        | Func::ConvertsToDecimal
        | Func::ConvertsToString
        | Func::ConvertsToDate
        | Func::ConvertsToDateTime
        | Func::ConvertsToTime
        | Func::ConvertsToQuantity => {
            let Some(x) = singleton(&input, name)? else {
                return Ok(Vec::new());
            };
            let target = match func {
                Func::ConvertsToBoolean => Func::ToBoolean,
                Func::ConvertsToInteger => Func::ToInteger,
                Func::ConvertsToDecimal => Func::ToDecimal,
                Func::ConvertsToString => Func::ToStringFn,
                Func::ConvertsToDate => Func::ToDate,
                Func::ConvertsToDateTime => Func::ToDateTime,
                Func::ConvertsToTime => Func::ToTime,
                _ => Func::ToQuantity,
            };
            let unit = str_arg(ev, args, 0, scope)?;
            Ok(vec![Item::Boolean(
                convert(target, x, unit.as_deref()).is_some(),
            )])
        }
        _ => super::func_math::call(ev, func, input, args, scope),
    }
}

fn string_fn<'a>(
    ev: &Evaluator<'_, '_, 'a>,
    func: Func,
    s: Cow<'a, str>,
    args: &'a [Expr],
    scope: Scope<'_, 'a>,
) -> Res<'a> {
    let int = |v: i64| Ok(vec![Item::Integer(v)]);
    let boolean = |v: bool| Ok(vec![Item::Boolean(v)]);
    // Functions whose (first) argument is a string that may be empty.
    let a0 = || str_arg(ev, args, 0, scope);
    match func {
        Func::Length => int(i64::try_from(s.chars().count()).unwrap_or(i64::MAX)),
        Func::Upper => string(s.to_uppercase()),
        Func::Lower => string(s.to_lowercase()),
        Func::Trim => string(s.trim().to_owned()),
        Func::ToChars => Ok(s
            .chars()
            .map(|c| Item::String(Cow::Owned(c.to_string())))
            .collect()),
        Func::Substring => {
            let Some(start) = int_arg(ev, args, 0, scope)? else {
                return Ok(Vec::new());
            };
            let chars: Vec<char> = s.chars().collect();
            let Ok(start) = usize::try_from(start) else {
                return Ok(Vec::new());
            };
            if start >= chars.len() {
                return Ok(Vec::new());
            }
            let len = match args.get(1) {
                Some(_) => match int_arg(ev, args, 1, scope)? {
                    Some(l) => usize::try_from(l.max(0)).unwrap_or(0),
                    None => chars.len(),
                },
                None => chars.len(),
            };
            string(chars[start..].iter().take(len).collect::<String>())
        }
        _ => {
            let Some(a) = a0()? else {
                return Ok(Vec::new());
            };
            match func {
                Func::IndexOf => int(s.find(a.as_str()).map_or(-1, |b| char_index(&s, b))),
                Func::LastIndexOf => int(s.rfind(a.as_str()).map_or(-1, |b| char_index(&s, b))),
                Func::StartsWith => boolean(s.starts_with(a.as_str())),
                Func::EndsWith => boolean(s.ends_with(a.as_str())),
                Func::Contains => boolean(s.contains(a.as_str())),
                Func::Matches => boolean(regex(&a, false)?.is_match(&s)),
                Func::MatchesFull => boolean(regex(&a, true)?.is_match(&s)),
                Func::Split => Ok(s
                    .split(a.as_str())
                    .map(|p| Item::String(Cow::Owned(p.to_owned())))
                    .collect()),
                Func::Replace | Func::ReplaceMatches => {
                    let Some(with) = str_arg(ev, args, 1, scope)? else {
                        return Ok(Vec::new());
                    };
                    if func == Func::Replace {
                        string(s.replace(a.as_str(), &with))
                    } else if a.is_empty() {
                        string(s)
                    } else {
                        string(
                            regex(&a, false)?
                                .replace_all(&s, with.as_str())
                                .into_owned(),
                        )
                    }
                }
                Func::Encode => string(encode(&a, s.as_bytes())?),
                Func::Decode => {
                    let bytes = decode(&a, &s)?;
                    Ok(String::from_utf8(bytes)
                        .ok()
                        .map(|t| Item::String(Cow::Owned(t)))
                        .into_iter()
                        .collect())
                }
                Func::Escape => string(escape(&a, &s)?),
                Func::Unescape => string(unescape(&a, &s)?),
                _ => err(format!("{}() is not a string function", func.name())),
            }
        }
    }
}

fn encode(format: &str, bytes: &[u8]) -> Result<String, EvalError> {
    Ok(match format {
        "base64" => base64::engine::general_purpose::STANDARD.encode(bytes),
        "urlbase64" => base64::engine::general_purpose::URL_SAFE.encode(bytes),
        "hex" => bytes.iter().map(|b| format!("{b:02x}")).collect(),
        _ => return err(format!("unknown encoding '{format}'")),
    })
}

fn decode(format: &str, text: &str) -> Result<Vec<u8>, EvalError> {
    let bad = |_| EvalError::new("invalid encoded text");
    match format {
        "base64" => base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(bad),
        "urlbase64" => base64::engine::general_purpose::URL_SAFE
            .decode(text)
            .map_err(bad),
        "hex" => (0..text.len())
            .step_by(2)
            .map(|i| {
                text.get(i..i + 2)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| EvalError::new("invalid hex"))
            })
            .collect(),
        _ => err(format!("unknown encoding '{format}'")),
    }
}

fn escape(format: &str, s: &str) -> Result<String, EvalError> {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match (format, c) {
            ("html", '<') => out.push_str("&lt;"),
            ("html", '>') => out.push_str("&gt;"),
            ("html", '&') => out.push_str("&amp;"),
            ("html", '"') => out.push_str("&quot;"),
            ("html", '\'') => out.push_str("&#39;"),
            ("json", '"') => out.push_str("\\\""),
            ("json", '\\') => out.push_str("\\\\"),
            ("json", '\n') => out.push_str("\\n"),
            ("json", '\r') => out.push_str("\\r"),
            ("json", '\t') => out.push_str("\\t"),
            ("html" | "json", c) => out.push(c),
            _ => return err(format!("unknown escape target '{format}'")),
        }
    }
    Ok(out)
}

fn unescape(format: &str, s: &str) -> Result<String, EvalError> {
    match format {
        "html" => Ok(s
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&amp;", "&")),
        "json" => {
            let mut out = String::with_capacity(s.len());
            let mut chars = s.chars();
            while let Some(c) = chars.next() {
                if c != '\\' {
                    out.push(c);
                    continue;
                }
                match chars.next() {
                    Some('n') => out.push('\n'),
                    Some('r') => out.push('\r'),
                    Some('t') => out.push('\t'),
                    Some(o) => out.push(o),
                    None => {}
                }
            }
            Ok(out)
        }
        _ => err(format!("unknown escape target '{format}'")),
    }
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "t" | "yes" | "y" | "1" | "1.0" => Some(true),
        "false" | "f" | "no" | "n" | "0" | "0.0" => Some(false),
        _ => None,
    }
}

fn is_integer_text(s: &str) -> bool {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// Parses `'1.5 \'mg\''`-style quantity text: a number and an optional
/// quoted UCUM unit or calendar keyword.
pub fn parse_quantity(s: &str) -> Option<Quantity> {
    let s = s.trim();
    let split = s.find(' ').unwrap_or(s.len());
    let (num, rest) = (&s[..split], s[split..].trim());
    let value = Decimal::parse(num.strip_prefix('+').unwrap_or(num))?;
    if rest.is_empty() {
        return Some(Quantity::new(value, "1"));
    }
    if let Some(unit) = rest.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')) {
        return Some(Quantity::new(value, unit));
    }
    calendar_unit(rest).map(|_| Quantity::new(value, rest))
}

/// A `toX()` conversion of one item; `None` when not convertible.
pub fn convert<'a>(func: Func, x: &Item<'a>, unit: Option<&str>) -> Option<Item<'a>> {
    let v = x.to_system()?;
    match func {
        Func::ToBoolean => match v {
            Item::Boolean(b) => Some(Item::Boolean(b)),
            Item::Integer(1) => Some(Item::Boolean(true)),
            Item::Integer(0) => Some(Item::Boolean(false)),
            Item::Decimal(d) if d == Decimal::new(1, 0) => Some(Item::Boolean(true)),
            Item::Decimal(d) if d.is_zero() => Some(Item::Boolean(false)),
            Item::String(s) => parse_bool(&s).map(Item::Boolean),
            _ => None,
        },
        Func::ToInteger => match v {
            Item::Integer(i) => Some(Item::Integer(i)),
            Item::Boolean(b) => Some(Item::Integer(i64::from(b))),
            Item::String(s) if is_integer_text(&s) => s.parse().ok().map(Item::Integer),
            _ => None,
        },
        Func::ToDecimal => match v {
            Item::Integer(i) => Some(Item::Decimal(Decimal::from_i64(i))),
            Item::Decimal(d) => Some(Item::Decimal(d)),
            Item::Boolean(b) => Some(Item::Decimal(Decimal::new(i128::from(b) * 10, 1))),
            Item::String(s) if !s.contains(['e', 'E']) => {
                Decimal::parse(s.strip_prefix('+').unwrap_or(&s)).map(Item::Decimal)
            }
            _ => None,
        },
        Func::ToStringFn => x.to_text().map(Item::String),
        Func::ToDate => match v {
            Item::Date(d) | Item::DateTime(d) => Some(Item::Date(d.date_part())),
            Item::String(s) => {
                PartialDateTime::parse_date_time(&s, true).map(|d| Item::Date(d.date_part()))
            }
            _ => None,
        },
        Func::ToDateTime => match v {
            Item::Date(d) | Item::DateTime(d) => Some(Item::DateTime(d)),
            Item::String(s) => PartialDateTime::parse_date_time(&s, true).map(Item::DateTime),
            _ => None,
        },
        Func::ToTime => match v {
            Item::Time(t) => Some(Item::Time(t)),
            Item::String(s) => PartialDateTime::parse_time(&s).map(Item::Time),
            _ => None,
        },
        Func::ToQuantity => {
            let q = match v {
                Item::Integer(i) => Quantity::new(Decimal::from_i64(i), "1"),
                Item::Decimal(d) => Quantity::new(d, "1"),
                Item::Boolean(b) => Quantity::new(Decimal::new(i128::from(b) * 10, 1), "1"),
                Item::Quantity(q) => *q,
                Item::String(s) => parse_quantity(&s)?,
                _ => return None,
            };
            let q = match unit {
                Some(u) => Quantity::new(Decimal::ZERO, u).convert_to_unit_of(&q)?,
                None => q,
            };
            Some(Item::Quantity(Box::new(q)))
        }
        _ => None,
    }
}
