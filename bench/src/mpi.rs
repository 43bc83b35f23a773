//! The master patient index's cost (issue 6), on a scratch embedded
//! PostgreSQL migrated like Baraza's, through the request role and the
//! store functions the server calls (`mpi::store`), without HTTP:
//!
//! 1. linking: `--records` generated patients (`mpi::generator`, with
//!    duplicates across facilities) through `index_batch` (or, with
//!    `--one-by-one`, `index_patient` per record), `--batch` per
//!    transaction from `--workers` connections; throughput, latency and
//!    the quality of the resulting clusters against the truth, and where
//!    the review queue comes from (`mpi_review_analysis`); with
//!    `--relink`, a relink of the whole index and the queue after it;
//! 2. the cost per write: `index_patient` for `--writes` more patients of
//!    the same population, one per transaction, single client (compare
//!    with the REST write latency of bench/rest.sh);
//! 3. `Patient/$match` (`match_patient`) p50/p95/p99, single client;
//! 4. with `--fill`, the index is grown to that many records by bulk
//!    insertion (keys, records and singleton links as `index_patient`
//!    writes them, without scoring) and `$match` is timed again.

use crate::cpu;
use crate::harness::{Latencies, cpu_split};
use ::mpi::generator::{self, Record, Setting};
use ::mpi::store::{self, Linker};
use anyhow::{Context, Result};
use clap::Args as ClapArgs;
use serde_json::Value;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

#[derive(Debug, Clone, ClapArgs)]
pub struct Args {
    /// Directory for the scratch PostgreSQL cluster (created; the postgres
    /// user must be able to enter it).
    #[arg(long)]
    data_dir: PathBuf,
    /// Incoming patients linked through index_patient.
    #[arg(long, default_value_t = 100_000)]
    records: usize,
    /// Patients per transaction while linking.
    #[arg(long, default_value_t = 500)]
    batch: usize,
    /// Concurrent connections while linking.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Single-patient writes timed for the per-write cost.
    #[arg(long, default_value_t = 2_000)]
    writes: usize,
    /// $match queries per measurement.
    #[arg(long, default_value_t = 2_000)]
    matches: usize,
    /// Grow the index to this many records (bulk) and time $match again;
    /// 0 skips it.
    #[arg(long, default_value_t = 0)]
    fill: usize,
    /// The candidate guard (store::Linker::with_max_block).
    #[arg(long, default_value_t = store::DEFAULT_MAX_BLOCK)]
    max_block: usize,
    /// Load pg_stat_statements and print the costliest statements at the
    /// end.
    #[arg(long)]
    statements: bool,
    /// Link with index_patient per record instead of index_batch.
    #[arg(long)]
    one_by_one: bool,
    /// Refresh the name frequencies every this many batches while linking.
    #[arg(long, default_value_t = 4)]
    refresh_every: usize,
    /// After linking, relink the whole index (store::relink_step) and
    /// analyse the review queue again.
    #[arg(long)]
    relink: bool,
}

const TENANT: &str = "default";

/// Records per generated person (the standard setting makes about 1.64).
const RECORDS_PER_PERSON: f64 = 1.6;

pub fn dataset(seed: u64, records: usize, prefix: &str) -> Vec<Record> {
    let people = ((records as f64 / RECORDS_PER_PERSON).ceil() as usize).max(1);
    let mut data = generator::generate(&Setting {
        seed,
        people,
        ..Setting::standard()
    })
    .records;
    data.truncate(records);
    for record in &mut data {
        let id = format!(
            "{prefix}{}",
            record.patient["id"].as_str().unwrap_or_default()
        );
        record.patient["id"] = Value::String(id);
    }
    data
}

fn id_of(record: &Record) -> String {
    record.patient["id"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

pub async fn run(args: Args) -> Result<()> {
    std::fs::create_dir_all(&args.data_dir)?;
    let pg_dir = args.data_dir.join("pg");
    let mut pg = baraza::embedded_pg::EmbeddedPostgres::start(&pg_dir)
        .context("cannot start the scratch PostgreSQL")?;
    if args.statements {
        let admin = baraza::db::connect(&pg.config("postgres")).await?;
        admin
            .batch_execute("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")
            .await?;
        drop(admin);
        pg.stop();
        pg = baraza::embedded_pg::EmbeddedPostgres::start(&pg_dir)?;
        let admin = baraza::db::connect(&pg.config("postgres")).await?;
        admin
            .batch_execute("ALTER SYSTEM SET pg_stat_statements.track_planning = on")
            .await?;
        admin.batch_execute("SELECT pg_reload_conf()").await?;
    }
    let admin = baraza::db::connect(&pg.config("postgres")).await?;
    baraza::db::ensure_database(&admin, "mpi_bench").await?;
    let mut owner = baraza::db::connect(&pg.config("mpi_bench")).await?;
    baraza::db::migrate(&mut owner).await?;
    baraza::db::prepare_request_role(&owner, None).await?;
    if args.statements {
        owner
            .batch_execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            .await?;
    }
    let mut request = pg.config("mpi_bench");
    request.user(baraza::db::REQUEST_ROLE);
    let pool = baraza::db::pool(request, args.workers.max(1) + 1)?;
    let linker = Arc::new(Linker::new(::mpi::Config::default())?.with_max_block(args.max_block));
    println!(
        "# baraza-bench mpi: {} records, {} per transaction, {} workers, max_block {}",
        args.records, args.batch, args.workers, args.max_block
    );

    // One population: the first `records` are linked in batches, the
    // rest arrive one per transaction.
    let mut all = dataset(20_240_601, args.records + args.writes, "");
    let writes = all.split_off(args.records.min(all.len()));
    let records = Arc::new(all);
    link_phase(&pool, &linker, &records, &args).await?;
    quality(&pool, &records).await?;
    crate::mpi_review_analysis::analyse(&pool, &linker, &records).await?;
    if args.relink {
        relink_phase(&pool, &linker, args.batch).await?;
        quality(&pool, &records).await?;
        crate::mpi_review_analysis::analyse(&pool, &linker, &records).await?;
    }
    owner.batch_execute("ANALYZE").await?;
    write_phase(&pool, &linker, &writes).await?;
    match_phase(&pool, &linker, &records, args.matches, "index").await?;
    let indexed = records.len() + writes.len();
    if args.fill > indexed {
        fill(&pool, &linker, args.fill - indexed).await?;
        owner.batch_execute("ANALYZE").await?;
        match_phase(&pool, &linker, &records, args.matches, "filled index").await?;
    }
    if args.statements {
        print_statements(&owner).await?;
    }
    drop(pool);
    Ok(())
}

/// The ten statements that took the most execution time.
async fn print_statements(owner: &tokio_postgres::Client) -> Result<()> {
    let rows = owner
        .query(
            "SELECT calls, total_exec_time, mean_exec_time, total_plan_time / greatest(calls, 1), \
               left(regexp_replace(query, '\\s+', ' ', 'g'), 120) \
             FROM pg_stat_statements ORDER BY total_exec_time + total_plan_time DESC LIMIT 12",
            &[],
        )
        .await?;
    println!("# costliest statements: calls, total ms, mean ms, planning ms per call, statement");
    for row in rows {
        let (calls, total, mean, plan, query): (i64, f64, f64, f64, String) =
            (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
        println!("# {calls} {total:.0} {mean:.3} {plan:.3} {query}");
    }
    Ok(())
}

/// Opens a transaction for the bench tenant.
async fn begin(
    client: &mut deadpool_postgres::Client,
) -> Result<deadpool_postgres::Transaction<'_>> {
    let tx = client.transaction().await?;
    tx.execute("SELECT set_config('baraza.tenant', $1, true)", &[&TENANT])
        .await?;
    Ok(tx)
}

async fn link_phase(
    pool: &deadpool_postgres::Pool,
    linker: &Arc<Linker>,
    records: &Arc<Vec<Record>>,
    args: &Args,
) -> Result<()> {
    let batches: Vec<(usize, usize)> = (0..records.len())
        .step_by(args.batch.max(1))
        .map(|start| (start, (start + args.batch.max(1)).min(records.len())))
        .collect();
    let batches = Arc::new(batches);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let before = cpu::snapshot(cpu::GROUPS);
    let started = Instant::now();
    let mut tasks = Vec::new();
    let (one_by_one, refresh_every) = (args.one_by_one, args.refresh_every.max(1));
    for _ in 0..args.workers.max(1) {
        let (pool, linker, records, batches, next) = (
            pool.clone(),
            linker.clone(),
            records.clone(),
            batches.clone(),
            next.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut micros = Vec::new();
            let mut changes = 0usize;
            let mut client = pool.get().await?;
            loop {
                let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(&(from, to)) = batches.get(n) else {
                    break;
                };
                let tx = begin(&mut client).await?;
                if one_by_one {
                    for record in &records[from..to] {
                        let t = Instant::now();
                        let out = store::index_patient(
                            &tx,
                            &linker,
                            TENANT,
                            &id_of(record),
                            &record.patient,
                            &record.source,
                        )
                        .await?;
                        micros.push(t.elapsed().as_micros() as u64);
                        changes += out.changes.len();
                    }
                } else {
                    let ids: Vec<String> = records[from..to].iter().map(id_of).collect();
                    let incoming: Vec<store::Incoming<'_>> = records[from..to]
                        .iter()
                        .zip(&ids)
                        .map(|(r, id)| store::Incoming {
                            patient_id: id,
                            patient: &r.patient,
                            source: &r.source,
                        })
                        .collect();
                    let t = Instant::now();
                    let out = store::index_batch(&tx, &linker, TENANT, &incoming).await?;
                    micros.push(t.elapsed().as_micros() as u64);
                    changes += out.changes.len();
                }
                // The name frequencies follow the index while it grows
                // (in production: the server's periodic refresh).
                if n % refresh_every == 0 {
                    store::refresh_name_frequencies(&tx, TENANT).await?;
                }
                tx.commit().await?;
            }
            anyhow::Ok((micros, changes))
        }));
    }
    let mut micros = Vec::new();
    let mut changes = 0;
    for task in tasks {
        let (m, c) = task.await??;
        micros.extend(m);
        changes += c;
    }
    let elapsed = started.elapsed();
    let cpu = cpu::used(&before, &cpu::snapshot(cpu::GROUPS));
    let latencies = Latencies::from_micros(micros);
    println!(
        "linking ({}): {} patients in {:.1} s = {:.0} patients/s ({} link changes); per call p50 {:.2} ms p95 {:.2} ms p99 {:.2} ms; CPU {}",
        if args.one_by_one {
            "index_patient per record".to_owned()
        } else {
            format!("index_batch of {}", args.batch)
        },
        records.len(),
        elapsed.as_secs_f64(),
        records.len() as f64 / elapsed.as_secs_f64(),
        changes,
        latencies.ms(0.5),
        latencies.ms(0.95),
        latencies.ms(0.99),
        cpu_split(&cpu)
    );
    let mut client = pool.get().await?;
    let tx = begin(&mut client).await?;
    store::refresh_name_frequencies(&tx, TENANT).await?;
    tx.commit().await?;
    Ok(())
}

/// Relinks the whole index (one worker, `batch` per transaction), as
/// `baraza mpi relink` does, without writing the golden Patients.
async fn relink_phase(pool: &deadpool_postgres::Pool, linker: &Linker, batch: usize) -> Result<()> {
    let mut client = pool.get().await?;
    let started = Instant::now();
    let tx = begin(&mut client).await?;
    store::start_relink(&tx, TENANT, "bench-relink").await?;
    tx.commit().await?;
    let progress = loop {
        let tx = begin(&mut client).await?;
        let (progress, _) = store::relink_step(&tx, linker, TENANT, "bench-relink", batch).await?;
        tx.commit().await?;
        if progress.status != "running" {
            break progress;
        }
    };
    println!(
        "relink: {} records in {:.1} s ({} link changes)",
        progress.processed,
        started.elapsed().as_secs_f64(),
        progress.changed
    );
    Ok(())
}

/// Pairwise precision and recall of the clusters against the truth.
async fn quality(pool: &deadpool_postgres::Pool, records: &[Record]) -> Result<()> {
    let mut client = pool.get().await?;
    let tx = begin(&mut client).await?;
    let rows = tx
        .query(
            "SELECT patient_id, golden_id FROM mpi_links WHERE tenant = $1",
            &[&TENANT],
        )
        .await?;
    let truth: HashMap<String, u32> = records.iter().map(|r| (id_of(r), r.cluster)).collect();
    let mut goldens: HashMap<String, Vec<u32>> = HashMap::new();
    for row in &rows {
        let (id, golden): (String, String) = (row.get(0), row.get(1));
        if let Some(cluster) = truth.get(&id) {
            goldens.entry(golden).or_default().push(*cluster);
        }
    }
    let (mut linked, mut correct) = (0u64, 0u64);
    for members in goldens.values() {
        for (i, a) in members.iter().enumerate() {
            for b in &members[i + 1..] {
                linked += 1;
                correct += u64::from(a == b);
            }
        }
    }
    let mut sizes: HashMap<u32, u64> = HashMap::new();
    for r in records {
        *sizes.entry(r.cluster).or_default() += 1;
    }
    let true_pairs: u64 = sizes.values().map(|n| n * (n - 1) / 2).sum();
    let precision = correct as f64 / linked.max(1) as f64;
    let recall = correct as f64 / true_pairs.max(1) as f64;
    let reviews: i64 = tx
        .query_one(
            "SELECT count(*) FROM mpi_review WHERE tenant = $1 AND status = 'pending'",
            &[&TENANT],
        )
        .await?
        .get(0);
    println!(
        "clusters: {} golden records; pairwise precision {precision:.4} recall {recall:.4} F1 {:.4} ({correct} of {linked} linked pairs true, {true_pairs} true pairs); review queue {reviews}",
        goldens.len(),
        2.0 * precision * recall / (precision + recall).max(f64::MIN_POSITIVE)
    );
    Ok(())
}

/// New patients one per transaction, single client: the time
/// `index_patient` adds to a Patient write (and the commit's, measured
/// apart).
async fn write_phase(
    pool: &deadpool_postgres::Pool,
    linker: &Linker,
    records: &[Record],
) -> Result<()> {
    if records.is_empty() {
        return Ok(());
    }
    let mut client = pool.get().await?;
    let (mut index, mut commit) = (Vec::new(), Vec::new());
    for record in records {
        let tx = begin(&mut client).await?;
        let t = Instant::now();
        store::index_patient(
            &tx,
            linker,
            TENANT,
            &id_of(record),
            &record.patient,
            &record.source,
        )
        .await?;
        index.push(t.elapsed().as_micros() as u64);
        let t = Instant::now();
        tx.commit().await?;
        commit.push(t.elapsed().as_micros() as u64);
    }
    let (index, commit) = (
        Latencies::from_micros(index),
        Latencies::from_micros(commit),
    );
    println!(
        "per write: index_patient p50 {:.2} ms p95 {:.2} ms p99 {:.2} ms (commit p50 {:.2} ms), {} single-patient transactions",
        index.ms(0.5),
        index.ms(0.95),
        index.ms(0.99),
        commit.ms(0.5),
        records.len()
    );
    Ok(())
}

/// `$match` for duplicates of indexed people (the generated records
/// themselves, without their ids), single client, read-only transactions.
async fn match_phase(
    pool: &deadpool_postgres::Pool,
    linker: &Linker,
    records: &[Record],
    queries: usize,
    label: &str,
) -> Result<()> {
    let mut client = pool.get().await?;
    let size: i64 = {
        let tx = begin(&mut client).await?;
        tx.query_one(
            "SELECT count(*) FROM mpi_records WHERE tenant = $1",
            &[&TENANT],
        )
        .await?
        .get(0)
    };
    let step = (records.len() / queries.max(1)).max(1);
    let (mut micros, mut found, mut candidates) = (Vec::new(), 0usize, 0usize);
    let before = cpu::snapshot(cpu::GROUPS);
    for record in records.iter().step_by(step).take(queries) {
        let mut probe = record.patient.clone();
        if let Some(object) = probe.as_object_mut() {
            object.remove("id");
        }
        let tx = client.build_transaction().read_only(true).start().await?;
        tx.execute("SELECT set_config('baraza.tenant', $1, true)", &[&TENANT])
            .await?;
        let t = Instant::now();
        let results = store::match_patient(&tx, linker, TENANT, &probe, 10, false).await?;
        micros.push(t.elapsed().as_micros() as u64);
        candidates += results.len();
        found += usize::from(results.iter().any(|r| r.patient_id == id_of(record)));
    }
    let cpu = cpu::used(&before, &cpu::snapshot(cpu::GROUPS));
    let n = micros.len();
    let latencies = Latencies::from_micros(micros);
    println!(
        "$match on the {label} ({size} records): {n} queries, p50 {:.2} ms p95 {:.2} ms p99 {:.2} ms; {:.1} results per query, the record itself found in {found}; CPU {}",
        latencies.ms(0.5),
        latencies.ms(0.95),
        latencies.ms(0.99),
        candidates as f64 / n.max(1) as f64,
        cpu_split(&cpu)
    );
    Ok(())
}

/// Adds `count` generated records in bulk: records, keys and singleton
/// links as `index_patient` stores them, without scoring.
async fn fill(pool: &deadpool_postgres::Pool, linker: &Linker, count: usize) -> Result<()> {
    let started = Instant::now();
    let chunk = 100_000;
    let mut client = pool.get().await?;
    let mut done = 0;
    let mut seed = 1_000;
    while done < count {
        let records = dataset(seed, chunk.min(count - done), &format!("f{seed}-"));
        seed += 1;
        for part in records.chunks(5_000) {
            let tx = begin(&mut client).await?;
            insert_bulk(&tx, linker, part).await?;
            tx.commit().await?;
        }
        done += records.len();
        println!(
            "# filled {done} of {count} in {:.0} s",
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

async fn insert_bulk(
    tx: &deadpool_postgres::Transaction<'_>,
    linker: &Linker,
    records: &[Record],
) -> Result<()> {
    let (mut ids, mut sources, mut patients, mut keys, mut given, mut family, mut goldens) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    let (mut key_texts, mut key_ids) = (Vec::new(), Vec::new());
    for record in records {
        let id = id_of(record);
        let mut features =
            ::mpi::Features::from_patient(&record.patient, &record.source, linker.config());
        features.record_id = id.clone();
        let record_keys: Vec<String> = ::mpi::blocking_keys(&features)
            .into_iter()
            .map(|k| k.0)
            .collect();
        for key in &record_keys {
            key_texts.push(key.clone());
            key_ids.push(id.clone());
        }
        keys.push(record_keys.join("\u{1f}"));
        given.push(features.given.as_ref().map(|g| g.first.clone()));
        family.push(features.family.as_ref().map(|f| f.full.clone()));
        goldens.push(store::golden_id(TENANT, &id, 1));
        sources.push(record.source.clone());
        patients.push(record.patient.clone());
        ids.push(id);
    }
    tx.execute(
        "INSERT INTO mpi_records (tenant, patient_id, source, patient, keys, given_name, family_name) \
         SELECT $1, i, s, p, string_to_array(k, E'\\x1f'), g, f \
         FROM unnest($2::text[], $3::text[], $4::json[], $5::text[], $6::text[], $7::text[]) AS t(i, s, p, k, g, f)",
        &[&TENANT, &ids, &sources, &patients, &keys, &given, &family],
    )
    .await?;
    tx.execute(
        "INSERT INTO mpi_block_keys (tenant, key, patient_id) \
         SELECT $1, k, i FROM unnest($2::text[], $3::text[]) AS t(k, i) ON CONFLICT DO NOTHING",
        &[&TENANT, &key_texts, &key_ids],
    )
    .await?;
    tx.execute(
        "INSERT INTO mpi_goldens (tenant, golden_id, founder, generation) \
         SELECT $1, g, i, 1 FROM unnest($2::text[], $3::text[]) AS t(g, i)",
        &[&TENANT, &goldens, &ids],
    )
    .await?;
    tx.execute(
        "INSERT INTO mpi_links (tenant, patient_id, golden_id, kind, rule, decided_by) \
         SELECT $1, i, g, 'auto', 'bulk fill (benchmark)', 'bench' \
         FROM unnest($2::text[], $3::text[]) AS t(i, g)",
        &[&TENANT, &ids, &goldens],
    )
    .await?;
    Ok(())
}
