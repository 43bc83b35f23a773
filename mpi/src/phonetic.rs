//! Phonetic codes and name equivalences: Double Metaphone (primary and
//! alternate codes) and the nickname table (`data/nicknames.csv`), both used
//! by comparison and by blocking.
//!
//! Double Metaphone comes from the `rphonetic` crate, a port of Apache
//! commons-codec's implementation of Lawrence Philips' published algorithm
//! (codes of at most four characters, as commons-codec by default).

use std::collections::HashMap;
use std::sync::OnceLock;

use rphonetic::DoubleMetaphone;

/// The primary and alternate Double Metaphone codes of a word.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Metaphone {
    pub primary: String,
    pub alternate: String,
}

impl Metaphone {
    /// True when any code of one equals any code of the other (the usual
    /// Double Metaphone match), ignoring empty codes.
    pub fn matches(&self, other: &Metaphone) -> bool {
        let ours = [&self.primary, &self.alternate];
        let theirs = [&other.primary, &other.alternate];
        ours.iter()
            .any(|a| !a.is_empty() && theirs.iter().any(|b| a == b))
    }
}

fn encoder() -> &'static DoubleMetaphone {
    static ENCODER: OnceLock<DoubleMetaphone> = OnceLock::new();
    ENCODER.get_or_init(|| DoubleMetaphone::new(Some(4)))
}

/// Double Metaphone of a word. Non-ASCII letters are dropped first: callers
/// pass folded names (`normalize::fold`), which are ASCII already.
pub fn double_metaphone(word: &str) -> Metaphone {
    let ascii: String = word.chars().filter(char::is_ascii_alphabetic).collect();
    if ascii.is_empty() {
        return Metaphone::default();
    }
    let result = encoder().double_metaphone(&ascii);
    Metaphone {
        primary: result.primary(),
        alternate: result.alternate(),
    }
}

/// Given names that are the same name: each name maps to its group's
/// canonical (first) form.
#[derive(Debug, Clone)]
pub struct Nicknames {
    canonical: HashMap<String, String>,
}

const BUILT_IN: &str = include_str!("../data/nicknames.csv");

impl Nicknames {
    /// The table shipped with the crate (`data/nicknames.csv`).
    pub fn built_in() -> &'static Nicknames {
        static TABLE: OnceLock<Nicknames> = OnceLock::new();
        TABLE.get_or_init(|| Nicknames::parse(BUILT_IN))
    }

    /// Parses one group per line, names separated by commas, `#` comments.
    /// A name listed in two groups keeps its first group.
    pub fn parse(text: &str) -> Nicknames {
        let mut canonical = HashMap::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let names: Vec<String> = line
                .split(',')
                .map(crate::normalize::fold)
                .filter(|n| !n.is_empty())
                .collect();
            let Some(first) = names.first() else { continue };
            for name in &names {
                canonical
                    .entry(name.clone())
                    .or_insert_with(|| first.clone());
            }
        }
        Nicknames { canonical }
    }

    /// The canonical form of a folded given name (the name itself when it
    /// is in no group).
    pub fn canonical<'a>(&'a self, name: &'a str) -> &'a str {
        self.canonical.get(name).map_or(name, String::as_str)
    }

    /// True when two different folded names are in the same group.
    pub fn equivalent(&self, a: &str, b: &str) -> bool {
        a != b && self.canonical.contains_key(a) && self.canonical(a) == self.canonical(b)
    }

    /// The other names of a folded name's group.
    pub fn variants(&self, name: &str) -> Vec<&str> {
        let canonical = self.canonical(name);
        let mut out: Vec<&str> = self
            .canonical
            .iter()
            .filter(|(n, c)| c.as_str() == canonical && n.as_str() != name)
            .map(|(n, _)| n.as_str())
            .collect();
        out.sort_unstable();
        out
    }

    /// The number of names in the table.
    pub fn len(&self) -> usize {
        self.canonical.len()
    }

    /// True when the table is empty.
    pub fn is_empty(&self) -> bool {
        self.canonical.is_empty()
    }
}
