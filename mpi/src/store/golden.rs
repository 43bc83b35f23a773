//! Golden records and links: golden ids, building a cluster's golden
//! Patient (handed to the server only when its content changed), writing
//! a record's link with its log entry, and the `Patient.link` entries of
//! source Patients.
//!
//! Golden ids are `golden-` and 32 hex digits of SHA-256 over the tenant,
//! the record that founded the cluster and the number of clusters that
//! record founded before (`mpi_goldens.generation`): replaying the same
//! writes gives the same ids, and a record that leaves its cluster and
//! founds another never reuses an id.

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::db::Db;
use super::outcome::{GoldenChange, LinkChange, LinkType, PatientLink, SourceLinks};
use super::records::{self, Stored};
use super::{Linker, StoreError};
use crate::golden::{SourceRecord, build_golden};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The id of the `generation`-th golden record founded by `founder`.
pub fn golden_id(tenant: &str, founder: &str, generation: i32) -> String {
    let mut hash = Sha256::new();
    for part in [tenant, founder, &generation.to_string()] {
        hash.update(part.as_bytes());
        hash.update([0u8]);
    }
    format!("golden-{}", &hex(&hash.finalize())[..32])
}

/// Creates a golden record founded by `founder` and returns its id.
pub(crate) async fn new_golden(
    db: &impl Db,
    tenant: &str,
    founder: &str,
) -> Result<String, StoreError> {
    for generation in 1..=i32::MAX {
        let id = golden_id(tenant, founder, generation);
        let inserted = db
            .execute(
                "INSERT INTO mpi_goldens (tenant, golden_id, founder, generation) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                &[&tenant, &id, &founder, &generation],
            )
            .await?;
        if inserted == 1 {
            return Ok(id);
        }
    }
    Err(StoreError::Invalid(format!(
        "no golden id left for Patient/{founder}"
    )))
}

/// The golden Patient of a cluster: survivorship over the members that
/// were not merged away, then the identifiers of merged ones (so that
/// they still cross-reference).
pub(crate) fn golden_patient(linker: &Linker, golden_id: &str, members: &[&Stored]) -> Value {
    let active: Vec<SourceRecord<'_>> = members
        .iter()
        .filter(|m| m.merged_into.is_none())
        .map(|m| SourceRecord {
            source: &m.source,
            patient: &m.patient,
        })
        .collect();
    let all: Vec<SourceRecord<'_>> = members
        .iter()
        .map(|m| SourceRecord {
            source: &m.source,
            patient: &m.patient,
        })
        .collect();
    let chosen = if active.is_empty() { &all } else { &active };
    let mut patient = build_golden(golden_id, chosen, &linker.config().source_priority).patient;
    if chosen.len() < all.len() {
        let union = build_golden(golden_id, &all, &[]).patient;
        if let Some(identifiers) = union.get("identifier") {
            patient["identifier"] = identifiers.clone();
        }
        if let Some(links) = union.get("link") {
            patient["link"] = links.clone();
        }
    }
    patient
}

/// The SHA-256 of a golden Patient's content, as `mpi_goldens` keeps it.
pub(crate) fn content_hash(patient: &Value) -> String {
    hex(&Sha256::digest(patient.to_string().as_bytes()))
}

/// Records a golden record's content and returns the change to hand to
/// the server: a write when the content differs from what was last
/// handed out, a retirement when the cluster is empty, else nothing.
pub(crate) async fn settle_golden(
    db: &impl Db,
    linker: &Linker,
    tenant: &str,
    golden_id: &str,
    members: &[&Stored],
) -> Result<Option<GoldenChange>, StoreError> {
    if members.is_empty() {
        let retired = db
            .execute(
                "UPDATE mpi_goldens SET active = false, content_hash = NULL \
                 WHERE tenant = $1 AND golden_id = $2 AND active",
                &[&tenant, &golden_id],
            )
            .await?;
        return Ok((retired == 1).then(|| GoldenChange::Retire {
            id: golden_id.to_string(),
        }));
    }
    // In id order, so that the content does not depend on the order the
    // members were read in.
    let mut members = members.to_vec();
    members.sort_by(|a, b| a.patient_id.cmp(&b.patient_id));
    let patient = golden_patient(linker, golden_id, &members);
    let hash = content_hash(&patient);
    let changed = db
        .execute(
            "UPDATE mpi_goldens SET content_hash = $3, active = true \
             WHERE tenant = $1 AND golden_id = $2 AND content_hash IS DISTINCT FROM $3",
            &[&tenant, &golden_id, &hash],
        )
        .await?;
    Ok((changed == 1).then(|| GoldenChange::Write {
        id: golden_id.to_string(),
        patient,
    }))
}

/// Reads a cluster and settles its golden record.
pub(crate) async fn refresh_golden(
    db: &impl Db,
    linker: &Linker,
    tenant: &str,
    golden_id: &str,
) -> Result<Option<GoldenChange>, StoreError> {
    let members = records::cluster(db, linker, tenant, golden_id).await?;
    let members: Vec<&Stored> = members.iter().collect();
    settle_golden(db, linker, tenant, golden_id, &members).await
}

/// Writes a link change: the record's link (or its removal when
/// `golden_after` is None) and the log entry, in one statement.
pub(crate) async fn write_change(
    db: &impl Db,
    tenant: &str,
    change: &LinkChange,
    merged_into: Option<&str>,
) -> Result<(), StoreError> {
    let kind = change.kind.map(|k| k.as_str());
    let action = change.action.as_str();
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 10] = [
        &tenant,
        &change.patient_id,
        &change.golden_before,
        &change.golden_after,
        &action,
        &kind,
        &change.score,
        &change.rule,
        &change.actor,
        &merged_into,
    ];
    let log = "INSERT INTO mpi_link_log \
               (tenant, patient_id, golden_before, golden_after, action, kind, score, rule, actor) \
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
    if change.golden_after.is_some() {
        let sql = format!(
            "WITH link AS ( \
               INSERT INTO mpi_links (tenant, patient_id, golden_id, kind, score, rule, merged_into, decided_by) \
               VALUES ($1, $2, $4, $6, $7, $8, $10, $9) \
               ON CONFLICT (tenant, patient_id) DO UPDATE SET golden_id = EXCLUDED.golden_id, \
                 kind = EXCLUDED.kind, score = EXCLUDED.score, rule = EXCLUDED.rule, \
                 merged_into = EXCLUDED.merged_into, decided_by = EXCLUDED.decided_by, \
                 decided_at = now()) {log}"
        );
        db.execute(&sql, &params).await?;
    } else {
        let sql = format!(
            "WITH link AS (DELETE FROM mpi_links WHERE tenant = $1 AND patient_id = $2) {log}"
        );
        db.execute(&sql, &params[..9]).await?;
    }
    Ok(())
}

/// The MPI links of some source records, from the stored state: `refer`
/// to the golden record, `replaced-by` the record it was merged into,
/// `replaces` each record merged into it. Removed records get none.
pub async fn source_links(
    db: &impl Db,
    tenant: &str,
    ids: &[&str],
) -> Result<Vec<SourceLinks>, StoreError> {
    let rows = db
        .query(
            "SELECT c.id, l.golden_id, l.merged_into, \
               array(SELECT m.patient_id FROM mpi_links m WHERE m.tenant = $1 \
                     AND m.merged_into = c.id ORDER BY m.patient_id) \
             FROM unnest($2::text[]) AS c(id) \
             LEFT JOIN mpi_links l ON l.tenant = $1 AND l.patient_id = c.id",
            &[&tenant, &ids],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| {
            let mut links = Vec::new();
            if let Some(golden) = row.get::<_, Option<String>>(1) {
                links.push(PatientLink {
                    other: golden,
                    link_type: LinkType::Refer,
                });
            }
            if let Some(target) = row.get::<_, Option<String>>(2) {
                links.push(PatientLink {
                    other: target,
                    link_type: LinkType::ReplacedBy,
                });
            }
            for merged in row.get::<_, Vec<String>>(3) {
                links.push(PatientLink {
                    other: merged,
                    link_type: LinkType::Replaces,
                });
            }
            SourceLinks {
                patient_id: row.get(0),
                links,
            }
        })
        .collect())
}
