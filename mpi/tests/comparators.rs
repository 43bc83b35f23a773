//! Table-driven tests of normalisation, phonetic codes and comparators.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mpi::compare::{birth_date, family_level, given_level};
use mpi::fields::{MISSING, level};
use mpi::normalize::{self, PartialDate};
use mpi::phonetic::{Nicknames, double_metaphone};
use mpi::{Config, Features, Field, Matcher};
use serde_json::json;

fn name(raw: &str) -> mpi::features::NameFeature {
    let patient = json!({"resourceType": "Patient", "name": [{"given": [raw], "family": raw}]});
    Features::from_patient(&patient, "t", &Config::default())
        .given
        .unwrap()
}

fn family(raw: &str) -> mpi::features::NameFeature {
    let patient = json!({"resourceType": "Patient", "name": [{"family": raw}]});
    Features::from_patient(&patient, "t", &Config::default())
        .family
        .unwrap()
}

#[test]
fn fold_transliterates_and_strips_marks() {
    let check = |raw: &str, expected: &str| assert_eq!(normalize::fold(raw), expected, "{raw}");
    check("José", "jose");
    check("Müller", "muller");
    check("Straße", "strasse");
    check("Søren Ærø", "soren aero");
    check("Łukasz", "lukasz");
    check("Œuvre", "oeuvre");
    check("ﬁfi", "fifi");
    check("Иван Петров", "ivan petrov");
    check("Наталья", "natalya");
    check("Щукин", "shchukin");
    check("Γιώργος Παπαδόπουλος", "giorgos papadopoulos");
    check("Ελένη", "eleni");
    check("O'Brien", "obrien");
    check("  Mary-Jane   SMITH ", "mary jane smith");
}

#[test]
fn name_parts_set_particles_apart() {
    let check = |raw: &str, core: &[&str], particles: &[&str]| {
        let parts = normalize::name_parts(raw);
        assert_eq!(parts.core, core, "{raw}");
        assert_eq!(parts.particles, particles, "{raw}");
    };
    check("van der Berg", &["berg"], &["van", "der"]);
    check("Al-Hassan", &["hassan"], &["al"]);
    check("de", &["de"], &[]);
    check("García López", &["garcia", "lopez"], &[]);
}

#[test]
fn phones_lose_country_code_and_trunk_prefix() {
    let check = |raw: &str, expected: Option<&str>| {
        assert_eq!(
            normalize::phone(raw, "254", 9).as_deref(),
            expected,
            "{raw}"
        )
    };
    check("+254 712 345 678", Some("712345678"));
    check("0712345678", Some("712345678"));
    check("254712345678", Some("712345678"));
    check("00254-712-345-678", Some("712345678"));
    check("(0712) 345 678", Some("712345678"));
    check("12345", None);
    check("+44 20 7946 0958", Some("079460958"));
}

#[test]
fn dates_parse_at_their_precision() {
    let check = |raw: &str, expected: Option<(u16, Option<u8>, Option<u8>)>| {
        let got = PartialDate::parse(raw).map(|d| (d.year, d.month, d.day));
        assert_eq!(got, expected, "{raw}");
    };
    check("1984-06-09", Some((1984, Some(6), Some(9))));
    check("1984-06", Some((1984, Some(6), None)));
    check("1984", Some((1984, None, None)));
    check("1984-06-09T10:00:00Z", Some((1984, Some(6), Some(9))));
    check("84-06-09", None);
    check("1984-13-01", Some((1984, None, None)));
    check("not a date", None);
}

#[test]
fn identifier_values_are_trimmed_and_uppercased() {
    assert_eq!(normalize::identifier_value(" ab-12 34.5 ", true), "AB12345");
    assert_eq!(normalize::identifier_value(" ab-12 ", false), "ab12");
}

#[test]
fn double_metaphone_matches_published_codes() {
    let check = |word: &str, primary: &str, alternate: &str| {
        let code = double_metaphone(word);
        assert_eq!(
            (code.primary.as_str(), code.alternate.as_str()),
            (primary, alternate),
            "{word}"
        );
    };
    check("Smith", "SM0", "XMT");
    check("Schmidt", "XMT", "SMT");
    check("Thomas", "TMS", "TMS");
    check("Jose", "HS", "HS");
    check("Knight", "NT", "NT");
    check("Xavier", "SF", "SFR");
    check("Catherine", "K0RN", "KTRN");
    check("Katherine", "K0RN", "KTRN");
    check("Philip", "FLP", "FLP");
}

#[test]
fn nickname_table_groups_real_equivalences() {
    let table = Nicknames::built_in();
    assert!(table.len() > 150);
    for (a, b) in [
        ("bill", "william"),
        ("bob", "robert"),
        ("liz", "elizabeth"),
        ("peggy", "margaret"),
        ("kate", "catherine"),
        ("joe", "joseph"),
        ("fatuma", "fatima"),
        ("daudi", "david"),
        ("yohana", "john"),
    ] {
        assert!(table.equivalent(a, b), "{a} ~ {b}");
    }
    assert!(!table.equivalent("john", "joseph"));
    assert_eq!(table.canonical("bill"), "william");
}

#[test]
fn given_names_grade_by_similarity() {
    let nicknames = Nicknames::built_in();
    let check = |a: &str, b: &str, expected: u8| {
        assert_eq!(
            given_level(&name(a), &name(b), nicknames),
            expected,
            "{a} / {b}"
        )
    };
    check("José", "JOSE", level::EXACT);
    check("Zoë", "Zoe", level::EXACT);
    check("Bill", "William", level::GIVEN_NICKNAME);
    check("Peggy", "Margaret", level::GIVEN_NICKNAME);
    check("Jonathon", "Jonathan", level::GIVEN_JW_HIGH);
    check("Wanjiru", "Wanjriu", level::GIVEN_JW_HIGH);
    check("Mary", "Mery", level::GIVEN_PHONETIC);
    check("Imani", "Imami", level::GIVEN_JW_MID);
    check("J", "John", level::GIVEN_INITIAL);
    check("Peter", "Aisha", level::GIVEN_DISAGREE);
    check("Наталья", "Natalya", level::EXACT);
}

#[test]
fn family_names_grade_by_similarity() {
    let check = |a: &str, b: &str, expected: u8| {
        assert_eq!(family_level(&family(a), &family(b)), expected, "{a} / {b}")
    };
    check("Müller", "Muller", level::EXACT);
    check("van der Berg", "Berg", level::EXACT);
    check("Odhiambo", "Odhiambu", level::FAMILY_JW_HIGH);
    check("García López", "Garcia", level::FAMILY_JW_HIGH);
    check("Smith", "Schmidt", level::FAMILY_PHONETIC);
    check("Otieno", "Kamau", level::FAMILY_DISAGREE);
    check("Петров", "Petrov", level::EXACT);
}

#[test]
fn birth_dates_grade_transposition_and_partial_agreement() {
    let check = |a: &str, b: &str, expected: u8| {
        let (a, b) = (PartialDate::parse(a), PartialDate::parse(b));
        assert_eq!(
            birth_date(a.as_ref(), b.as_ref()),
            expected,
            "{a:?} / {b:?}"
        );
    };
    check("1984-06-09", "1984-06-09", level::EXACT);
    check("1984-06-09", "1984-09-06", level::DATE_TRANSPOSED);
    check("1984-06-09", "1964-06-09", level::DATE_ONE_DIGIT);
    check("1984-06-09", "1984", level::DATE_PARTIAL);
    check("1984-06-09", "1984-06", level::DATE_PARTIAL);
    check("1984-06-09", "1984-06-25", level::DATE_YEAR_MONTH);
    check("1984-06-09", "1990-02-15", level::DATE_DISAGREE);
    check("1984-06-09", "1985", level::DATE_DISAGREE);
    assert_eq!(
        birth_date(None, PartialDate::parse("1984").as_ref()),
        MISSING
    );
}

fn patient(given: &str, family: &str, extra: serde_json::Value) -> serde_json::Value {
    let mut p = json!({"resourceType": "Patient", "name": [{"use": "official", "given": [given], "family": family}]});
    for (k, v) in extra.as_object().unwrap() {
        p[k] = v.clone();
    }
    p
}

#[test]
fn swapped_names_are_recognised() {
    let m = Matcher::default();
    let a = m.features(&patient("Grace", "Wanjiku", json!({})), "a");
    let b = m.features(&patient("Wanjiku", "Grace", json!({})), "b");
    let gamma = m.gamma(&a, &b);
    assert_eq!(gamma.level(Field::NameOrder), level::SWAPPED);
    assert_eq!(gamma.level(Field::Given), level::EXACT);
    assert_eq!(gamma.level(Field::Family), level::EXACT);
    // Sharing one name is not a swap.
    let c = m.features(&patient("Wanjiku", "Otieno", json!({})), "c");
    assert_eq!(m.gamma(&a, &c).level(Field::NameOrder), level::STRAIGHT);
}

#[test]
fn identifiers_phones_and_sex_compare_per_field() {
    let m = Matcher::default();
    let national = mpi::defaults::NATIONAL_ID_SYSTEM;
    let a = m.features(
        &patient("Amina", "Diallo", json!({"gender": "female", "identifier": [{"system": national, "value": "1234-5678"}], "telecom": [{"system": "phone", "value": "+254 712 345 678"}]})),
        "a",
    );
    let same = m.features(
        &patient("Amina", "Diallo", json!({"gender": "female", "identifier": [{"system": national, "value": "12345678 "}], "telecom": [{"system": "phone", "value": "0712345678"}]})),
        "b",
    );
    let other = m.features(
        &patient("Amina", "Diallo", json!({"gender": "male", "identifier": [{"system": national, "value": "87654321"}], "telecom": [{"system": "phone", "value": "0722000000"}]})),
        "c",
    );
    let none = m.features(&patient("Amina", "Diallo", json!({})), "d");
    let g = m.gamma(&a, &same);
    assert_eq!(
        (g.ids[0], g.level(Field::Phone), g.level(Field::Sex)),
        (level::AGREE, level::AGREE, level::AGREE)
    );
    let g = m.gamma(&a, &other);
    assert_eq!(
        (g.ids[0], g.level(Field::Phone), g.level(Field::Sex)),
        (level::DISAGREE, level::DISAGREE, level::DISAGREE)
    );
    let g = m.gamma(&a, &none);
    assert_eq!(
        (g.ids[0], g.level(Field::Phone), g.level(Field::Sex)),
        (MISSING, MISSING, MISSING)
    );
    // A disagreeing national id is strong evidence against.
    assert!(m.score(&a, &other) < m.score(&a, &none) - 7.0);
}
