//! HIPAA Safe Harbor de-identification of FHIR resources (45 CFR
//! 164.514(b)(2)): the eighteen kinds of identifiers are removed or
//! generalised, and resource ids and references are replaced by keyed
//! pseudonyms (HMAC-SHA-256), so that references between resources of one
//! export still join while the original ids cannot be recovered without
//! the key. docs/deidentification.md lists exactly what happens to which
//! element; [`Deidentifier::resource`] is the whole rule set.
//!
//! The rules are by element name and shape, so they apply to every
//! resource type, to contained resources and inside extensions.

use chrono::Datelike;
use hmac::{Hmac, Mac};
use serde_json::{Map, Value, json};
use sha2::Sha256;

/// Elements removed wherever they appear, with what they hold.
const REMOVED: &[&str] = &[
    // Identifiers: medical record, social security, health plan, account,
    // certificate and licence numbers (kinds 7-11, 18).
    "identifier",
    "valueIdentifier",
    // Telephone and fax numbers, email addresses, URLs (kinds 4-6, 14).
    "telecom",
    "valueContactPoint",
    // Full-face photographs and comparable images (kind 17).
    "photo",
    // Relatives, employers and household members: contact persons.
    "contact",
    // Device identifiers and serial numbers (kind 13).
    "serialNumber",
    "lotNumber",
    "udiCarrier",
    "distinctIdentifier",
    // Free text that commonly names people, places and numbers.
    "note",
    "comment",
    "patientInstruction",
    // Record-keeping: versions, sources and tags of who sent what.
    "meta",
    "implicitRules",
];

/// Instants (which must keep a full timestamp) generalised to the first
/// instant of their year.
const INSTANTS: &[&str] = &["issued", "recorded", "timestamp", "lastUpdated"];

/// Extensions that carry a person's identifying data in a string.
const IDENTIFYING_EXTENSIONS: &[&str] = &["mothersMaidenName"];

/// Three-digit ZIP prefixes of areas with 20,000 people or fewer (the
/// 2000 Census list HHS publishes): they become `000`.
const SMALL_ZIP3: &[&str] = &[
    "036", "059", "063", "102", "203", "556", "692", "790", "821", "823", "830", "831", "878",
    "879", "884", "890", "893",
];

/// The extension marking a Patient aged 90 or over, whose birth date was
/// removed.
pub const AGE_90_OR_OVER: &str = "https://baraza.dev/fhir/StructureDefinition/age-90-or-older";

/// De-identifies resources with one pseudonym key.
#[derive(Clone)]
pub struct Deidentifier {
    mac: Hmac<Sha256>,
    /// Ages are computed at this year.
    year: i32,
}

impl std::fmt::Debug for Deidentifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deidentifier")
            .field("year", &self.year)
            .finish()
    }
}

impl Deidentifier {
    /// A de-identifier whose pseudonyms are keyed by `key`; ages are
    /// computed for the current year.
    pub fn new(key: &[u8]) -> Deidentifier {
        Deidentifier::at(key, chrono::Utc::now().year())
    }

    /// As [`Deidentifier::new`], computing ages at `year`.
    pub fn at(key: &[u8], year: i32) -> Deidentifier {
        // HMAC takes keys of any length.
        let mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable_key());
        Deidentifier { mac, year }
    }

    /// The pseudonym of `Type/id`: 32 hex digits of its HMAC, a valid id.
    pub fn pseudonym(&self, resource_type: &str, id: &str) -> String {
        let mut mac = self.mac.clone();
        mac.update(resource_type.as_bytes());
        mac.update(b"/");
        mac.update(id.as_bytes());
        let digest = mac.finalize().into_bytes();
        digest[..16].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// De-identifies a resource in place.
    pub fn resource(&self, resource: &mut Value) {
        let Some(object) = resource.as_object_mut() else {
            return;
        };
        let resource_type = object
            .get("resourceType")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if let Some(Value::String(id)) = object.get("id") {
            let pseudonym = self.pseudonym(&resource_type, id);
            object.insert("id".to_owned(), Value::String(pseudonym));
        }
        match resource_type.as_str() {
            "Patient" => self.birth_date(object),
            // A Binary's content is a document or image (kinds 1-18).
            "Binary" => {
                object.remove("data");
            }
            _ => {}
        }
        self.object(object);
    }

    /// A Patient's birth date: the year, or nothing and a flag for ages
    /// of 90 and over.
    fn birth_date(&self, patient: &mut Map<String, Value>) {
        let Some(year) = patient
            .get("birthDate")
            .and_then(Value::as_str)
            .and_then(|d| d.get(..4))
            .and_then(|y| y.parse::<i32>().ok())
        else {
            return;
        };
        if self.year - year >= 90 {
            patient.remove("birthDate");
            patient.remove("_birthDate");
            let flag = json!({"url": AGE_90_OR_OVER, "valueBoolean": true});
            match patient.get_mut("extension").and_then(Value::as_array_mut) {
                Some(extensions) => extensions.push(flag),
                None => {
                    patient.insert("extension".to_owned(), json!([flag]));
                }
            }
        }
    }

    fn object(&self, object: &mut Map<String, Value>) {
        if is_identifying_extension(object) {
            object.retain(|key, _| key == "url");
            return;
        }
        let is_resource = object.contains_key("resourceType");
        if !is_resource && (object.contains_key("contentType") || object.contains_key("data")) {
            // An Attachment: its data, URL, title and hash can identify.
            object.retain(|key, _| key == "contentType" || key == "language");
            return;
        }
        let keys: Vec<String> = object.keys().cloned().collect();
        let is_reference = object.contains_key("reference");
        for key in keys {
            let Some(value) = object.get_mut(&key) else {
                continue;
            };
            let remove = REMOVED.contains(&key.as_str())
                || (key == "text" && value.get("div").is_some())
                || (key == "display" && is_reference)
                || (matches!(key.as_str(), "name" | "valueHumanName") && is_human_name(value));
            if remove {
                object.remove(&key);
                object.remove(&format!("_{key}"));
                continue;
            }
            match key.as_str() {
                "address" | "valueAddress" => generalise_addresses(value),
                "reference" => {
                    if let Some(reference) = value.as_str().map(str::to_owned) {
                        match self.reference(&reference) {
                            Some(pseudonymised) => *value = Value::String(pseudonymised),
                            None => {
                                object.remove(&key);
                            }
                        }
                    }
                }
                k if INSTANTS.contains(&k) => {
                    if let Some(year) = value.as_str().and_then(date_year) {
                        *value = Value::String(format!("{year}-01-01T00:00:00Z"));
                    }
                }
                k if k.ends_with("Age") && value.is_object() => self.age(value),
                _ => self.value(value),
            }
        }
    }

    fn value(&self, value: &mut Value) {
        match value {
            Value::String(text) => {
                if let Some(year) = date_year(text) {
                    *text = year.to_owned();
                }
            }
            Value::Array(items) => {
                for item in items {
                    self.value(item);
                }
            }
            Value::Object(object) => {
                if object.contains_key("resourceType") {
                    // A contained resource: local ids (#x) stay, the rest
                    // is de-identified like the container.
                    let id = object.remove("id");
                    self.object(object);
                    if let Some(id) = id {
                        object.insert("id".to_owned(), id);
                    }
                } else {
                    self.object(object);
                }
            }
            _ => {}
        }
    }

    /// An Age over 89 years becomes `>= 90` (kind 3).
    fn age(&self, age: &mut Value) {
        let years = age
            .get("value")
            .and_then(Value::as_f64)
            .filter(|_| is_years(age));
        if years.is_some_and(|y| y >= 90.0) {
            age["value"] = json!(90);
            age["comparator"] = json!(">=");
        }
    }

    /// A reference with its id pseudonymised: `Type/pseudonym`. Contained
    /// references (`#id`) stay; references that name no resource of a
    /// known type (an external URL, a `urn:`) are removed.
    fn reference(&self, reference: &str) -> Option<String> {
        if reference.starts_with('#') {
            return Some(reference.to_owned());
        }
        use crate::reference::{ReferenceTarget, parse_reference};
        let (resource_type, id) = match parse_reference(reference, "")? {
            ReferenceTarget::Local {
                resource_type, id, ..
            } => (resource_type.as_str(), id),
            // An absolute URL: its `Type/id` (this server's base is not
            // known here; joins need only the type and the id).
            ReferenceTarget::External(url) => {
                let segments: Vec<&str> = url.split(['/', '?', '#']).collect();
                segments.windows(2).rev().find_map(|pair| {
                    let t = crate::id::ResourceType::parse(pair[0])?;
                    crate::id::is_valid_id(pair[1]).then_some((t.as_str(), pair[1]))
                })?
            }
            _ => return None,
        };
        Some(format!(
            "{resource_type}/{}",
            self.pseudonym(resource_type, id)
        ))
    }
}

fn unreachable_key() -> Hmac<Sha256> {
    // `new_from_slice` refuses no key length for HMAC; this is never used.
    #[allow(clippy::expect_used)]
    <Hmac<Sha256> as Mac>::new_from_slice(b"baraza").expect("HMAC accepts any key")
}

/// The year of a FHIR date, dateTime or instant, or `None` for any other
/// text (only whole values that are dates are generalised).
fn date_year(text: &str) -> Option<&str> {
    let bytes = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| {
        bytes
            .get(range)
            .is_some_and(|b| b.iter().all(u8::is_ascii_digit))
    };
    if text.len() < 7 || !digits(0..4) || bytes[4] != b'-' || !digits(5..7) {
        return None;
    }
    if text.len() > 7 && (bytes.get(7) != Some(&b'-') || !digits(8..10)) {
        return None;
    }
    if text.len() > 10 && bytes.get(10) != Some(&b'T') {
        return None;
    }
    Some(&text[..4])
}

fn is_years(age: &Value) -> bool {
    match (
        age.get("code").and_then(Value::as_str),
        age.get("unit").and_then(Value::as_str),
    ) {
        (Some(code), _) => code == "a",
        (None, Some(unit)) => unit.to_ascii_lowercase().starts_with('y') || unit == "a",
        (None, None) => true,
    }
}

/// A HumanName or a list of them (a string `name` is an organisation's or
/// a place's, and stays).
fn is_human_name(value: &Value) -> bool {
    let one = |v: &Value| {
        v.as_object().is_some_and(|o| {
            ["family", "given", "text", "prefix", "suffix"]
                .iter()
                .any(|k| o.contains_key(*k))
        })
    };
    match value {
        Value::Array(items) => items.iter().any(one),
        other => one(other),
    }
}

fn is_identifying_extension(object: &Map<String, Value>) -> bool {
    object
        .get("url")
        .and_then(Value::as_str)
        .is_some_and(|url| {
            IDENTIFYING_EXTENSIONS
                .iter()
                .any(|suffix| url.ends_with(suffix))
        })
        && object.keys().any(|k| k.starts_with("value"))
}

/// Addresses keep their use, type, state, country and the first three
/// digits of the postal code (kind 2).
fn generalise_addresses(value: &mut Value) {
    match value {
        Value::Array(items) => items.iter_mut().for_each(generalise_address),
        other => generalise_address(other),
    }
}

fn generalise_address(address: &mut Value) {
    let Some(object) = address.as_object_mut() else {
        return;
    };
    object.retain(|key, _| {
        matches!(
            key.as_str(),
            "use" | "type" | "state" | "country" | "postalCode"
        )
    });
    if let Some(Value::String(code)) = object.get_mut("postalCode") {
        let digits: String = code
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(3)
            .collect();
        *code = if digits.len() < 3 || SMALL_ZIP3.contains(&digits.as_str()) {
            "000".to_owned()
        } else {
            digits
        };
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn check(input: Value, expected: Value) {
        let mut resource = input;
        Deidentifier::at(b"key", 2026).resource(&mut resource);
        assert_eq!(resource, expected);
    }

    #[test]
    fn dates_become_years_and_instants_the_start_of_their_year() {
        let d = Deidentifier::at(b"key", 2026);
        let pid = d.pseudonym("Observation", "o1");
        let patient = d.pseudonym("Patient", "p1");
        check(
            json!({"resourceType": "Observation", "id": "o1", "status": "final",
                   "effectiveDateTime": "2021-03-04T10:11:12+03:00", "issued": "2021-03-04T10:11:12.123Z",
                   "subject": {"reference": "Patient/p1", "display": "Amina Otieno"},
                   "code": {"text": "2020-01-01", "coding": [{"code": "1234-5", "display": "Glucose"}]}}),
            json!({"resourceType": "Observation", "id": pid, "status": "final",
                   "effectiveDateTime": "2021", "issued": "2021-01-01T00:00:00Z",
                   "subject": {"reference": format!("Patient/{patient}")},
                   "code": {"text": "2020", "coding": [{"code": "1234-5", "display": "Glucose"}]}}),
        );
    }

    #[test]
    fn people_lose_names_contacts_and_identifiers_and_keep_generalised_addresses() {
        let d = Deidentifier::at(b"key", 2026);
        check(
            json!({"resourceType": "Patient", "id": "p1", "meta": {"versionId": "2"},
                   "text": {"status": "generated", "div": "<div>Amina</div>"},
                   "identifier": [{"system": "urn:mrn", "value": "MRN-1"}],
                   "name": [{"family": "Otieno", "given": ["Amina"]}],
                   "telecom": [{"system": "phone", "value": "+254 700 000000"}],
                   "gender": "female", "birthDate": "1980-04-02",
                   "address": [{"line": ["1 Moi Ave"], "city": "Nairobi", "postalCode": "00100-12", "country": "KE"}],
                   "photo": [{"contentType": "image/png", "data": "AAAA"}],
                   "contact": [{"name": {"family": "Otieno"}}],
                   "managingOrganization": {"reference": "Organization/o1", "display": "Clinic"}}),
            json!({"resourceType": "Patient", "id": d.pseudonym("Patient", "p1"),
                   "gender": "female", "birthDate": "1980",
                   "address": [{"postalCode": "001", "country": "KE"}],
                   "managingOrganization": {"reference": format!("Organization/{}", d.pseudonym("Organization", "o1"))}}),
        );
    }

    #[test]
    fn ages_over_89_are_aggregated() {
        let d = Deidentifier::at(b"key", 2026);
        check(
            json!({"resourceType": "Patient", "id": "p", "birthDate": "1930-01-01"}),
            json!({"resourceType": "Patient", "id": d.pseudonym("Patient", "p"),
                   "extension": [{"url": AGE_90_OR_OVER, "valueBoolean": true}]}),
        );
        check(
            json!({"resourceType": "Condition", "id": "c", "onsetAge": {"value": 93, "unit": "years"}}),
            json!({"resourceType": "Condition", "id": d.pseudonym("Condition", "c"),
                   "onsetAge": {"value": 90, "unit": "years", "comparator": ">="}}),
        );
    }

    #[test]
    fn pseudonyms_depend_on_the_key_and_the_type() {
        let a = Deidentifier::at(b"one", 2026);
        let b = Deidentifier::at(b"two", 2026);
        assert_ne!(a.pseudonym("Patient", "p"), b.pseudonym("Patient", "p"));
        assert_ne!(a.pseudonym("Patient", "p"), a.pseudonym("Group", "p"));
        assert_eq!(a.pseudonym("Patient", "p"), a.pseudonym("Patient", "p"));
        assert!(crate::id::is_valid_id(&a.pseudonym("Patient", "p")));
    }

    #[test]
    fn only_whole_dates_are_generalised() {
        for (text, year) in [
            ("2021-03", Some("2021")),
            ("2021-03-04", Some("2021")),
            ("2021-03-04T10:00:00Z", Some("2021")),
            ("2021", None),
            ("2021-3-4", None),
            ("call 2021-03-04", None),
            ("12345-6789", None),
        ] {
            assert_eq!(date_year(text), year, "{text}");
        }
    }
}
