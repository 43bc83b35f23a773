//! A realistic population for the search benchmark: a shared pool of
//! Practitioners and Organizations, and per patient one transaction Bundle
//! with the Patient and about ten encounters' worth of clinical resources.
//!
//! The pool Bundle creates `Practitioner/prac-1` … `prac-200` and
//! `Organization/org-1` … `org-50` with PUT; every patient Bundle refers to
//! them by those ids and to its own resources by `urn:uuid` fullUrls. Per
//! patient (see [`PatientFacts`]):
//!
//! - one Patient: identifier `urn:oid:2.16.404.1.1|NID<seq>`, an official
//!   name (about 7 % of families start with "Smi": Smith, Smithers, Smit),
//!   gender, birthDate 1930–2020, address;
//! - 8–12 Encounters (10 on average) between 2010 and 2024, each with a
//!   Practitioner participant and an Organization service provider;
//! - per encounter: vital signs (heart rate 8867-4, systolic blood pressure
//!   8480-6, body weight 29463-7, body temperature 8310-5), a glucose
//!   2339-0 in mg/dL (60–260, above 180 only for diabetics) and, for the
//!   30 % of patients who are diabetic, an HbA1c 4548-4 in %; a Provenance
//!   whose `target` lists those Observations; a Procedure; and a
//!   MedicationRequest (RxNorm);
//! - a Condition for every second encounter.
//!
//! That is 99 resources per patient on average, so 10,000 patients make
//! about 990,000 resources ([`Population::resource_count`] is exact).
//! Everything is deterministic for a given seed, and a patient's facts can
//! be computed without generating its Bundle.

use crate::synthetic::Rng;
use serde_json::{Value, json};

/// Practitioners in the shared pool (`Practitioner/prac-1` …).
pub const PRACTITIONERS: usize = 200;
/// Organizations in the shared pool (`Organization/org-1` …).
pub const ORGANIZATIONS: usize = 50;
/// The system of every Patient's national identifier.
pub const ID_SYSTEM: &str = "urn:oid:2.16.404.1.1";

const LOINC: &str = "http://loinc.org";
const SNOMED: &str = "http://snomed.info/sct";
const UCUM: &str = "http://unitsofmeasure.org";
const RXNORM: &str = "http://www.nlm.nih.gov/research/umls/rxnorm";
const OBSERVATION_CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/observation-category";

/// Families whose folded form starts with "smi", and their share in ‰.
const SMI_FAMILIES: [(&str, u64); 3] = [("Smith", 40), ("Smithers", 15), ("Smit", 15)];
const OTHER_FAMILIES: [&str; 20] = [
    "Otieno", "Wanjiru", "Mwangi", "Achieng", "Kamau", "Njeri", "Mutua", "Chebet", "Ochieng",
    "Kiprop", "Jones", "Brown", "Okafor", "Mensah", "Nkosi", "Dlamini", "Haddad", "Garcia",
    "Nguyen", "Kowalski",
];
const GIVEN_FEMALE: [&str; 8] = [
    "Amina", "Zawadi", "Imani", "Neema", "Rehema", "Wanja", "Akinyi", "Grace",
];
const GIVEN_MALE: [&str; 8] = [
    "Baraka", "Juma", "Tumaini", "Otieno", "Kipchoge", "Daniel", "Omondi", "Peter",
];
const CITIES: [(&str, &str); 5] = [
    ("Nairobi", "Westlands"),
    ("Mombasa", "Mvita"),
    ("Kisumu", "Kisumu Central"),
    ("Nakuru", "Nakuru Town East"),
    ("Eldoret", "Kapseret"),
];

/// (LOINC code, display, UCUM unit, low, high, tenths): one Observation of
/// each per encounter; values are drawn in `low..high` (in tenths when
/// `tenths`).
const VITALS: [(&str, &str, &str, u64, u64, bool); 4] = [
    ("8867-4", "Heart rate", "/min", 50, 120, false),
    (
        "8480-6",
        "Systolic blood pressure",
        "mm[Hg]",
        95,
        180,
        false,
    ),
    ("29463-7", "Body weight", "kg", 40, 120, false),
    ("8310-5", "Body temperature", "Cel", 360, 395, true),
];
const CONDITIONS: [(&str, &str); 7] = [
    ("38341003", "Hypertensive disorder"),
    ("195662009", "Acute viral pharyngitis"),
    ("10509002", "Acute bronchitis"),
    ("40055000", "Chronic sinusitis"),
    ("233604007", "Pneumonia"),
    ("55822004", "Hyperlipidemia"),
    ("162864005", "Body mass index 30+ - obesity"),
];
const DIABETES: (&str, &str) = ("44054006", "Diabetes mellitus type 2");
const PROCEDURES: [(&str, &str); 4] = [
    ("430193006", "Medication reconciliation"),
    ("710824005", "Assessment of health and social care needs"),
    ("171207006", "Depression screening"),
    (
        "46706006",
        "Replacement of contraceptive intrauterine device",
    ),
];
const MEDICATIONS: [(&str, &str); 5] = [
    (
        "860975",
        "24 HR Metformin hydrochloride 500 MG Extended Release Oral Tablet",
    ),
    ("314076", "lisinopril 10 MG Oral Tablet"),
    ("197361", "amlodipine 5 MG Oral Tablet"),
    ("308182", "Amoxicillin 250 MG Oral Capsule"),
    ("310965", "Ibuprofen 200 MG Oral Tablet"),
];

/// A deterministic population of `patients` patients.
#[derive(Debug, Clone, Copy)]
pub struct Population {
    pub seed: u64,
    pub patients: usize,
}

/// What the search benchmark needs to know about one patient, without its
/// Bundle: the searchable Patient fields and the encounter dates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatientFacts {
    pub seq: usize,
    /// `NID<seq>`, zero-padded to 8 digits.
    pub identifier: String,
    pub family: &'static str,
    pub given: [&'static str; 2],
    /// `female` or `male`.
    pub gender: &'static str,
    /// `YYYY-MM-DD`, 1930–2020.
    pub birth_date: String,
    /// Diabetic patients have an HbA1c (4548-4) at every encounter and
    /// glucose values up to 260 mg/dL (others stay below 140).
    pub diabetic: bool,
    /// Encounter dates (`YYYY-MM-DD`, 2010–2024), ascending.
    pub encounter_dates: Vec<String>,
    /// The Organization (`org-N`) that provides every encounter.
    pub organization: usize,
}

impl PatientFacts {
    /// Observations per encounter: four vital signs, glucose, and HbA1c
    /// for diabetics.
    pub fn observations_per_encounter(&self) -> usize {
        5 + usize::from(self.diabetic)
    }

    /// Conditions: one for every second encounter.
    pub fn conditions(&self) -> usize {
        self.encounter_dates.len() / 2
    }

    /// Entries of this patient's Bundle: the Patient, then per encounter the
    /// Encounter, its Observations, a Provenance, a Procedure and a
    /// MedicationRequest, and the Conditions.
    pub fn resource_count(&self) -> usize {
        1 + self.encounter_dates.len() * (4 + self.observations_per_encounter()) + self.conditions()
    }

    /// Whether the name search `name=smi` matches this patient.
    pub fn name_starts_with_smi(&self) -> bool {
        self.family.to_ascii_lowercase().starts_with("smi")
    }
}

/// A generator stream for one (seed, patient, purpose), decorrelated with
/// splitmix64 so that neighbouring patients do not share patterns.
fn stream(seed: u64, seq: usize, purpose: u64) -> Rng {
    let mut z = seed
        .wrapping_add((seq as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_add(purpose.wrapping_mul(0xD1B5_4A32_D192_ED03));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    Rng::new(z ^ (z >> 31))
}

/// A day in `from..=to` (years), as `YYYY-MM-DD`.
fn day(rng: &mut Rng, from: u64, to: u64) -> String {
    format!(
        "{}-{:02}-{:02}",
        from + rng.below(to - from + 1),
        1 + rng.below(12),
        1 + rng.below(28)
    )
}

/// A local time on `day` in East Africa Time (UTC+3), between 08:00 and
/// 16:59, so the UTC date is the same day.
fn at(day: &str, hour: u64, minute: u64) -> String {
    format!("{day}T{hour:02}:{minute:02}:00+03:00")
}

fn coding(system: &str, code: &str, display: &str) -> Value {
    json!({"coding": [{"system": system, "code": code, "display": display}], "text": display})
}

fn category(code: &str) -> Value {
    json!([{"coding": [{"system": OBSERVATION_CATEGORY, "code": code}]}])
}

fn post(full_url: &str, resource: Value) -> Value {
    let t = resource["resourceType"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    json!({"fullUrl": full_url, "resource": resource, "request": {"method": "POST", "url": t}})
}

fn put(resource: Value) -> Value {
    let url = format!(
        "{}/{}",
        resource["resourceType"].as_str().unwrap_or_default(),
        resource["id"].as_str().unwrap_or_default()
    );
    json!({"resource": resource, "request": {"method": "PUT", "url": url}})
}

fn transaction(entries: Vec<Value>) -> Value {
    json!({"resourceType": "Bundle", "type": "transaction", "entry": entries})
}

impl Population {
    /// The population of `patients` patients generated from `seed`.
    pub fn new(seed: u64, patients: usize) -> Population {
        Population { seed, patients }
    }

    /// Resources in the pool Bundle.
    pub fn pool_count() -> usize {
        PRACTITIONERS + ORGANIZATIONS
    }

    /// Every resource the population creates: the pool and all patients.
    pub fn resource_count(&self) -> usize {
        Population::pool_count()
            + (0..self.patients)
                .map(|seq| self.facts(seq).resource_count())
                .sum::<usize>()
    }

    /// The transaction that creates the shared Practitioners and
    /// Organizations with PUT, so that re-running it is harmless.
    pub fn pool_bundle(&self) -> Value {
        let mut rng = stream(self.seed, usize::MAX, 0);
        let mut entries = Vec::with_capacity(Population::pool_count());
        for n in 1..=ORGANIZATIONS {
            let (city, district) = *rng.pick(&CITIES);
            entries.push(put(json!({
                "resourceType": "Organization",
                "id": format!("org-{n}"),
                "active": true,
                "type": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/organization-type", "code": "prov", "display": "Healthcare Provider"}]}],
                "name": format!("{city} Health Centre {n}"),
                "address": [{"city": city, "district": district, "country": "KE"}]
            })));
        }
        for n in 1..=PRACTITIONERS {
            let female = rng.below(2) == 0;
            let given = if female { &GIVEN_FEMALE } else { &GIVEN_MALE };
            entries.push(put(json!({
                "resourceType": "Practitioner",
                "id": format!("prac-{n}"),
                "active": true,
                "identifier": [{"system": "urn:oid:2.16.404.1.2", "value": format!("KMPDC{n:05}")}],
                "name": [{"family": rng.pick(&OTHER_FAMILIES), "given": [rng.pick(given)], "prefix": ["Dr."]}],
                "gender": if female { "female" } else { "male" }
            })));
        }
        transaction(entries)
    }

    /// The facts of patient `seq` (0-based).
    pub fn facts(&self, seq: usize) -> PatientFacts {
        let mut rng = stream(self.seed, seq, 1);
        let per_mille = rng.below(1000);
        let mut family = None;
        let mut threshold = 0;
        for (name, share) in SMI_FAMILIES {
            threshold += share;
            if family.is_none() && per_mille < threshold {
                family = Some(name);
            }
        }
        let family = family.unwrap_or_else(|| *rng.pick(&OTHER_FAMILIES));
        let female = rng.below(2) == 0;
        let names = if female { &GIVEN_FEMALE } else { &GIVEN_MALE };
        let first = rng.below(names.len() as u64) as usize;
        let second = (first + 1 + rng.below(names.len() as u64 - 1) as usize) % names.len();
        let given = [names[first], names[second]];
        let birth_date = day(&mut rng, 1930, 2020);
        let diabetic = rng.below(10) < 3;
        let encounters = 8 + rng.below(5) as usize;
        let mut encounter_dates: Vec<String> =
            (0..encounters).map(|_| day(&mut rng, 2010, 2024)).collect();
        encounter_dates.sort();
        PatientFacts {
            seq,
            identifier: format!("NID{seq:08}"),
            family,
            given,
            gender: if female { "female" } else { "male" },
            birth_date,
            diabetic,
            encounter_dates,
            organization: 1 + rng.below(ORGANIZATIONS as u64) as usize,
        }
    }

    /// The transaction Bundle of patient `seq`; the Patient is its first
    /// entry, so the response's first `location` names it.
    pub fn patient_bundle(&self, seq: usize) -> Value {
        let facts = self.facts(seq);
        let mut rng = stream(self.seed, seq, 2);
        let mut entries = Vec::with_capacity(facts.resource_count());
        let patient_url = format!("urn:uuid:{}", rng.uuid());
        let (city, district) = *rng.pick(&CITIES);
        entries.push(post(&patient_url, json!({
            "resourceType": "Patient",
            "identifier": [{
                "system": ID_SYSTEM,
                "value": facts.identifier,
                "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "NI"}]}
            }],
            "active": true,
            "name": [{"use": "official", "family": facts.family, "given": facts.given}],
            "telecom": [{"system": "phone", "value": format!("+2547{:08}", rng.below(100_000_000)), "use": "mobile"}],
            "gender": facts.gender,
            "birthDate": facts.birth_date,
            "address": [{
                "use": "home",
                "line": [format!("{} {} Road", 1 + rng.below(400), rng.pick(&OTHER_FAMILIES))],
                "city": city,
                "district": district,
                "postalCode": format!("{:05}", rng.below(100_000)),
                "country": "KE"
            }]
        })));
        let subject = json!({"reference": patient_url});
        let organization = json!({"reference": format!("Organization/org-{}", facts.organization)});
        let mut conditions = Vec::with_capacity(facts.conditions());
        for (index, day) in facts.encounter_dates.iter().enumerate() {
            let practitioner = json!({
                "reference": format!("Practitioner/prac-{}", 1 + rng.below(PRACTITIONERS as u64))
            });
            let hour = 8 + rng.below(8);
            let encounter_url = format!("urn:uuid:{}", rng.uuid());
            entries.push(post(&encounter_url, json!({
                "resourceType": "Encounter",
                "status": "finished",
                "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB", "display": "ambulatory"},
                "type": [coding(SNOMED, "185349003", "Encounter for check up")],
                "subject": subject,
                "participant": [{"individual": practitioner}],
                "period": {"start": at(day, hour, 0), "end": at(day, hour, 45)},
                "serviceProvider": organization
            })));
            let encounter = json!({"reference": encounter_url});
            let effective = at(day, hour, 10);
            let observation = |category_code: &str, code: (&str, &str), value: f64, unit: &str| {
                json!({
                    "resourceType": "Observation",
                    "status": "final",
                    "category": category(category_code),
                    "code": coding(LOINC, code.0, code.1),
                    "subject": subject,
                    "encounter": encounter,
                    "effectiveDateTime": effective,
                    "issued": format!("{day}T{hour:02}:30:00.000+03:00"),
                    "performer": [practitioner],
                    "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit}
                })
            };
            let mut observations = Vec::with_capacity(facts.observations_per_encounter());
            for (code, display, unit, low, high, tenths) in VITALS {
                let raw = (low + rng.below(high - low)) as f64;
                let value = if tenths { raw / 10.0 } else { raw };
                observations.push(observation("vital-signs", (code, display), value, unit));
            }
            let (low, high) = if facts.diabetic {
                (110, 261)
            } else {
                (60, 140)
            };
            let glucose = (low + rng.below(high - low)) as f64;
            observations.push(observation(
                "laboratory",
                ("2339-0", "Glucose [Mass/volume] in Blood"),
                glucose,
                "mg/dL",
            ));
            if facts.diabetic {
                let hba1c = (55 + rng.below(56)) as f64 / 10.0;
                observations.push(observation(
                    "laboratory",
                    ("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood"),
                    hba1c,
                    "%",
                ));
            }
            let mut targets = Vec::with_capacity(observations.len());
            for resource in observations {
                let url = format!("urn:uuid:{}", rng.uuid());
                targets.push(json!({"reference": url}));
                entries.push(post(&url, resource));
            }
            entries.push(post(&format!("urn:uuid:{}", rng.uuid()), json!({
                "resourceType": "Provenance",
                "target": targets,
                "recorded": format!("{day}T{hour:02}:50:00+03:00"),
                "agent": [{
                    "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type", "code": "author"}]},
                    "who": practitioner,
                    "onBehalfOf": organization
                }]
            })));
            let (code, display) = *rng.pick(&PROCEDURES);
            entries.push(post(
                &format!("urn:uuid:{}", rng.uuid()),
                json!({
                    "resourceType": "Procedure",
                    "status": "completed",
                    "code": coding(SNOMED, code, display),
                    "subject": subject,
                    "encounter": encounter,
                    "performedDateTime": at(day, hour, 20),
                    "performer": [{"actor": practitioner}]
                }),
            ));
            let (code, display) = if facts.diabetic {
                MEDICATIONS[0]
            } else {
                *rng.pick(&MEDICATIONS[1..])
            };
            entries.push(post(
                &format!("urn:uuid:{}", rng.uuid()),
                json!({
                    "resourceType": "MedicationRequest",
                    "status": "active",
                    "intent": "order",
                    "medicationCodeableConcept": coding(RXNORM, code, display),
                    "subject": subject,
                    "encounter": encounter,
                    "authoredOn": at(day, hour, 40),
                    "requester": practitioner
                }),
            ));
            if index % 2 == 1 {
                let (code, display) = if facts.diabetic && conditions.is_empty() {
                    DIABETES
                } else {
                    *rng.pick(&CONDITIONS)
                };
                conditions.push(post(&format!("urn:uuid:{}", rng.uuid()), json!({
                    "resourceType": "Condition",
                    "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
                    "verificationStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "confirmed"}]},
                    "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-category", "code": "encounter-diagnosis"}]}],
                    "code": coding(SNOMED, code, display),
                    "subject": subject,
                    "encounter": encounter,
                    "onsetDateTime": at(day, hour, 30),
                    "recordedDate": at(day, hour, 30)
                })));
            }
        }
        entries.extend(conditions);
        transaction(entries)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, HashSet};

    fn references<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
        match value {
            Value::Object(map) => {
                for (key, item) in map {
                    match (key.as_str(), item) {
                        ("reference", Value::String(r)) => out.push(r),
                        _ => references(item, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|item| references(item, out)),
            _ => {}
        }
    }

    fn types(bundle: &Value) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for entry in bundle["entry"].as_array().unwrap() {
            let t = entry["resource"]["resourceType"].as_str().unwrap();
            *counts.entry(t.to_owned()).or_default() += 1;
        }
        counts
    }

    #[test]
    fn bundles_are_deterministic_by_seed() {
        let population = Population::new(7, 10);
        assert_eq!(population.patient_bundle(3), population.patient_bundle(3));
        assert_eq!(population.pool_bundle(), population.pool_bundle());
        assert_ne!(population.patient_bundle(3), population.patient_bundle(4));
        assert_ne!(
            population.patient_bundle(3),
            Population::new(8, 10).patient_bundle(3)
        );
    }

    #[test]
    fn resource_counts_per_patient_are_as_documented() {
        let population = Population::new(1, 50);
        for seq in 0..population.patients {
            let facts = population.facts(seq);
            let bundle = population.patient_bundle(seq);
            let counts = types(&bundle);
            let encounters = facts.encounter_dates.len();
            assert!((8..=12).contains(&encounters));
            assert_eq!(counts["Patient"], 1);
            assert_eq!(counts["Encounter"], encounters);
            assert_eq!(
                counts["Observation"],
                encounters * facts.observations_per_encounter()
            );
            assert_eq!(counts["Provenance"], encounters);
            assert_eq!(counts["Procedure"], encounters);
            assert_eq!(counts["MedicationRequest"], encounters);
            assert_eq!(counts["Condition"], encounters / 2);
            assert_eq!(counts.values().sum::<usize>(), facts.resource_count());
            let first = &bundle["entry"][0]["resource"];
            assert_eq!(first["resourceType"], "Patient");
            assert_eq!(first["identifier"][0]["value"], facts.identifier.as_str());
        }
        let pool = types(&Population::new(1, 0).pool_bundle());
        assert_eq!(pool["Practitioner"], PRACTITIONERS);
        assert_eq!(pool["Organization"], ORGANIZATIONS);
    }

    #[test]
    fn every_reference_resolves_to_a_full_url_or_the_pool() {
        let population = Population::new(3, 20);
        let pool: HashSet<String> = population.pool_bundle()["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["request"]["url"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(pool.len(), Population::pool_count());
        for seq in 0..population.patients {
            let bundle = population.patient_bundle(seq);
            let entries = bundle["entry"].as_array().unwrap();
            let full_urls: HashSet<&str> = entries
                .iter()
                .map(|e| e["fullUrl"].as_str().unwrap())
                .collect();
            assert_eq!(full_urls.len(), entries.len(), "fullUrls are unique");
            let mut found = Vec::new();
            references(&bundle, &mut found);
            assert!(found.len() > entries.len());
            for reference in found {
                assert!(
                    full_urls.contains(reference) || pool.contains(reference),
                    "{reference} in patient {seq} resolves to nothing"
                );
            }
            for entry in entries {
                if entry["resource"]["resourceType"] == "Provenance" {
                    for target in entry["resource"]["target"].as_array().unwrap() {
                        let t = target["reference"].as_str().unwrap();
                        let resource =
                            &entries.iter().find(|e| e["fullUrl"] == t).unwrap()["resource"];
                        assert_eq!(resource["resourceType"], "Observation");
                    }
                }
            }
        }
    }

    #[test]
    fn the_population_has_the_shares_the_queries_rely_on() {
        let population = Population::new(1, 2000);
        let facts: Vec<PatientFacts> = (0..population.patients)
            .map(|seq| population.facts(seq))
            .collect();
        let share = |f: &dyn Fn(&PatientFacts) -> bool| {
            facts.iter().filter(|p| f(p)).count() as f64 / facts.len() as f64
        };
        let smi = share(&|p| p.name_starts_with_smi());
        assert!((0.05..=0.10).contains(&smi), "name=smi matches {smi}");
        let diabetic = share(&|p| p.diabetic);
        assert!((0.25..=0.35).contains(&diabetic), "diabetic {diabetic}");
        let per_patient = population.resource_count() as f64 / facts.len() as f64;
        assert!((95.0..=103.0).contains(&per_patient), "{per_patient}");
    }
}
