//! Read-only questions to the index: `Patient/$match` (score a Patient
//! that is not stored against its candidates) and IHE PIXm
//! (the identifiers of every record of the person an identifier names).

use std::collections::HashSet;

use serde_json::{Value, json};

use super::db::Db;
use super::outcome::{CrossReference, MatchResult};
use super::records;
use super::{Linker, StoreError};
use crate::blocking::blocking_keys;
use crate::features::Features;
use crate::model::MatchGrade;

/// The records matching `patient`, best first: at most `count`, graded
/// (`certainly-not` results, below the review threshold, are left out);
/// with `only_certain`, only those graded `certain`. Merged-away records
/// are not returned (their targets are).
pub async fn match_patient(
    db: &impl Db,
    linker: &Linker,
    tenant: &str,
    patient: &Value,
    count: usize,
    only_certain: bool,
) -> Result<Vec<MatchResult>, StoreError> {
    let mut features = Features::from_patient(patient, "", linker.config());
    let own_id = features.record_id.clone();
    features.record_id = String::new();
    let keys: Vec<String> = blocking_keys(&features).into_iter().map(|k| k.0).collect();
    let (frequencies, candidates) = futures_util::future::try_join(
        records::frequencies_for(db, tenant, &features),
        records::candidates(db, linker, tenant, &own_id, &keys),
    )
    .await?;
    let matcher = linker.matcher.clone().with_frequencies(frequencies);
    let certain = linker.config().thresholds.certain;
    let mut results: Vec<MatchResult> = candidates
        .into_iter()
        .filter_map(|c| {
            let comparison = matcher.compare(&features, &c.features);
            let keep = match comparison.grade {
                MatchGrade::CertainlyNot => false,
                MatchGrade::Certain => true,
                _ => !only_certain,
            };
            keep.then(|| MatchResult {
                patient_id: c.patient_id,
                golden_id: c.golden_id,
                score: comparison.score,
                search_score: (comparison.score / certain).clamp(0.0, 1.0),
                grade: comparison.grade,
                comparison,
            })
        })
        .collect();
    results.sort_by(|x, y| {
        y.score
            .total_cmp(&x.score)
            .then_with(|| x.patient_id.cmp(&y.patient_id))
    });
    results.truncate(count);
    Ok(results)
}

/// Every record in the clusters of the records holding the identifier
/// `system|value` (compared as matching compares it: trimmed, and
/// uppercased unless its system is configured otherwise), with all their
/// identifiers; merged-away records included.
pub async fn cross_references(
    db: &impl Db,
    linker: &Linker,
    tenant: &str,
    system: &str,
    value: &str,
) -> Result<Vec<CrossReference>, StoreError> {
    let probe = json!({"resourceType": "Patient",
                       "identifier": [{"system": system, "value": value}]});
    let features = Features::from_patient(&probe, "", linker.config());
    let keys: Vec<String> = blocking_keys(&features)
        .into_iter()
        .map(|k| k.0)
        .filter(|k| k.starts_with("id:"))
        .collect();
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let rows = db
        .query(
            "WITH hit AS (SELECT patient_id FROM mpi_block_keys WHERE tenant = $1 AND key = ANY($2)), \
             g AS (SELECT DISTINCT l.golden_id FROM hit \
                   JOIN mpi_links l ON l.tenant = $1 AND l.patient_id = hit.patient_id) \
             SELECT l.patient_id, l.golden_id, r.patient FROM g \
             JOIN mpi_links l ON l.tenant = $1 AND l.golden_id = g.golden_id \
             JOIN mpi_records r ON r.tenant = $1 AND r.patient_id = l.patient_id \
             ORDER BY l.golden_id, l.patient_id",
            &[&tenant, &keys],
        )
        .await?;
    let mut seen = HashSet::new();
    Ok(rows
        .iter()
        .filter_map(|row| {
            let patient_id: String = row.get(0);
            if !seen.insert(patient_id.clone()) {
                return None;
            }
            let patient: Value = row.get(2);
            let identifiers = patient
                .get("identifier")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            Some(CrossReference {
                patient_id,
                golden_id: row.get(1),
                identifiers,
            })
        })
        .collect())
}
