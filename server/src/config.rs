//! Settings: defaults, then `BARAZA_*` environment variables. Unknown or
//! malformed settings stop start-up with a one-line explanation.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

pub mod file;
mod kafka;
mod transport;
mod variables;

pub use kafka::{KafkaPayload, KafkaSettings};
pub use transport::{ClientAuth, ClientCertificates, RateLimit, TlsSettings};
pub use variables::VARIABLES;

/// A string that must never be printed (database URLs carry passwords).
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Secret) -> bool {
        self.0 == other.0
    }
}

impl Eq for Secret {}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// The largest clock skew accepted for BARAZA_OIDC_CLOCK_SKEW_SECS: beyond
/// five minutes an expired token stays usable for too long.
pub const MAX_OIDC_CLOCK_SKEW_SECS: u64 = 300;

/// Variables that belong to Baraza's tooling, not to the server; tolerated.
const TOOLING_VARIABLES: &[&str] = &["BARAZA_TEST_DATABASE_URL", "BARAZA_BENCH_URL"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Where access tokens come from and how their claims are read (see
/// `crate::auth`). Present only when BARAZA_OIDC_ISSUER is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcSettings {
    /// Compared byte for byte with the `iss` claim, and the base of discovery.
    pub issuer: String,
    pub audience: String,
    pub groups_claim: String,
    pub tenants_claim: String,
    pub clock_skew_secs: u64,
    /// The client (id, secret) `POST /auth/login` uses, when configured.
    pub login_client: Option<(String, Secret)>,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub database_url: Option<Secret>,
    /// A read replica for read-only interactions (docs/events.md).
    pub read_database_url: Option<Secret>,
    pub data_dir: PathBuf,
    pub base_url: Option<String>,
    pub max_bundle_entries: usize,
    pub max_body_bytes: usize,
    pub db_pool_size: usize,
    pub max_page_size: usize,
    /// The largest `$expand` answer without `count` (docs/terminology.md).
    pub terminology_max_expansion: usize,
    pub log: String,
    pub log_format: LogFormat,
    pub oidc: Option<OidcSettings>,
    pub tls: Option<TlsSettings>,
    pub rate_limit: Option<RateLimit>,
    /// Whether audit events are recorded (BARAZA_AUDIT).
    pub audit: bool,
    pub audit_retention_days: u32,
    /// The bearer token `/metrics` asks for (BARAZA_METRICS_TOKEN).
    pub metrics_token: Option<Secret>,
    /// Whether Patient writes are linked by the master patient index
    /// (BARAZA_MPI, on by default).
    pub mpi: bool,
    /// Whether Patient writes are linked after they commit, by the `mpi`
    /// outbox consumer (BARAZA_MPI_LINKING=queued), instead of within
    /// their own transaction (`inline`, the default).
    pub mpi_queued: bool,
    /// The MPI configuration file (BARAZA_MPI_CONFIG, TOML); the built-in
    /// defaults without it.
    pub mpi_config: Option<PathBuf>,
    /// The DHIS2 mapping config for ingest and `$dhis2-import`
    /// (BARAZA_DHIS2_CONFIG; docs/dhis2.md).
    pub dhis2_config: Option<PathBuf>,
    /// The CSV mapping config for `csv` ingest batches (BARAZA_CSV_CONFIG).
    pub csv_config: Option<PathBuf>,
    /// The public OIDC client of the console (BARAZA_CONSOLE_CLIENT_ID).
    pub console_client_id: Option<String>,
    /// How long finished `$export` files are kept (docs/analytics.md).
    pub export_retention_secs: u64,
    /// Resources per `$export` page (and transaction).
    pub export_page_size: usize,
    /// The pseudonym key of de-identified exports (docs/deidentification.md).
    pub deidentify_key: Option<Secret>,
    /// URL prefixes `$import` may read inputs from (docs/analytics.md);
    /// empty: uploads only.
    pub import_allowed_urls: Vec<String>,
    /// How often the retention policies run (docs/analytics.md).
    pub retention_interval_secs: u64,
    /// Change events and work shared between instances (docs/events.md).
    pub events: EventSettings,
    /// Kafka fan-out and ingest (BARAZA_KAFKA_*; docs/events.md).
    pub kafka: Option<KafkaSettings>,
}

/// Change events, subscriptions and leases (docs/events.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSettings {
    pub poll: std::time::Duration,
    pub retention_hours: u64,
    pub lease: std::time::Duration,
    pub retry_max: std::time::Duration,
    pub job_throttle: std::time::Duration,
    /// URL prefixes rest-hook endpoints must start with; empty: any.
    pub allowed_endpoints: Vec<String>,
}

impl Default for EventSettings {
    fn default() -> Self {
        EventSettings {
            poll: std::time::Duration::from_millis(250),
            retention_hours: 24,
            lease: std::time::Duration::from_secs(30),
            retry_max: std::time::Duration::from_secs(300),
            job_throttle: std::time::Duration::ZERO,
            allowed_endpoints: Vec::new(),
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database_url: None,
            read_database_url: None,
            data_dir: PathBuf::from("baraza-data"),
            base_url: None,
            max_bundle_entries: 20_000,
            max_body_bytes: 256 * 1024 * 1024,
            db_pool_size: 16,
            max_page_size: 1000,
            terminology_max_expansion: 10_000,
            log: "info".into(),
            log_format: LogFormat::Text,
            oidc: None,
            tls: None,
            rate_limit: None,
            audit: true,
            audit_retention_days: crate::audit::retention::DEFAULT_RETENTION_DAYS,
            metrics_token: None,
            mpi: true,
            mpi_queued: false,
            mpi_config: None,
            dhis2_config: None,
            csv_config: None,
            console_client_id: None,
            export_retention_secs: 86_400,
            export_page_size: 2000,
            deidentify_key: None,
            import_allowed_urls: Vec::new(),
            retention_interval_secs: 3600,
            events: EventSettings::default(),
            kafka: None,
        }
    }
}

impl Settings {
    /// Reads the configuration file `BARAZA_CONFIG` names, if any, and
    /// the process environment, which overrides it.
    pub fn from_env() -> Result<Settings, String> {
        Settings::from_vars(file::merged(std::env::vars())?)
    }

    /// Builds settings from `(name, value)` pairs; only `BARAZA_*` names are
    /// considered. The error is one line naming the variable.
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Result<Settings, String> {
        let vars: BTreeMap<String, String> = vars
            .into_iter()
            .filter(|(k, _)| k.starts_with("BARAZA_"))
            .collect();
        for name in vars.keys() {
            let known = VARIABLES.iter().any(|(v, _)| v == name)
                || TOOLING_VARIABLES.contains(&name.as_str());
            if !known {
                return Err(format!(
                    "unknown setting {name}; see `baraza --help` for the variables Baraza reads"
                ));
            }
        }
        let mut s = Settings {
            oidc: oidc_from_vars(&vars)?,
            tls: transport::tls_from_vars(&vars)?,
            rate_limit: transport::rate_limit_from_vars(&vars)?,
            kafka: kafka::kafka_from_vars(&vars)?,
            ..Settings::default()
        };
        for (name, value) in &vars {
            let bad = |why: &str| format!("{name}={value:?} is not valid: {why}");
            match name.as_str() {
                "BARAZA_LISTEN" => {
                    s.listen = value
                        .parse()
                        .map_err(|_| bad("expected host:port, e.g. 127.0.0.1:8080"))?
                }
                "BARAZA_DATABASE_URL" => {
                    // Do not echo the value: it may hold a password. This
                    // also reads sslmode's root certificates (crate::db::tls).
                    crate::db::tls::parse_database_url(value)?;
                    s.database_url = Some(Secret::new(value.clone()));
                }
                "BARAZA_READ_DATABASE_URL" => {
                    crate::db::tls::parse_database_url(value)?;
                    s.read_database_url = Some(Secret::new(value.clone()));
                }
                "BARAZA_DATA_DIR" => s.data_dir = PathBuf::from(value),
                "BARAZA_DHIS2_CONFIG" => s.dhis2_config = Some(PathBuf::from(value)),
                "BARAZA_CSV_CONFIG" => s.csv_config = Some(PathBuf::from(value)),
                "BARAZA_CONSOLE_CLIENT_ID" => {
                    if value.is_empty() || !value.chars().all(|c| c.is_ascii_graphic()) {
                        return Err(bad("expected a client id without spaces"));
                    }
                    s.console_client_id = Some(value.clone());
                }
                "BARAZA_METRICS_TOKEN" => {
                    if value.len() < 16 {
                        return Err(format!("{name} is too short: use at least 16 characters"));
                    }
                    s.metrics_token = Some(Secret::new(value.clone()));
                }
                "BARAZA_EXPORT_RETENTION_SECS" => {
                    s.export_retention_secs = positive(value)
                        .ok_or_else(|| bad("expected a positive number of seconds"))?
                        as u64
                }
                "BARAZA_EXPORT_PAGE_SIZE" => {
                    s.export_page_size =
                        positive(value).ok_or_else(|| bad("expected a positive integer"))?
                }
                "BARAZA_DEIDENTIFY_KEY" => {
                    if value.len() < 16 {
                        return Err(format!("{name} is too short: use at least 16 characters"));
                    }
                    s.deidentify_key = Some(Secret::new(value.clone()));
                }
                "BARAZA_RETENTION_INTERVAL_SECS" => {
                    s.retention_interval_secs = positive(value)
                        .ok_or_else(|| bad("expected a positive number of seconds"))?
                        as u64
                }
                "BARAZA_BASE_URL" => {
                    let parsed = url::Url::parse(value)
                        .map_err(|_| bad("expected an absolute http(s) URL"))?;
                    if !matches!(parsed.scheme(), "http" | "https") {
                        return Err(bad("expected an absolute http(s) URL"));
                    }
                    s.base_url = Some(value.trim_end_matches('/').to_owned());
                }
                "BARAZA_MAX_BUNDLE_ENTRIES" => {
                    s.max_bundle_entries =
                        positive(value).ok_or_else(|| bad("expected a positive integer"))?
                }
                "BARAZA_MAX_BODY_BYTES" => {
                    s.max_body_bytes =
                        positive(value).ok_or_else(|| bad("expected a positive integer"))?
                }
                "BARAZA_DB_POOL_SIZE" => {
                    s.db_pool_size =
                        positive(value).ok_or_else(|| bad("expected a positive integer"))?
                }
                "BARAZA_MAX_PAGE_SIZE" => {
                    s.max_page_size =
                        positive(value).ok_or_else(|| bad("expected a positive integer"))?
                }
                "BARAZA_TERMINOLOGY_MAX_EXPANSION" => {
                    s.terminology_max_expansion =
                        positive(value).ok_or_else(|| bad("expected a positive integer"))?
                }
                "BARAZA_LOG" => {
                    tracing_subscriber::EnvFilter::try_new(value)
                        .map_err(|_| bad("expected a tracing filter such as info"))?;
                    s.log = value.clone();
                }
                "BARAZA_LOG_FORMAT" => {
                    s.log_format = match value.as_str() {
                        "json" => LogFormat::Json,
                        "text" => LogFormat::Text,
                        _ => return Err(bad("expected json or text")),
                    }
                }
                "BARAZA_AUDIT" => {
                    s.audit = match value.as_str() {
                        "on" => true,
                        "off" => false,
                        _ => return Err(bad("expected on or off")),
                    }
                }
                "BARAZA_EVENTS_POLL_MS" => {
                    s.events.poll = std::time::Duration::from_millis(
                        positive(value)
                            .filter(|n| *n <= 60_000)
                            .ok_or_else(|| bad("expected milliseconds from 1 to 60000"))?
                            as u64,
                    )
                }
                "BARAZA_EVENTS_RETENTION_HOURS" => {
                    s.events.retention_hours = value
                        .parse::<u64>()
                        .ok()
                        .filter(|h| *h <= 24 * 366)
                        .ok_or_else(|| bad("expected whole hours, at most a year"))?
                }
                "BARAZA_LEASE_SECS" => {
                    s.events.lease = std::time::Duration::from_secs(
                        positive(value)
                            .filter(|n| *n <= 3600)
                            .ok_or_else(|| bad("expected seconds from 1 to 3600"))?
                            as u64,
                    )
                }
                "BARAZA_SUBSCRIPTION_RETRY_MAX_SECS" => {
                    s.events.retry_max = std::time::Duration::from_secs(
                        positive(value)
                            .filter(|n| *n <= 86_400)
                            .ok_or_else(|| bad("expected seconds from 1 to 86400"))?
                            as u64,
                    )
                }
                "BARAZA_SUBSCRIPTION_ENDPOINTS" => {
                    let prefixes: Vec<String> = value
                        .split(',')
                        .map(str::trim)
                        .filter(|p| !p.is_empty())
                        .map(str::to_owned)
                        .collect();
                    if prefixes.is_empty()
                        || prefixes
                            .iter()
                            .any(|p| !(p.starts_with("http://") || p.starts_with("https://")))
                    {
                        return Err(bad("expected comma-separated http(s) URL prefixes"));
                    }
                    s.events.allowed_endpoints = prefixes;
                }
                "BARAZA_IMPORT_ALLOWED_URLS" => {
                    let prefixes: Vec<String> = value
                        .split(',')
                        .map(str::trim)
                        .filter(|p| !p.is_empty())
                        .map(str::to_owned)
                        .collect();
                    if prefixes.is_empty()
                        || prefixes.iter().any(|p| {
                            url::Url::parse(p)
                                .map_or(true, |u| !matches!(u.scheme(), "http" | "https"))
                        })
                    {
                        return Err(bad("expected comma-separated http(s) URL prefixes"));
                    }
                    s.import_allowed_urls = prefixes;
                }
                "BARAZA_JOB_THROTTLE_MS" => {
                    s.events.job_throttle = std::time::Duration::from_millis(
                        value
                            .parse::<u64>()
                            .ok()
                            .filter(|n| *n <= 60_000)
                            .ok_or_else(|| bad("expected milliseconds from 0 to 60000"))?,
                    )
                }
                "BARAZA_MPI" => {
                    s.mpi = match value.as_str() {
                        "on" => true,
                        "off" => false,
                        _ => return Err(bad("expected on or off")),
                    }
                }
                "BARAZA_MPI_LINKING" => {
                    s.mpi_queued = match value.as_str() {
                        "queued" => true,
                        "inline" => false,
                        _ => return Err(bad("expected inline or queued")),
                    }
                }
                "BARAZA_MPI_CONFIG" => s.mpi_config = Some(PathBuf::from(value)),
                "BARAZA_AUDIT_RETENTION_DAYS" => {
                    s.audit_retention_days = value
                        .parse::<u32>()
                        .ok()
                        .filter(|d| *d >= crate::audit::retention::MIN_RETENTION_DAYS)
                        .ok_or_else(|| bad("expected whole days, at least 30"))?
                }
                _ => {}
            }
        }
        Ok(s)
    }

    /// The public FHIR base URL, without a trailing slash; https when
    /// Baraza terminates TLS itself.
    pub fn public_base(&self, bound: SocketAddr) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        self.base_url
            .clone()
            .unwrap_or_else(|| format!("{scheme}://{bound}/fhir"))
    }
}

/// The BARAZA_OIDC_* settings: none at all, or an issuer and an audience
/// with optional claim names and skew.
fn oidc_from_vars(vars: &BTreeMap<String, String>) -> Result<Option<OidcSettings>, String> {
    let get = |name: &str| vars.get(name).map(String::as_str);
    let bad = |name: &str, why: &str| {
        let value = get(name).unwrap_or_default();
        format!("{name}={value:?} is not valid: {why}")
    };
    let Some(issuer) = get("BARAZA_OIDC_ISSUER") else {
        if let Some(name) = vars.keys().find(|k| k.starts_with("BARAZA_OIDC_")) {
            return Err(format!("{name} needs BARAZA_OIDC_ISSUER"));
        }
        return Ok(None);
    };
    let parsed = url::Url::parse(issuer)
        .map_err(|_| bad("BARAZA_OIDC_ISSUER", "expected an absolute http(s) URL"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.query().is_some() {
        return Err(bad(
            "BARAZA_OIDC_ISSUER",
            "expected an absolute http(s) URL without a query",
        ));
    }
    let audience = match get("BARAZA_OIDC_AUDIENCE") {
        None => return Err("BARAZA_OIDC_ISSUER needs BARAZA_OIDC_AUDIENCE".to_owned()),
        Some("") => return Err(bad("BARAZA_OIDC_AUDIENCE", "expected a non-empty name")),
        Some(audience) => audience,
    };
    let claim = |name: &str, default: &str| match get(name) {
        None => Ok(default.to_owned()),
        Some("") => Err(bad(name, "expected a claim name")),
        Some(claim) => Ok(claim.to_owned()),
    };
    let clock_skew_secs = match get("BARAZA_OIDC_CLOCK_SKEW_SECS") {
        None => 60,
        Some(value) => value
            .parse::<u64>()
            .ok()
            .filter(|secs| *secs <= MAX_OIDC_CLOCK_SKEW_SECS)
            .ok_or_else(|| {
                bad(
                    "BARAZA_OIDC_CLOCK_SKEW_SECS",
                    "expected whole seconds from 0 to 300",
                )
            })?,
    };
    Ok(Some(OidcSettings {
        issuer: issuer.to_owned(),
        audience: audience.to_owned(),
        groups_claim: claim("BARAZA_OIDC_GROUPS_CLAIM", "groups")?,
        tenants_claim: claim("BARAZA_OIDC_TENANTS_CLAIM", "tenants")?,
        clock_skew_secs,
        login_client: match (
            get("BARAZA_OIDC_LOGIN_CLIENT_ID"),
            get("BARAZA_OIDC_LOGIN_CLIENT_SECRET"),
        ) {
            (None, None) => None,
            (Some(id), Some(secret)) if !id.is_empty() => {
                Some((id.to_owned(), Secret::new(secret)))
            }
            _ => {
                return Err(
                    "BARAZA_OIDC_LOGIN_CLIENT_ID and BARAZA_OIDC_LOGIN_CLIENT_SECRET go together"
                        .to_owned(),
                );
            }
        },
    }))
}

fn positive(value: &str) -> Option<usize> {
    value.parse::<usize>().ok().filter(|n| *n > 0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_apply_without_variables() {
        let s = Settings::from_vars(vars(&[("PATH", "/bin")])).unwrap();
        assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
        assert!(s.database_url.is_none());
    }

    #[test]
    fn unknown_variable_is_rejected_by_name() {
        let err = Settings::from_vars(vars(&[("BARAZA_LISTN", "x")])).unwrap_err();
        assert!(err.contains("BARAZA_LISTN"), "{err}");
    }

    #[test]
    fn malformed_values_are_rejected_with_one_line() {
        for (k, v) in [
            ("BARAZA_LISTEN", "nonsense"),
            ("BARAZA_MAX_BUNDLE_ENTRIES", "0"),
            ("BARAZA_MAX_BODY_BYTES", "-5"),
            ("BARAZA_LOG_FORMAT", "xml"),
            ("BARAZA_AUDIT", "maybe"),
            ("BARAZA_AUDIT_RETENTION_DAYS", "29"),
            ("BARAZA_LEASE_SECS", "0"),
            ("BARAZA_EVENTS_POLL_MS", "fast"),
            ("BARAZA_BASE_URL", "ftp://x"),
            (
                "BARAZA_DATABASE_URL",
                "postgres://u:secretpw@host:notaport/db",
            ),
        ] {
            let err = Settings::from_vars(vars(&[(k, v)])).unwrap_err();
            assert!(err.contains(k), "{err}");
            assert!(!err.contains('\n'));
            assert!(!err.contains("secretpw"), "password leaked: {err}");
        }
    }

    #[test]
    fn oidc_is_off_without_an_issuer() {
        let s = Settings::from_vars(vars(&[])).unwrap();
        assert_eq!(s.oidc, None);
    }

    #[test]
    fn oidc_settings_take_defaults_for_claims_and_skew() {
        let s = Settings::from_vars(vars(&[
            ("BARAZA_OIDC_ISSUER", "https://login.example.org/realms/hie"),
            ("BARAZA_OIDC_AUDIENCE", "baraza"),
        ]))
        .unwrap();
        let expected = OidcSettings {
            issuer: "https://login.example.org/realms/hie".into(),
            audience: "baraza".into(),
            groups_claim: "groups".into(),
            tenants_claim: "tenants".into(),
            clock_skew_secs: 60,
            login_client: None,
        };
        assert_eq!(s.oidc, Some(expected));
    }

    #[test]
    fn oidc_settings_read_every_variable() {
        let s = Settings::from_vars(vars(&[
            ("BARAZA_OIDC_ISSUER", "http://127.0.0.1:8081/"),
            ("BARAZA_OIDC_AUDIENCE", "fhir"),
            ("BARAZA_OIDC_GROUPS_CLAIM", "realm_access.roles"),
            (
                "BARAZA_OIDC_TENANTS_CLAIM",
                "https://baraza.example/tenants",
            ),
            ("BARAZA_OIDC_CLOCK_SKEW_SECS", "0"),
        ]))
        .unwrap();
        let oidc = s.oidc.unwrap();
        // The issuer is kept exactly: `iss` is compared byte for byte.
        assert_eq!(oidc.issuer, "http://127.0.0.1:8081/");
        assert_eq!(oidc.audience, "fhir");
        assert_eq!(oidc.groups_claim, "realm_access.roles");
        assert_eq!(oidc.tenants_claim, "https://baraza.example/tenants");
        assert_eq!(oidc.clock_skew_secs, 0);
    }

    #[test]
    fn console_client_id_is_read_and_must_be_one_word() {
        let s = Settings::from_vars(vars(&[("BARAZA_CONSOLE_CLIENT_ID", "baraza-console")]));
        assert_eq!(
            s.unwrap().console_client_id.as_deref(),
            Some("baraza-console")
        );
        let e = Settings::from_vars(vars(&[("BARAZA_CONSOLE_CLIENT_ID", "two words")]));
        assert!(e.unwrap_err().starts_with("BARAZA_CONSOLE_CLIENT_ID="));
    }

    #[test]
    fn malformed_oidc_settings_are_rejected_by_name() {
        let issuer = ("BARAZA_OIDC_ISSUER", "https://idp.example");
        let audience = ("BARAZA_OIDC_AUDIENCE", "baraza");
        for (pairs, named) in [
            (
                vec![("BARAZA_OIDC_ISSUER", "not a url"), audience],
                "BARAZA_OIDC_ISSUER",
            ),
            (
                vec![("BARAZA_OIDC_ISSUER", "ftp://idp"), audience],
                "BARAZA_OIDC_ISSUER",
            ),
            (vec![issuer], "BARAZA_OIDC_AUDIENCE"),
            (
                vec![issuer, ("BARAZA_OIDC_AUDIENCE", "")],
                "BARAZA_OIDC_AUDIENCE",
            ),
            (vec![audience], "BARAZA_OIDC_AUDIENCE"),
            (
                vec![("BARAZA_OIDC_CLOCK_SKEW_SECS", "5")],
                "BARAZA_OIDC_CLOCK_SKEW_SECS",
            ),
            (
                vec![issuer, audience, ("BARAZA_OIDC_CLOCK_SKEW_SECS", "301")],
                "BARAZA_OIDC_CLOCK_SKEW_SECS",
            ),
            (
                vec![issuer, audience, ("BARAZA_OIDC_CLOCK_SKEW_SECS", "-1")],
                "BARAZA_OIDC_CLOCK_SKEW_SECS",
            ),
            (
                vec![issuer, audience, ("BARAZA_OIDC_GROUPS_CLAIM", "")],
                "BARAZA_OIDC_GROUPS_CLAIM",
            ),
            (
                vec![issuer, audience, ("BARAZA_OIDC_TENANTS_CLAIM", "")],
                "BARAZA_OIDC_TENANTS_CLAIM",
            ),
        ] {
            let err = Settings::from_vars(vars(&pairs)).unwrap_err();
            assert!(err.contains(named), "{pairs:?}: {err}");
            assert!(!err.contains('\n'));
        }
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Settings::from_vars(vars(&[(
            "BARAZA_DATABASE_URL",
            "postgres://u:pw@localhost/db",
        )]))
        .unwrap();
        assert!(!format!("{s:?}").contains("pw@"));
    }
}
