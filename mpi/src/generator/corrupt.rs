//! The corruptions of duplicate records: what a facility gets wrong when it
//! registers a person again.

use serde::Serialize;
use serde_json::{Value, json};

use super::names::{PLACES, STREETS};
use super::{Person, Rng, patient_json};
use crate::normalize;
use crate::phonetic::Nicknames;

/// One corruption of a duplicate record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Corruption {
    GivenTypo,
    FamilyTypo,
    Ocr,
    Nickname,
    SwappedNames,
    DateTransposed,
    DatePartial,
    DateTypo,
    DateMissing,
    SexMissing,
    AddressChanged,
    PhoneChanged,
    PhoneMissing,
    AddressMissing,
    NationalIdAbsent,
    Formatting,
}

/// Relative frequency of each corruption.
const WEIGHTS: &[(Corruption, u32)] = &[
    (Corruption::GivenTypo, 10),
    (Corruption::FamilyTypo, 10),
    (Corruption::Ocr, 6),
    (Corruption::Nickname, 8),
    (Corruption::SwappedNames, 5),
    (Corruption::DateTransposed, 5),
    (Corruption::DatePartial, 4),
    (Corruption::DateTypo, 6),
    (Corruption::DateMissing, 2),
    (Corruption::SexMissing, 2),
    (Corruption::AddressChanged, 8),
    (Corruption::PhoneChanged, 8),
    (Corruption::PhoneMissing, 4),
    (Corruption::AddressMissing, 3),
    (Corruption::NationalIdAbsent, 10),
    (Corruption::Formatting, 6),
];

fn is_date(c: Corruption) -> bool {
    matches!(
        c,
        Corruption::DateTransposed
            | Corruption::DatePartial
            | Corruption::DateTypo
            | Corruption::DateMissing
    )
}

/// 1 to 3 different corruptions (1: 50 %, 2: 35 %, 3: 15 %), at most one
/// of the birth date.
pub fn choose(rng: &mut Rng) -> Vec<Corruption> {
    let roll = rng.unit();
    let count = if roll < 0.5 {
        1
    } else if roll < 0.85 {
        2
    } else {
        3
    };
    let total: u32 = WEIGHTS.iter().map(|(_, w)| w).sum();
    let mut chosen: Vec<Corruption> = Vec::new();
    while chosen.len() < count {
        let mut pick = rng.below(total as usize) as u32;
        let Some(&(c, _)) = WEIGHTS.iter().find(|(_, w)| {
            let hit = pick < *w;
            pick = pick.saturating_sub(*w);
            hit
        }) else {
            continue;
        };
        if chosen.contains(&c) || (is_date(c) && chosen.iter().any(|x| is_date(*x))) {
            continue;
        }
        chosen.push(c);
    }
    chosen.sort();
    chosen
}

/// A typing error: insert, delete, substitute or transpose one letter,
/// rarely the first.
pub fn typo(rng: &mut Rng, word: &str) -> String {
    let mut chars: Vec<char> = word.chars().collect();
    if chars.len() < 3 {
        chars.push(*rng.pick(&['a', 'e', 'i', 'n']));
        return chars.into_iter().collect();
    }
    let start = if rng.chance(0.1) { 0 } else { 1 };
    let at = start + rng.below(chars.len() - start);
    let letters = ['a', 'e', 'i', 'o', 'u', 'n', 'r', 's', 't', 'k', 'm', 'h'];
    match rng.below(4) {
        0 => chars.insert(at, *rng.pick(&letters)),
        1 => {
            chars.remove(at);
        }
        2 => {
            let old = chars[at].to_ascii_lowercase();
            let new = *rng.pick(&letters);
            chars[at] = if new == old { 'y' } else { new };
        }
        _ => {
            let at = at.min(chars.len() - 2);
            chars.swap(at, at + 1);
        }
    }
    chars.into_iter().collect()
}

/// An OCR-like misreading: rn/m, 0/O, 1/l, 5/S, cl/d, …
pub fn ocr(rng: &mut Rng, word: &str) -> String {
    const SWAPS: &[(&str, &str)] = &[
        ("m", "rn"),
        ("rn", "m"),
        ("l", "1"),
        ("o", "0"),
        ("s", "5"),
        ("i", "l"),
        ("e", "c"),
        ("cl", "d"),
        ("h", "b"),
        ("u", "v"),
        ("a", "o"),
    ];
    let start = rng.below(SWAPS.len());
    let skip = word.chars().next().map_or(0, char::len_utf8);
    for k in 0..SWAPS.len() {
        let (from, to) = SWAPS[(start + k) % SWAPS.len()];
        if let Some(at) = word[skip..].find(from).map(|i| i + skip) {
            return format!("{}{}{}", &word[..at], to, &word[at + from.len()..]);
        }
    }
    typo(rng, word)
}

fn edit_date(rng: &mut Rng, birth: (u16, u8, u8), transposed: bool) -> (u16, u8, u8) {
    let (y, m, d) = birth;
    if transposed && d <= 12 && d != m {
        return (y, d, m);
    }
    for _ in 0..20 {
        let mut digits: Vec<u8> = format!("{y:04}{m:02}{d:02}").into_bytes();
        let at = 2 + rng.below(6);
        let new = b'0' + rng.below(10) as u8;
        if digits[at] == new {
            continue;
        }
        digits[at] = new;
        let text = String::from_utf8_lossy(&digits).to_string();
        let (ny, nm, nd) = (
            text[..4].parse::<u16>(),
            text[4..6].parse::<u8>(),
            text[6..].parse::<u8>(),
        );
        if let (Ok(ny), Ok(nm), Ok(nd)) = (ny, nm, nd) {
            if (1900..=2024).contains(&ny) && (1..=12).contains(&nm) && (1..=28).contains(&nd) {
                return (ny, nm, nd);
            }
        }
    }
    (y, m, if d < 28 { d + 1 } else { d - 1 })
}

/// The Patient JSON of a duplicate of `person` with `corruptions`.
pub fn record(
    rng: &mut Rng,
    person: &Person,
    corruptions: &[Corruption],
    source: &str,
    mrn: &str,
    index: usize,
) -> Value {
    let mut p = person.clone();
    let has = |c: Corruption| corruptions.contains(&c);
    if has(Corruption::GivenTypo) {
        p.given[0] = typo(rng, &p.given[0]);
    }
    if has(Corruption::FamilyTypo) {
        p.family = typo(rng, &p.family);
    }
    if has(Corruption::Ocr) {
        if rng.chance(0.5) {
            p.given[0] = ocr(rng, &p.given[0]);
        } else {
            p.family = ocr(rng, &p.family);
        }
    }
    if has(Corruption::Nickname) {
        let folded = normalize::fold(&p.given[0]);
        let variants = Nicknames::built_in().variants(&folded);
        p.given[0] = if variants.is_empty() {
            typo(rng, &p.given[0])
        } else {
            capitalise(variants[rng.below(variants.len())])
        };
    }
    if has(Corruption::DateTransposed) || has(Corruption::DateTypo) {
        p.birth = edit_date(rng, p.birth, has(Corruption::DateTransposed));
    }
    if has(Corruption::AddressChanged) {
        p.place = rng.below(PLACES.len());
        p.line = Some(format!("{} {}", 1 + rng.below(400), rng.pick(STREETS)));
        p.postal = None;
    }
    if has(Corruption::PhoneChanged) {
        p.phone = Some(format!("7{:08}", rng.below(100_000_000)));
    }
    if has(Corruption::PhoneMissing) {
        p.phone = None;
    }
    let mut patient = patient_json(
        rng,
        &p,
        source,
        mrn,
        index,
        !has(Corruption::NationalIdAbsent),
    );
    if has(Corruption::SwappedNames) {
        patient["name"] = json!([{"use": "official", "family": p.given[0], "given": [p.family]}]);
    }
    if has(Corruption::Formatting) {
        let name = &mut patient["name"][0];
        let family = name["family"].as_str().unwrap_or_default().to_string();
        name["family"] = json!(family.to_uppercase());
        let given: Vec<String> = p.given.iter().map(|g| ascii_without_accents(g)).collect();
        if !has(Corruption::SwappedNames) {
            name["given"] = json!(given);
        }
    }
    let Some(object) = patient.as_object_mut() else {
        return patient;
    };
    if has(Corruption::DatePartial) {
        object.insert("birthDate".into(), json!(format!("{:04}", p.birth.0)));
    }
    if has(Corruption::DateMissing) {
        object.remove("birthDate");
    }
    if has(Corruption::SexMissing) {
        object.remove("gender");
    }
    if has(Corruption::AddressMissing) {
        object.remove("address");
    }
    patient
}

fn capitalise(name: &str) -> String {
    let mut chars = name.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

fn ascii_without_accents(name: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    name.nfkd().filter(|c| c.is_ascii()).collect()
}
