//! Synthetic clinical data shaped like Synthea's output: a patient with
//! encounters, observations, procedures, claims and explanations of benefit,
//! all linked by `urn:uuid` references inside one transaction Bundle.
//! Deterministic for a given seed, so runs are comparable.

use serde_json::{Value, json};

/// A small deterministic generator (xorshift), enough for test data.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// A version-4-shaped UUID.
    pub fn uuid(&mut self) -> String {
        let a = self.next_u64();
        let b = self.next_u64();
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            0x8000 | (b >> 48 & 0x3fff),
            b & 0xffff_ffff_ffff
        )
    }
}

const FAMILIES: [&str; 8] = [
    "Otieno", "Wanjiru", "Mwangi", "Achieng", "Kamau", "Njeri", "Mutua", "Chebet",
];
const GIVEN: [&str; 8] = [
    "Amina", "Baraka", "Zawadi", "Juma", "Imani", "Neema", "Tumaini", "Rehema",
];

/// (LOINC code, display, unit, low, high)
const VITALS: [(&str, &str, &str, u64, u64); 5] = [
    ("8867-4", "Heart rate", "/min", 50, 120),
    ("8480-6", "Systolic blood pressure", "mm[Hg]", 95, 170),
    ("29463-7", "Body weight", "kg", 40, 120),
    ("2339-0", "Glucose [Mass/volume] in Blood", "mg/dL", 60, 250),
    ("8310-5", "Body temperature", "Cel", 35, 40),
];

fn entry(full_url: &str, resource: Value) -> Value {
    let t = resource["resourceType"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    json!({ "fullUrl": full_url, "resource": resource, "request": { "method": "POST", "url": t } })
}

fn date(rng: &mut Rng, from_year: u64) -> String {
    format!(
        "{}-{:02}-{:02}",
        from_year + rng.below(8),
        1 + rng.below(12),
        1 + rng.below(28)
    )
}

pub fn patient(rng: &mut Rng, national_id: &str) -> Value {
    json!({
        "resourceType": "Patient",
        "identifier": [{
            "system": "urn:oid:2.16.404.1.1",
            "value": national_id,
            "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "NI"}]}
        }],
        "name": [{"use": "official", "family": rng.pick(&FAMILIES), "given": [rng.pick(&GIVEN)]}],
        "telecom": [{"system": "phone", "value": format!("+2547{:08}", rng.below(100_000_000)), "use": "mobile"}],
        "gender": if rng.below(2) == 0 { "female" } else { "male" },
        "birthDate": date(rng, 1950),
        "address": [{"city": "Nairobi", "district": "Westlands", "country": "KE"}]
    })
}

/// A transaction Bundle: one Patient, an Organization and a Practitioner,
/// and for each encounter an Encounter, three Observations, a Procedure, a
/// Claim and an ExplanationOfBenefit. `n_encounters = 50` gives 353 entries.
pub fn patient_bundle(seed: u64, n_encounters: usize) -> Value {
    let mut rng = Rng::new(seed);
    let patient_url = format!("urn:uuid:{}", rng.uuid());
    let org_url = format!("urn:uuid:{}", rng.uuid());
    let practitioner_url = format!("urn:uuid:{}", rng.uuid());
    let national_id = format!("NID{seed:09}");
    let mut entries = vec![
        entry(&patient_url, patient(&mut rng, &national_id)),
        entry(
            &org_url,
            json!({"resourceType": "Organization", "name": "Kenyatta National Hospital", "active": true}),
        ),
        entry(
            &practitioner_url,
            json!({"resourceType": "Practitioner", "name": [{"family": rng.pick(&FAMILIES), "prefix": ["Dr."]}]}),
        ),
    ];
    for _ in 0..n_encounters {
        let day = date(&mut rng, 2015);
        let encounter_url = format!("urn:uuid:{}", rng.uuid());
        entries.push(entry(&encounter_url, json!({
            "resourceType": "Encounter",
            "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "type": [{"coding": [{"system": "http://snomed.info/sct", "code": "185349003", "display": "Encounter for check up"}]}],
            "subject": {"reference": patient_url},
            "participant": [{"individual": {"reference": practitioner_url}}],
            "period": {"start": format!("{day}T09:00:00+03:00"), "end": format!("{day}T09:30:00+03:00")},
            "serviceProvider": {"reference": org_url}
        })));
        for _ in 0..3 {
            let (code, display, unit, low, high) = *rng.pick(&VITALS);
            let value = low + rng.below(high - low);
            entries.push(entry(&format!("urn:uuid:{}", rng.uuid()), json!({
                "resourceType": "Observation",
                "status": "final",
                "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
                "code": {"coding": [{"system": "http://loinc.org", "code": code, "display": display}], "text": display},
                "subject": {"reference": patient_url},
                "encounter": {"reference": encounter_url},
                "effectiveDateTime": format!("{day}T09:10:00+03:00"),
                "issued": format!("{day}T09:10:00.000+03:00"),
                "performer": [{"reference": practitioner_url}],
                "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}
            })));
        }
        let procedure_url = format!("urn:uuid:{}", rng.uuid());
        entries.push(entry(&procedure_url, json!({
            "resourceType": "Procedure",
            "status": "completed",
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "430193006", "display": "Medication Reconciliation"}]},
            "subject": {"reference": patient_url},
            "encounter": {"reference": encounter_url},
            "performedPeriod": {"start": format!("{day}T09:10:00+03:00"), "end": format!("{day}T09:20:00+03:00")}
        })));
        let claim_url = format!("urn:uuid:{}", rng.uuid());
        let amount = 50 + rng.below(500);
        entries.push(entry(&claim_url, json!({
            "resourceType": "Claim",
            "status": "active",
            "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/claim-type", "code": "institutional"}]},
            "use": "claim",
            "patient": {"reference": patient_url},
            "billablePeriod": {"start": format!("{day}T09:00:00+03:00"), "end": format!("{day}T09:30:00+03:00")},
            "created": format!("{day}T09:30:00+03:00"),
            "provider": {"reference": org_url},
            "priority": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/processpriority", "code": "normal"}]},
            "procedure": [{"sequence": 1, "procedureReference": {"reference": procedure_url}}],
            "insurance": [{"sequence": 1, "focal": true, "coverage": {"display": "NHIF"}}],
            "item": [{
                "sequence": 1,
                "productOrService": {"coding": [{"system": "http://snomed.info/sct", "code": "185349003"}]},
                "encounter": [{"reference": encounter_url}]
            }],
            "total": {"value": amount, "currency": "KES"}
        })));
        entries.push(entry(&format!("urn:uuid:{}", rng.uuid()), json!({
            "resourceType": "ExplanationOfBenefit",
            "status": "active",
            "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/claim-type", "code": "institutional"}]},
            "use": "claim",
            "patient": {"reference": patient_url},
            "billablePeriod": {"start": format!("{day}T09:00:00+03:00"), "end": format!("{day}T09:30:00+03:00")},
            "created": format!("{day}T09:30:00+03:00"),
            "insurer": {"display": "NHIF"},
            "provider": {"reference": practitioner_url},
            "claim": {"reference": claim_url},
            "outcome": "complete",
            "insurance": [{"focal": true, "coverage": {"display": "NHIF"}}],
            "item": [{
                "sequence": 1,
                "productOrService": {"coding": [{"system": "http://snomed.info/sct", "code": "185349003"}]},
                "encounter": [{"reference": encounter_url}]
            }],
            "total": [{
                "category": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/adjudication", "code": "submitted"}]},
                "amount": {"value": amount, "currency": "KES"}
            }]
        })));
    }
    json!({ "resourceType": "Bundle", "type": "transaction", "entry": entries })
}

/// A transaction of `n` independent Observations for one existing patient
/// reference (for throughput measurements).
pub fn observation_bundle(seed: u64, n: usize, subject: &str) -> Value {
    let mut rng = Rng::new(seed);
    let entries: Vec<Value> = (0..n)
        .map(|_| {
            let (code, display, unit, low, high) = *rng.pick(&VITALS);
            let day = date(&mut rng, 2015);
            entry(&format!("urn:uuid:{}", rng.uuid()), json!({
                "resourceType": "Observation",
                "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": code, "display": display}]},
                "subject": {"reference": subject},
                "effectiveDateTime": format!("{day}T08:00:00Z"),
                "valueQuantity": {"value": low + rng.below(high - low), "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}
            }))
        })
        .collect();
    json!({ "resourceType": "Bundle", "type": "transaction", "entry": entries })
}
