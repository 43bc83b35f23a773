//! Whole-index work: the name frequencies of the term-frequency
//! adjustment (recomputed from the records) and training samples for EM
//! (`baraza mpi train`). Relink jobs are in `relink`.

use std::collections::HashSet;

use super::db::Db;
use super::outcome::Pair;
use super::records;
use super::{Linker, StoreError};
use crate::fields::Gamma;
use crate::generator::Rng;
use crate::train::{TrainOptions, TrainResult, train};

/// Recomputes a tenant's name frequencies from its records: how many
/// carry each first given word and each family name, and the total.
/// Scores read them; run it after loads, periodically, and at relink.
pub async fn refresh_name_frequencies(db: &impl Db, tenant: &str) -> Result<u64, StoreError> {
    // One refresh per tenant at a time: two would insert the same rows.
    db.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('mpi-frequencies|' || $1, 0))",
        &[&tenant],
    )
    .await?;
    db.execute(
        "DELETE FROM mpi_name_frequencies WHERE tenant = $1",
        &[&tenant],
    )
    .await?;
    let rows = db
        .execute(
            "INSERT INTO mpi_name_frequencies (tenant, kind, name, count) \
             SELECT $1, 'given', given_name, count(*) FROM mpi_records \
               WHERE tenant = $1 AND given_name IS NOT NULL GROUP BY given_name \
             UNION ALL \
             SELECT $1, 'family', family_name, count(*) FROM mpi_records \
               WHERE tenant = $1 AND family_name IS NOT NULL GROUP BY family_name \
             UNION ALL \
             SELECT $1, 'total', '', count(*) FROM mpi_records WHERE tenant = $1",
            &[&tenant],
        )
        .await?;
    Ok(rows)
}

/// Agreement levels for EM: candidate pairs (as blocking proposes them)
/// of a random sample of records, and random pairs among the sample.
#[derive(Debug, Clone, Default)]
pub struct TrainingSample {
    pub candidates: Vec<Gamma>,
    pub random: Vec<Gamma>,
}

/// Samples up to `n` records and their candidate pairs (at most `n * 4`)
/// and `n * 4` random pairs.
pub async fn sample_pairs(
    db: &impl Db,
    linker: &Linker,
    tenant: &str,
    n: usize,
    seed: u64,
) -> Result<TrainingSample, StoreError> {
    let rows = db
        .query(
            "SELECT patient_id, keys FROM mpi_records WHERE tenant = $1 \
             ORDER BY md5(patient_id || $2) LIMIT $3",
            &[&tenant, &seed.to_string(), &(n as i64)],
        )
        .await?;
    let ids: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let sample = records::records(db, linker, tenant, &id_refs).await?;
    let matcher = &linker.matcher;
    let mut out = TrainingSample::default();
    let mut seen: HashSet<Pair> = HashSet::new();
    for (row, record) in rows.iter().zip(ids.iter()) {
        let keys: Vec<String> = row.get(1);
        let Some(a) = sample.iter().find(|s| s.patient_id == *record) else {
            continue;
        };
        for c in records::candidates(db, linker, tenant, record, &keys).await? {
            if seen.insert(Pair::new(record, &c.patient_id)) && out.candidates.len() < n * 4 {
                out.candidates.push(matcher.gamma(&a.features, &c.features));
            }
        }
    }
    let mut rng = Rng::new(seed);
    if sample.len() >= 2 {
        for _ in 0..n * 4 {
            let (i, j) = (rng.below(sample.len()), rng.below(sample.len()));
            if i != j {
                out.random
                    .push(matcher.gamma(&sample[i].features, &sample[j].features));
            }
        }
    }
    Ok(out)
}

/// Trains the linker's configuration on a sample of `n` indexed records
/// (`baraza mpi train`): EM over their candidate pairs, u from random
/// pairs. The result's configuration is what to write to the file.
pub async fn train_from_index(
    db: &impl Db,
    linker: &Linker,
    tenant: &str,
    n: usize,
    opts: &TrainOptions,
) -> Result<TrainResult, StoreError> {
    let sample = sample_pairs(db, linker, tenant, n, opts.seed).await?;
    Ok(train(
        linker.config(),
        &sample.candidates,
        &sample.random,
        opts,
    )?)
}

/// How many records a tenant's name frequencies counted when they were
/// last refreshed, and how many records it has now: a periodic refresh
/// runs when they drift apart.
pub async fn name_frequency_drift(db: &impl Db, tenant: &str) -> Result<(i64, i64), StoreError> {
    let row = db
        .query(
            "SELECT coalesce((SELECT count FROM mpi_name_frequencies \
               WHERE tenant = $1 AND kind = 'total' AND name = ''), 0), \
             (SELECT count(*) FROM mpi_records WHERE tenant = $1)",
            &[&tenant],
        )
        .await?;
    Ok(row.first().map_or((0, 0), |r| (r.get(0), r.get(1))))
}
