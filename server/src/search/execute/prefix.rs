//! "Starts with" as a range of a `text_pattern_ops` index. LIKE is not
//! leakproof, so on a table under row-level security PostgreSQL may not use
//! it (nor the range it derives from it) to scan an index before the
//! policy's check, and a prefix search would read every row of the
//! parameter. The `~>=~` and `~<~` operators are leakproof.

/// `column` starts with the text bound as `low`; `high` is the bound
/// [`successor`] of the same text, if any.
pub fn condition(column: &str, low: &str, high: Option<&str>) -> String {
    match high {
        Some(high) => format!("({column} ~>=~ {low} AND {column} ~<~ {high})"),
        None => format!("{column} ~>=~ {low}"),
    }
}

/// The least string above every string that starts with `prefix`, in byte
/// order (which UTF-8 keeps in code point order): `prefix` with its last
/// character incremented. `None` when there is none.
pub fn successor(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match u32::from(last) + 1 {
            0xD800 => 0xE000,
            n => n,
        };
        if let Some(next) = char::from_u32(next) {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::successor;

    #[test]
    fn successor_bounds_every_string_with_the_prefix() {
        assert_eq!(successor("smi").as_deref(), Some("smj"));
        assert_eq!(successor("a\u{7f}").as_deref(), Some("a\u{80}"));
        assert_eq!(successor("o\u{d7ff}").as_deref(), Some("o\u{e000}"));
        assert_eq!(successor("z\u{10ffff}").as_deref(), Some("{"));
        assert_eq!(successor("\u{10ffff}"), None);
        assert_eq!(successor(""), None);
    }
}
