//! Change events (issue 9, docs/events.md): the transactional outbox, its
//! dispatcher, FHIR Subscriptions, and what lets several Baraza instances
//! on one database behave as one server.
//!
//! - [`record`] is called once by the write path (`service::write::apply`)
//!   after the versions are stored: one multi-row insert into `events` in
//!   the same transaction, so an event exists exactly when its version
//!   committed.
//! - [`outbox`] holds the SQL of events, consumers (cursors) and leases.
//! - [`dispatch`] runs on every instance: each consumer (a Subscription)
//!   is delivered by the one instance holding its lease, in commit order,
//!   at least once; delivered events are pruned after the retention.
//! - [`subscription`] is R4 Subscription: criteria matched through the
//!   search layer as the subscription's owner, the rest-hook channel,
//!   retries, `status` error and recovery.
//! - [`notify`] is the LISTEN/NOTIFY channel that invalidates caches
//!   (custom search parameters, permission groups, tenants) on every
//!   instance, and [`jobs`] moves background jobs between instances.

pub(crate) mod builtin;
pub mod dispatch;
pub mod jobs;
pub mod kafka;
pub mod notify;
pub mod operations;
pub mod outbox;
pub mod subscription;
pub mod topic;
pub mod websocket;

use crate::config::EventSettings;
use crate::error::ApiError;
use crate::store::write::WriteResult;
use crate::store::{Db, TenantCtx};

/// This instance: its id in leases, and the event settings.
#[derive(Debug)]
pub struct Node {
    /// Unique per process start (host name, pid, random part).
    pub id: String,
    pub settings: EventSettings,
    /// Wakes the dispatcher (a tenant's consumers changed).
    pub wake: tokio::sync::Notify,
    /// Tenants with consumers to deliver to, as last seen.
    pub busy_tenants: std::sync::Mutex<std::collections::HashSet<String>>,
    /// The websocket clients connected to this instance.
    pub sockets: websocket::Hub,
    /// Whether this instance listens for the others' notifications.
    listening: std::sync::atomic::AtomicBool,
    /// Set when the server stops: background work ends.
    stop: tokio::sync::watch::Sender<bool>,
    /// The outbox's settled watermark, as last advanced by the dispatcher.
    watermark: std::sync::atomic::AtomicI64,
    /// The Kafka clients, when BARAZA_KAFKA_BROKERS is set.
    pub kafka: std::sync::OnceLock<std::sync::Arc<kafka::Kafka>>,
}

impl Node {
    pub fn new(settings: EventSettings) -> Node {
        let host = std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_default();
        let random = uuid::Uuid::new_v4().simple().to_string();
        Node {
            id: format!("{host}:{}:{}", std::process::id(), &random[..8]),
            settings,
            wake: tokio::sync::Notify::new(),
            busy_tenants: std::sync::Mutex::default(),
            sockets: websocket::Hub::default(),
            listening: std::sync::atomic::AtomicBool::new(false),
            stop: tokio::sync::watch::Sender::new(false),
            watermark: std::sync::atomic::AtomicI64::new(0),
            kafka: std::sync::OnceLock::new(),
        }
    }

    /// Events up to this sequence number may be delivered (`outbox::Watermark`).
    pub fn watermark(&self) -> i64 {
        self.watermark.load(std::sync::atomic::Ordering::Acquire)
    }

    pub fn set_watermark(&self, value: i64) {
        self.watermark
            .fetch_max(value, std::sync::atomic::Ordering::AcqRel);
    }

    /// Ends this instance's background work (the server stopped).
    pub fn stop(&self) {
        self.stop.send_replace(true);
        self.wake.notify_waiters();
    }

    pub fn is_stopped(&self) -> bool {
        *self.stop.borrow()
    }

    /// Completes when [`Node::stop`] is called.
    pub fn stopped(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut receiver = self.stop.subscribe();
        async move {
            let _ = receiver.wait_for(|stopped| *stopped).await;
        }
    }

    /// Whether this instance shares its database with others as far as
    /// it knows: it listens for their notifications.
    pub fn shared(&self) -> bool {
        self.listening.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A tenant's consumers changed (here or on another instance).
    pub fn consumers_changed(&self, tenant: &str) {
        self.busy_tenants
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(tenant.to_owned());
        self.wake.notify_one();
    }

    /// The lease duration as PostgreSQL interval text.
    pub fn lease_interval(&self) -> String {
        format!("{} milliseconds", self.settings.lease.as_millis())
    }
}

/// What a stored version was: `create` (the first version, or the first
/// after a deletion), `update` or `delete`.
pub fn action(stored: &crate::store::Stored, created: bool) -> &'static str {
    if stored.deleted {
        "delete"
    } else if created {
        "create"
    } else {
        "update"
    }
}

/// Records the change events of a write, in the write's transaction: one
/// statement for the whole write, whatever its size. Subscriptions among
/// the written resources are checked and their delivery state kept
/// (`subscription::written`).
pub async fn record(
    db: &impl Db,
    ctx: &TenantCtx,
    results: &[WriteResult],
) -> Result<(), ApiError> {
    let mut rows = outbox::EventRows::default();
    let mut subscriptions = Vec::new();
    for result in results {
        let WriteResult::Stored { stored, created } = result else {
            continue;
        };
        rows.push(stored, action(stored, *created));
        if stored.resource_type == "Subscription" {
            subscriptions.push(stored);
        }
    }
    if rows.is_empty() {
        return Ok(());
    }
    let integrator = crate::service::authorize::integrator(ctx);
    outbox::insert(db, ctx, &rows, integrator).await?;
    for stored in subscriptions {
        subscription::written(db, ctx, stored).await?;
    }
    Ok(())
}

/// Starts this instance's background work: the dispatcher, the job
/// adopter and, given a connection to listen on, the cache-invalidation
/// listener.
pub fn start(state: crate::service::AppState, listen: Option<tokio_postgres::Config>) {
    dispatch::spawn(state.clone());
    jobs::spawn(state.clone());
    match state.node.kafka.get() {
        Some(k) => kafka::spawn(state.clone(), k.clone()),
        None => {
            let state = state.clone();
            tokio::spawn(async move {
                if let Err(e) = builtin::disable(&state, kafka::fanout::CONSUMER).await {
                    tracing::warn!(error = %e, "cannot disable the Kafka fan-out's consumers");
                }
            });
        }
    }
    if !state.mpi_queued {
        let state = state.clone();
        tokio::spawn(async move {
            let queue = crate::service::patient_index::queue::CONSUMER;
            if let Err(e) = builtin::disable(&state, queue).await {
                tracing::warn!(error = %e, "cannot disable the queued linking's consumers");
            }
        });
    }
    let Some(cfg) = listen else {
        return;
    };
    state
        .node
        .listening
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let (reload, mut reloads) = tokio::sync::mpsc::unbounded_channel::<Vec<String>>();
    let reloader = state.clone();
    // Registry reloads run one after the other, in the order announced.
    tokio::spawn(async move {
        while let Some(tenants) = reloads.recv().await {
            if let Err(e) = reloader.registries.load_all(&reloader.pool, &tenants).await {
                tracing::warn!(error = %e, "cannot reload custom search parameters");
            }
        }
    });
    let stopped = state.node.stopped();
    notify::spawn_listener(cfg, stopped, move |message| {
        use notify::Message;
        match message {
            Message::Registries(tenant) => {
                let _ = reload.send(vec![tenant]);
            }
            Message::Groups(tenant) => state.groups.forget(&tenant),
            Message::Tenants => state.tenants.invalidate(),
            Message::Consumers(tenant) => state.node.consumers_changed(&tenant),
            Message::Websocket(tenant, id, text) => state.node.sockets.deliver(&tenant, &id, &text),
            Message::Resync => {
                state.groups.forget_all();
                state.tenants.invalidate();
                let _ = reload.send(state.tenants.active());
                state.node.wake.notify_one();
            }
        }
    });
}
