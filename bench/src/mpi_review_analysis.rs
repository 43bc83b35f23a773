//! Where the MPI's review queue comes from (issue 6, docs/mpi.md): the
//! queued pairs by reason and against the truth; the same pairs scored
//! again with the name frequencies of the whole index (a pair queued
//! under stale frequencies may no longer be in the band); and what the
//! engine's evaluation (`mpi::evaluate`: every candidate pair scored once
//! with complete frequencies, no clusters) counts on the same records.

use ::mpi::generator::Record;
use ::mpi::store::Linker;
use ::mpi::{Features, Matcher, NameFrequencies, blocking_keys};
use anyhow::Result;
use std::collections::HashMap;

/// Prints the analysis of the tenant's queue (`default`).
pub async fn analyse(
    pool: &deadpool_postgres::Pool,
    linker: &Linker,
    records: &[Record],
) -> Result<()> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    tx.execute("SELECT set_config('baraza.tenant', 'default', true)", &[])
        .await?;
    let rows = tx
        .query(
            "SELECT a, b, reason FROM mpi_review WHERE tenant = 'default' AND status = 'pending'",
            &[],
        )
        .await?;
    let index: HashMap<String, usize> = records
        .iter()
        .enumerate()
        .map(|(i, r)| (r.patient["id"].as_str().unwrap_or_default().to_owned(), i))
        .collect();
    let features: Vec<Features> = records
        .iter()
        .map(|r| {
            let mut f = Features::from_patient(&r.patient, &r.source, linker.config());
            f.record_id = r.patient["id"].as_str().unwrap_or_default().to_owned();
            f
        })
        .collect();
    let matcher = Matcher::new(linker.config().clone())?
        .with_frequencies(NameFrequencies::from_features(&features));
    let t = linker.config().thresholds;

    // The store's queue, by reason; each pair re-scored now.
    let mut by_reason: HashMap<String, (u64, u64)> = HashMap::new();
    let (mut below, mut band, mut above) = (0u64, 0u64, 0u64);
    for row in &rows {
        let (a, b, reason): (String, String, String) = (row.get(0), row.get(1), row.get(2));
        let (Some(&i), Some(&j)) = (index.get(&a), index.get(&b)) else {
            continue;
        };
        let same = records[i].cluster == records[j].cluster;
        let entry = by_reason.entry(reason).or_default();
        entry.0 += 1;
        entry.1 += u64::from(same);
        let score = matcher.score(&features[i], &features[j]);
        if score < t.review {
            below += 1;
        } else if score < t.auto_link {
            band += 1;
        } else {
            above += 1;
        }
    }
    println!("# review queue: {} pending pairs", rows.len());
    let mut reasons: Vec<_> = by_reason.into_iter().collect();
    reasons.sort();
    for (reason, (n, same)) in reasons {
        println!("#   {n} pairs ({same} true): {reason}");
    }
    println!(
        "#   re-scored with the whole index's name frequencies: {below} below review, {band} in the band, {above} at or above auto_link"
    );

    // The engine's evaluation on the same records.
    let keys: Vec<_> = features.iter().map(blocking_keys).collect();
    let candidates = ::mpi::blocking::candidate_pairs(&keys, linker.max_block());
    let (mut band_pairs, mut band_true, mut links) = (0u64, 0u64, 0u64);
    for &(i, j) in &candidates {
        let score = matcher.score(&features[i as usize], &features[j as usize]);
        if score >= t.auto_link {
            links += 1;
        } else if score >= t.review {
            band_pairs += 1;
            band_true += u64::from(records[i as usize].cluster == records[j as usize].cluster);
        }
    }
    println!(
        "# engine evaluation on these {} records: {} candidate pairs ({:.2} per record), {links} at or above auto_link, {band_pairs} in the review band ({band_true} true)",
        records.len(),
        candidates.len(),
        2.0 * candidates.len() as f64 / records.len().max(1) as f64
    );
    Ok(())
}
