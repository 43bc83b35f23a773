//! String search values (search.html#string): the folded form the index and
//! the search compare, and the strings an element contributes.

use crate::fhirpath::Item;
use serde_json::Value as Json;
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Letters that NFKD leaves alone but that searchers type without their
/// stroke or as two letters (checked after lowercasing).
fn fold_letter(c: char) -> Option<&'static str> {
    Some(match c {
        'ß' => "ss",
        'æ' => "ae",
        'ø' => "o",
        'đ' | 'ð' => "d",
        'ł' => "l",
        'œ' => "oe",
        'þ' => "th",
        'ı' => "i",
        'ħ' => "h",
        'ŧ' => "t",
        'ŋ' => "n",
        _ => return None,
    })
}

/// Folds text for string search: Unicode NFKD with combining marks
/// removed (`é` → `e`, `ﬁ` → `fi`, `²` → `2`), lowercased, the letters
/// that do not decompose folded (`ß` → `ss`, `æ` → `ae`, `ø` → `o`,
/// `đ`/`ð` → `d`, `ł` → `l`, `œ` → `oe`, `þ` → `th`, dotless `ı` → `i`),
/// and every run of characters that are neither letters nor digits
/// (spaces, punctuation, symbols) replaced by one space, trimmed.
/// So `Müller` and `MULLER` both fold to `muller`, and `O'Brien-Smith`
/// to `o brien smith`.
pub fn fold_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending_space = false;
    let mut push = |c: char, out: &mut String| {
        if c.is_alphanumeric() {
            if pending_space && !out.is_empty() {
                out.push(' ');
            }
            pending_space = false;
            out.push(c);
        } else {
            pending_space = true;
        }
    };
    for c in text.nfkd() {
        if is_combining_mark(c) {
            continue;
        }
        for lower in c.to_lowercase() {
            if is_combining_mark(lower) {
                continue;
            }
            match fold_letter(lower) {
                Some(s) => s.chars().for_each(|f| push(f, &mut out)),
                None => push(lower, &mut out),
            }
        }
    }
    out
}

/// The text of a JSON string or of each string in a JSON array.
fn push_strings(value: Option<&Json>, out: &mut Vec<String>) {
    match value {
        Some(Json::String(s)) => out.push(s.clone()),
        Some(Json::Array(items)) => {
            for v in items {
                if let Json::String(s) = v {
                    out.push(s.clone());
                }
            }
        }
        _ => {}
    }
}

/// The searchable strings of an element (search.html#string), as written
/// (callers fold them with [`fold_string`] for the default search and keep
/// them for `:exact`):
///
/// * `HumanName`: each `family`, `given`, `prefix`, `suffix` and `text`;
/// * `Address`: each `line`, `city`, `district`, `state`, `postalCode`,
///   `country` and `text`;
/// * string-like primitives (`string`, `markdown`, `code`, `id`, `uri`,
///   `url`, `canonical`, `oid`, `uuid`) and System Strings: the value.
///
/// Other elements (and elements without a value) give nothing.
pub fn string_values(item: &Item<'_>) -> Vec<String> {
    const NAME: [&str; 5] = ["family", "given", "prefix", "suffix", "text"];
    const ADDRESS: [&str; 7] = [
        "line",
        "city",
        "district",
        "state",
        "postalCode",
        "country",
        "text",
    ];
    let mut out = Vec::new();
    let fields: &[&str] = match item.type_name() {
        "HumanName" => &NAME,
        "Address" => &ADDRESS,
        "string" | "markdown" | "code" | "id" | "uri" | "url" | "canonical" | "oid" | "uuid"
        | "String" => {
            if let Some(s) = item.as_str() {
                out.push(s.to_owned());
            }
            return out;
        }
        _ => return out,
    };
    if let Some(Json::Object(map)) = item.json() {
        for f in fields {
            push_strings(map.get(*f), &mut out);
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::fhirpath::{Env, Expression, evaluate};
    use serde_json::json;

    #[track_caller]
    fn check(input: &str, expected: &str) {
        assert_eq!(fold_string(input), expected, "fold_string({input:?})");
    }

    #[test]
    fn folds_case_and_accents() {
        // German
        check("Müller", "muller");
        check("MÜLLER", "muller");
        check("müller", "muller");
        check("Straße", "strasse");
        check("STRASSE", "strasse");
        check("Weiß", "weiss");
        check("Jürgen Öztürk", "jurgen ozturk");
        // Spanish
        check("Núñez", "nunez");
        check("nunez", "nunez");
        check("José Ángel Peña", "jose angel pena");
        check("Muñoz-Ibáñez", "munoz ibanez");
        // French
        check("François", "francois");
        check("Lefèvre", "lefevre");
        check("Hélène Château", "helene chateau");
        check("Œuvre", "oeuvre");
        check("cœur", "coeur");
        check("Noël", "noel");
        check("D'Artagnan", "d artagnan");
        // Polish
        check("Łukasz Wałęsa", "lukasz walesa");
        check("Żółć", "zolc");
        check("Krzyżanowski", "krzyzanowski");
        check("Ściśle", "scisle");
        // Swahili / East African names (mostly ASCII; hyphens and Kikuyu tilde)
        check("Wanjikũ", "wanjiku");
        check("Mwana-Hawa", "mwana hawa");
        check("Juma bin Salim", "juma bin salim");
        check("NJOROGE  Kamau", "njoroge kamau");
        // Vietnamese
        check("Nguyễn", "nguyen");
        check("Trần Thị Hương", "tran thi huong");
        check("Đặng", "dang");
        check("Phạm Văn Đồng", "pham van dong");
        // Nordic and others
        check("Søren Kierkegaard", "soren kierkegaard");
        check("Ærø", "aero");
        check("Þórunn", "thorunn");
        check("Dvořák", "dvorak");
        check("İstanbul", "istanbul");
        check("Işık", "isik");
    }

    #[test]
    fn folds_compatibility_forms_and_separators() {
        check("", "");
        check("   ", "");
        check("  Anne   Marie ", "anne marie");
        check("O'Brien-Smith", "o brien smith");
        check("a\t\nb", "a b");
        check("...x,,,y!!!", "x y");
        check("ﬁne", "fine");
        check("Ｆｕｌｌｗｉｄｔｈ", "fullwidth");
        check("m²", "m2");
        check("No. 42", "no 42");
        check("Αθήνα", "αθηνα");
        check("МОСКВА", "москва");
        check("東京", "東京");
    }

    fn values(resource: serde_json::Value, path: &str) -> Vec<String> {
        let expr = Expression::parse(path).unwrap();
        let items = evaluate(&expr, &resource, &Env::new()).unwrap();
        items.iter().flat_map(string_values).collect()
    }

    #[test]
    fn element_strings() {
        let patient = json!({
            "resourceType": "Patient",
            "name": [{"family": "Müller", "given": ["Anna", "Lena"], "prefix": ["Dr."],
                      "suffix": ["PhD"], "text": "Dr. Anna Lena Müller", "use": "official"}],
            "address": [{"line": ["Hauptstraße 1", "Hinterhaus"], "city": "Köln",
                         "district": "Innenstadt", "state": "NRW", "postalCode": "50667",
                         "country": "DE", "use": "home"}],
            "gender": "female"
        });
        assert_eq!(
            values(patient.clone(), "Patient.name"),
            [
                "Müller",
                "Anna",
                "Lena",
                "Dr.",
                "PhD",
                "Dr. Anna Lena Müller"
            ]
        );
        assert_eq!(
            values(patient.clone(), "Patient.address"),
            [
                "Hauptstraße 1",
                "Hinterhaus",
                "Köln",
                "Innenstadt",
                "NRW",
                "50667",
                "DE"
            ]
        );
        assert_eq!(values(patient.clone(), "Patient.name.family"), ["Müller"]);
        assert_eq!(values(patient.clone(), "Patient.gender"), ["female"]);
        assert_eq!(
            values(patient.clone(), "Patient.name.family + 'x'"),
            ["Müllerx"]
        );
        assert!(values(patient, "Patient.birthDate").is_empty());
        let obs = json!({"resourceType": "Observation", "status": "final",
                         "code": {"text": "x"}, "effectiveDateTime": "2020"});
        assert!(values(obs.clone(), "Observation.effective").is_empty());
        assert!(values(obs, "Observation.code").is_empty());
    }
}
