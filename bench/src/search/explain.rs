//! `--explain-only`: one run of each search, and the plans `auto_explain`
//! wrote to the PostgreSQL log.

use super::*;

/// Runs each query once and writes the plans auto_explain logged for it to
/// `--explain-out` (query 9: its first and last page).
pub(super) async fn explain(
    client: &reqwest::Client,
    base: &str,
    loaded: &Loaded,
    args: &Args,
) -> Result<()> {
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
pub(super) fn plans_since(log: &std::path::Path, offset: u64) -> Result<String> {
    let bytes = std::fs::read(log).with_context(|| format!("cannot read {}", log.display()))?;
    let tail = bytes.get(offset as usize..).unwrap_or_default();
    Ok(extract_plans(&String::from_utf8_lossy(tail)))
}

/// From PostgreSQL log text: each `duration: … plan:` line (without its
/// prefix) and the indented plan lines that follow it.
pub(super) fn extract_plans(log: &str) -> String {
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
}
