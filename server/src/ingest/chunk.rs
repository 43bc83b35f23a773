//! The worker's fast path (docs/ingest.md, "Processing"): up to [`CHUNK`]
//! pending records per database transaction.
//!
//! 1. The chunk's records and their integrator's last content hashes are
//!    read with one statement each; a record whose hash is unchanged is
//!    done at once.
//! 2. The others are checked without the database
//!    (`service::transaction::prepare`: validation and the caller's rights,
//!    the code `POST /fhir` runs) on blocking threads, in parallel — most
//!    of them already, while the previous chunk was written
//!    ([`super::ahead`]).
//! 3. Consecutive records made of plain creates and updates are joined
//!    into one transaction Bundle and written by
//!    `service::transaction::execute` — so `service::write::apply` stores
//!    them with its multi-row statements, checks their bindings and facility
//!    codes, links their Patients and records their change events, as for
//!    any transaction — behind one savepoint. If that fails, the group is
//!    rolled back to its savepoint and halved, down to single records, so a
//!    refused record fails alone and its neighbours are written. Records
//!    with conditions or `fullUrl`s are written one at a time. A chunk of
//!    plain creates and updates is written in two parts at once, each in
//!    its own transaction ([`super::chunk_parts`]).
//! 4. Every record's state, the source hashes and the batch counts are
//!    written with one statement each, and the transaction commits: a
//!    record's state commits with its write, so `kill -9` at any moment
//!    loses and duplicates nothing.
//!
//! A chunk ends before a record whose source id or updated resource
//! repeats an earlier record's in the chunk; that record starts the next
//! chunk, so it is compared with (and written after) the earlier one.

use super::ahead::Ahead;
use super::chunk_parts::{self, Settled};
use super::chunk_store;
use super::store::{self, Pending};
use super::{Status, caller, caller::Reach};
use crate::audit::Touched;
use crate::error::{ApiError, Category};
use crate::service::transaction::{self, Prepared};
use crate::service::{AppState, FhirResponse};
use crate::store::{Access, TenantCtx, TenantTx, begin};
use actix_web::http::{Method, StatusCode};
use serde_json::Value;
use std::collections::HashSet;

/// Records read, checked and written per database transaction.
pub const CHUNK: usize = 1000;

/// A failed group this small is tried a record at a time rather than
/// halved again.
const SMALL: usize = 4;

/// What becomes of one record of the chunk.
pub(super) enum Step {
    Unchanged,
    /// Written; the responses of its entries.
    Written(Vec<FhirResponse>),
    Refused(ApiError),
    /// Checked, waiting to be written.
    Ready(Prepared),
}

impl Step {
    fn checked(checked: Result<Prepared, ApiError>) -> Step {
        match checked {
            Ok(prepared) => Step::Ready(prepared),
            Err(refused) => Step::Refused(refused),
        }
    }
}

/// Writes the next chunk of the batch's pending records; returns whether
/// the batch may have more. `ahead` carries the checks of the records
/// after the chunk from one call to the next ([`super::ahead`]).
pub async fn process_chunk(
    state: &AppState,
    ctx: &TenantCtx,
    id: &str,
    ahead: &mut Option<Ahead>,
) -> Result<bool, ApiError> {
    let tenant = ctx.tenant.as_str();
    let mut phases = Phases::start();
    let mut client = state.pool.get().await?;
    let tx = begin(&mut client, ctx, Access::ReadWrite).await?;
    // The row lock orders this with terminate and with other workers.
    let Some(batch) = store::find_batch(&tx, tenant, id, &Reach::All, true).await? else {
        return Ok(false);
    };
    if batch.status != Status::Processing {
        return Ok(false);
    }
    let integrator = batch.integrator.clone().unwrap_or_default();
    chunk_store::wait_for_parts(&tx, &batch).await?;
    let mut records = chunk_store::pending_records(&tx, &batch, i64::MIN, CHUNK).await?;
    if records.is_empty() {
        chunk_store::recount(&tx, &batch).await?;
        store::set_status(&tx, tenant, id, Status::Completed, None).await?;
        tx.commit().await?;
        return Ok(false);
    }
    cut_at_repeated_source(&mut records);
    let sources: Vec<&str> = records.iter().map(|r| r.source_id.as_str()).collect();
    let known = chunk_store::source_hashes(&tx, tenant, &integrator, &sources).await?;
    let mut early = super::ahead::finish(ahead.take()).await;
    let mut steps: Vec<Option<Step>> = Vec::with_capacity(records.len());
    let mut to_check = Vec::new();
    for record in &mut records {
        if known.get(&record.source_id) == Some(&record.content_hash) {
            steps.push(Some(Step::Unchanged));
        } else if let Some(checked) = early.remove(&record.seq) {
            steps.push(Some(Step::checked(checked)));
        } else {
            steps.push(None);
            to_check.push(std::mem::take(&mut record.payload));
        }
    }
    drop(early);
    phases.mark("read");
    let mut checked = prepare_all(ctx, to_check).await?.into_iter();
    for step in &mut steps {
        if step.is_none() {
            *step = checked.next().map(Step::checked);
        }
    }
    phases.mark("check");
    let mut steps: Vec<Step> = steps.into_iter().flatten().collect();
    cut_at_repeated_identity(&mut steps);
    records.truncate(steps.len());
    if let Some(last) = records.last() {
        *ahead = Some(super::ahead::start(state, ctx, &batch, last.seq));
    }
    // A chunk cut in parts: each later part commits its own records.
    let mut cuts = chunk_parts::cut(ctx, &steps);
    let mut later = Vec::new();
    while let Some(at) = cuts.pop() {
        later.push(chunk_parts::Part {
            records: records.split_off(at),
            steps: steps.split_off(at),
        });
    }
    later.reverse();
    let later = if later.is_empty() {
        write_steps(&tx, state, ctx, &mut steps).await?;
        Vec::new()
    } else {
        let (batch, integrator) = (&batch, integrator.as_str());
        chunk_parts::write_parts(&tx, state, ctx, batch, integrator, &mut steps, later).await?
    };
    let mut settled = Settled::of(&records, steps)?;
    phases.mark("write");
    settled.store(&tx, &batch, &integrator).await?;
    for part in later {
        settled.extend(part);
    }
    chunk_store::count_records(&tx, &batch, &settled.finished).await?;
    phases.mark("mark");
    tx.commit().await?;
    phases.mark("commit");
    let Settled {
        finished,
        written,
        entries,
        refusals,
        ..
    } = settled;
    tracing::debug!(tenant, batch = id, records = finished.len(), phases = %phases, "ingest chunk");

    let label = caller::label(batch.integrator.as_deref());
    for record in &finished {
        state
            .metrics
            .ingest_record(tenant, &label, record.done.as_str());
    }
    state
        .metrics
        .ingest_entries(tenant, &label, entries, refusals.len() as u64);
    if !written.is_empty() {
        audit(state, ctx, StatusCode::OK, written).await;
    }
    for status in refusals {
        audit(state, ctx, status, Touched::default()).await;
    }
    Ok(true)
}

/// How long each phase of a chunk took, for the debug log
/// (`BARAZA_LOG=baraza::ingest::chunk=debug`).
struct Phases {
    last: std::time::Instant,
    spent: Vec<(&'static str, std::time::Duration)>,
}

impl Phases {
    fn start() -> Phases {
        Phases {
            last: std::time::Instant::now(),
            spent: Vec::new(),
        }
    }

    fn mark(&mut self, phase: &'static str) {
        let now = std::time::Instant::now();
        self.spent.push((phase, now - self.last));
        self.last = now;
    }
}

impl std::fmt::Display for Phases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (phase, spent) in &self.spent {
            write!(f, "{phase} {:.1} ms ", spent.as_secs_f64() * 1000.0)?;
        }
        Ok(())
    }
}

/// Ends the chunk before the first record whose source id an earlier
/// record of the chunk has.
fn cut_at_repeated_source(records: &mut Vec<Pending>) {
    let mut seen = HashSet::new();
    let end = records
        .iter()
        .position(|r| !seen.insert(r.source_id.clone()))
        .unwrap_or(records.len());
    records.truncate(end);
}

/// Ends the chunk before the first record that updates a resource an
/// earlier record of the chunk updates (a record repeating its own is
/// refused by the transaction rules).
fn cut_at_repeated_identity(steps: &mut Vec<Step>) {
    let mut seen: HashSet<String> = HashSet::new();
    let mut end = steps.len();
    for (i, step) in steps.iter().enumerate() {
        let Step::Ready(prepared) = step else {
            continue;
        };
        let own: HashSet<String> = prepared.updated_identities().into_iter().collect();
        if own.iter().any(|identity| seen.contains(identity)) {
            end = i;
            break;
        }
        seen.extend(own);
    }
    steps.truncate(end);
}

/// Checks every payload as a transaction Bundle of the caller
/// (`transaction::prepare`), on blocking threads, one share per core.
pub(super) async fn prepare_all(
    ctx: &TenantCtx,
    payloads: Vec<String>,
) -> Result<Vec<Result<Prepared, ApiError>>, ApiError> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let share = payloads.len().div_ceil(cores.clamp(1, 8)).max(1);
    let mut rest = payloads;
    let mut tasks = Vec::new();
    while !rest.is_empty() {
        let tail = rest.split_off(share.min(rest.len()));
        let part = std::mem::replace(&mut rest, tail);
        let ctx = ctx.clone();
        tasks.push(tokio::task::spawn_blocking(move || {
            part.into_iter()
                .map(|payload| {
                    let bundle = serde_json::from_str(&payload).unwrap_or(Value::Null);
                    transaction::prepare(&ctx, bundle)
                })
                .collect::<Vec<_>>()
        }));
    }
    let mut checked = Vec::new();
    for task in tasks {
        checked.extend(task.await.map_err(ApiError::fault)?);
    }
    Ok(checked)
}

/// Writes the ready records in order: runs of joinable ones as groups,
/// the others one at a time.
pub(super) async fn write_steps(
    tx: &TenantTx<'_>,
    state: &AppState,
    ctx: &TenantCtx,
    steps: &mut [Step],
) -> Result<(), ApiError> {
    let mut group: Vec<(usize, Prepared)> = Vec::new();
    for i in 0..steps.len() {
        let joinable = matches!(&steps[i], Step::Ready(p) if p.joinable());
        if !matches!(steps[i], Step::Ready(_)) {
            continue;
        }
        let placeholder =
            Step::Refused(ApiError::new(Category::Fault, "the record was not written"));
        let Step::Ready(prepared) = std::mem::replace(&mut steps[i], placeholder) else {
            continue;
        };
        if joinable {
            group.push((i, prepared));
            continue;
        }
        write_group(tx, state, ctx, std::mem::take(&mut group), steps).await?;
        steps[i] = write_alone(tx, state, ctx, prepared).await?;
    }
    write_group(tx, state, ctx, group, steps).await
}

/// Writes a group as one transaction behind a savepoint; a group that
/// fails is rolled back and halved, until the refused records are alone.
async fn write_group(
    tx: &TenantTx<'_>,
    state: &AppState,
    ctx: &TenantCtx,
    group: Vec<(usize, Prepared)>,
    steps: &mut [Step],
) -> Result<(), ApiError> {
    let mut stack = vec![group];
    while let Some(mut parts) = stack.pop() {
        if parts.len() <= 1 {
            if let Some((i, prepared)) = parts.pop() {
                steps[i] = write_alone(tx, state, ctx, prepared).await?;
            }
            continue;
        }
        let joined = Prepared::join(parts.iter().map(|(_, p)| p.clone()).collect());
        tx.batch_execute("SAVEPOINT ingest_group").await?;
        match transaction::execute(tx, state, ctx, joined, None).await {
            Ok(responses) => {
                tx.batch_execute("RELEASE SAVEPOINT ingest_group").await?;
                let mut responses = responses.into_iter();
                for (i, prepared) in parts {
                    steps[i] = Step::Written(responses.by_ref().take(prepared.len()).collect());
                }
            }
            // The database is out of reach, or the write lost a deadlock to
            // a concurrent one: the chunk rolls back and stays pending for
            // the next pass.
            Err(refused) if refused.is_transient() => return Err(refused),
            Err(_) => {
                tx.batch_execute(
                    "ROLLBACK TO SAVEPOINT ingest_group; RELEASE SAVEPOINT ingest_group",
                )
                .await?;
                if parts.len() <= SMALL {
                    stack.extend(parts.into_iter().rev().map(|part| vec![part]));
                } else {
                    let second = parts.split_off(parts.len() / 2);
                    stack.push(second);
                    stack.push(parts);
                }
            }
        }
    }
    Ok(())
}

/// Writes one record behind a savepoint of its own; a refusal undoes
/// whatever it did, even a failed statement.
async fn write_alone(
    tx: &TenantTx<'_>,
    state: &AppState,
    ctx: &TenantCtx,
    prepared: Prepared,
) -> Result<Step, ApiError> {
    tx.batch_execute("SAVEPOINT ingest_record").await?;
    match transaction::execute(tx, state, ctx, prepared, None).await {
        Ok(responses) => {
            tx.batch_execute("RELEASE SAVEPOINT ingest_record").await?;
            Ok(Step::Written(responses))
        }
        Err(refused) if refused.is_transient() => Err(refused),
        Err(refused) => {
            tx.batch_execute(
                "ROLLBACK TO SAVEPOINT ingest_record; RELEASE SAVEPOINT ingest_record",
            )
            .await?;
            Ok(Step::Refused(refused))
        }
    }
}

/// Audits writes of the batch's (or a Kafka message's) caller as a
/// transaction.
pub(crate) async fn audit(state: &AppState, ctx: &TenantCtx, status: StatusCode, touched: Touched) {
    let mut pending = crate::audit::Pending::begin(&Method::POST, None);
    pending.path("", false);
    pending.context(ctx);
    pending.touched(touched);
    state.audit.record(pending, status).await;
}
