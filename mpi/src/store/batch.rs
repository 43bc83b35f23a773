//! `index_batch`: indexes and links many source Patients in a handful of
//! statements, whatever their number (docs/mpi.md, "Linking a batch"):
//!
//! 1. one statement stores every record and replaces its blocking keys;
//! 2. four statements, sent together, read the batch's neighbourhood into
//!    a [`Snapshot`]: candidates by key, the members of their clusters
//!    and of the batch records' own, review decisions, name frequencies;
//! 3. the records are linked one after the other in memory (`link`), each
//!    seeing the links of those before it, as if they had arrived one by
//!    one;
//! 4. one statement per table writes what changed (`flush`).
//!
//! `index_patient` is a batch of one, so single writes and bulk loads
//! link by the same rules.

use std::collections::HashMap;

use serde_json::Value;

use super::db::Db;
use super::flush::{Writes, flush};
use super::link::link_record;
use super::outcome::LinkOutcome;
use super::records::{self, Stored, ToStore};
use super::snapshot::Snapshot;
use super::{Linker, StoreError};
use crate::blocking::blocking_keys;
use crate::features::Features;

/// One source Patient to index: its id, content and source (the
/// integrator that sent it, for survivorship's source priority).
#[derive(Debug, Clone, Copy)]
pub struct Incoming<'a> {
    pub patient_id: &'a str,
    pub patient: &'a Value,
    pub source: &'a str,
}

/// A batch record ready to store.
struct Prepared {
    copy: Value,
    features: Features,
    keys: Vec<String>,
}

/// Indexes (or re-indexes) the batch's Patients and links them, in the
/// caller's transaction; apply the returned outcome in the same
/// transaction. Records are linked in the order given; an id given twice
/// is indexed once, with its last content. The outcome's `golden_id` is
/// the last record's.
pub async fn index_batch(
    db: &impl Db,
    linker: &Linker,
    tenant: &str,
    incoming: &[Incoming<'_>],
) -> Result<LinkOutcome, StoreError> {
    let mut last: HashMap<&str, usize> = HashMap::new();
    for (i, record) in incoming.iter().enumerate() {
        last.insert(record.patient_id, i);
    }
    let batch: Vec<(&str, Prepared)> = incoming
        .iter()
        .enumerate()
        .filter(|(i, r)| last.get(r.patient_id) == Some(i))
        .map(|(_, r)| (r.patient_id, prepare(linker, r)))
        .collect();
    if batch.is_empty() {
        return Ok(LinkOutcome::default());
    }
    let to_store: Vec<ToStore<'_>> = batch
        .iter()
        .map(|(_, p)| ToStore {
            features: &p.features,
            patient: &p.copy,
            keys: &p.keys,
        })
        .collect();
    let mut previous = records::store_batch(db, tenant, &to_store).await?;
    let reindexed: Vec<&str> = batch
        .iter()
        .map(|(id, _)| *id)
        .filter(|id| previous.contains_key(*id))
        .collect();
    let fresh: Vec<&str> = batch
        .iter()
        .map(|(id, _)| *id)
        .filter(|id| !previous.contains_key(*id))
        .collect();
    let all_keys: Vec<&str> = batch
        .iter()
        .flat_map(|(_, p)| p.keys.iter().map(String::as_str))
        .collect();
    let stored: Vec<Stored> = batch
        .iter()
        .map(|(id, p)| {
            let before = previous.remove(*id).unwrap_or_default();
            Stored {
                patient_id: (*id).to_owned(),
                source: p.features.source.clone(),
                patient: p.copy.clone(),
                features: p.features.clone(),
                golden_id: before.golden_id,
                kind: before.kind,
                merged_into: before.merged_into,
            }
        })
        .collect();
    let mut snapshot = Snapshot::load(db, linker, tenant, stored, &all_keys).await?;
    let matcher = linker
        .matcher
        .clone()
        .with_frequencies(std::mem::take(&mut snapshot.frequencies));
    let mut writes = Writes::new(linker.config().thresholds.auto_link);
    let mut golden_id = String::new();
    for (id, p) in &batch {
        if let Some(golden) = link_record(&mut snapshot, &matcher, tenant, id, &p.keys, &mut writes)
        {
            golden_id = golden;
        }
    }
    let mut out = flush(db, linker, tenant, &snapshot, writes, &reindexed, &fresh).await?;
    out.golden_id = golden_id;
    Ok(out)
}

/// The stored copy (its `id` is the record's), features and keys.
fn prepare(linker: &Linker, record: &Incoming<'_>) -> Prepared {
    let copy = records::stored_copy(record.patient, record.patient_id);
    let mut features = Features::from_patient(&copy, record.source, linker.config());
    features.record_id = record.patient_id.to_owned();
    let keys = blocking_keys(&features).into_iter().map(|k| k.0).collect();
    Prepared {
        copy,
        features,
        keys,
    }
}
