//! The search benchmark: loads a realistic population
//! ([`bench::population`]), then times nine typical FHIR searches, each
//! single-client and then all of them as a concurrent mix. With
//! `--explain-only` it runs each search once instead and copies the plans
//! PostgreSQL's `auto_explain` wrote to its log (bench/search.sh enables
//! it).
//!
//! Searches are sent with `Prefer: handling=strict`, so a parameter the
//! server cannot use yet answers 400 instead of being ignored; such a query
//! is reported as unsupported and left out of the rest of the run.

use crate::cpu;
use crate::harness::{
    Latencies, counted, cpu_split, http_client, run_clients, settle, wait_until_up,
};
use anyhow::{Context, Result, bail};
use bench::population::{ID_SYSTEM, PatientFacts, Population};
use bench::synthetic::Rng;
use clap::Args as ClapArgs;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod explain;
pub(crate) mod load;
mod timing;

use explain::explain;
use load::{already_loaded, load, read_patient_ids};
use timing::{concurrent_mix, print_header, single, single_sorted};

#[derive(Debug, Clone, ClapArgs)]
pub struct Args {
    /// FHIR base URL of a running Baraza.
    #[arg(long, default_value = "http://127.0.0.1:8080/fhir")]
    base: String,
    /// Patients in the population (about 99 resources each).
    #[arg(long, default_value_t = 10_000)]
    patients: usize,
    /// Seed of the population; a run with --skip-load must use the seed
    /// the data was loaded with.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Concurrent transactions while loading.
    #[arg(long, default_value_t = 2)]
    load_clients: usize,
    /// Seconds to wait after loading for autovacuum to analyse the tables.
    #[arg(long, default_value_t = 65)]
    settle_seconds: u64,
    /// Do not load: the population is already there (its patient ids are
    /// read back with a search). Loading is skipped anyway when the server
    /// already holds patients with the population's identifier system.
    #[arg(long)]
    skip_load: bool,
    /// Requests per query in the single-client phase (at most).
    #[arg(long, default_value_t = 200)]
    requests: usize,
    /// Seconds of the concurrent mix, and the most any single-client query
    /// may take.
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// Concurrent clients of the mix.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Seconds of the mix run untimed first, so that the timed mix meets
    /// the steady state of a serving database (shared buffers and the page
    /// cache holding what the searches read) rather than a cold start.
    #[arg(long, default_value_t = 30)]
    warmup_seconds: u64,
    /// Only these queries (`Q2,Q5`), to look at one in isolation; all nine
    /// when not given.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Run each query once and copy the plans auto_explain logged to
    /// --explain-out; no timing.
    #[arg(long, requires_all = ["explain_log", "explain_out"])]
    explain_only: bool,
    /// The PostgreSQL log auto_explain writes to (postgres.log in the data
    /// directory of the embedded cluster).
    #[arg(long)]
    explain_log: Option<PathBuf>,
    /// Where --explain-only writes the plans.
    #[arg(long)]
    explain_out: Option<PathBuf>,
}

/// Pages of query 9 that are walked (and timed one by one).
const SORT_PAGES: usize = 20;
/// The `_count` of queries 3 and 9, and the server's default page size.
const PAGE: usize = 50;

/// The nine searches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Query {
    Name,
    Identifier,
    BirthdateGender,
    PatientCodeDate,
    HighGlucose,
    ChainedIdentifier,
    HasHba1c,
    IncludeRevinclude,
    SortedPages,
}

const QUERIES: [Query; 9] = [
    Query::Name,
    Query::Identifier,
    Query::BirthdateGender,
    Query::PatientCodeDate,
    Query::HighGlucose,
    Query::ChainedIdentifier,
    Query::HasHba1c,
    Query::IncludeRevinclude,
    Query::SortedPages,
];

impl Query {
    /// `Q1` … `Q9`.
    fn name(self) -> String {
        let number = QUERIES.iter().position(|q| *q == self).unwrap_or(0) + 1;
        format!("Q{number}")
    }

    /// The query, with its varying part as `…`.
    fn text(self) -> &'static str {
        match self {
            Query::Name => "Patient?name=smi",
            Query::Identifier => "Patient?identifier=urn:oid:2.16.404.1.1|NID…",
            Query::BirthdateGender => "Patient?birthdate=ge1980-01-01&gender=female&_count=50",
            Query::PatientCodeDate => {
                "Observation?patient=Patient/…&code=http://loinc.org|8867-4&date=ge2015"
            }
            Query::HighGlucose => "Observation?code=http://loinc.org|2339-0&value-quantity=gt180",
            Query::ChainedIdentifier => "Encounter?patient.identifier=urn:oid:2.16.404.1.1|NID…",
            Query::HasHba1c => "Patient?_has:Observation:patient:code=http://loinc.org|4548-4",
            Query::IncludeRevinclude => {
                "Observation?patient=Patient/…&_include=Observation:performer&_revinclude=Provenance:target"
            }
            Query::SortedPages => "Condition?_sort=-onset-date&_count=50, pages 1-20",
        }
    }
}

/// One concrete search of a query, with the patient it is about.
#[derive(Debug, Clone)]
struct Case {
    query: Query,
    resource_type: &'static str,
    params: Vec<(String, String)>,
    patient: Option<usize>,
}

impl Case {
    fn display(&self) -> String {
        let params: Vec<String> = self
            .params
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        format!("{}?{}", self.resource_type, params.join("&"))
    }
}

/// The population as loaded: facts per patient, the ids the server gave
/// the Patients, and the expected sizes of the fixed queries' results.
#[derive(Debug)]
struct Loaded {
    facts: Vec<PatientFacts>,
    ids: Vec<String>,
    seq_of: HashMap<String, usize>,
    smi: usize,
    women_since_1980: usize,
    diabetic: usize,
    conditions: usize,
}

impl Loaded {
    fn new(population: &Population, ids: Vec<String>) -> Loaded {
        let facts: Vec<PatientFacts> = (0..population.patients)
            .map(|seq| population.facts(seq))
            .collect();
        let count = |f: &dyn Fn(&PatientFacts) -> bool| facts.iter().filter(|p| f(p)).count();
        Loaded {
            smi: count(&|p| p.name_starts_with_smi()),
            women_since_1980: count(&|p| {
                p.gender == "female" && p.birth_date.as_str() >= "1980-01-01"
            }),
            diabetic: count(&|p| p.diabetic),
            conditions: facts.iter().map(PatientFacts::conditions).sum(),
            seq_of: ids
                .iter()
                .enumerate()
                .map(|(i, id)| (id.clone(), i))
                .collect(),
            facts,
            ids,
        }
    }

    /// A search of `query`, about a patient drawn with `rng`.
    fn case(&self, query: Query, rng: &mut Rng) -> Case {
        let seq = rng.below(self.facts.len() as u64) as usize;
        let identifier = format!("{ID_SYSTEM}|{}", self.facts[seq].identifier);
        let patient = format!("Patient/{}", self.ids[seq]);
        let pairs = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        let (resource_type, params, about) = match query {
            Query::Name => ("Patient", pairs(&[("name", "smi")]), None),
            Query::Identifier => ("Patient", pairs(&[("identifier", &identifier)]), Some(seq)),
            Query::BirthdateGender => (
                "Patient",
                pairs(&[
                    ("birthdate", "ge1980-01-01"),
                    ("gender", "female"),
                    ("_count", "50"),
                ]),
                None,
            ),
            Query::PatientCodeDate => (
                "Observation",
                pairs(&[
                    ("patient", &patient),
                    ("code", "http://loinc.org|8867-4"),
                    ("date", "ge2015"),
                ]),
                Some(seq),
            ),
            Query::HighGlucose => (
                "Observation",
                pairs(&[
                    ("code", "http://loinc.org|2339-0"),
                    ("value-quantity", "gt180"),
                ]),
                None,
            ),
            Query::ChainedIdentifier => (
                "Encounter",
                pairs(&[("patient.identifier", &identifier)]),
                Some(seq),
            ),
            Query::HasHba1c => (
                "Patient",
                pairs(&[("_has:Observation:patient:code", "http://loinc.org|4548-4")]),
                None,
            ),
            Query::IncludeRevinclude => (
                "Observation",
                pairs(&[
                    ("patient", &patient),
                    ("_include", "Observation:performer"),
                    ("_revinclude", "Provenance:target"),
                ]),
                Some(seq),
            ),
            Query::SortedPages => (
                "Condition",
                pairs(&[("_sort", "-onset-date"), ("_count", "50")]),
                None,
            ),
        };
        Case {
            query,
            resource_type,
            params,
            patient: about,
        }
    }

    /// Whether a first page answering `case` is plausible; the reason if
    /// not. Query 9's pages are checked as a whole by [`check_sorted`].
    fn check(&self, case: &Case, bundle: &Value) -> Result<(), String> {
        let found = matches(bundle);
        let expect_count = |expected: usize| {
            if found.len() == expected {
                Ok(())
            } else {
                Err(format!("{} matches, expected {expected}", found.len()))
            }
        };
        let all = |what: &str, ok: &dyn Fn(&Value) -> bool| match found.iter().find(|r| !ok(r)) {
            None => Ok(()),
            Some(r) => Err(format!(
                "{}/{} is not {what}",
                r["resourceType"].as_str().unwrap_or("?"),
                r["id"].as_str().unwrap_or("?")
            )),
        };
        let facts = case.patient.map(|seq| &self.facts[seq]);
        let subject = case.patient.map(|seq| format!("Patient/{}", self.ids[seq]));
        let of_patient = |r: &Value| r["subject"]["reference"].as_str() == subject.as_deref();
        let has_code = |r: &Value, code: &str| {
            r["code"]["coding"]
                .as_array()
                .is_some_and(|c| c.iter().any(|c| c["code"] == code))
        };
        match (case.query, facts) {
            (Query::Name, _) => {
                expect_count(self.smi.min(PAGE))?;
                all("named Smi…", &|r| {
                    r["name"][0]["family"]
                        .as_str()
                        .is_some_and(|f| f.to_lowercase().starts_with("smi"))
                })
            }
            (Query::Identifier, Some(facts)) => {
                expect_count(1)?;
                all(&facts.identifier, &|r| {
                    r["identifier"][0]["value"] == facts.identifier.as_str()
                })
            }
            (Query::BirthdateGender, _) => {
                expect_count(self.women_since_1980.min(PAGE))?;
                all("a woman born since 1980", &|r| {
                    r["gender"] == "female"
                        && r["birthDate"].as_str().is_some_and(|d| d >= "1980-01-01")
                })
            }
            (Query::PatientCodeDate, Some(facts)) => {
                let since_2015 = facts
                    .encounter_dates
                    .iter()
                    .filter(|d| d.as_str() >= "2015")
                    .count();
                expect_count(since_2015.min(PAGE))?;
                all("a heart rate of the patient", &|r| {
                    of_patient(r) && has_code(r, "8867-4")
                })
            }
            (Query::HighGlucose, _) => all("a glucose above 180", &|r| {
                has_code(r, "2339-0")
                    && r["valueQuantity"]["value"]
                        .as_f64()
                        .is_some_and(|v| v > 180.0)
            }),
            (Query::ChainedIdentifier, Some(facts)) => {
                expect_count(facts.encounter_dates.len().min(PAGE))?;
                all("an encounter of the patient", &of_patient)
            }
            (Query::HasHba1c, _) => {
                expect_count(self.diabetic.min(PAGE))?;
                all("a diabetic patient", &|r| {
                    r["id"]
                        .as_str()
                        .and_then(|id| self.seq_of.get(id))
                        .is_some_and(|seq| self.facts[*seq].diabetic)
                })
            }
            (Query::IncludeRevinclude, Some(facts)) => {
                let observations = facts.encounter_dates.len() * facts.observations_per_encounter();
                expect_count(observations.min(PAGE))?;
                all("an observation of the patient", &of_patient)?;
                let included = included_types(bundle);
                for t in ["Practitioner", "Provenance"] {
                    if !included.contains_key(t) {
                        return Err(format!("no {t} included ({included:?})"));
                    }
                }
                Ok(())
            }
            (Query::SortedPages, _) => {
                if found.len() == self.conditions.min(PAGE) {
                    Ok(())
                } else {
                    Err(format!("{} on page 1", found.len()))
                }
            }
            (_, None) => Err("no patient".into()),
        }
    }
}

/// The resources of entries with search mode `match`.
fn matches(bundle: &Value) -> Vec<&Value> {
    entries_in_mode(bundle, "match").collect()
}

/// Counts per resource type of entries with search mode `include`.
fn included_types(bundle: &Value) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for r in entries_in_mode(bundle, "include") {
        let t = r["resourceType"].as_str().unwrap_or("?").to_owned();
        *counts.entry(t).or_default() += 1;
    }
    counts
}

fn entries_in_mode<'a>(bundle: &'a Value, mode: &'a str) -> impl Iterator<Item = &'a Value> {
    bundle["entry"]
        .as_array()
        .map_or(&[][..], Vec::as_slice)
        .iter()
        .filter(move |e| e["search"]["mode"] == mode)
        .map(|e| &e["resource"])
}

fn next_link(bundle: &Value) -> Option<String> {
    bundle["link"]
        .as_array()?
        .iter()
        .find(|l| l["relation"] == "next")?["url"]
        .as_str()
        .map(str::to_owned)
}

/// The first issue's diagnostics of an OperationOutcome, shortened.
fn diagnostics(body: &Value) -> String {
    let text = body["issue"][0]["diagnostics"]
        .as_str()
        .unwrap_or("no diagnostics");
    text.chars().take(120).collect()
}

/// Query 9's pages, walked: descending onset dates throughout.
fn check_sorted(pages: &[Value]) -> Result<(), String> {
    let mut previous: Option<String> = None;
    for (page, bundle) in pages.iter().enumerate() {
        for r in matches(bundle) {
            let onset = r["onsetDateTime"].as_str().unwrap_or_default().to_owned();
            if previous.as_ref().is_some_and(|p| *p < onset) {
                return Err(format!(
                    "page {}: onset {onset} after {previous:?}",
                    page + 1
                ));
            }
            previous = Some(onset);
        }
    }
    Ok(())
}

/// A search GET: strict handling, FHIR JSON.
fn search_request(client: &reqwest::Client, url: &str) -> reqwest::RequestBuilder {
    client
        .get(url)
        .header("accept", "application/fhir+json")
        .header("prefer", "handling=strict")
}

fn case_request(client: &reqwest::Client, base: &str, case: &Case) -> reqwest::RequestBuilder {
    search_request(client, &format!("{base}/{}", case.resource_type)).query(&case.params)
}

/// Sends a search and reads the whole answer: the status (0 when the
/// request failed) and, when `parse`, the body as JSON.
async fn answer(request: reqwest::RequestBuilder, parse: bool) -> (u16, Option<Value>) {
    let Ok(response) = request.send().await else {
        return (0, None);
    };
    let status = response.status().as_u16();
    match response.bytes().await {
        Ok(body) if parse => (status, serde_json::from_slice(&body).ok()),
        Ok(_) => (status, None),
        Err(_) => (0, None),
    }
}

pub async fn run(args: Args) -> Result<()> {
    let client = http_client()?;
    let base = args.base.trim_end_matches('/').to_owned();
    wait_until_up(&client, &base).await?;
    let population = Population::new(args.seed, args.patients);
    let ids = if args.skip_load || already_loaded(&client, &base).await? {
        read_patient_ids(&client, &base, &population).await?
    } else {
        let ids = load(&client, &base, &population, args.load_clients).await?;
        settle(
            &format!("loaded {} patients", ids.len()),
            args.settle_seconds,
        )
        .await;
        ids
    };
    let loaded = Arc::new(Loaded::new(&population, ids));
    if args.explain_only {
        return explain(&client, &base, &loaded, &args).await;
    }
    println!("# queries (… is a patient drawn per request):");
    for query in QUERIES {
        println!("#   {} {}", query.name(), query.text());
    }
    println!(
        "# single client, at most {} requests or {} s per query (Q9: pages walked by `next` link; \
         entries = pages per walk on the `all` line):",
        args.requests, args.seconds
    );
    print_header();
    let mut mix = Vec::new();
    let mut pages = Vec::new();
    for query in QUERIES {
        if !args.only.is_empty() && !args.only.contains(&query.name()) {
            continue;
        }
        let supported = if query == Query::SortedPages {
            match single_sorted(&client, &base, &loaded, &args).await {
                Some(urls) => {
                    pages = urls;
                    true
                }
                None => false,
            }
        } else {
            single(&client, &base, &loaded, &args, query).await
        };
        if supported {
            mix.push(query);
        }
    }
    concurrent_mix(&client, &base, &loaded, &args, mix, pages).await;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sorted_pages_are_checked_across_pages() {
        let page = |onsets: &[&str]| {
            let entries: Vec<Value> = onsets
                .iter()
                .map(|o| serde_json::json!({"search": {"mode": "match"}, "resource": {"resourceType": "Condition", "onsetDateTime": o}}))
                .collect();
            serde_json::json!({"resourceType": "Bundle", "entry": entries})
        };
        let descending = [page(&["2024-05-01", "2020-01-01"]), page(&["2019-12-31"])];
        assert!(check_sorted(&descending).is_ok());
        let broken = [page(&["2024-05-01", "2020-01-01"]), page(&["2021-01-01"])];
        assert!(check_sorted(&broken).unwrap_err().starts_with("page 2"));
    }
}
