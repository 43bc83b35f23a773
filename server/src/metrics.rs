//! Prometheus metrics, served at `/metrics` in the text exposition format:
//! requests and their latency per interaction and operation, data written
//! per tenant and integrator (the ingest counts, and each integrator's last
//! successful write), the database pool, the audit queue and the database
//! size.
//!
//! Labels never carry ids, parameters or anything a request contained:
//! only the interaction (`read`, `search-type`, `operation`, …), the
//! operation name, the status code, tenant ids and client names.
//!
//! Who may read them: with `BARAZA_METRICS_TOKEN` set, callers presenting
//! it as a bearer token; without it, loopback callers only.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    interaction: String,
    operation: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LatencyLabels {
    interaction: String,
    operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct IngestLabels {
    tenant: String,
    integrator: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct IntegratorLabels {
    tenant: String,
    integrator: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PlanLabels {
    pub plan: &'static str,
}

/// Searches that left the planner's default shape, by plan: `walk` (a
/// conjunction walked from the searched resources), `walk-fallback` (the
/// walk's bound ended it before the page was full: searched again as
/// semi-joins), `has-walk` (a `_has` walked, probing each source),
/// `has-walk-hashed` (walked, with the matching sources hashed once) and
/// `has-walk-patient` (walked, one probe of the token rows keyed by
/// Patient per resource; one count per `_has` clause), `index-first` (one
/// clause's index rows chose the page before any resource was read, the
/// other clauses tested per id), `index-first-keyed` (the same, led by
/// the token rows of one code keyed by the named Patient),
/// `index-first-ordered` (the same, led by one `system|code` token clause
/// of a conjunction that is not walked), `index-first-chained` (a chain to
/// one resource or identifier, led by the reference rows to its matches),
/// `index-first-fallback` (one of those ids
/// had no current resource: run again as a semi-join) and
/// `has-keyed-first` (a `_has` whose page of Patients was read off the
/// token rows keyed by Patient). A walk or an ordered lead that merged
/// clauses' id-ordered rows instead of probing them per resource also
/// counts one `merge`. Process-wide, since the
/// search executor has no handle on the application state.
pub static SEARCH_PLANS: std::sync::LazyLock<Family<PlanLabels, Counter>> =
    std::sync::LazyLock::new(Family::default);

/// Counts one search of `plan` in [`SEARCH_PLANS`].
pub fn count_plan(plan: &'static str) {
    SEARCH_PLANS.get_or_create(&PlanLabels { plan }).inc();
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    state: &'static str,
}

/// What one finished request contributes (see `audit::Pending::summary`).
#[derive(Debug, Default)]
pub struct RequestSummary {
    /// The restful-interaction code, or `other` (unknown paths, admin).
    pub interaction: &'static str,
    /// The operation name for `operation`, else empty.
    pub operation: &'static str,
    pub tenant: Option<String>,
    /// The caller's integrator, else its client id; None: anonymous.
    pub integrator: Option<String>,
    /// Resources written: (accepted, rejected). A single write is one
    /// entry; a batch or transaction counts its entries.
    pub written: Option<(u64, u64)>,
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<LatencyLabels, Histogram>,
    ingest: Family<IngestLabels, Counter>,
    ingest_records: Family<IngestLabels, Counter>,
    last_success: Family<IntegratorLabels, Gauge<f64, AtomicU64>>,
    pool: Family<PoolLabels, Gauge>,
    audit_queue: Gauge,
    database_size: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// Latency buckets from half a millisecond to ten seconds.
const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0,
];

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("baraza");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "FHIR requests answered, by interaction, operation and status",
            requests.clone(),
        );
        let latency = Family::<LatencyLabels, Histogram>::new_with_constructor(
            (|| Histogram::new(LATENCY_BUCKETS)) as fn() -> Histogram,
        );
        registry.register(
            "http_request_duration_seconds",
            "Time from a FHIR request's arrival to its response, by interaction and operation",
            latency.clone(),
        );
        let ingest = Family::<IngestLabels, Counter>::default();
        registry.register(
            "ingest_entries",
            "Resources written (accepted) or refused (rejected), by tenant and integrator",
            ingest.clone(),
        );
        let ingest_records = Family::<IngestLabels, Counter>::default();
        registry.register(
            "ingest_records",
            "Ingest batch records processed, by tenant, integrator and outcome (created, updated, unchanged, failed)",
            ingest_records.clone(),
        );
        let last_success = Family::<IntegratorLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "integrator_last_success_timestamp_seconds",
            "Unix time of each integrator's last accepted write",
            last_success.clone(),
        );
        let pool = Family::<PoolLabels, Gauge>::default();
        registry.register(
            "db_pool_connections",
            "Database pool connections: in_use, idle and max",
            pool.clone(),
        );
        registry.register(
            "search_plans",
            "Searches walked from the searched resources rather than joined, by plan",
            SEARCH_PLANS.clone(),
        );
        let audit_queue = Gauge::default();
        registry.register(
            "audit_queue_depth",
            "Audit events waiting to be written",
            audit_queue.clone(),
        );
        let database_size = Gauge::default();
        registry.register(
            "database_size_bytes",
            "Size of Baraza's database",
            database_size.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            ingest,
            ingest_records,
            last_success,
            pool,
            audit_queue,
            database_size,
        }
    }

    /// Counts one answered request.
    pub fn request(&self, summary: &RequestSummary, status: u16, elapsed: Duration) {
        self.requests
            .get_or_create(&RequestLabels {
                interaction: summary.interaction.to_owned(),
                operation: summary.operation.to_owned(),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&LatencyLabels {
                interaction: summary.interaction.to_owned(),
                operation: summary.operation.to_owned(),
            })
            .observe(elapsed.as_secs_f64());
        let Some((accepted, rejected)) = summary.written else {
            return;
        };
        let tenant = summary.tenant.clone().unwrap_or_else(|| "default".into());
        let integrator = summary
            .integrator
            .clone()
            .unwrap_or_else(|| "anonymous".into());
        self.ingest_entries(&tenant, &integrator, accepted, rejected);
    }

    /// Counts one ingest batch record processed with `outcome`.
    pub fn ingest_record(&self, tenant: &str, integrator: &str, outcome: &'static str) {
        self.ingest_records
            .get_or_create(&IngestLabels {
                tenant: tenant.to_owned(),
                integrator: integrator.to_owned(),
                outcome,
            })
            .inc();
    }

    /// Counts resources written (accepted) or refused (rejected) for an
    /// integrator, and the time of its last accepted write.
    pub fn ingest_entries(&self, tenant: &str, integrator: &str, accepted: u64, rejected: u64) {
        let (tenant, integrator) = (tenant.to_owned(), integrator.to_owned());
        for (outcome, n) in [("accepted", accepted), ("rejected", rejected)] {
            if n > 0 {
                self.ingest
                    .get_or_create(&IngestLabels {
                        tenant: tenant.clone(),
                        integrator: integrator.clone(),
                        outcome,
                    })
                    .inc_by(n);
            }
        }
        if accepted > 0 {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or_default();
            self.last_success
                .get_or_create(&IntegratorLabels { tenant, integrator })
                .set(now);
        }
    }

    /// Sets the gauges read at scrape time.
    pub fn observe_state(&self, pool: &deadpool_postgres::Pool, audit_queue: usize) {
        let status = pool.status();
        let idle = i64::try_from(status.available).unwrap_or_default();
        let size = i64::try_from(status.size).unwrap_or_default();
        let max = i64::try_from(status.max_size).unwrap_or_default();
        for (state, value) in [("in_use", size - idle), ("idle", idle), ("max", max)] {
            self.pool.get_or_create(&PoolLabels { state }).set(value);
        }
        self.audit_queue
            .set(i64::try_from(audit_queue).unwrap_or(i64::MAX));
    }

    pub fn set_database_size(&self, bytes: i64) {
        self.database_size.set(bytes);
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_writes_are_counted_by_their_labels() {
        let metrics = Metrics::new();
        let summary = RequestSummary {
            interaction: "transaction",
            operation: "",
            tenant: Some("county-7".into()),
            integrator: Some("lab-x".into()),
            written: Some((3, 1)),
        };
        metrics.request(&summary, 200, Duration::from_millis(3));
        metrics.request(&summary, 200, Duration::from_millis(30));
        let text = metrics.render();
        assert!(
            text.contains(
                "baraza_http_requests_total{interaction=\"transaction\",operation=\"\",status=\"200\"} 2"
            ),
            "{text}"
        );
        assert!(text.contains(
            "baraza_ingest_entries_total{tenant=\"county-7\",integrator=\"lab-x\",outcome=\"accepted\"} 6"
        ));
        assert!(text.contains(
            "baraza_ingest_entries_total{tenant=\"county-7\",integrator=\"lab-x\",outcome=\"rejected\"} 2"
        ));
        assert!(text.contains(
            "baraza_http_request_duration_seconds_bucket{le=\"0.005\",interaction=\"transaction\",operation=\"\"} 1"
        ), "{text}");
        assert!(
            text.contains("baraza_integrator_last_success_timestamp_seconds{tenant=\"county-7\"")
        );
    }
}
