//! The table of every `BARAZA_*` setting: its variable and what it means.
//! `baraza --help` prints it, [`super::Settings::from_vars`] refuses any
//! other `BARAZA_*` name, and the deployment's check
//! (`ansible/tests/check_env.py`) compares the app role's templates with
//! it.

/// Every setting Baraza reads, with its variable and meaning. `--help` prints
/// this table, and [`super::Settings::from_vars`] rejects any other `BARAZA_*` name.
pub const VARIABLES: &[(&str, &str)] = &[
    (
        "BARAZA_LISTEN",
        "address to listen on (default 127.0.0.1:8080)",
    ),
    (
        "BARAZA_DATABASE_URL",
        "PostgreSQL (14+) URL, e.g. postgres://user:pass@host/db?sslmode=verify-full&sslrootcert=ca.pem; unset: run an embedded cluster",
    ),
    (
        "BARAZA_READ_DATABASE_URL",
        "PostgreSQL URL of a read replica (hot standby) that reads and searches outside transactions use; Cache-Control: no-cache reads the primary (unset: none)",
    ),
    (
        "BARAZA_DATA_DIR",
        "directory of the embedded PostgreSQL cluster (default ./baraza-data)",
    ),
    (
        "BARAZA_BASE_URL",
        "public FHIR base URL used in Location and fullUrl (default http(s)://<listen>/fhir)",
    ),
    (
        "BARAZA_MAX_BUNDLE_ENTRIES",
        "largest batch/transaction Bundle accepted, in entries (default 20000)",
    ),
    (
        "BARAZA_MAX_BODY_BYTES",
        "largest request body accepted, in bytes (default 268435456)",
    ),
    (
        "BARAZA_DB_POOL_SIZE",
        "database connections in the pool (default 16)",
    ),
    (
        "BARAZA_MAX_PAGE_SIZE",
        "largest _count honoured for history and search (default 1000)",
    ),
    (
        "BARAZA_TERMINOLOGY_MAX_EXPANSION",
        "most codes a ValueSet $expand without count returns (default 10000)",
    ),
    (
        "BARAZA_LOG",
        "log filter, e.g. info or baraza=debug (default info)",
    ),
    (
        "BARAZA_LOG_FORMAT",
        "log format: json or text (default text)",
    ),
    (
        "BARAZA_OIDC_ISSUER",
        "OpenID provider whose access tokens are accepted, exactly as their iss claim (unset: no token verification)",
    ),
    (
        "BARAZA_OIDC_AUDIENCE",
        "audience an access token must name in aud (required with BARAZA_OIDC_ISSUER)",
    ),
    (
        "BARAZA_OIDC_GROUPS_CLAIM",
        "access-token claim holding the caller's groups (default groups)",
    ),
    (
        "BARAZA_OIDC_TENANTS_CLAIM",
        "access-token claim holding the caller's tenant ids (default tenants)",
    ),
    (
        "BARAZA_OIDC_CLOCK_SKEW_SECS",
        "clock skew tolerated on exp and nbf, 0 to 300 seconds (default 60)",
    ),
    (
        "BARAZA_OIDC_LOGIN_CLIENT_ID",
        "client POST /auth/login uses for the provider's password grant (unset: no /auth/login)",
    ),
    (
        "BARAZA_OIDC_LOGIN_CLIENT_SECRET",
        "secret of BARAZA_OIDC_LOGIN_CLIENT_ID",
    ),
    (
        "BARAZA_TLS_CERT",
        "PEM certificate chain: serve HTTPS (TLS 1.2 and 1.3) with BARAZA_TLS_KEY (unset: plain HTTP)",
    ),
    ("BARAZA_TLS_KEY", "PEM private key of BARAZA_TLS_CERT"),
    (
        "BARAZA_TLS_CLIENT_CA",
        "PEM bundle of the CAs whose client certificates are accepted (mTLS; unset: none asked for)",
    ),
    (
        "BARAZA_TLS_CLIENT_AUTH",
        "with BARAZA_TLS_CLIENT_CA: required or optional client certificate (default required)",
    ),
    (
        "BARAZA_RATE_LIMIT",
        "requests per client, e.g. 50/s burst 100 or 600/min; 429 beyond it (default off)",
    ),
    (
        "BARAZA_AUDIT_RETENTION_DAYS",
        "days audit events are kept, at least 30 (default 2557, about 7 years)",
    ),
    (
        "BARAZA_AUDIT",
        "off records no audit events, for measuring their cost only (default on)",
    ),
    (
        "BARAZA_MPI",
        "off stops linking Patient writes in the master patient index (default on)",
    ),
    (
        "BARAZA_MPI_LINKING",
        "inline links each Patient write in its own transaction; queued links it just after, from the change-event outbox (docs/mpi.md) (default inline)",
    ),
    (
        "BARAZA_MPI_CONFIG",
        "the master patient index's configuration file (TOML; docs/mpi-matching.md); built-in defaults without it",
    ),
    (
        "BARAZA_METRICS_TOKEN",
        "bearer token GET /metrics asks for (unset: /metrics answers loopback callers only)",
    ),
    (
        "BARAZA_EVENTS_POLL_MS",
        "how often each instance looks for new change events to deliver, in milliseconds (default 250)",
    ),
    (
        "BARAZA_EVENTS_RETENTION_HOURS",
        "hours a change event is kept after every consumer has it (default 24)",
    ),
    (
        "BARAZA_LEASE_SECS",
        "lease of an instance on a subscription's delivery or a background job; work moves to another instance this long after its own stops (default 30)",
    ),
    (
        "BARAZA_SUBSCRIPTION_RETRY_MAX_SECS",
        "longest wait between retries of a failing subscription, which back off exponentially from 1 s (default 300)",
    ),
    (
        "BARAZA_SUBSCRIPTION_ENDPOINTS",
        "comma-separated URL prefixes a rest-hook endpoint must start with, e.g. https://hooks.example.org/ (unset: any http(s) URL)",
    ),
    (
        "BARAZA_JOB_THROTTLE_MS",
        "pause between the batches of background jobs such as $reindex, sparing a busy database (default 0)",
    ),
    (
        "BARAZA_DHIS2_CONFIG",
        "DHIS2 mapping config (YAML or JSON) for ingest batches and $dhis2-import (docs/dhis2.md)",
    ),
    (
        "BARAZA_CSV_CONFIG",
        "CSV mapping config (YAML) for csv ingest batches (docs/dhis2.md, CSV adapter)",
    ),
    (
        "BARAZA_CONSOLE_CLIENT_ID",
        "public OIDC client the console at /console signs in with (authorization code + PKCE; unset: no sign-in button)",
    ),
    (
        "BARAZA_EXPORT_RETENTION_SECS",
        "seconds a finished $export job's files are kept before they expire (default 86400)",
    ),
    (
        "BARAZA_IMPORT_ALLOWED_URLS",
        "comma-separated URL prefixes $import may read NDJSON inputs from, e.g. https://data.example.org/exports/ (unset: uploads only)",
    ),
    (
        "BARAZA_EXPORT_PAGE_SIZE",
        "resources an $export job reads per page and transaction (default 2000)",
    ),
    (
        "BARAZA_DEIDENTIFY_KEY",
        "secret key of de-identified exports' pseudonyms, the same across exports (unset: a random key per export)",
    ),
    (
        "BARAZA_RETENTION_INTERVAL_SECS",
        "seconds between runs of the retention policies' job (default 3600)",
    ),
    (
        "BARAZA_KAFKA_BROKERS",
        "comma-separated host:port of Kafka bootstrap brokers; turns on the fan-out to baraza.{tenant}.changes and the ingest of ingest.{tenant}.{integrator}.in (unset: no Kafka)",
    ),
    (
        "BARAZA_KAFKA_SECURITY_PROTOCOL",
        "plaintext, ssl, sasl_plaintext or sasl_ssl (default plaintext)",
    ),
    (
        "BARAZA_KAFKA_SASL_MECHANISM",
        "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, with a sasl_* protocol",
    ),
    (
        "BARAZA_KAFKA_SASL_USERNAME",
        "SASL user name, with a sasl_* protocol",
    ),
    (
        "BARAZA_KAFKA_SASL_PASSWORD",
        "SASL password, with a sasl_* protocol (never logged)",
    ),
    (
        "BARAZA_KAFKA_SSL_CA",
        "PEM file of the CA that signed the brokers' certificates (unset: the system's roots)",
    ),
    (
        "BARAZA_KAFKA_SSL_CERT",
        "PEM client certificate for brokers that ask for one",
    ),
    (
        "BARAZA_KAFKA_SSL_KEY",
        "PEM private key of BARAZA_KAFKA_SSL_CERT",
    ),
    (
        "BARAZA_KAFKA_PAYLOAD",
        "what a fan-out message carries besides the event: reference or resource (default reference, which keeps PHI out of topics)",
    ),
    (
        "BARAZA_KAFKA_INGEST",
        "on or off: whether this instance consumes ingest.{tenant}.{integrator}.in topics (default on)",
    ),
    (
        "BARAZA_KAFKA_GROUP",
        "consumer group of the ingest consumers (default baraza-ingest)",
    ),
    (
        "BARAZA_KAFKA_INGEST_GROUPS",
        "comma-separated permission groups a Kafka integrator writes with (default registry-integrator)",
    ),
    (
        "BARAZA_KAFKA_PARTITIONS",
        "partitions of the topics Baraza creates (default 3)",
    ),
    (
        "BARAZA_KAFKA_REPLICATION",
        "replication factor of the topics Baraza creates (default 1; use 3 on a production cluster)",
    ),
    (
        "BARAZA_CONFIG",
        "TOML file of these settings, keys without BARAZA_ in lower case; the environment overrides it",
    ),
];
