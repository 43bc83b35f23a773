//! Per-field comparators: each turns a pair of `Features` into an
//! agreement level (`fields::level`), `MISSING` when either side lacks the
//! field. Names are compared both ways round (given↔family) and the better
//! order is kept, recorded in the `name_order` field.

use strsim::jaro_winkler;

use crate::config::Config;
use crate::features::{Features, IdentifierValue, NameFeature};
use crate::fields::{Field, Gamma, MAX_ID_SYSTEMS, MISSING, level};
use crate::normalize::PartialDate;
use crate::phonetic::Nicknames;

/// Jaro–Winkler similarity of a "high" name agreement.
pub const JW_HIGH: f64 = 0.94;
/// Jaro–Winkler similarity of a "mid" name agreement.
pub const JW_MID: f64 = 0.88;

/// The agreement levels of every field for the pair (a, b).
pub fn compare(a: &Features, b: &Features, cfg: &Config) -> Gamma {
    let mut fixed = [MISSING; Field::COUNT];
    let (given, family, order) = names(a, b, Nicknames::built_in());
    fixed[Field::Given.index()] = given;
    fixed[Field::Family.index()] = family;
    fixed[Field::NameOrder.index()] = order;
    fixed[Field::BirthDate.index()] = birth_date(a.birth_date.as_ref(), b.birth_date.as_ref());
    fixed[Field::Sex.index()] = match (a.sex, b.sex) {
        (Some(x), Some(y)) => agree(x == y),
        _ => MISSING,
    };
    fixed[Field::Phone.index()] = phone(&a.phones, &b.phones);
    fixed[Field::Locality.index()] = locality(a, b);
    fixed[Field::Address.index()] = address(a.line.as_deref(), b.line.as_deref());
    let mut ids = [MISSING; MAX_ID_SYSTEMS];
    for (i, slot) in ids.iter_mut().enumerate().take(cfg.identifiers.len()) {
        *slot = configured_identifier(&a.identifiers, &b.identifiers, i as u8);
    }
    fixed[Field::OtherIdentifier.index()] = other_identifiers(&a.identifiers, &b.identifiers);
    Gamma { fixed, ids }
}

fn agree(same: bool) -> u8 {
    if same { level::AGREE } else { level::DISAGREE }
}

/// How good a name level is, to choose between straight and swapped order.
fn quality(given_level: u8, family_level: u8) -> u8 {
    let g = match given_level {
        MISSING => 0,
        level::GIVEN_DISAGREE => 0,
        level::GIVEN_INITIAL => 1,
        level::GIVEN_JW_MID | level::GIVEN_PHONETIC => 2,
        _ => 3,
    };
    let f = match family_level {
        MISSING | level::FAMILY_DISAGREE => 0,
        level::FAMILY_JW_MID | level::FAMILY_PHONETIC => 2,
        _ => 3,
    };
    g + f
}

/// Given level, family level and name order of the pair.
pub fn names(a: &Features, b: &Features, nicknames: &Nicknames) -> (u8, u8, u8) {
    let straight_given = opt(a.given.as_ref(), b.given.as_ref(), |x, y| {
        given_level(x, y, nicknames)
    });
    let straight_family = opt(a.family.as_ref(), b.family.as_ref(), family_level);
    let straight = quality(straight_given, straight_family);
    if straight < 6 {
        // Compare a's given with b's family and a's family with b's given.
        // Either record may be the swapped one: a's family is compared as
        // a given name with b's given, or a's given with b's family.
        let given = |x: Option<&NameFeature>, y: Option<&NameFeature>| {
            opt(x, y, |x, y| given_level(x, y, nicknames))
        };
        let a_swapped = (
            given(a.family.as_ref(), b.given.as_ref()),
            opt(a.given.as_ref(), b.family.as_ref(), family_level),
        );
        let b_swapped = (
            given(a.given.as_ref(), b.family.as_ref()),
            opt(a.family.as_ref(), b.given.as_ref(), family_level),
        );
        let (swapped_given, swapped_family) =
            if quality(a_swapped.0, a_swapped.1) >= quality(b_swapped.0, b_swapped.1) {
                a_swapped
            } else {
                b_swapped
            };
        // A swap needs both name parts to agree crosswise: one shared
        // word alone is what relatives have in common.
        let both_agree =
            quality(swapped_given, MISSING) > 0 && quality(MISSING, swapped_family) > 0;
        if both_agree && quality(swapped_given, swapped_family) > straight {
            return (swapped_given, swapped_family, level::SWAPPED);
        }
    }
    let order = if straight_given == MISSING && straight_family == MISSING {
        MISSING
    } else {
        level::STRAIGHT
    };
    (straight_given, straight_family, order)
}

fn opt<T>(a: Option<&T>, b: Option<&T>, f: impl Fn(&T, &T) -> u8) -> u8 {
    match (a, b) {
        (Some(x), Some(y)) => f(x, y),
        _ => MISSING,
    }
}

/// Level of two given names (first words, or the whole given names).
pub fn given_level(a: &NameFeature, b: &NameFeature, nicknames: &Nicknames) -> u8 {
    if a.first == b.first || a.full == b.full {
        return level::EXACT;
    }
    if a.canonical == b.canonical || nicknames.equivalent(&a.first, &b.first) {
        return level::GIVEN_NICKNAME;
    }
    let similarity = jaro_winkler(&a.first, &b.first).max(jaro_winkler(&a.full, &b.full));
    if similarity >= JW_HIGH {
        return level::GIVEN_JW_HIGH;
    }
    if a.first_metaphone.matches(&b.first_metaphone) || a.metaphone.matches(&b.metaphone) {
        return level::GIVEN_PHONETIC;
    }
    if similarity >= JW_MID || one_edit(&a.first, &b.first) {
        return level::GIVEN_JW_MID;
    }
    let initial = |short: &str, long: &str| short.len() == 1 && long.starts_with(short);
    if initial(&a.first, &b.first) || initial(&b.first, &a.first) {
        return level::GIVEN_INITIAL;
    }
    level::GIVEN_DISAGREE
}

/// Level of two family names; a multi-word name containing all the words
/// of the other ("garcia lopez" and "garcia") counts as a high agreement.
pub fn family_level(a: &NameFeature, b: &NameFeature) -> u8 {
    if a.full == b.full {
        return level::EXACT;
    }
    let similarity = jaro_winkler(&a.full, &b.full);
    let contains = |x: &str, y: &str| y.split(' ').all(|w| x.split(' ').any(|v| v == w));
    if similarity >= JW_HIGH || contains(&a.full, &b.full) || contains(&b.full, &a.full) {
        return level::FAMILY_JW_HIGH;
    }
    if a.metaphone.matches(&b.metaphone) {
        return level::FAMILY_PHONETIC;
    }
    if similarity >= JW_MID || one_edit(&a.full, &b.full) {
        return level::FAMILY_JW_MID;
    }
    level::FAMILY_DISAGREE
}

/// One insertion, deletion, substitution or adjacent transposition apart
/// (a typing error), for words of three letters or more.
fn one_edit(a: &str, b: &str) -> bool {
    a.len().min(b.len()) >= 3 && strsim::osa_distance(a, b) <= 1
}

/// Level of two birth dates.
pub fn birth_date(a: Option<&PartialDate>, b: Option<&PartialDate>) -> u8 {
    let (Some(a), Some(b)) = (a, b) else {
        return MISSING;
    };
    if a.is_full() && b.is_full() {
        if a == b {
            return level::EXACT;
        }
        if a.year == b.year && a.month == b.day && a.day == b.month {
            return level::DATE_TRANSPOSED;
        }
        if let (Some(x), Some(y)) = (a.digits(), b.digits()) {
            if one_digit_apart(x.as_bytes(), y.as_bytes()) {
                return level::DATE_ONE_DIGIT;
            }
        }
        if a.year == b.year && a.month == b.month {
            return level::DATE_YEAR_MONTH;
        }
        return level::DATE_DISAGREE;
    }
    // At least one side is partial: agree on every component both have.
    let months_agree = a.month.is_none() || b.month.is_none() || a.month == b.month;
    let days_agree = a.day.is_none() || b.day.is_none() || a.day == b.day;
    if a.year == b.year && months_agree && days_agree {
        level::DATE_PARTIAL
    } else {
        level::DATE_DISAGREE
    }
}

/// One substituted digit, or two adjacent digits swapped.
fn one_digit_apart(x: &[u8], y: &[u8]) -> bool {
    let diffs: Vec<usize> = (0..x.len().min(y.len()))
        .filter(|&i| x[i] != y[i])
        .collect();
    match diffs.as_slice() {
        [_] => true,
        [i, j] => *j == i + 1 && x[*i] == y[*j] && x[*j] == y[*i],
        _ => false,
    }
}

fn phone(a: &[String], b: &[String]) -> u8 {
    if a.is_empty() || b.is_empty() {
        return MISSING;
    }
    agree(a.iter().any(|x| b.contains(x)))
}

fn locality(a: &Features, b: &Features) -> u8 {
    let pairs = [
        (&a.city, &b.city),
        (&a.district, &b.district),
        (&a.postal_code, &b.postal_code),
    ];
    let (mut compared, mut agreed) = (0, 0);
    for (x, y) in pairs {
        if let (Some(x), Some(y)) = (x, y) {
            compared += 1;
            agreed += usize::from(x == y);
        }
    }
    match (compared, agreed) {
        (0, _) => MISSING,
        (_, 0) => level::LOCALITY_DISAGREE,
        (_, 1) => level::LOCALITY_ONE,
        _ => level::LOCALITY_BOTH,
    }
}

fn address(a: Option<&str>, b: Option<&str>) -> u8 {
    let (Some(a), Some(b)) = (a, b) else {
        return MISSING;
    };
    if a == b {
        level::EXACT
    } else if jaro_winkler(a, b) >= 0.9 {
        level::ADDRESS_SIMILAR
    } else {
        level::ADDRESS_DISAGREE
    }
}

fn configured_identifier(a: &[IdentifierValue], b: &[IdentifierValue], index: u8) -> u8 {
    let ours = a.iter().filter(|id| id.configured == Some(index));
    let mut compared = false;
    for x in ours {
        for y in b.iter().filter(|id| id.configured == Some(index)) {
            if x.value == y.value {
                return level::AGREE;
            }
            compared = true;
        }
    }
    if compared { level::DISAGREE } else { MISSING }
}

/// Identifiers of systems not in the configuration (facility record
/// numbers): agree when any system agrees, disagree when a shared system
/// only disagrees.
fn other_identifiers(a: &[IdentifierValue], b: &[IdentifierValue]) -> u8 {
    let mut compared = false;
    for x in a.iter().filter(|id| id.configured.is_none()) {
        for y in b
            .iter()
            .filter(|id| id.configured.is_none() && id.system == x.system)
        {
            if x.value == y.value {
                return level::AGREE;
            }
            compared = true;
        }
    }
    if compared { level::DISAGREE } else { MISSING }
}
