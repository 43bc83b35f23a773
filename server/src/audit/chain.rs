//! The hash chain: the canonical bytes of a row, the link
//! `hash = sha256(previous hash || canonical bytes)`, and appending a batch
//! of events under the lock of the chain head (so that several Baraza
//! instances on one database still build one chain).

use super::event::Event;
use super::json;
use chrono::{DateTime, SubsecRound, Utc};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::fmt;

/// What the first row continues from.
pub const GENESIS: [u8; 32] = [0; 32];
/// Starts the canonical bytes, so that a change of layout changes every hash.
const LAYOUT: &[u8] = b"baraza-audit-v1\0";

/// One row of `audit_events` as it is hashed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub seq: i64,
    /// At microsecond precision, as PostgreSQL keeps it.
    pub recorded: DateTime<Utc>,
    pub tenant: String,
    pub action: String,
    pub subtype: String,
    pub outcome: i16,
    pub agents: Vec<String>,
    pub patients: Vec<String>,
    pub entities: Vec<String>,
    /// The AuditEvent JSON text.
    pub event: String,
}

impl Row {
    /// Every column but the hash, each length-prefixed (lists with their
    /// count), so that no two different rows share their bytes.
    pub fn canonical(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 + self.event.len());
        out.extend_from_slice(LAYOUT);
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.recorded.timestamp_micros().to_be_bytes());
        field(&mut out, &self.tenant);
        field(&mut out, &self.action);
        field(&mut out, &self.subtype);
        out.extend_from_slice(&self.outcome.to_be_bytes());
        for list in [&self.agents, &self.patients, &self.entities] {
            out.extend_from_slice(&(list.len() as u64).to_be_bytes());
            for item in list {
                field(&mut out, item);
            }
        }
        field(&mut out, &self.event);
        out
    }

    /// This row's hash when it follows a row whose hash is `previous`.
    pub fn hash_after(&self, previous: &[u8]) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(previous);
        hasher.update(self.canonical());
        hasher.finalize().into()
    }
}

fn field(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(&(text.len() as u64).to_be_bytes());
    out.extend_from_slice(text.as_bytes());
}

/// Row `seq` for `event`, recorded at `recorded`.
pub fn row_of(event: &Event, seq: i64, recorded: DateTime<Utc>) -> Result<Row, AppendError> {
    let mut seen = HashSet::new();
    let entities_versions: Vec<(String, Option<i64>)> = event
        .entities
        .iter()
        .filter(|e| seen.insert((e.reference.as_str(), e.version)))
        .map(|e| (e.reference.clone(), e.version))
        .collect();
    let mut patients = event.patients.clone();
    patients.sort_unstable();
    patients.dedup();
    // A Patient among the patients is found through `patients` (its GIN
    // index), so it is not a key of the `entities` index as well: a page
    // of 50 Patients used to put 50 keys into each (`audit::query`).
    let mut entities: Vec<String> = entities_versions
        .iter()
        .filter(|(r, _)| !in_patients(r, &patients))
        .map(|(r, _)| r.clone())
        .collect();
    entities.sort_unstable();
    entities.dedup();
    let mut agents: Vec<String> = event.user.iter().cloned().collect();
    if let Some(caller) = event.caller.as_deref() {
        agents.push(caller.subject.clone());
        if let Some(client) = &caller.client_id {
            if *client != caller.subject {
                agents.push(client.clone());
            }
        }
    }
    let event_text = json::render(event, seq, recorded, &entities_versions, &patients)
        .map_err(AppendError::Render)?;
    Ok(Row {
        seq,
        recorded,
        tenant: event.tenant.clone(),
        action: event.action().code().to_owned(),
        subtype: event.interaction.subtype.to_owned(),
        outcome: event.outcome(),
        agents,
        patients,
        entities,
        event: event_text,
    })
}

/// Whether `reference` is `Patient/{id}` for an id in `patients` (sorted).
fn in_patients(reference: &str, patients: &[String]) -> bool {
    reference
        .strip_prefix("Patient/")
        .is_some_and(|id| patients.binary_search_by(|p| p.as_str().cmp(id)).is_ok())
}

/// Why a batch could not be appended. Displays the SQLSTATE and message
/// only: PostgreSQL's detail can quote the row, which holds identifiers.
#[derive(Debug)]
pub enum AppendError {
    Database(tokio_postgres::Error),
    Pool(deadpool_postgres::PoolError),
    /// Still no partition for this time after creating it.
    NoPartition(DateTime<Utc>),
    /// The AuditEvent could not be written as JSON (a serializer error).
    Render(String),
}

impl fmt::Display for AppendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AppendError::Database(e) => match e.as_db_error() {
                Some(db) => write!(f, "{}: {}", db.code().code(), db.message()),
                None => write!(f, "{e}"),
            },
            AppendError::Pool(e) => write!(f, "database pool: {e}"),
            AppendError::NoPartition(t) => write!(f, "no audit partition holds {t}"),
            AppendError::Render(e) => write!(f, "cannot render an AuditEvent: {e}"),
        }
    }
}

impl std::error::Error for AppendError {}

impl From<tokio_postgres::Error> for AppendError {
    fn from(e: tokio_postgres::Error) -> Self {
        AppendError::Database(e)
    }
}

const LOCK_HEAD: &str =
    "SELECT last_seq, last_hash, last_recorded FROM audit_chain_head FOR UPDATE";

const INSERT: &str = "INSERT INTO audit_events \
     (seq, recorded, tenant, action, subtype, outcome, agents, patients, entities, event, hash) \
     SELECT u.seq, $1, u.tenant, u.action, u.subtype, u.outcome, \
            ARRAY(SELECT json_array_elements_text(u.agents::json)), \
            string_to_array(u.patients, ' '), string_to_array(u.entities, ' '), \
            u.event, u.hash \
     FROM unnest($2::int8[], $3::text[], $4::text[], $5::text[], $6::int2[], \
                 $7::text[], $8::text[], $9::text[], $10::text[], $11::bytea[]) \
          AS u(seq, tenant, action, subtype, outcome, agents, patients, entities, event, hash)";

const MOVE_HEAD: &str =
    "UPDATE audit_chain_head SET last_seq = $1, last_hash = $2, last_recorded = $3";

/// Appends `events` as the next rows of the chain, in one transaction:
/// locks the head, numbers and hashes the rows, inserts them with one
/// statement and moves the head. They are recorded at `now`, or at the
/// head's time if that is later, so that `recorded` never decreases along
/// the chain (and a partition holds one contiguous run of it). A missing
/// monthly partition is created and the batch tried again.
pub async fn append(
    client: &mut deadpool_postgres::ClientWrapper,
    events: &[Event],
    now: DateTime<Utc>,
) -> Result<(), AppendError> {
    match append_once(client, events, now).await? {
        None => Ok(()),
        Some(missing) => {
            client
                .query_one("SELECT audit_create_partition($1)", &[&missing])
                .await?;
            match append_once(client, events, now).await? {
                None => Ok(()),
                Some(t) => Err(AppendError::NoPartition(t)),
            }
        }
    }
}

/// `Ok(Some(t))` when there is no partition for time `t`.
async fn append_once(
    client: &mut deadpool_postgres::ClientWrapper,
    events: &[Event],
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, AppendError> {
    let tx = client.transaction().await?;
    // The commit does not wait for the WAL flush: the chain stays whole
    // (WAL is replayed in order), and only a crash of PostgreSQL or of the
    // machine within a fraction of a second could lose the batch, as
    // kill -9 of Baraza loses what is queued (docs/audit.md).
    tx.batch_execute("SET LOCAL synchronous_commit = off")
        .await?;
    let head = tx
        .query_one(&tx.prepare_cached(LOCK_HEAD).await?, &[])
        .await?;
    let mut seq: i64 = head.get(0);
    let mut previous: Vec<u8> = head.get(1);
    let last_recorded: Option<DateTime<Utc>> = head.get(2);
    let now = now.trunc_subsecs(6);
    let recorded = last_recorded.map_or(now, |last| last.max(now));
    let mut columns = Columns::default();
    for event in events {
        seq += 1;
        let row = row_of(event, seq, recorded)?;
        let hash = row.hash_after(&previous);
        columns.push(row, hash);
        previous = hash.to_vec();
    }
    let insert = tx.prepare_cached(INSERT).await?;
    let c = &columns;
    let inserted = tx
        .execute(
            &insert,
            &[
                &recorded,
                &c.seq,
                &c.tenant,
                &c.action,
                &c.subtype,
                &c.outcome,
                &c.agents,
                &c.patients,
                &c.entities,
                &c.event,
                &c.hash,
            ],
        )
        .await;
    match inserted {
        Err(e) if is_missing_partition(&e) => return Ok(Some(recorded)),
        other => other?,
    };
    let move_head = tx.prepare_cached(MOVE_HEAD).await?;
    tx.execute(&move_head, &[&seq, &previous, &recorded])
        .await?;
    tx.commit().await?;
    Ok(None)
}

/// "no partition of relation ... found for row".
fn is_missing_partition(e: &tokio_postgres::Error) -> bool {
    e.as_db_error().is_some_and(|db| {
        *db.code() == tokio_postgres::error::SqlState::CHECK_VIOLATION
            && db.message().starts_with("no partition")
    })
}

/// The batch as one array per column, for the `unnest` insert. Rows' lists
/// differ in length, so each goes as one text: ids and `Type/id`s joined
/// by spaces (which they cannot contain), agents (any text) as a JSON
/// array.
#[derive(Default)]
struct Columns {
    seq: Vec<i64>,
    tenant: Vec<String>,
    action: Vec<String>,
    subtype: Vec<String>,
    outcome: Vec<i16>,
    agents: Vec<String>,
    patients: Vec<String>,
    entities: Vec<String>,
    event: Vec<String>,
    hash: Vec<Vec<u8>>,
}

impl Columns {
    fn push(&mut self, row: Row, hash: [u8; 32]) {
        self.seq.push(row.seq);
        self.tenant.push(row.tenant);
        self.action.push(row.action);
        self.subtype.push(row.subtype);
        self.outcome.push(row.outcome);
        self.agents.push(json_list(&row.agents));
        self.patients.push(spaced(&row.patients));
        self.entities.push(spaced(&row.entities));
        self.event.push(row.event);
        self.hash.push(hash.to_vec());
    }
}

/// Items joined by spaces; a space inside one (an admin target's name,
/// say) is written `%20` rather than split it.
fn spaced(items: &[String]) -> String {
    items
        .iter()
        .map(|item| item.replace(' ', "%20"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn json_list(items: &[String]) -> String {
    serde_json::Value::from(items.to_vec()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> Row {
        Row {
            seq: 7,
            recorded: DateTime::<Utc>::from_timestamp_micros(1_700_000_000_123_456)
                .unwrap_or_default(),
            tenant: "default".into(),
            action: "R".into(),
            subtype: "read".into(),
            outcome: 0,
            agents: vec!["alice".into(), "portal".into()],
            patients: vec!["p1".into()],
            entities: vec!["Patient/p1".into()],
            event: r#"{"resourceType":"AuditEvent"}"#.into(),
        }
    }

    #[test]
    fn a_patient_among_the_patients_is_no_entity_key() {
        let patients = vec!["p1".to_owned(), "p3".to_owned()];
        assert!(in_patients("Patient/p1", &patients));
        assert!(in_patients("Patient/p3", &patients));
        assert!(!in_patients("Patient/p2", &patients));
        assert!(!in_patients("Group/p1", &patients));
        assert!(!in_patients("Observation/p1", &patients));
        assert!(!in_patients("Patient/", &patients));
    }

    #[test]
    fn every_column_is_hashed() {
        let base = row().hash_after(&GENESIS);
        type Change = Box<dyn Fn(&mut Row)>;
        let changes: Vec<Change> = vec![
            Box::new(|r| r.seq = 8),
            Box::new(|r| r.recorded += chrono::Duration::microseconds(1)),
            Box::new(|r| r.tenant = "acme".into()),
            Box::new(|r| r.action = "U".into()),
            Box::new(|r| r.subtype = "vread".into()),
            Box::new(|r| r.outcome = 4),
            Box::new(|r| {
                r.agents.pop();
            }),
            Box::new(|r| r.patients.clear()),
            Box::new(|r| r.entities.push("Observation/1".into())),
            Box::new(|r| r.event.push(' ')),
        ];
        for (i, change) in changes.iter().enumerate() {
            let mut changed = row();
            change(&mut changed);
            assert_ne!(changed.hash_after(&GENESIS), base, "change {i}");
        }
        assert_ne!(row().hash_after(&[1; 32]), base, "the previous hash");
        assert_eq!(row().hash_after(&GENESIS), base, "deterministic");
    }

    #[test]
    fn list_boundaries_are_part_of_the_bytes() {
        let mut one = row();
        one.agents = vec!["ab".into()];
        let mut two = row();
        two.agents = vec!["a".into(), "b".into()];
        let mut moved = row();
        moved.agents = vec!["alice".into()];
        moved.patients = vec!["portal".into(), "p1".into()];
        assert_ne!(one.canonical(), two.canonical());
        assert_ne!(row().canonical(), moved.canonical());
    }
}
