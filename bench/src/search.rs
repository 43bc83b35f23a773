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

/// Loads the pool, then every patient's Bundle at `clients` concurrency;
/// returns the Patient ids by patient number.
async fn load(
    client: &reqwest::Client,
    base: &str,
    population: &Population,
    clients: usize,
) -> Result<Vec<String>> {
    let resources = population.resource_count();
    println!(
        "# baraza-bench search against {base}: {} patients (seed {}), {resources} resources in all",
        population.patients, population.seed
    );
    let pool = transaction_request(client, base, population.pool_bundle().to_string())
        .send()
        .await?;
    if !pool.status().is_success() {
        let status = pool.status();
        bail!("the pool bundle answered {status}: {}", pool.text().await?);
    }
    let run = counted(clients, population.patients, {
        let (client, base, population) = (client.clone(), base.to_owned(), *population);
        move |seq| {
            let body = population.patient_bundle(seq).to_string();
            let request = transaction_request(&client, &base, body);
            async move { created_patient(request).await }
        }
    })
    .await;
    let secs = run.elapsed.as_secs_f64();
    let latencies = run.latencies();
    println!(
        "load c={clients}: {} bundles in {secs:.1} s: {:.0} resources/s, {:.1} bundles/s, bundle p50 {:.0} ms p99 {:.0} ms  cpu[{}]",
        run.samples.len(),
        (resources - Population::pool_count()) as f64 / secs,
        run.samples.len() as f64 / secs,
        latencies.ms(0.5),
        latencies.ms(0.99),
        cpu_split(&run.cpu)
    );
    let mut ids = Vec::with_capacity(run.samples.len());
    for sample in run.samples {
        match sample.outcome {
            Ok(id) => ids.push(id),
            Err(why) => bail!("patient {} was not loaded: {why}", sample.n),
        }
    }
    Ok(ids)
}

/// A transaction POST that wants only the locations back.
fn transaction_request(
    client: &reqwest::Client,
    base: &str,
    body: String,
) -> reqwest::RequestBuilder {
    client
        .post(base)
        .header("content-type", "application/fhir+json")
        .header("prefer", "return=minimal")
        .body(body)
}

/// Posts one patient Bundle; the id of its Patient (the first entry).
async fn created_patient(request: reqwest::RequestBuilder) -> Result<String, String> {
    let response = request.send().await.map_err(|e| e.to_string())?;
    let status = response.status();
    let body: Value = response.json().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("{status}: {}", diagnostics(&body)));
    }
    // Patient/<id>/_history/1
    body["entry"][0]["response"]["location"]
        .as_str()
        .and_then(|l| l.strip_prefix("Patient/"))
        .and_then(|l| l.split('/').next())
        .map(str::to_owned)
        .ok_or_else(|| format!("no Patient location in {}", body["entry"][0]))
}

/// Whether the server holds any patient of a population.
async fn already_loaded(client: &reqwest::Client, base: &str) -> Result<bool> {
    let url = format!("{base}/Patient?identifier={ID_SYSTEM}%7C&_count=1");
    let response = search_request(client, &url).send().await?;
    let status = response.status();
    let bundle: Value = response.json().await?;
    if !status.is_success() {
        bail!(
            "looking for a loaded population: {status}: {}",
            diagnostics(&bundle)
        );
    }
    Ok(!matches(&bundle).is_empty())
}

/// Without loading: the Patients' ids by patient number, from a search
/// on the identifier system, page by page.
async fn read_patient_ids(
    client: &reqwest::Client,
    base: &str,
    population: &Population,
) -> Result<Vec<String>> {
    let mut ids = vec![String::new(); population.patients];
    let mut found = 0;
    let mut url = Some(format!(
        "{base}/Patient?identifier={ID_SYSTEM}%7C&_count=1000"
    ));
    while let Some(next) = url {
        let response = search_request(client, &next).send().await?;
        let status = response.status();
        let bundle: Value = response.json().await?;
        if !status.is_success() {
            bail!(
                "reading the patients back: {status}: {}",
                diagnostics(&bundle)
            );
        }
        for patient in matches(&bundle) {
            let seq = patient["identifier"][0]["value"]
                .as_str()
                .and_then(|v| v.strip_prefix("NID"))
                .and_then(|n| n.parse::<usize>().ok());
            let id = patient["id"].as_str().unwrap_or_default();
            if let Some(slot) = seq.and_then(|seq| ids.get_mut(seq)) {
                *slot = id.to_owned();
                found += 1;
            }
        }
        url = next_link(&bundle);
    }
    if found != population.patients || ids.iter().any(String::is_empty) {
        bail!(
            "the server holds {found} of the {} patients expected; load them first (without --skip-load) or pass the --patients and --seed they were loaded with",
            population.patients
        );
    }
    println!(
        "# baraza-bench search against {base}: {} patients (seed {}) already loaded",
        population.patients, population.seed
    );
    Ok(ids)
}

/// Statuses, first-page sizes, check failures and latencies of one query.
#[derive(Debug, Default)]
struct Tally {
    statuses: BTreeMap<u16, usize>,
    entries: Vec<usize>,
    failed: usize,
    first_failure: Option<String>,
    micros: Vec<u64>,
}

impl Tally {
    fn record(&mut self, status: u16, micros: u64) {
        *self.statuses.entry(status).or_default() += 1;
        self.micros.push(micros);
    }

    fn fail(&mut self, why: String) {
        self.failed += 1;
        self.first_failure.get_or_insert(why);
    }

    fn print(&self, label: &str, cpu: Option<&[(String, f64)]>) {
        let statuses: Vec<String> = self
            .statuses
            .iter()
            .map(|(s, n)| format!("{s}x{n}"))
            .collect();
        let entries = match (self.entries.iter().min(), self.entries.iter().max()) {
            (Some(lo), Some(hi)) if lo == hi => format!("{lo}"),
            (Some(lo), Some(hi)) => format!("{lo}-{hi}"),
            _ => "-".into(),
        };
        let latencies = Latencies::from_micros(self.micros.clone());
        let check = match &self.first_failure {
            None if self.entries.is_empty() => "-".to_owned(),
            None => "ok".to_owned(),
            Some(why) => format!("FAILED {}/{}: {why}", self.failed, self.micros.len()),
        };
        let cpu = cpu
            .map(|c| format!("  cpu[{}]", cpu_split(c)))
            .unwrap_or_default();
        println!(
            "{label:<10} {:<16} {entries:<8} {:>8.2} {:>8.2} {:>8.2}  {check}{cpu}",
            statuses.join(" "),
            latencies.ms(0.50),
            latencies.ms(0.95),
            latencies.ms(0.99),
        );
    }
}

/// The column titles of [`Tally::print`].
fn print_header() {
    println!(
        "{:<10} {:<16} {:<8} {:>8} {:>8} {:>8}  check",
        "query", "statuses", "entries", "p50 ms", "p95 ms", "p99 ms"
    );
}

/// Whether the first answer says the query is not supported (yet); prints
/// so.
fn unsupported(label: &str, status: u16, body: Option<&Value>) -> bool {
    if status == 200 {
        return false;
    }
    let why = body.map(diagnostics).unwrap_or_default();
    println!("{label:<10} unsupported (status {status}: {why})");
    true
}

/// Times `query` single-client; false when the server does not support it.
async fn single(
    client: &reqwest::Client,
    base: &str,
    loaded: &Loaded,
    args: &Args,
    query: Query,
) -> bool {
    let label = query.name();
    let mut rng = Rng::new(args.seed ^ (query as u64) << 32);
    let mut tally = Tally::default();
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let before = cpu::snapshot(cpu::GROUPS);
    for n in 0..args.requests {
        if n > 0 && Instant::now() > deadline {
            break;
        }
        let case = loaded.case(query, &mut rng);
        let started = Instant::now();
        let (status, body) = answer(case_request(client, base, &case), true).await;
        tally.record(status, started.elapsed().as_micros() as u64);
        if n == 0 && unsupported(&label, status, body.as_ref()) {
            return false;
        }
        match body {
            Some(bundle) if status == 200 => {
                tally.entries.push(matches(&bundle).len());
                if let Err(why) = loaded.check(&case, &bundle) {
                    tally.fail(format!("{}: {why}", case.display()));
                }
            }
            _ => tally.fail(format!("{}: status {status}", case.display())),
        }
    }
    let cpu = cpu::used(&before, &cpu::snapshot(cpu::GROUPS));
    tally.print(&label, Some(&cpu));
    true
}

/// Times query 9 single-client: walks the pages by their `next` links and
/// times each page; returns the page URLs (for the mix), or None when the
/// server does not support the query.
async fn single_sorted(
    client: &reqwest::Client,
    base: &str,
    loaded: &Loaded,
    args: &Args,
) -> Option<Vec<String>> {
    let query = Query::SortedPages;
    let label = query.name();
    let case = loaded.case(query, &mut Rng::new(args.seed));
    let first = case_request(client, base, &case)
        .build()
        .ok()?
        .url()
        .to_string();
    let expected_pages = loaded.conditions.div_ceil(PAGE).clamp(1, SORT_PAGES);
    let (mut all, mut page_1, mut page_last) =
        (Tally::default(), Tally::default(), Tally::default());
    let mut urls: Vec<String> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let before = cpu::snapshot(cpu::GROUPS);
    let mut walks = 0;
    while all.micros.len() < args.requests && (walks == 0 || Instant::now() < deadline) {
        walks += 1;
        let mut bundles = Vec::new();
        let mut url = Some(first.clone());
        while let Some(page_url) = url.take().filter(|_| bundles.len() < SORT_PAGES) {
            let started = Instant::now();
            let (status, body) = answer(search_request(client, &page_url), true).await;
            let micros = started.elapsed().as_micros() as u64;
            all.record(status, micros);
            if walks == 1 && bundles.is_empty() && unsupported(&label, status, body.as_ref()) {
                return None;
            }
            let page = bundles.len() + 1;
            if page == 1 {
                page_1.record(status, micros);
            }
            let Some(bundle) = body.filter(|_| status == 200) else {
                all.fail(format!("page {page}: status {status}"));
                break;
            };
            if page == 1 {
                page_1.entries.push(matches(&bundle).len());
            }
            if page == expected_pages {
                page_last.record(status, micros);
                page_last.entries.push(matches(&bundle).len());
            }
            if walks == 1 {
                urls.push(page_url);
            }
            url = next_link(&bundle);
            bundles.push(bundle);
        }
        all.entries.push(bundles.len());
        if let Some(Err(why)) = bundles.first().map(|b| loaded.check(&case, b)) {
            all.fail(why);
        }
        if bundles.len() != expected_pages {
            all.fail(format!(
                "{} pages walked, expected {expected_pages}",
                bundles.len()
            ));
        }
        if let Err(why) = check_sorted(&bundles) {
            all.fail(why);
        }
    }
    let cpu = cpu::used(&before, &cpu::snapshot(cpu::GROUPS));
    // Here "entries" is the number of pages walked.
    all.print(&format!("{label} all"), Some(&cpu));
    page_1.print(&format!("{label} p1"), None);
    page_last.print(&format!("{label} p{expected_pages}"), None);
    Some(urls)
}

/// All supported queries round-robin from `args.clients` clients for
/// `args.seconds`; query 9 requests one of its pages at random.
async fn concurrent_mix(
    client: &reqwest::Client,
    base: &str,
    loaded: &Arc<Loaded>,
    args: &Args,
    mix: Vec<Query>,
    pages: Vec<String>,
) {
    if mix.is_empty() {
        println!("# no supported query for the mix");
        return;
    }
    let mix = Arc::new(mix);
    let pages = Arc::new(pages);
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let run = run_clients(args.clients, move |_| Instant::now() < deadline, {
        let (client, base, loaded, mix, seed) = (
            client.clone(),
            base.to_owned(),
            loaded.clone(),
            mix.clone(),
            args.seed,
        );
        move |n| {
            let query = mix[n % mix.len()];
            let mut rng = Rng::new(seed.wrapping_add(n as u64));
            let request = match query {
                Query::SortedPages if !pages.is_empty() => {
                    search_request(&client, &pages[rng.below(pages.len() as u64) as usize])
                }
                _ => case_request(&client, &base, &loaded.case(query, &mut rng)),
            };
            async move { (query, answer(request, false).await.0) }
        }
    })
    .await;
    let secs = run.elapsed.as_secs_f64();
    let latencies = run.latencies();
    let failed = run.samples.iter().filter(|s| s.outcome.1 != 200).count();
    println!(
        "# {} clients, {} s, the supported queries round-robin (Q9: one of its pages at random):",
        args.clients, args.seconds
    );
    println!(
        "mix c={}: {} searches in {secs:.1} s: {:.1} searches/s  p50 {:.2} p95 {:.2} p99 {:.2} ms  non-200 {failed}  cpu[{}]",
        args.clients,
        run.samples.len(),
        run.samples.len() as f64 / secs,
        latencies.ms(0.50),
        latencies.ms(0.95),
        latencies.ms(0.99),
        cpu_split(&run.cpu)
    );
    print_header();
    for query in mix.iter() {
        let mut tally = Tally::default();
        for sample in run.samples.iter().filter(|s| s.outcome.0 == *query) {
            tally.record(sample.outcome.1, sample.micros);
        }
        tally.print(&format!("  {}", query.name()), None);
    }
}

/// Runs each query once and writes the plans auto_explain logged for it to
/// `--explain-out` (query 9: its first and last page).
async fn explain(client: &reqwest::Client, base: &str, loaded: &Loaded, args: &Args) -> Result<()> {
    let (Some(log), Some(out)) = (&args.explain_log, &args.explain_out) else {
        bail!("--explain-only needs --explain-log and --explain-out");
    };
    let mut report = String::new();
    let mut total = 0;
    for query in QUERIES {
        let case = loaded.case(query, &mut Rng::new(args.seed));
        let mut url = Some(case_request(client, base, &case).build()?.url().to_string());
        let mut page = 0;
        while let Some(page_url) = url.take() {
            page += 1;
            let offset = std::fs::metadata(log)
                .with_context(|| format!("cannot read {}", log.display()))?
                .len();
            let (status, body) = answer(search_request(client, &page_url), true).await;
            // auto_explain logs when the statement ends, before the answer.
            tokio::time::sleep(Duration::from_millis(200)).await;
            if query == Query::SortedPages && status == 200 && page < SORT_PAGES {
                url = body.as_ref().and_then(next_link);
            }
            if page > 1 && url.is_some() {
                continue;
            }
            let plans = plans_since(log, offset)?;
            let count = plans.matches("plan:").count();
            total += count;
            let title = if query == Query::SortedPages {
                format!("{} {} (page {page})", query.name(), query.text())
            } else {
                format!("{} {}", query.name(), query.text())
            };
            println!("# {title}: status {status}, {count} plan(s)");
            report.push_str(&format!(
                "## {title}\n# GET {}\n# status {status}\n{plans}\n",
                if page == 1 {
                    case.display()
                } else {
                    page_url.clone()
                }
            ));
        }
    }
    std::fs::write(out, report).with_context(|| format!("cannot write {}", out.display()))?;
    if total == 0 {
        bail!(
            "no plans in {}: is auto_explain loaded (session_preload_libraries) and log_min_duration 0?",
            log.display()
        );
    }
    Ok(())
}

/// The plans auto_explain wrote to `log` after byte `offset`.
fn plans_since(log: &std::path::Path, offset: u64) -> Result<String> {
    let bytes = std::fs::read(log).with_context(|| format!("cannot read {}", log.display()))?;
    let tail = bytes.get(offset as usize..).unwrap_or_default();
    Ok(extract_plans(&String::from_utf8_lossy(tail)))
}

/// From PostgreSQL log text: each `duration: … plan:` line (without its
/// prefix) and the indented plan lines that follow it.
fn extract_plans(log: &str) -> String {
    let mut out = String::new();
    let mut in_plan = false;
    for line in log.lines() {
        if let Some(at) = line.find("duration: ").filter(|_| line.ends_with("plan:")) {
            in_plan = true;
            out.push_str(&line[at..]);
            out.push('\n');
        } else if in_plan && (line.starts_with('\t') || line.starts_with(' ')) {
            out.push_str(line);
            out.push('\n');
        } else {
            in_plan = false;
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn plans_are_cut_from_the_log() {
        let log = "2025-01-01 10:00:00.000 UTC [12] LOG:  checkpoint starting: time\n\
                   2025-01-01 10:00:01.000 UTC [13] LOG:  duration: 0.512 ms  plan:\n\
                   \tQuery Text: SELECT 1\n\
                   \tResult  (cost=0.00..0.01 rows=1 width=4) (actual time=0.001..0.001 rows=1 loops=1)\n\
                   2025-01-01 10:00:02.000 UTC [12] LOG:  checkpoint complete\n\
                   \tnot a plan line\n";
        assert_eq!(
            extract_plans(log),
            "duration: 0.512 ms  plan:\n\tQuery Text: SELECT 1\n\
             \tResult  (cost=0.00..0.01 rows=1 width=4) (actual time=0.001..0.001 rows=1 loops=1)\n"
        );
    }

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
