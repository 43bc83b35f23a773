//! `Features`: what matching needs from one FHIR R4 Patient, normalised
//! once per record so that comparing a pair is cheap.

use serde::Serialize;
use serde_json::Value;

use crate::config::Config;
use crate::normalize::{self, PartialDate};
use crate::phonetic::{self, Metaphone, Nicknames};

/// One name part (given or family), normalised.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NameFeature {
    /// Core words joined by single spaces ("maria jose").
    pub full: String,
    /// The first core word ("maria").
    pub first: String,
    /// Double Metaphone of the core words written together.
    pub metaphone: Metaphone,
    /// Double Metaphone of the first word's canonical nickname form.
    pub first_metaphone: Metaphone,
    /// The canonical nickname form of the first word ("william" for "bill").
    pub canonical: String,
}

impl NameFeature {
    fn new(words: &[String], nicknames: &Nicknames) -> Option<NameFeature> {
        let first = words.first()?.clone();
        let canonical = nicknames.canonical(&first).to_string();
        Some(NameFeature {
            full: words.join(" "),
            metaphone: phonetic::double_metaphone(&words.concat()),
            first_metaphone: phonetic::double_metaphone(&canonical),
            canonical,
            first,
        })
    }
}

/// Administrative sex (FHIR `gender`); `unknown` is treated as absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Sex {
    Male,
    Female,
    Other,
}

/// An identifier, normalised; `configured` is its system's index in the
/// configuration's `identifiers` when it has one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IdentifierValue {
    pub system: String,
    pub value: String,
    pub configured: Option<u8>,
}

/// The normalised matching features of one Patient record.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Features {
    /// The Patient's `id` (empty when it has none).
    pub record_id: String,
    /// The source (facility, integrator) that sent the record.
    pub source: String,
    pub given: Option<NameFeature>,
    pub family: Option<NameFeature>,
    pub birth_date: Option<PartialDate>,
    pub sex: Option<Sex>,
    pub identifiers: Vec<IdentifierValue>,
    /// National significant digits of each phone number.
    pub phones: Vec<String>,
    pub city: Option<String>,
    pub district: Option<String>,
    pub postal_code: Option<String>,
    /// Address lines, folded and joined.
    pub line: Option<String>,
}

impl Features {
    /// Extracts the features of a FHIR R4 Patient sent by `source`. Values
    /// that cannot be understood are left out (never an error: a partial
    /// record is still matched on what it has).
    pub fn from_patient(patient: &Value, source: &str, cfg: &Config) -> Features {
        let nicknames = Nicknames::built_in();
        let (given, family) = names(patient);
        Features {
            record_id: text(patient.get("id")).unwrap_or_default(),
            source: source.to_string(),
            given: NameFeature::new(&given, nicknames),
            family: NameFeature::new(&family, nicknames),
            birth_date: text(patient.get("birthDate"))
                .as_deref()
                .and_then(PartialDate::parse),
            sex: match patient.get("gender").and_then(Value::as_str) {
                Some("male") => Some(Sex::Male),
                Some("female") => Some(Sex::Female),
                Some("other") => Some(Sex::Other),
                _ => None,
            },
            identifiers: identifiers(patient, cfg),
            phones: phones(patient, cfg),
            ..address(patient)
        }
    }
}

fn text(value: Option<&Value>) -> Option<String> {
    value
        .and_then(Value::as_str)
        .map(str::to_string)
        .filter(|s| !s.trim().is_empty())
}

fn array<'a>(patient: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> {
    patient
        .get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// Preference of a `use` value: lower is better; `old` names and addresses
/// describe the past and are used only when nothing else exists.
fn use_rank(element: &Value, order: &[&str]) -> usize {
    let used = element.get("use").and_then(Value::as_str);
    match used {
        None => order.len(),
        Some(u) => order
            .iter()
            .position(|o| *o == u)
            .unwrap_or(order.len() + 1),
    }
}

/// The given and family core words of the preferred name: official, then
/// usual, then one without `use`; a name with only `text` is split (the
/// last word is the family name).
fn names(patient: &Value) -> (Vec<String>, Vec<String>) {
    let order = [
        "official",
        "usual",
        "nickname",
        "anonymous",
        "temp",
        "maiden",
        "old",
    ];
    let Some(name) = array(patient, "name").min_by_key(|n| use_rank(n, &order)) else {
        return (Vec::new(), Vec::new());
    };
    let mut given: Vec<String> = array(name, "given")
        .filter_map(Value::as_str)
        .flat_map(|g| normalize::name_parts(g).core)
        .collect();
    let mut family = name
        .get("family")
        .and_then(Value::as_str)
        .map(|f| normalize::name_parts(f).core)
        .unwrap_or_default();
    if given.is_empty() && family.is_empty() {
        if let Some(full) = name.get("text").and_then(Value::as_str) {
            let mut words = normalize::name_parts(full).core;
            if let Some(last) = words.pop() {
                family = vec![last];
                given = words;
            }
        }
    }
    (given, family)
}

fn identifiers(patient: &Value, cfg: &Config) -> Vec<IdentifierValue> {
    let mut out: Vec<IdentifierValue> = Vec::new();
    for identifier in array(patient, "identifier") {
        let (Some(system), Some(value)) = (
            text(identifier.get("system")),
            text(identifier.get("value")),
        ) else {
            continue;
        };
        let system = system.trim().to_string();
        let configured = cfg.identifier_index(&system);
        let uppercase = configured.is_none_or(|i| cfg.identifiers[i].uppercase);
        let value = normalize::identifier_value(&value, uppercase);
        let entry = IdentifierValue {
            system,
            value,
            configured: configured.map(|i| i as u8),
        };
        if !value_is_blank(&entry) && !out.contains(&entry) {
            out.push(entry);
        }
    }
    out
}

fn value_is_blank(id: &IdentifierValue) -> bool {
    id.value.is_empty()
}

fn phones(patient: &Value, cfg: &Config) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for telecom in array(patient, "telecom") {
        let system = telecom.get("system").and_then(Value::as_str);
        if !matches!(system, None | Some("phone") | Some("sms")) {
            continue;
        }
        let Some(value) = telecom.get("value").and_then(Value::as_str) else {
            continue;
        };
        let normalised = normalize::phone(
            value,
            &cfg.normalize.default_country_code,
            cfg.normalize.phone_digits,
        );
        if let Some(number) = normalised {
            if !out.contains(&number) {
                out.push(number);
            }
        }
    }
    out
}

/// Locality and lines of the preferred address (home, then without use,
/// then any other; `old` last).
fn address(patient: &Value) -> Features {
    let order = ["home", "temp", "work", "billing", "old"];
    let Some(address) = array(patient, "address").min_by_key(|a| use_rank(a, &order)) else {
        return Features::default();
    };
    let place = |key: &str| {
        text(address.get(key))
            .map(|v| normalize::place(&v))
            .filter(|v| !v.is_empty())
    };
    let lines: Vec<String> = array(address, "line")
        .filter_map(Value::as_str)
        .map(normalize::place)
        .collect();
    let line = lines.join(" ");
    Features {
        city: place("city"),
        district: place("district").or_else(|| place("state")),
        postal_code: text(address.get("postalCode"))
            .map(|p| normalize::postal_code(&p))
            .filter(|p| !p.is_empty()),
        line: if line.trim().is_empty() {
            None
        } else {
            Some(line)
        },
        ..Features::default()
    }
}
