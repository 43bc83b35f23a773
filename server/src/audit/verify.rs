//! `baraza audit verify`: recomputes the hash chain from the anchor (the
//! oldest kept row and the hash it continues from) to the head, in one
//! consistent snapshot, and names the first sequence number where it
//! breaks: a row whose hash does not match its content (changed), a
//! sequence number with no row (deleted), or a row the chain does not
//! account for (inserted).

use super::chain::Row;
use chrono::{DateTime, Utc};
use futures_util::{StreamExt, pin_mut};
use std::fmt;

/// How the chain breaks at a sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Break {
    /// The row's hash does not follow from the previous hash and its content.
    Changed,
    /// No row has this sequence number.
    Deleted,
    /// A second row with this sequence number, or one beyond the head.
    Inserted,
}

/// The outcome of a verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Rows checked.
    pub rows: u64,
    /// The first sequence number kept (the anchor) and the last (the head).
    pub first_seq: i64,
    pub last_seq: i64,
    /// The head's hash: keep it elsewhere to detect a rewritten chain.
    pub head_hash: Vec<u8>,
    /// The first break, if any.
    pub broken: Option<(i64, Break)>,
}

impl Report {
    pub fn is_intact(&self) -> bool {
        self.broken.is_none()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.broken {
            None => write!(
                f,
                "audit chain OK: {} rows, sequence {} to {}, head hash {}",
                self.rows,
                self.first_seq,
                self.last_seq,
                hex(&self.head_hash)
            ),
            Some((seq, how)) => {
                let why = match how {
                    Break::Changed => "the row does not match its hash (changed)",
                    Break::Deleted => "the row is missing (deleted)",
                    Break::Inserted => "the row is not part of the chain (inserted)",
                };
                write!(f, "audit chain BROKEN at sequence {seq}: {why}")
            }
        }
    }
}

/// Lowercase hexadecimal.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

const ROWS: &str = "SELECT seq, recorded, tenant, action, subtype, outcome, agents, patients, \
                    entities, event::text, hash FROM audit_events ORDER BY seq";

/// Verifies the whole chain. Reads every tenant's rows
/// (`baraza.audit_scope = all`) in a read-only repeatable-read snapshot,
/// streaming them.
pub async fn verify(client: &mut tokio_postgres::Client) -> Result<Report, tokio_postgres::Error> {
    let tx = client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?;
    tx.execute("SELECT set_config('baraza.audit_scope', 'all', true)", &[])
        .await?;
    let anchor = tx
        .query_one("SELECT next_seq, prev_hash FROM audit_chain_anchor", &[])
        .await?;
    let head = tx
        .query_one("SELECT last_seq, last_hash FROM audit_chain_head", &[])
        .await?;
    let mut walk = Walk {
        expected: anchor.get(0),
        previous: anchor.get(1),
        rows: 0,
        broken: None,
    };
    let first_seq = walk.expected;
    let (last_seq, head_hash): (i64, Vec<u8>) = (head.get(0), head.get(1));
    let rows = tx.query_raw(ROWS, std::iter::empty::<i64>()).await?;
    pin_mut!(rows);
    while let Some(row) = rows.next().await {
        let row = row?;
        let hash: Vec<u8> = row.get(10);
        let row = Row {
            seq: row.get(0),
            recorded: row.get::<_, DateTime<Utc>>(1),
            tenant: row.get(2),
            action: row.get(3),
            subtype: row.get(4),
            outcome: row.get(5),
            agents: row.get(6),
            patients: row.get(7),
            entities: row.get(8),
            event: row.get(9),
        };
        if !walk.step(&row, hash) {
            break;
        }
    }
    walk.finish(last_seq, &head_hash);
    Ok(Report {
        rows: walk.rows,
        first_seq,
        last_seq,
        head_hash,
        broken: walk.broken,
    })
}

/// The walk along the chain.
struct Walk {
    /// The sequence number the next row must have.
    expected: i64,
    /// The hash it must continue from.
    previous: Vec<u8>,
    rows: u64,
    broken: Option<(i64, Break)>,
}

impl Walk {
    /// Checks the next row in sequence order; false once the chain broke.
    fn step(&mut self, row: &Row, hash: Vec<u8>) -> bool {
        if row.seq < self.expected {
            self.broken = Some((row.seq, Break::Inserted));
            return false;
        }
        if row.seq > self.expected {
            self.broken = Some((self.expected, Break::Deleted));
            return false;
        }
        if row.hash_after(&self.previous)[..] != hash[..] {
            self.broken = Some((row.seq, Break::Changed));
            return false;
        }
        self.rows += 1;
        self.expected += 1;
        self.previous = hash;
        true
    }

    /// Compares where the walk ended with the head.
    fn finish(&mut self, last_seq: i64, head_hash: &[u8]) {
        if self.broken.is_some() {
            return;
        }
        let walked_to = self.expected - 1;
        self.broken = if walked_to < last_seq {
            Some((self.expected, Break::Deleted))
        } else if walked_to > last_seq {
            Some((last_seq + 1, Break::Inserted))
        } else if walked_to > 0 && self.previous[..] != head_hash[..] {
            Some((last_seq, Break::Changed))
        } else {
            None
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::chain::GENESIS;

    fn row(seq: i64) -> Row {
        Row {
            seq,
            recorded: DateTime::<Utc>::from_timestamp_micros(seq).unwrap_or_default(),
            tenant: "default".into(),
            action: "R".into(),
            subtype: "read".into(),
            outcome: 0,
            agents: Vec::new(),
            patients: Vec::new(),
            entities: vec![format!("Patient/{seq}")],
            event: "{}".into(),
        }
    }

    /// A correct chain of rows 1..=n as (row, hash).
    fn chain(n: i64) -> Vec<(Row, Vec<u8>)> {
        let mut previous = GENESIS.to_vec();
        (1..=n)
            .map(|seq| {
                let r = row(seq);
                let hash = r.hash_after(&previous).to_vec();
                previous = hash.clone();
                (r, hash)
            })
            .collect()
    }

    /// Walks `rows` against a head at `head_seq`/`head_hash`.
    fn walk(rows: &[(Row, Vec<u8>)], head_seq: i64, head_hash: &[u8]) -> Option<(i64, Break)> {
        let mut walk = Walk {
            expected: 1,
            previous: GENESIS.to_vec(),
            rows: 0,
            broken: None,
        };
        for (r, hash) in rows {
            if !walk.step(r, hash.clone()) {
                break;
            }
        }
        walk.finish(head_seq, head_hash);
        walk.broken
    }

    #[test]
    fn names_the_first_break() {
        let good = chain(5);
        let head = good[4].1.clone();
        assert_eq!(walk(&good, 5, &head), None);
        assert_eq!(walk(&[], 0, &GENESIS), None);

        let mut changed = chain(5);
        changed[2].0.outcome = 4;
        assert_eq!(walk(&changed, 5, &head), Some((3, Break::Changed)));

        let mut deleted = chain(5);
        deleted.remove(1);
        assert_eq!(walk(&deleted, 5, &head), Some((2, Break::Deleted)));

        let mut tail_cut = chain(5);
        tail_cut.pop();
        assert_eq!(walk(&tail_cut, 5, &head), Some((5, Break::Deleted)));

        let mut duplicated = chain(5);
        duplicated.insert(3, duplicated[2].clone());
        assert_eq!(walk(&duplicated, 5, &head), Some((3, Break::Inserted)));

        let beyond = chain(6);
        assert_eq!(walk(&beyond, 5, &head), Some((6, Break::Inserted)));

        // The last row rehashed with a forged hash: the head disagrees.
        let mut forged = chain(5);
        forged[4].0.outcome = 8;
        let previous = forged[3].1.clone();
        forged[4].1 = forged[4].0.hash_after(&previous).to_vec();
        assert_eq!(walk(&forged, 5, &head), Some((5, Break::Changed)));
    }
}
