//! A chunk written in parts at once (docs/ingest.md, "Processing"): the
//! worker's write is mostly PostgreSQL's work on one connection, so a chunk
//! kept one core busy. A chunk whose records are all plain creates and
//! updates is cut in [`PARTS`], and each part after the first is written on
//! a connection of its own, in its own transaction, while the first part is
//! written in the chunk's.
//!
//! Why the parts cannot disturb each other:
//! - a chunk never updates one resource twice nor repeats a source id
//!   ([`super::chunk`] cuts it before), so the parts write disjoint rows and
//!   wait for no lock of each other's;
//! - writes whose checks read other resources under a lock are not split:
//!   Locations and Organizations (facility codes, `service::mcsd`),
//!   Subscriptions, and Patients when the master patient index links
//!   inline;
//! - the later parts never touch the batch row, which the chunk's
//!   transaction holds locked, and they commit first: while their records
//!   are uncommitted no other worker can read the batch's pending records.
//!   Should this process die with a part's COMMIT on its way, the next
//!   worker still cannot take the part's records twice: each part holds an
//!   advisory lock shared, and a worker waits for it before reading
//!   pending records ([`chunk_store::wait_for_parts`]).
//!   The counts of every part are then added by the chunk's transaction; a
//!   crash between the commits leaves them short until the batch completes,
//!   when [`chunk_store::recount`] sets them from the records.
//!
//! A later part that fails rolls back and its records stay pending for the
//! next chunk; if the first fails, the chunk fails as before.

use super::chunk::{Step, write_steps};
use super::chunk_store::{self, Finished};
use super::store::{Batch, Done, Pending};
use crate::audit::Touched;
use crate::error::ApiError;
use crate::service::AppState;
use crate::store::{Access, TenantCtx, TenantTx, begin};
use actix_web::http::StatusCode;

/// The parts a chunk is written in. On two cores, three or four parts
/// were no faster than two (bench/import.sh, 50,000 Observations: 4,447,
/// 3,971 and 3,899 records/s).
const PARTS: usize = 2;

/// Chunks with fewer records ready to write are written in one part.
const SPLIT_FROM: usize = 64;

/// Types whose writes check other resources under a lock; a chunk with
/// any is written in one part.
const LOCKING_TYPES: [&str; 3] = ["Location", "Organization", "Subscription"];

/// The processed records of a chunk (or part), and what they add to the
/// batch's counts, metrics and audit.
#[derive(Default)]
pub(super) struct Settled {
    pub finished: Vec<Finished>,
    /// Source id and content hash of each written record.
    pub remembered: Vec<(String, String)>,
    pub written: Touched,
    pub entries: u64,
    pub refusals: Vec<StatusCode>,
}

impl Settled {
    /// Settles `records`, each with its step (none is left `Ready`).
    pub(super) fn of(records: &[Pending], steps: Vec<Step>) -> Result<Settled, ApiError> {
        let mut settled = Settled::default();
        for (record, step) in records.iter().zip(steps) {
            let (done, outcome) = match step {
                Step::Unchanged => (Done::Unchanged, None),
                Step::Refused(refused) => {
                    let outcome = refused.outcome();
                    settled.refusals.push(refused.status());
                    (Done::Failed, Some(outcome))
                }
                Step::Written(responses) => {
                    let created = responses.iter().any(|r| r.status == StatusCode::CREATED);
                    settled.entries += responses.len() as u64;
                    for response in responses {
                        settled.written.merge(response.touched);
                    }
                    settled
                        .remembered
                        .push((record.source_id.clone(), record.content_hash.clone()));
                    let done = if created {
                        Done::Created
                    } else {
                        Done::Updated
                    };
                    (done, None)
                }
                Step::Ready(_) => {
                    return Err(ApiError::fault("an ingest record was left unwritten"));
                }
            };
            settled.finished.push(Finished {
                seq: record.seq,
                done,
                outcome,
            });
        }
        Ok(settled)
    }

    /// Remembers the written records' source hashes and marks the records
    /// done, in `db`'s transaction.
    pub(super) async fn store(
        &self,
        db: &TenantTx<'_>,
        batch: &Batch,
        integrator: &str,
    ) -> Result<(), ApiError> {
        let remembered: Vec<(&str, &str)> = self
            .remembered
            .iter()
            .map(|(source, hash)| (source.as_str(), hash.as_str()))
            .collect();
        chunk_store::remember_sources(db, batch, integrator, &remembered).await?;
        chunk_store::mark_records(db, batch, &self.finished).await
    }

    /// Adds `other`'s records after these.
    pub(super) fn extend(&mut self, other: Settled) {
        self.finished.extend(other.finished);
        self.remembered.extend(other.remembered);
        self.written.merge(other.written);
        self.entries += other.entries;
        self.refusals.extend(other.refusals);
    }
}

/// Where to cut the chunk's steps into [`PARTS`] parts with as many
/// records ready to write each; empty when it is to be written in one part.
pub(super) fn cut(ctx: &TenantCtx, steps: &[Step]) -> Vec<usize> {
    let inline_linking = ctx.mpi.is_some() && !ctx.mpi_queued;
    let mut ready = 0;
    for step in steps {
        let Step::Ready(prepared) = step else {
            continue;
        };
        let locking = prepared
            .written_types()
            .any(|t| LOCKING_TYPES.contains(&t) || (inline_linking && t == "Patient"));
        if !prepared.joinable() || locking {
            return Vec::new();
        }
        ready += 1;
    }
    if ready < SPLIT_FROM {
        return Vec::new();
    }
    let mut cuts = Vec::new();
    let mut seen = 0;
    for (i, step) in steps.iter().enumerate() {
        if !matches!(step, Step::Ready(_)) {
            continue;
        }
        if seen > 0 && seen * PARTS >= ready * (cuts.len() + 1) {
            cuts.push(i);
        }
        seen += 1;
    }
    cuts
}

/// One part after the first: its records and their steps.
pub(super) struct Part {
    pub records: Vec<Pending>,
    pub steps: Vec<Step>,
}

/// Writes `first` in the chunk's transaction `tx` and, at the same time,
/// each later part in a task and transaction of its own, which settles
/// its records and commits. Returns the later parts' settled records; a
/// part that failed is left out (its records stay pending). Every part has
/// ended before this returns, so none outlives the chunk's transaction.
pub(super) async fn write_parts(
    tx: &TenantTx<'_>,
    state: &AppState,
    ctx: &TenantCtx,
    batch: &Batch,
    integrator: &str,
    first: &mut [Step],
    later: Vec<Part>,
) -> Result<Vec<Settled>, ApiError> {
    // Tasks rather than futures of this one: the parts' own work (index
    // rows, statements, responses) then runs on other cores too.
    let tasks: Vec<_> = later
        .into_iter()
        .map(|part| {
            let (state, ctx) = (state.clone(), ctx.clone());
            let (batch, integrator) = (batch.clone(), integrator.to_owned());
            tokio::spawn(async move { write_part(&state, &ctx, &batch, &integrator, part).await })
        })
        .collect();
    let first_written = write_steps(tx, state, ctx, first).await;
    let mut settled = Vec::new();
    for task in tasks {
        match task.await.map_err(ApiError::fault).and_then(|part| part) {
            Ok(part) => settled.push(part),
            Err(e) => tracing::warn!(tenant = %ctx.tenant, batch = %batch.id, error = %e,
                "a part of an ingest chunk failed; its records stay pending"),
        }
    }
    first_written?;
    Ok(settled)
}

/// Writes, settles and commits one later part.
async fn write_part(
    state: &AppState,
    ctx: &TenantCtx,
    batch: &Batch,
    integrator: &str,
    part: Part,
) -> Result<Settled, ApiError> {
    let Part { records, mut steps } = part;
    let mut client = state.pool.get().await?;
    let own = begin(&mut client, ctx, Access::ReadWrite).await?;
    // A guard: the parts are built to wait for no lock of each other's,
    // and the chunk's transaction waits for this one.
    own.batch_execute("SET LOCAL lock_timeout = '10s'").await?;
    chunk_store::hold_part(&own, batch).await?;
    write_steps(&own, state, ctx, &mut steps).await?;
    let settled = Settled::of(&records, steps)?;
    settled.store(&own, batch, integrator).await?;
    own.commit().await?;
    Ok(settled)
}
