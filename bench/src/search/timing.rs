//! Timing the searches: single-client runs, the sorted-paging walk and
//! the concurrent mix.

use super::*;

/// Statuses, first-page sizes, check failures and latencies of one query.
#[derive(Debug, Default)]
pub(super) struct Tally {
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
pub(super) fn print_header() {
    println!(
        "{:<10} {:<16} {:<8} {:>8} {:>8} {:>8}  check",
        "query", "statuses", "entries", "p50 ms", "p95 ms", "p99 ms"
    );
}

/// Whether the first answer says the query is not supported (yet); prints
/// so.
pub(super) fn unsupported(label: &str, status: u16, body: Option<&Value>) -> bool {
    if status == 200 {
        return false;
    }
    let why = body.map(diagnostics).unwrap_or_default();
    println!("{label:<10} unsupported (status {status}: {why})");
    true
}

/// Times `query` single-client; false when the server does not support it.
pub(super) async fn single(
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
pub(super) async fn single_sorted(
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
pub(super) async fn concurrent_mix(
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
    if args.warmup_seconds > 0 {
        let warm = mix_run(
            client,
            base,
            loaded,
            args,
            &mix,
            &pages,
            args.warmup_seconds,
        )
        .await;
        println!(
            "# warm-up: the mix from {} clients for {} s, {} searches, not counted",
            args.clients,
            args.warmup_seconds,
            warm.samples.len()
        );
    }
    let run = mix_run(client, base, loaded, args, &mix, &pages, args.seconds).await;
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

/// The mix from `args.clients` clients for `seconds`.
async fn mix_run(
    client: &reqwest::Client,
    base: &str,
    loaded: &Arc<Loaded>,
    args: &Args,
    mix: &Arc<Vec<Query>>,
    pages: &Arc<Vec<String>>,
    seconds: u64,
) -> crate::harness::Run<(Query, u16)> {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let (mix, pages) = (mix.clone(), pages.clone());
    run_clients(args.clients, move |_| Instant::now() < deadline, {
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
    .await
}
