//! The [`Recorder`] requests hand their events to, and the one writer task
//! behind it: a bounded queue, drained in batches of whatever arrives
//! within [`LINGER`] of a batch's first event or while the previous batch
//! was being written (up to [`MAX_BATCH`]), each batch one transaction. A request waits only to enqueue; when the queue
//! is full (the database is slower than the traffic, or down) requests wait
//! for room rather than go unaudited.
//!
//! Durability: an event is in memory from the end of its request until its
//! batch commits, typically 25 to 50 milliseconds. A graceful stop (SIGTERM)
//! writes everything queued ([`Recorder::flush`]); `kill -9` or a crash
//! loses the queue and the batch being written. See docs/audit.md.

use super::chain;
use super::event::{Event, Pending};
use actix_web::http::StatusCode;
use deadpool_postgres::Pool;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Events queued at most; beyond it requests wait.
const CAPACITY: usize = 10_000;
/// Events written per transaction at most.
pub const MAX_BATCH: usize = 1_000;
/// How long the writer lets events gather after the first of a batch.
const LINGER: Duration = Duration::from_millis(25);
/// The longest pause between attempts to write a batch that failed.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(5);

enum Message {
    Event(Box<Event>),
    /// Answered once every event queued before it is written.
    Flush(oneshot::Sender<()>),
}

/// Hands audit events to the writer task. Cheap to clone; `off` records
/// nothing (BARAZA_AUDIT=off, for measuring the audit's cost only).
#[derive(Clone)]
pub struct Recorder {
    queue: Option<mpsc::Sender<Message>>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("on", &self.queue.is_some())
            .finish()
    }
}

impl Recorder {
    /// Starts the writer task on the current runtime.
    pub fn start(pool: Pool) -> Recorder {
        let (queue, receiver) = mpsc::channel(CAPACITY);
        tokio::spawn(write_queue(pool, receiver));
        Recorder { queue: Some(queue) }
    }

    /// A recorder that records nothing.
    pub fn off() -> Recorder {
        Recorder { queue: None }
    }

    pub fn is_on(&self) -> bool {
        self.queue.is_some()
    }

    /// Queues the events of a request whose response has `status`.
    pub async fn record(&self, pending: Pending, status: StatusCode) {
        let Some(queue) = &self.queue else {
            return;
        };
        for event in pending.into_events(status, chrono::Utc::now()) {
            let message = Message::Event(Box::new(event));
            let sent = match queue.try_send(message) {
                Ok(()) => Ok(()),
                Err(mpsc::error::TrySendError::Full(message)) => queue.send(message).await,
                Err(mpsc::error::TrySendError::Closed(message)) => {
                    Err(mpsc::error::SendError(message))
                }
            };
            if sent.is_err() {
                tracing::error!("the audit writer has stopped: an audit event was lost");
            }
        }
    }

    /// Events queued and not yet taken by the writer.
    pub fn queue_depth(&self) -> usize {
        self.queue
            .as_ref()
            .map_or(0, |queue| queue.max_capacity() - queue.capacity())
    }

    /// Waits until every event queued so far is written, at most `limit`.
    pub async fn flush(&self, limit: Duration) {
        let Some(queue) = &self.queue else {
            return;
        };
        let (done, written) = oneshot::channel();
        if queue.send(Message::Flush(done)).await.is_err() {
            return;
        }
        if tokio::time::timeout(limit, written).await.is_err() {
            tracing::error!(
                "audit events were still queued when the server stopped; they are lost"
            );
        }
    }
}

async fn write_queue(pool: Pool, mut receiver: mpsc::Receiver<Message>) {
    // Taken now, while the pool holds only the connections start-up opened
    // on this runtime (see `write_batch`).
    let mut connection = pool.get().await.ok().map(deadpool_postgres::Object::take);
    let mut batch: Vec<Event> = Vec::new();
    let mut flushed: Vec<oneshot::Sender<()>> = Vec::new();
    while let Some(first) = receiver.recv().await {
        // Let events gather for a moment (without being woken by each):
        // a transaction per event would cost the database about as much as
        // the request itself.
        if matches!(first, Message::Event(_)) {
            tokio::time::sleep(LINGER).await;
        }
        let mut next = Some(first);
        while let Some(message) = next.take() {
            match message {
                Message::Event(event) => batch.push(*event),
                Message::Flush(done) => flushed.push(done),
            }
            if batch.len() < MAX_BATCH {
                next = receiver.try_recv().ok();
            }
        }
        if !batch.is_empty() {
            write_batch(&pool, &mut connection, &batch).await;
            batch.clear();
        }
        for done in flushed.drain(..) {
            let _ = done.send(());
        }
    }
}

/// Writes one batch, retrying until it is written: the queue fills in the
/// meantime and requests then wait, so nothing is served unaudited.
///
/// The writer keeps a connection of its own, taken out of the pool. The
/// first is one that start-up opened on this runtime, so its socket is
/// served here and not by a request worker (whose requests would wait while
/// it encoded and decoded the writer's batches).
async fn write_batch(
    pool: &Pool,
    connection: &mut Option<deadpool_postgres::ClientWrapper>,
    batch: &[Event],
) {
    let mut delay = Duration::from_millis(100);
    loop {
        let result = match connection {
            Some(client) => chain::append(client, batch, chrono::Utc::now()).await,
            None => match pool.get().await {
                Ok(client) => {
                    *connection = Some(deadpool_postgres::Object::take(client));
                    continue;
                }
                Err(e) => Err(chain::AppendError::Pool(e)),
            },
        };
        match result {
            Ok(()) => return,
            Err(e) => {
                if connection.as_ref().is_some_and(|c| c.is_closed()) {
                    *connection = None;
                }
                tracing::error!(error = %e, events = batch.len(), "cannot write audit events; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(MAX_RETRY_DELAY);
            }
        }
    }
}
