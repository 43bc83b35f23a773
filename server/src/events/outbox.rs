//! The SQL of the outbox: events, consumers with their cursors, and the
//! consumers' leases. Every statement runs in a transaction for one tenant
//! (row-level security holds background work too).
//!
//! Order: an event's position is its `seq`, taken by the insert after the
//! write locked its resources' rows, so per resource `seq` follows the
//! versions. Sequence numbers are taken before their transactions commit,
//! so a reader must not pass a number whose transaction is still running:
//! consumers read only up to a [`Watermark`], a sequence value below which
//! every transaction has ended (its events are visible, or never will be).

use crate::error::ApiError;
use crate::store::{Db, Stored, TenantCtx};
use serde_json::Value;

/// Where a consumer is in the outbox: the last `seq` it handled.
pub type Position = i64;

/// The highest sequence number below which every transaction that took
/// one has ended. Sampled each round: the sequence's last value `L`
/// first, then the snapshot's `xmax` `X` (every transaction that took a
/// number up to `L` had its transaction id before, so below `X`); once the
/// oldest running transaction is at least `X`, all of them have ended and
/// `L` is settled.
#[derive(Debug, Default)]
pub struct Watermark {
    settled: i64,
    pending: std::collections::VecDeque<(i64, u64)>,
}

impl Watermark {
    /// The settled value.
    pub fn get(&self) -> i64 {
        self.settled
    }

    /// Settles what can be, then takes a new sample. Runs outside any
    /// tenant's transaction: it reads only the sequence and the snapshot.
    pub async fn advance(&mut self, client: &tokio_postgres::Client) -> Result<i64, ApiError> {
        let last: i64 = client
            .query_one(
                "SELECT coalesce(pg_sequence_last_value(pg_get_serial_sequence('events', 'seq')), 0)",
                &[],
            )
            .await?
            .get(0);
        let row = client
            .query_one(
                "SELECT pg_snapshot_xmin(s)::text, pg_snapshot_xmax(s)::text FROM pg_current_snapshot() s",
                &[],
            )
            .await?;
        let parse = |text: String| {
            text.parse::<u64>()
                .map_err(|_| ApiError::fault(format!("unexpected transaction id {text:?}")))
        };
        let (xmin, xmax) = (parse(row.get(0))?, parse(row.get(1))?);
        while let Some(&(value, horizon)) = self.pending.front() {
            if horizon > xmin {
                break;
            }
            self.settled = self.settled.max(value);
            self.pending.pop_front();
        }
        // Nothing running at all: the sample is settled at once.
        if xmin == xmax {
            self.settled = self.settled.max(last);
        } else if last > self.settled && self.pending.back().is_none_or(|&(value, _)| value < last)
        {
            if self.pending.len() >= 64 {
                self.pending.pop_front();
            }
            self.pending.push_back((last, xmax));
        }
        Ok(self.settled)
    }
}

/// One change event.
#[derive(Debug, Clone)]
pub struct Event {
    pub position: Position,
    pub resource_type: String,
    pub id: String,
    pub version_id: i64,
    /// `create`, `update` or `delete`.
    pub action: String,
    pub integrator: Option<String>,
}

/// The columns of one write's events.
#[derive(Debug, Default)]
pub struct EventRows {
    types: Vec<String>,
    ids: Vec<String>,
    versions: Vec<i64>,
    actions: Vec<&'static str>,
}

impl EventRows {
    pub fn push(&mut self, stored: &Stored, action: &'static str) {
        self.types.push(stored.resource_type.clone());
        self.ids.push(stored.id.clone());
        self.versions.push(stored.version_id);
        self.actions.push(action);
    }

    pub fn is_empty(&self) -> bool {
        self.types.is_empty()
    }
}

const INSERT: &str = "\
INSERT INTO events (tenant, res_type, id, version_id, action, integrator)
SELECT $1, t, i, v, a, $6
FROM unnest($2::text[], $3::text[], $4::int8[], $5::text[]) AS x(t, i, v, a)";

/// Inserts one write's events with one statement.
pub async fn insert(
    db: &impl Db,
    ctx: &TenantCtx,
    rows: &EventRows,
    integrator: Option<&str>,
) -> Result<(), ApiError> {
    db.execute(
        INSERT,
        &[
            &ctx.tenant,
            &rows.types,
            &rows.ids,
            &rows.versions,
            &rows.actions,
            &integrator,
        ],
    )
    .await?;
    Ok(())
}

const READ_AFTER: &str = "\
SELECT seq, res_type, id, version_id, action, integrator
FROM events
WHERE tenant = $1 AND seq > $2 AND seq <= $3
ORDER BY seq
LIMIT $4";

/// Up to `limit` events after `after` and up to the settled `watermark`,
/// and the position a consumer that handled them all may move to (the last
/// one's; `after` when there is none, so that an idle consumer writes
/// nothing).
pub async fn read_after(
    db: &impl Db,
    ctx: &TenantCtx,
    after: Position,
    watermark: i64,
    limit: i64,
) -> Result<(Vec<Event>, Position), ApiError> {
    let rows = db
        .query(READ_AFTER, &[&ctx.tenant, &after, &watermark, &limit])
        .await?;
    let events: Vec<Event> = rows
        .iter()
        .map(|row| Event {
            position: row.get(0),
            resource_type: row.get(1),
            id: row.get(2),
            version_id: row.get(3),
            action: row.get(4),
            integrator: row.get(5),
        })
        .collect();
    let end = events.last().map_or(after, |e| e.position);
    Ok((events, end))
}

/// A consumer this instance holds the lease of.
#[derive(Debug, Clone)]
pub struct Consumer {
    pub name: String,
    pub cursor: Position,
    pub owner: Option<Value>,
    pub failures: i32,
    /// Whether the back-off after the last failure has passed.
    pub due: bool,
    pub last_error: Option<String>,
    pub delivered: i64,
}

/// Takes the leases of the tenant's consumers that nobody holds (or whose
/// holder stopped renewing), renews this instance's own when a third of
/// the lease has passed, and returns the consumers this instance holds.
/// The consumers named in `skip` are left to instances that deliver them.
pub async fn claim(
    db: &impl Db,
    ctx: &TenantCtx,
    me: &str,
    lease: &str,
    skip: &[&str],
) -> Result<Vec<Consumer>, ApiError> {
    db.execute(
        "UPDATE event_consumers SET leased_by = $2, lease_until = now() + $3::text::interval \
         WHERE tenant = $1 AND enabled AND NOT consumer = ANY($4) AND ( \
           (leased_by IS DISTINCT FROM $2 AND (lease_until IS NULL OR lease_until < now())) \
           OR (leased_by = $2 AND lease_until < now() + $3::text::interval * 0.66))",
        &[&ctx.tenant, &me, &lease, &skip],
    )
    .await?;
    let rows = db
        .query(
            "SELECT consumer, last_seq, owner::text, failures, \
             coalesce(next_attempt <= now(), true), last_error, delivered \
             FROM event_consumers \
             WHERE tenant = $1 AND enabled AND leased_by = $2 AND lease_until > now() \
             ORDER BY consumer",
            &[&ctx.tenant, &me],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| Consumer {
            name: row.get(0),
            cursor: row.get(1),
            owner: row
                .get::<_, Option<String>>(2)
                .and_then(|text| serde_json::from_str(&text).ok()),
            failures: row.get(3),
            due: row.get(4),
            last_error: row.get(5),
            delivered: row.get(6),
        })
        .collect())
}

/// Moves a consumer's cursor forward (never back) and renews its lease,
/// only while this instance holds it. `false`: the lease was lost and the
/// caller must stop delivering for this consumer.
pub async fn advance(
    db: &impl Db,
    ctx: &TenantCtx,
    me: &str,
    consumer: &str,
    to: Position,
    delivered: i64,
    lease: &str,
) -> Result<bool, ApiError> {
    let n = db
        .execute(
            "UPDATE event_consumers SET last_seq = greatest(last_seq, $3), \
               delivered = delivered + $4, lease_until = now() + $5::text::interval \
             WHERE tenant = $1 AND consumer = $2 AND leased_by = $6",
            &[&ctx.tenant, &consumer, &to, &delivered, &lease, &me],
        )
        .await?;
    Ok(n == 1)
}

/// Records a failed delivery: the failure count, when to try again, why.
pub async fn failed(
    db: &impl Db,
    ctx: &TenantCtx,
    me: &str,
    consumer: &str,
    failures: i32,
    retry_in: std::time::Duration,
    error: &str,
) -> Result<(), ApiError> {
    let wait = format!("{} milliseconds", retry_in.as_millis());
    db.execute(
        "UPDATE event_consumers SET failures = $3, next_attempt = now() + $4::text::interval, \
         last_error = $5 WHERE tenant = $1 AND consumer = $2 AND leased_by = $6",
        &[&ctx.tenant, &consumer, &failures, &wait, &error, &me],
    )
    .await?;
    Ok(())
}

/// Clears the failures after a delivery succeeded.
pub async fn recovered(db: &impl Db, ctx: &TenantCtx, consumer: &str) -> Result<(), ApiError> {
    db.execute(
        "UPDATE event_consumers SET failures = 0, next_attempt = NULL, last_error = NULL \
         WHERE tenant = $1 AND consumer = $2",
        &[&ctx.tenant, &consumer],
    )
    .await?;
    Ok(())
}

/// Creates a consumer, whose cursor starts at the sequence's current
/// value (it gets the changes written from now on), or updates an existing
/// one: `enabled`, the owner when one is given, and a fresh start for
/// retries.
pub async fn upsert_consumer(
    db: &impl Db,
    ctx: &TenantCtx,
    consumer: &str,
    enabled: bool,
    owner: Option<&Value>,
) -> Result<(), ApiError> {
    let owner = owner.map(Value::to_string);
    db.execute(
        "INSERT INTO event_consumers (tenant, consumer, enabled, last_seq, owner) \
         VALUES ($1, $2, $3, \
           coalesce(pg_sequence_last_value(pg_get_serial_sequence('events', 'seq')), 0), \
           $4::text::jsonb) \
         ON CONFLICT (tenant, consumer) DO UPDATE SET enabled = excluded.enabled, \
           owner = coalesce(excluded.owner, event_consumers.owner), \
           failures = 0, next_attempt = NULL, last_error = NULL",
        &[&ctx.tenant, &consumer, &enabled, &owner],
    )
    .await?;
    Ok(())
}

pub async fn remove_consumer(
    db: &impl Db,
    ctx: &TenantCtx,
    consumer: &str,
) -> Result<(), ApiError> {
    db.execute(
        "DELETE FROM event_consumers WHERE tenant = $1 AND consumer = $2",
        &[&ctx.tenant, &consumer],
    )
    .await?;
    Ok(())
}

/// One consumer's delivery state, for `$status` and tests.
#[derive(Debug, Clone)]
pub struct ConsumerState {
    pub failures: i32,
    pub last_error: Option<String>,
    pub delivered: i64,
}

pub async fn consumer_state(
    db: &impl Db,
    ctx: &TenantCtx,
    consumer: &str,
) -> Result<Option<ConsumerState>, ApiError> {
    let rows = db
        .query(
            "SELECT failures, last_error, delivered FROM event_consumers \
             WHERE tenant = $1 AND consumer = $2",
            &[&ctx.tenant, &consumer],
        )
        .await?;
    Ok(rows.first().map(|row| ConsumerState {
        failures: row.get(0),
        last_error: row.get(1),
        delivered: row.get(2),
    }))
}

/// Whether the tenant has consumers to deliver to.
pub async fn has_consumers(db: &impl Db, ctx: &TenantCtx) -> Result<bool, ApiError> {
    let rows = db
        .query(
            "SELECT 1 FROM event_consumers WHERE tenant = $1 AND enabled LIMIT 1",
            &[&ctx.tenant],
        )
        .await?;
    Ok(!rows.is_empty())
}

/// Deletes up to 10,000 events older than `retention` that every enabled
/// consumer has passed; returns how many. One instance at a time prunes a
/// tenant (the others skip it).
pub async fn prune(db: &impl Db, ctx: &TenantCtx, retention: &str) -> Result<u64, ApiError> {
    let locked: bool = db
        .query(
            "SELECT pg_try_advisory_xact_lock(hashtextextended('events-prune|' || $1, 0))",
            &[&ctx.tenant],
        )
        .await?
        .first()
        .is_some_and(|row| row.get(0));
    if !locked {
        return Ok(0);
    }
    let n = db
        .execute(
            "DELETE FROM events WHERE tenant = $1 AND seq IN ( \
               SELECT e.seq FROM events e \
               WHERE e.tenant = $1 AND e.recorded < now() - $2::text::interval \
                 AND NOT EXISTS (SELECT 1 FROM event_consumers c \
                   WHERE c.tenant = $1 AND c.enabled AND c.last_seq < e.seq) \
               ORDER BY e.seq LIMIT 10000)",
            &[&ctx.tenant, &retention],
        )
        .await?;
    Ok(n)
}
