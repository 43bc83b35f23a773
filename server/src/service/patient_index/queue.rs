//! Queued linking (`BARAZA_MPI_LINKING=queued`, docs/mpi.md "Queued
//! linking"): Patient writes are only stored, and their change events,
//! written in the same transaction, are the durable queue. The outbox
//! consumer `mpi` of each tenant, delivered by the dispatcher under its
//! lease like a Subscription, links them after they commit.
//!
//! A round reads up to [`BATCH`] events after the consumer's cursor, and
//! in one transaction links the Patients among them as one batch (their
//! current content: a later version supersedes an earlier one), writes
//! the golden records and the sources' `Patient.link`s, and moves the
//! cursor. So a crash or a lost lease undoes the whole round, which is
//! done again from the same cursor: every write is linked at least once,
//! and its effects are stored exactly once.
//!
//! The versions the MPI writes (links, golden records) come back as
//! events too: golden Patients are skipped by id, and a source whose
//! content, apart from `meta` and `link`, is still the indexed copy is not
//! linked again; only its links are put back if a write dropped them.

use super::link::apply_outcome;
use super::{is_golden, store_error};
use crate::error::ApiError;
use crate::events::outbox::{self, Consumer, Event};
use crate::service::AppState;
use crate::store::{Access, TenantCtx, TenantTx, begin, now, read};
use serde_json::Value;
use std::collections::{HashMap, HashSet};

/// The consumer name of queued linking in `event_consumers`.
pub const CONSUMER: &str = "mpi";

/// Events read per round.
const BATCH: i64 = 500;

/// One round for the tenant's `mpi` consumer; returns whether more events
/// may be waiting.
pub async fn deliver(
    state: &AppState,
    ctx: &TenantCtx,
    consumer: &Consumer,
) -> Result<bool, ApiError> {
    let Some(linker) = state.mpi.clone() else {
        return Ok(false);
    };
    if !consumer.due {
        return Ok(false);
    }
    let node = &state.node;
    let lease = node.lease_interval();
    let ctx = TenantCtx {
        mpi: Some(linker),
        mpi_queued: false,
        ..ctx.clone()
    };
    let mut client = state.pool.get().await?;
    let tx = begin(&mut client, &ctx, Access::ReadWrite).await?;
    let (events, end) =
        outbox::read_after(&tx, &ctx, consumer.cursor, node.watermark(), BATCH).await?;
    if events.is_empty() && end == consumer.cursor {
        return Ok(false);
    }
    let more = events.len() as i64 == BATCH;
    match link_round(&tx, &ctx, &events).await {
        Ok(linked) => {
            let held = outbox::advance(&tx, &ctx, &node.id, CONSUMER, end, linked, &lease).await?;
            if !held {
                // Another instance took the consumer over: this round's
                // links are rolled back, and it links them itself.
                return Ok(false);
            }
            if consumer.failures > 0 {
                outbox::recovered(&tx, &ctx, CONSUMER).await?;
            }
            tx.commit().await?;
            Ok(more)
        }
        Err(e) => {
            drop(tx);
            drop(client);
            crate::events::builtin::failed_round(state, &ctx, consumer, &e).await?;
            Ok(false)
        }
    }
}

/// Links the source Patients of `events` as they are now, and writes what
/// that changed; returns how many Patients were linked or removed.
async fn link_round(tx: &TenantTx<'_>, ctx: &TenantCtx, events: &[Event]) -> Result<i64, ApiError> {
    let linker = super::linker(ctx)?;
    // Each Patient once, in the order of its last event; its source is the
    // last integrator that wrote it (the MPI's own versions have none).
    let mut order: Vec<&str> = Vec::new();
    let mut integrators: HashMap<&str, &str> = HashMap::new();
    let mut seen: HashSet<&str> = HashSet::new();
    for event in events.iter().rev() {
        if event.resource_type != "Patient" || is_golden(&event.id) {
            continue;
        }
        if seen.insert(event.id.as_str()) {
            order.push(event.id.as_str());
        }
        if let Some(integrator) = event.integrator.as_deref() {
            integrators.entry(event.id.as_str()).or_insert(integrator);
        }
    }
    order.reverse();
    if order.is_empty() {
        return Ok(0);
    }
    tx.generic_plans(true).await?;
    let keys: Vec<(String, String)> = order
        .iter()
        .map(|id| ("Patient".to_owned(), (*id).to_owned()))
        .collect();
    let mut current: HashMap<String, Value> = HashMap::new();
    for stored in read::read_many(tx, ctx, &keys).await? {
        if let Some(patient) = stored
            .content
            .as_deref()
            .and_then(|text| serde_json::from_str::<Value>(text).ok())
        {
            current.insert(stored.id, patient);
        }
    }
    let indexed = mpi::store::indexed(&**tx, &ctx.tenant, &order)
        .await
        .map_err(store_error)?;
    let mut outcome = mpi::store::LinkOutcome::default();
    let mut sources: Vec<String> = Vec::new();
    let mut changed: Vec<(&str, &Value)> = Vec::new();
    let mut unchanged: Vec<&str> = Vec::new();
    let mut linked = 0i64;
    for id in &order {
        let before = indexed.get(*id);
        match current.get(*id) {
            None => {
                if before.is_some() {
                    let removed = mpi::store::remove_patient(
                        &**tx,
                        linker,
                        &ctx.tenant,
                        id,
                        super::SERVER_ACTOR,
                    )
                    .await
                    .map_err(store_error)?;
                    outcome.absorb(removed);
                    linked += 1;
                }
            }
            Some(patient) => {
                if before.is_some_and(|(_, copy)| same_for_matching(copy, patient)) {
                    // Nothing to match again; its links are restored if
                    // the write dropped them.
                    unchanged.push(*id);
                    continue;
                }
                let source = integrators
                    .get(id)
                    .map(|s| (*s).to_owned())
                    .or_else(|| before.map(|(source, _)| source.clone()))
                    .unwrap_or_else(|| "direct".to_owned());
                sources.push(source);
                changed.push((id, patient));
            }
        }
    }
    if !changed.is_empty() {
        let incoming: Vec<mpi::store::Incoming<'_>> = changed
            .iter()
            .zip(&sources)
            .map(|((id, patient), source)| mpi::store::Incoming {
                patient_id: id,
                patient,
                source,
            })
            .collect();
        let batch = mpi::store::index_batch(&**tx, linker, &ctx.tenant, &incoming)
            .await
            .map_err(store_error)?;
        outcome.absorb(batch);
        linked += changed.len() as i64;
    }
    if !unchanged.is_empty() {
        for links in mpi::store::source_links(&**tx, &ctx.tenant, &unchanged)
            .await
            .map_err(store_error)?
        {
            if outcome.links_of(&links.patient_id).is_none() {
                outcome.source_links.push(links);
            }
        }
    }
    apply_outcome(tx, ctx, &outcome, &HashSet::new(), None, now()).await?;
    tx.generic_plans(false).await?;
    Ok(linked)
}

/// Whether two versions of a Patient are the same to the matcher: equal
/// apart from `meta` and `link` (which the MPI itself sets).
fn same_for_matching(indexed: &Value, current: &Value) -> bool {
    let strip = |v: &Value| -> Option<serde_json::Map<String, Value>> {
        let mut object = v.as_object()?.clone();
        object.remove("meta");
        object.remove("link");
        object.remove("id");
        Some(object)
    };
    match (strip(indexed), strip(current)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::same_for_matching;
    use serde_json::json;

    #[test]
    fn meta_and_links_do_not_count_as_a_change() {
        let indexed = json!({"resourceType": "Patient", "id": "a", "gender": "female",
            "meta": {"versionId": "1"}});
        let relinked = json!({"resourceType": "Patient", "id": "a", "gender": "female",
            "meta": {"versionId": "2"},
            "link": [{"other": {"reference": "Patient/golden-x"}, "type": "refer"}]});
        assert!(same_for_matching(&indexed, &relinked));
        let renamed = json!({"resourceType": "Patient", "id": "a", "gender": "male",
            "meta": {"versionId": "3"}});
        assert!(!same_for_matching(&indexed, &renamed));
    }
}
