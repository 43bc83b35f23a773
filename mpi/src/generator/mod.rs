//! A deterministic test-data generator: a base population of realistic
//! people, duplicates of some of them sent by different facilities with
//! controlled corruption, and different people who look alike (twins,
//! namesakes). Every record carries its true person (cluster) id.
//!
//! The standard setting (`Setting::standard`): 10,000 base people, 30 %
//! duplicated 1–3 times, 1 % with a twin, 1 % with a namesake, 12 sources,
//! 70 % with a national id.

mod corrupt;
mod names;

use serde_json::{Value, json};

pub use corrupt::Corruption;
use names::{PLACES, REGIONS, STREETS};

use crate::defaults::NATIONAL_ID_SYSTEM;

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct Setting {
    pub seed: u64,
    /// Base people (twins and namesakes come in addition).
    pub people: usize,
    /// Share of people with duplicates.
    pub duplicated_share: f64,
    /// Duplicates per duplicated person: 1 to this many.
    pub max_duplicates: usize,
    /// Share of people given a twin (same family, birth date, household).
    pub twin_share: f64,
    /// Share of people given a namesake (same names, birth date close).
    pub namesake_share: f64,
    pub sources: usize,
    pub national_id_share: f64,
}

impl Setting {
    /// The standard setting the quality targets refer to.
    pub fn standard() -> Setting {
        Setting {
            seed: 20_240_601,
            people: 10_000,
            duplicated_share: 0.3,
            max_duplicates: 3,
            twin_share: 0.01,
            namesake_share: 0.01,
            sources: 12,
            national_id_share: 0.7,
        }
    }

    /// The standard setting with fewer people (tests in debug builds).
    pub fn small() -> Setting {
        Setting {
            people: 2_000,
            ..Setting::standard()
        }
    }
}

/// One generated Patient record.
#[derive(Debug, Clone)]
pub struct Record {
    pub patient: Value,
    pub source: String,
    /// The true person: records with the same cluster are the same person.
    pub cluster: u32,
    /// The corruptions applied (empty for a person's first record).
    pub corruptions: Vec<Corruption>,
}

/// A generated dataset.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub records: Vec<Record>,
}

impl Dataset {
    /// The number of true pairs (records of the same person).
    pub fn true_pair_count(&self) -> u64 {
        let mut sizes = std::collections::HashMap::<u32, u64>::new();
        for r in &self.records {
            *sizes.entry(r.cluster).or_default() += 1;
        }
        sizes.values().map(|n| n * (n - 1) / 2).sum()
    }
}

/// SplitMix64: small, fast and deterministic across platforms.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [0, n); n > 0.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// A person's true data (before any facility writes it down).
#[derive(Debug, Clone)]
pub struct Person {
    pub cluster: u32,
    pub given: Vec<String>,
    pub family: String,
    pub male: bool,
    pub birth: (u16, u8, u8),
    pub national_id: Option<String>,
    pub phone: Option<String>,
    pub line: Option<String>,
    pub place: usize,
    pub postal: Option<String>,
}

fn new_person(rng: &mut Rng, cluster: u32, national_id_share: f64) -> Person {
    let mut roll = rng.unit();
    let region = REGIONS
        .iter()
        .find(|r| {
            roll -= r.share;
            roll < 0.0
        })
        .unwrap_or(&REGIONS[0]);
    let male = rng.chance(0.5);
    let names = if male { region.male } else { region.female };
    let mut given = vec![rng.pick(names).to_string()];
    if rng.chance(0.2) {
        given.push(rng.pick(names).to_string());
    }
    let place = rng.below(PLACES.len());
    Person {
        cluster,
        given,
        family: rng.pick(region.family).to_string(),
        male,
        birth: (
            1940 + rng.below(84) as u16,
            1 + rng.below(12) as u8,
            1 + rng.below(28) as u8,
        ),
        national_id: rng
            .chance(national_id_share)
            .then(|| format!("{:08}", 10_000_000 + rng.below(89_999_999))),
        phone: rng
            .chance(0.85)
            .then(|| format!("7{:08}", rng.below(100_000_000))),
        line: rng
            .chance(0.8)
            .then(|| format!("{} {}", 1 + rng.below(400), rng.pick(STREETS))),
        place,
        postal: rng
            .chance(0.6)
            .then(|| format!("{}{:02}", PLACES[place].2, rng.below(100))),
    }
}

/// A twin: same family, birth date and household; another given name.
fn twin(rng: &mut Rng, of: &Person, cluster: u32, national_id_share: f64) -> Person {
    let mut twin = new_person(rng, cluster, national_id_share);
    let nicknames = crate::phonetic::Nicknames::built_in();
    let canonical = |p: &Person| {
        nicknames
            .canonical(&crate::normalize::fold(&p.given[0]))
            .to_string()
    };
    while canonical(&twin) == canonical(of) {
        twin = new_person(rng, cluster, national_id_share);
    }
    Person {
        family: of.family.clone(),
        birth: of.birth,
        phone: of.phone.clone(),
        line: of.line.clone(),
        place: of.place,
        postal: of.postal.clone(),
        ..twin
    }
}

/// A namesake: another person with the same names, born the same year.
fn namesake(rng: &mut Rng, of: &Person, cluster: u32, national_id_share: f64) -> Person {
    let other = new_person(rng, cluster, national_id_share);
    Person {
        given: of.given.clone(),
        family: of.family.clone(),
        male: of.male,
        birth: (of.birth.0, other.birth.1, other.birth.2),
        ..other
    }
}

/// Generates the dataset of a setting (the same setting always gives the
/// same records).
pub fn generate(setting: &Setting) -> Dataset {
    let mut rng = Rng::new(setting.seed);
    let mut people: Vec<Person> = Vec::with_capacity(setting.people * 103 / 100);
    for i in 0..setting.people {
        people.push(new_person(&mut rng, i as u32, setting.national_id_share));
    }
    for i in 0..setting.people {
        let next = people.len() as u32;
        if rng.chance(setting.twin_share) {
            let t = twin(&mut rng, &people[i], next, setting.national_id_share);
            people.push(t);
        } else if rng.chance(setting.namesake_share) {
            let n = namesake(&mut rng, &people[i], next, setting.national_id_share);
            people.push(n);
        }
    }
    let sources: Vec<String> = (1..=setting.sources.max(1))
        .map(|i| format!("facility-{i:02}"))
        .collect();
    let mut records = Vec::new();
    for person in &people {
        let copies = if rng.chance(setting.duplicated_share) {
            1 + rng.below(setting.max_duplicates.max(1))
        } else {
            0
        };
        let mut used: Vec<(String, String)> = Vec::new();
        for copy in 0..=copies {
            let source = rng.pick(&sources).clone();
            // The same facility usually finds its own record number again.
            let mrn = match used.iter().find(|(s, _)| *s == source) {
                Some((_, mrn)) if rng.chance(0.5) => mrn.clone(),
                _ => format!("MRN{:07}", rng.below(10_000_000)),
            };
            used.push((source.clone(), mrn.clone()));
            let corruptions = if copy == 0 {
                Vec::new()
            } else {
                corrupt::choose(&mut rng)
            };
            let patient =
                corrupt::record(&mut rng, person, &corruptions, &source, &mrn, records.len());
            records.push(Record {
                patient,
                source,
                cluster: person.cluster,
                corruptions,
            });
        }
    }
    Dataset { records }
}

/// The Patient JSON of a person as a facility writes it (before
/// corruption; `corrupt::record` edits the person first).
fn patient_json(
    rng: &mut Rng,
    p: &Person,
    source: &str,
    mrn: &str,
    index: usize,
    keep_national_id: bool,
) -> Value {
    let mut identifiers = vec![json!({"system": format!("urn:baraza:{source}:mrn"), "value": mrn})];
    if let (Some(id), true) = (&p.national_id, keep_national_id) {
        identifiers.push(json!({"system": NATIONAL_ID_SYSTEM, "value": id}));
    }
    let (y, m, d) = p.birth;
    let mut patient = json!({
        "resourceType": "Patient",
        "id": format!("r{index}"),
        "meta": {"lastUpdated": format!("{}-{:02}-{:02}T10:00:00Z", 2015 + rng.below(10), 1 + rng.below(12), 1 + rng.below(28))},
        "identifier": identifiers,
        "name": [{"use": "official", "family": p.family, "given": p.given}],
        "gender": if p.male { "male" } else { "female" },
        "birthDate": format!("{y:04}-{m:02}-{d:02}"),
    });
    if let Some(phone) = &p.phone {
        let shown = match rng.below(3) {
            0 => format!("+254 {} {} {}", &phone[..3], &phone[3..6], &phone[6..]),
            1 => format!("0{phone}"),
            _ => format!("254{phone}"),
        };
        patient["telecom"] = json!([{"system": "phone", "value": shown}]);
    }
    let (city, district, _) = PLACES[p.place];
    let mut address = json!({"use": "home", "city": city, "district": district});
    if let Some(line) = &p.line {
        address["line"] = json!([line]);
    }
    if let Some(postal) = &p.postal {
        address["postalCode"] = json!(postal);
    }
    patient["address"] = json!([address]);
    patient
}
