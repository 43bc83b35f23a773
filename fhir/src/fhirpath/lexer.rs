//! The FHIRPath tokenizer: identifiers (plain and `delimited`), string,
//! number and `@` date/time literals, `%` constants, `$` variables,
//! operators and punctuation; comments are skipped.

use super::ParseError;

#[derive(Clone, Debug, PartialEq)]
pub enum Token {
    /// A plain identifier or keyword (`where`, `and`, `true`).
    Ident(String),
    /// A backtick-delimited identifier (never a keyword).
    Delimited(String),
    Str(String),
    /// Number text and whether it has a fractional part.
    Number(String, bool),
    /// Date/time literal text after `@` (`2015-02-04`, `T14:30`).
    DateTime(String),
    /// `%name`, `%`quoted``, `%'quoted'`.
    Constant(String),
    /// `$this`, `$index`, `$total`.
    Var(String),
    Op(&'static str),
}

#[derive(Clone, Debug)]
pub struct Spanned {
    pub token: Token,
    pub pos: usize,
}

const OPS: [&str; 21] = [
    "<=", ">=", "!=", "!~", "(", ")", "[", "]", "{", "}", ".", ",", "+", "-", "*", "/", "&", "|",
    "=", "~", "<",
];

pub fn tokenize(src: &str) -> Result<Vec<Spanned>, ParseError> {
    let bytes = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let err = |pos: usize, msg: &str| ParseError::new(pos, msg);
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if src[i..].starts_with("//") {
            i = src[i..].find('\n').map_or(bytes.len(), |k| i + k);
            continue;
        }
        if src[i..].starts_with("/*") {
            let end = src[i + 2..]
                .find("*/")
                .ok_or_else(|| err(i, "unterminated comment"))?;
            i += end + 4;
            continue;
        }
        let start = i;
        let token = if c.is_ascii_alphabetic() || c == b'_' {
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            Token::Ident(src[start..i].to_owned())
        } else if c == b'`' {
            let (s, next) = quoted(src, i, b'`')?;
            i = next;
            Token::Delimited(s)
        } else if c == b'\'' {
            let (s, next) = quoted(src, i, b'\'')?;
            i = next;
            Token::Str(s)
        } else if c.is_ascii_digit() {
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            let mut frac = false;
            if i + 1 < bytes.len() && bytes[i] == b'.' && bytes[i + 1].is_ascii_digit() {
                frac = true;
                i += 1;
                while i < bytes.len() && bytes[i].is_ascii_digit() {
                    i += 1;
                }
            }
            Token::Number(src[start..i].to_owned(), frac)
        } else if c == b'@' {
            i += 1;
            let end = date_time_end(bytes, i);
            if end == i {
                return Err(err(start, "empty date/time literal"));
            }
            i = end;
            Token::DateTime(src[start + 1..i].to_owned())
        } else if c == b'%' {
            i += 1;
            match bytes.get(i) {
                Some(b'`') | Some(b'\'') => {
                    let (s, next) = quoted(src, i, bytes[i])?;
                    i = next;
                    Token::Constant(s)
                }
                _ => {
                    let s = i;
                    while i < bytes.len()
                        && (bytes[i].is_ascii_alphanumeric()
                            || bytes[i] == b'_'
                            || bytes[i] == b'-')
                    {
                        i += 1;
                    }
                    if s == i {
                        return Err(err(start, "empty external constant"));
                    }
                    Token::Constant(src[s..i].to_owned())
                }
            }
        } else if c == b'$' {
            i += 1;
            let s = i;
            while i < bytes.len() && bytes[i].is_ascii_alphanumeric() {
                i += 1;
            }
            Token::Var(src[s..i].to_owned())
        } else if let Some(op) = OPS.iter().find(|op| src[i..].starts_with(**op)) {
            i += op.len();
            Token::Op(op)
        } else if c == b'>' {
            i += 1;
            Token::Op(">")
        } else {
            return Err(err(i, "unexpected character"));
        };
        out.push(Spanned { token, pos: start });
    }
    Ok(out)
}

/// End of a date/time literal starting at `i` (after `@`).
fn date_time_end(b: &[u8], mut i: usize) -> usize {
    let digit = |i: usize| b.get(i).is_some_and(u8::is_ascii_digit);
    let time = |mut i: usize| {
        // hh(:mm(:ss(.fff)?)?)?
        if digit(i) && digit(i + 1) {
            i += 2;
            if b.get(i) == Some(&b':') && digit(i + 1) && digit(i + 2) {
                i += 3;
                if b.get(i) == Some(&b':') && digit(i + 1) && digit(i + 2) {
                    i += 3;
                    if b.get(i) == Some(&b'.') && digit(i + 1) {
                        i += 1;
                        while digit(i) {
                            i += 1;
                        }
                    }
                }
            }
        }
        i
    };
    if b.get(i) == Some(&b'T') {
        return time(i + 1);
    }
    let start = i;
    while digit(i) && i - start < 4 {
        i += 1;
    }
    if i - start < 4 {
        return i;
    }
    for _ in 0..2 {
        if b.get(i) == Some(&b'-') && digit(i + 1) && digit(i + 2) {
            i += 3;
        } else {
            break;
        }
    }
    if b.get(i) == Some(&b'T') {
        i = time(i + 1);
        if b.get(i) == Some(&b'Z') {
            i += 1;
        } else if matches!(b.get(i), Some(b'+') | Some(b'-'))
            && digit(i + 1)
            && digit(i + 2)
            && b.get(i + 3) == Some(&b':')
            && digit(i + 4)
            && digit(i + 5)
        {
            i += 6;
        }
    }
    i
}

/// Reads a quoted string or identifier with FHIRPath escapes; returns the
/// text and the index after the closing quote.
fn quoted(src: &str, start: usize, quote: u8) -> Result<(String, usize), ParseError> {
    let mut out = String::new();
    let mut chars = src[start + 1..].char_indices();
    while let Some((k, ch)) = chars.next() {
        let pos = start + 1 + k;
        if ch as u32 == u32::from(quote) {
            return Ok((out, pos + 1));
        }
        if ch != '\\' {
            out.push(ch);
            continue;
        }
        let Some((_, esc)) = chars.next() else { break };
        match esc {
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'f' => out.push('\u{c}'),
            'u' => {
                let hex: String = (0..4)
                    .filter_map(|_| chars.next().map(|(_, c)| c))
                    .collect();
                let code = u32::from_str_radix(&hex, 16)
                    .ok()
                    .and_then(char::from_u32)
                    .ok_or_else(|| ParseError::new(pos, "bad unicode escape"))?;
                out.push(code);
            }
            other => out.push(other),
        }
    }
    Err(ParseError::new(start, "unterminated string"))
}
