//! Loading the population and finding the Patient ids it was given.

use super::*;

/// Loads the pool, then every patient's Bundle at `clients` concurrency;
/// returns the Patient ids by patient number.
pub(crate) async fn load(
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
pub(super) fn transaction_request(
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
pub(super) async fn created_patient(request: reqwest::RequestBuilder) -> Result<String, String> {
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
pub(crate) async fn already_loaded(client: &reqwest::Client, base: &str) -> Result<bool> {
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
pub(super) async fn read_patient_ids(
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
