//! The text filter of `$expand`: displays and designations are split into
//! folded words (lowercase, accents removed) stored in `term_words`; a
//! filter matches a concept when each of its words is the prefix of one of
//! the concept's words. Matches are ranked: the whole display equal to the
//! filter, then the display starting with it, then every filter word
//! starting a word, then (small code systems only) the filter inside the
//! display; shorter displays first within a rank.

use fhir::search_values::fold_string;

/// The distinct folded words of `text`, in order.
pub fn words(text: &str) -> Vec<String> {
    let folded = fold_string(text);
    let mut out: Vec<String> = Vec::new();
    for word in folded.split(|c: char| !c.is_alphanumeric()) {
        if !word.is_empty() && !out.iter().any(|w| w == word) {
            out.push(word.to_owned());
        }
    }
    out
}

/// The smallest string greater than every string starting with `prefix`
/// (for a range scan `word >= prefix AND word < upper`), under the byte
/// order of the `C` collation.
pub fn prefix_upper_bound(prefix: &str) -> String {
    let mut s = prefix.to_owned();
    s.push(char::MAX);
    s
}

/// How well a display matches a filter: lower is better; `None` when it
/// does not match at all.
pub fn rank(filter: &str, display: &str) -> Option<u8> {
    let filter = fold_string(filter.trim());
    let display_folded = fold_string(display);
    if filter.is_empty() {
        return Some(0);
    }
    if display_folded == filter {
        return Some(0);
    }
    if display_folded.starts_with(&filter) {
        return Some(1);
    }
    let display_words = words(display);
    let filter_words = words(&filter);
    if !filter_words.is_empty()
        && filter_words
            .iter()
            .all(|f| display_words.iter().any(|d| d.starts_with(f.as_str())))
    {
        return Some(2);
    }
    if display_folded.contains(&filter) {
        return Some(3);
    }
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn words_are_folded_and_distinct() {
        assert_eq!(words("Müller-Lyer  müller, X2"), ["muller", "lyer", "x2"]);
        assert!(words("  ").is_empty());
    }

    #[test]
    fn ranks_exact_then_prefix_then_word_then_contains() {
        for (filter, display, expected) in [
            ("male", "Male", Some(0)),
            ("mal", "Male", Some(1)),
            ("fem", "Female", Some(1)),
            ("diab mel", "Type 2 diabetes mellitus", Some(2)),
            ("betes", "Type 2 diabetes mellitus", Some(3)),
            ("xyz", "Male", None),
            ("diab foo", "Type 2 diabetes mellitus", None),
        ] {
            assert_eq!(rank(filter, display), expected, "{filter} / {display}");
        }
    }

    #[test]
    fn the_upper_bound_follows_every_word_with_the_prefix() {
        let upper = prefix_upper_bound("diab");
        assert!("diabetes" < upper.as_str());
        assert!("diab" < upper.as_str());
        assert!("diac" > upper.as_str());
    }
}
