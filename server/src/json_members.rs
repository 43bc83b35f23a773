//! The top-level members of a JSON object, found without parsing the
//! rest of it. The audit trail needs a resource's `subject` and `patient`
//! for every resource a search returns, and a forward `_include` the
//! references of one element of each match: parsing each page of
//! resources again, even into nothing (`serde::de::IgnoredAny`), cost as
//! much as a twentieth of the server's time on the search mix
//! (docs/search.md). Nested values are skipped by counting brackets
//! outside strings, and strings by finding their closing quote.
//!
//! The text is expected to be valid JSON (a stored resource: its column is
//! `json`). Anything this scanner does not follow, a key holding an escape
//! or text that is not a well-formed object, gives `None`, and the caller
//! parses the text properly instead.

use memchr::memchr2;

/// Calls `found(name, value)` for each top-level member of the object
/// `text` named in `names`, with the value's text, in document order.
/// `None` when the text is not followed (see the module's comment).
pub fn members<'a>(
    text: &'a str,
    names: &[&str],
    mut found: impl FnMut(&'a str, &'a str),
) -> Option<()> {
    let bytes = text.as_bytes();
    let mut at = skip_space(bytes, 0);
    if bytes.get(at) != Some(&b'{') {
        return None;
    }
    at = skip_space(bytes, at + 1);
    if bytes.get(at) == Some(&b'}') {
        return (skip_space(bytes, at + 1) == bytes.len()).then_some(());
    }
    loop {
        if bytes.get(at) != Some(&b'"') {
            return None;
        }
        let end = string_end(bytes, at)?;
        let key = &text[at + 1..end - 1];
        if key.contains('\\') {
            return None;
        }
        at = skip_space(bytes, end);
        if bytes.get(at) != Some(&b':') {
            return None;
        }
        let start = skip_space(bytes, at + 1);
        let stop = value_end(bytes, start)?;
        if names.contains(&key) {
            found(key, &text[start..stop]);
        }
        at = skip_space(bytes, stop);
        match bytes.get(at) {
            Some(b',') => at = skip_space(bytes, at + 1),
            Some(b'}') => return (skip_space(bytes, at + 1) == bytes.len()).then_some(()),
            _ => return None,
        }
    }
}

fn skip_space(bytes: &[u8], mut at: usize) -> usize {
    while bytes
        .get(at)
        .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
    {
        at += 1;
    }
    at
}

/// The index after the closing quote of the string opening at `at`.
fn string_end(bytes: &[u8], at: usize) -> Option<usize> {
    let mut from = at + 1;
    loop {
        let hit = from + memchr2(b'"', b'\\', bytes.get(from..)?)?;
        if bytes[hit] == b'"' {
            return Some(hit + 1);
        }
        // An escape: the next byte is escaped (`\"`, `\\`, `\u`...).
        from = hit + 2;
    }
}

/// The index after the value starting at `at`.
fn value_end(bytes: &[u8], at: usize) -> Option<usize> {
    match bytes.get(at)? {
        b'"' => string_end(bytes, at),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut i = at;
            while let Some(&b) = bytes.get(i) {
                match b {
                    b'"' => {
                        i = string_end(bytes, i)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            None
        }
        // A number, true, false or null: up to the next delimiter.
        _ => {
            let mut i = at;
            while bytes
                .get(i)
                .is_some_and(|b| !matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))
            {
                i += 1;
            }
            (i > at).then_some(i)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::members;

    fn scan(text: &str) -> Option<Vec<(String, String)>> {
        let mut out = Vec::new();
        members(text, &["subject", "patient"], |k, v| {
            out.push((k.to_owned(), v.to_owned()))
        })?;
        Some(out)
    }

    fn pairs(list: &[(&str, &str)]) -> Option<Vec<(String, String)>> {
        Some(
            list.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn finds_top_level_members_only() {
        assert_eq!(
            scan(
                r#"{"resourceType":"Observation","code":{"text":"a\"}{[subject"},"subject":{"reference":"Patient/p"},"note":[{"subject":1}]}"#
            ),
            pairs(&[("subject", r#"{"reference":"Patient/p"}"#)])
        );
        assert_eq!(
            scan(
                " {\n \"patient\" : [ {\"reference\":\"Patient/a\"} , 3 ] ,\"subject\":null,\"x\":-1.5e3 }\n"
            ),
            pairs(&[
                ("patient", r#"[ {"reference":"Patient/a"} , 3 ]"#),
                ("subject", "null")
            ])
        );
        assert_eq!(
            scan(r#"{"a":"\\","subject":"s"}"#),
            pairs(&[("subject", "\"s\"")])
        );
        assert_eq!(scan("{}"), pairs(&[]));
        assert_eq!(scan(r#"{"a":true,"b":[[],{}]}"#), pairs(&[]));
    }

    #[test]
    fn refuses_what_it_does_not_follow() {
        for text in [
            "",
            "[]",
            r#"{"subj\u0065ct":{}}"#,
            r#"{"a":1"#,
            r#"{"a":[1}"#,
            r#"{"a":"open}"#,
            r#"{"a":1,}"#,
            r#"{"a" 1}"#,
            r#"{"a":}"#,
            r#"{"a":1} x"#,
            r#"{"a":{"b":1}}}"#,
        ] {
            assert_eq!(scan(text), None, "{text}");
        }
    }
}
