//! Blocking keys: the strings under which the server indexes a record and
//! looks up its candidates (any shared key makes a candidate pair). Several
//! kinds are OR-ed, each robust to different corruptions; names enter as
//! Double Metaphone codes of the canonical nickname form and in sorted
//! order, so nicknames, spelling variants and swapped given/family names
//! keep their keys.

use std::collections::HashMap;

use serde::Serialize;

use crate::features::Features;

/// A blocking key: `<kind>:<value>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct BlockKey(pub String);

impl BlockKey {
    /// The kind prefix ("id", "ph", "ny", …).
    pub fn kind(&self) -> &str {
        self.0.split(':').next().unwrap_or_default()
    }
}

/// Kinds of key, for reports: (prefix, meaning).
pub const KINDS: &[(&str, &str)] = &[
    ("id", "identifier system and value"),
    ("ph", "phone number"),
    (
        "ny",
        "one name code + the other name's initial + birth year",
    ),
    (
        "nd",
        "one name code + full birth date (day/month unordered)",
    ),
    ("md", "both name codes + day/month (no year)"),
    ("nl", "one name code + the other name's initial + district"),
    (
        "in",
        "both initials + full birth date (day/month unordered)",
    ),
];

/// The blocking keys of a record, without duplicates.
pub fn blocking_keys(f: &Features) -> Vec<BlockKey> {
    let mut keys = Vec::with_capacity(10);
    for id in &f.identifiers {
        keys.push(format!("id:{}|{}", id.system, id.value));
    }
    for phone in &f.phones {
        keys.push(format!("ph:{phone}"));
    }
    let given = f
        .given
        .as_ref()
        .map(|g| g.first_metaphone.primary.as_str())
        .filter(|c| !c.is_empty());
    let family = f
        .family
        .as_ref()
        .map(|n| n.metaphone.primary.as_str())
        .filter(|c| !c.is_empty());
    let names = match (given, family) {
        (Some(g), Some(n)) if g <= n => Some(format!("{g}+{n}")),
        (Some(g), Some(n)) => Some(format!("{n}+{g}")),
        _ => None,
    };
    // Each name part's code with the other part's initial: one corrupted
    // part leaves the other's key intact.
    let code_and_initial: Vec<String> =
        match (given, family, initial_of_given(f), initial_of_family(f)) {
            (Some(g), Some(n), Some(gi), Some(ni)) => {
                vec![format!("{g}/{ni}"), format!("{n}/{gi}")]
            }
            _ => Vec::new(),
        };
    let date = f.birth_date.as_ref();
    // Day and month in ascending order, so a transposed date keeps its key.
    let day_month = date.and_then(|d| {
        let (m, d) = (d.month?, d.day?);
        Some(if m <= d {
            format!("{m:02}{d:02}")
        } else {
            format!("{d:02}{m:02}")
        })
    });
    if let Some(date) = date {
        for key in &code_and_initial {
            keys.push(format!("ny:{key}|{}", date.year));
        }
    }
    if let (Some(date), Some(day_month)) = (date, &day_month) {
        for code in [given, family].into_iter().flatten() {
            keys.push(format!("nd:{code}|{}{day_month}", date.year));
        }
        if let Some(names) = &names {
            keys.push(format!("md:{names}|{day_month}"));
        }
        if let Some(initials) = initials(f) {
            keys.push(format!("in:{initials}|{}{day_month}", date.year));
        }
    }
    if let Some(place) = f.district.as_ref().or(f.city.as_ref()) {
        for key in &code_and_initial {
            keys.push(format!("nl:{key}|{place}"));
        }
    }
    keys.sort();
    keys.dedup();
    keys.into_iter().map(BlockKey).collect()
}

fn initial_of_given(f: &Features) -> Option<char> {
    f.given.as_ref()?.canonical.chars().next()
}

fn initial_of_family(f: &Features) -> Option<char> {
    f.family.as_ref()?.full.chars().next()
}

/// Both initials in ascending order (the given name's from its canonical
/// nickname form).
fn initials(f: &Features) -> Option<String> {
    let g = initial_of_given(f)?;
    let n = initial_of_family(f)?;
    Some(if g <= n {
        format!("{g}{n}")
    } else {
        format!("{n}{g}")
    })
}

/// All candidate pairs (i < j) of records sharing at least one key, as the
/// server's key table would produce them; keys held by more than
/// `max_block` records are skipped (the server's guard against a key
/// that stopped being selective).
pub fn candidate_pairs(keys: &[Vec<BlockKey>], max_block: usize) -> Vec<(u32, u32)> {
    let mut blocks: HashMap<&BlockKey, Vec<u32>> = HashMap::new();
    for (i, record_keys) in keys.iter().enumerate() {
        for key in record_keys {
            blocks.entry(key).or_default().push(i as u32);
        }
    }
    let mut pairs: Vec<u64> = Vec::new();
    for members in blocks.values() {
        if members.len() < 2 || members.len() > max_block {
            continue;
        }
        for (x, &i) in members.iter().enumerate() {
            for &j in &members[x + 1..] {
                let (lo, hi) = if i < j { (i, j) } else { (j, i) };
                pairs.push((u64::from(lo) << 32) | u64::from(hi));
            }
        }
    }
    pairs.sort_unstable();
    pairs.dedup();
    pairs
        .into_iter()
        .map(|p| ((p >> 32) as u32, p as u32))
        .collect()
}
