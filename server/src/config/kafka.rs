//! The BARAZA_KAFKA_* settings (docs/events.md, "Kafka"): none at all, or
//! the brokers with optional security, payload and ingest settings. The
//! settings are kept as librdkafka properties, so that `events::kafka`
//! hands them over as they are.

use super::Secret;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// What a fan-out message carries besides the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KafkaPayload {
    /// The version's reference (`Type/id/_history/v`) only: the default,
    /// which keeps PHI out of topics.
    #[default]
    Reference,
    /// The reference and the version's resource.
    Resource,
}

#[derive(Debug, Clone)]
pub struct KafkaSettings {
    /// `host:port` of the bootstrap brokers, comma-separated.
    pub brokers: String,
    /// `plaintext`, `ssl`, `sasl_plaintext` or `sasl_ssl`.
    pub security_protocol: String,
    /// `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`, with SASL.
    pub sasl_mechanism: Option<String>,
    pub sasl_username: Option<String>,
    pub sasl_password: Option<Secret>,
    /// PEM files: the brokers' CA, and this client's certificate and key.
    pub ssl_ca: Option<PathBuf>,
    pub ssl_cert: Option<PathBuf>,
    pub ssl_key: Option<PathBuf>,
    pub payload: KafkaPayload,
    /// Whether this instance consumes the `ingest.*.*.in` topics.
    pub ingest: bool,
    /// The consumer group of the ingest consumers.
    pub group: String,
    /// The permission groups a Kafka integrator writes with.
    pub ingest_groups: Vec<String>,
    /// Partitions of the topics Baraza creates.
    pub partitions: i32,
    /// Replication factor of the topics Baraza creates.
    pub replication: i32,
}

impl KafkaSettings {
    /// The librdkafka properties every client of this server uses.
    pub fn client_properties(&self) -> Vec<(&'static str, String)> {
        let mut props = vec![
            ("bootstrap.servers", self.brokers.clone()),
            ("security.protocol", self.security_protocol.clone()),
        ];
        let optional = [
            ("sasl.mechanism", self.sasl_mechanism.clone()),
            ("sasl.username", self.sasl_username.clone()),
            (
                "sasl.password",
                self.sasl_password.as_ref().map(|s| s.expose().to_owned()),
            ),
            ("ssl.ca.location", path(&self.ssl_ca)),
            ("ssl.certificate.location", path(&self.ssl_cert)),
            ("ssl.key.location", path(&self.ssl_key)),
        ];
        props.extend(
            optional
                .into_iter()
                .filter_map(|(name, value)| value.map(|v| (name, v))),
        );
        props
    }
}

fn path(p: &Option<PathBuf>) -> Option<String> {
    p.as_ref().map(|p| p.display().to_string())
}

/// Reads the Kafka settings; `None` without BARAZA_KAFKA_BROKERS. Another
/// BARAZA_KAFKA_* setting without the brokers is refused.
pub fn kafka_from_vars(vars: &BTreeMap<String, String>) -> Result<Option<KafkaSettings>, String> {
    let get = |name: &str| vars.get(name).map(String::as_str);
    let bad = |name: &str, why: &str| format!("{name} is not valid: {why}");
    let Some(brokers) = get("BARAZA_KAFKA_BROKERS") else {
        if let Some(name) = vars.keys().find(|k| k.starts_with("BARAZA_KAFKA_")) {
            return Err(format!("{name} needs BARAZA_KAFKA_BROKERS"));
        }
        return Ok(None);
    };
    let listed: Vec<&str> = brokers.split(',').map(str::trim).collect();
    let valid_broker = |b: &str| {
        b.rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
    };
    if listed.iter().any(|b| !valid_broker(b)) {
        return Err(bad(
            "BARAZA_KAFKA_BROKERS",
            "expected comma-separated host:port pairs",
        ));
    }
    let security_protocol = get("BARAZA_KAFKA_SECURITY_PROTOCOL")
        .unwrap_or("plaintext")
        .to_ascii_lowercase();
    if !["plaintext", "ssl", "sasl_plaintext", "sasl_ssl"].contains(&security_protocol.as_str()) {
        return Err(bad(
            "BARAZA_KAFKA_SECURITY_PROTOCOL",
            "expected plaintext, ssl, sasl_plaintext or sasl_ssl",
        ));
    }
    let sasl = security_protocol.starts_with("sasl_");
    let sasl_mechanism = get("BARAZA_KAFKA_SASL_MECHANISM").map(str::to_ascii_uppercase);
    if let Some(m) = &sasl_mechanism {
        if !["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"].contains(&m.as_str()) {
            return Err(bad(
                "BARAZA_KAFKA_SASL_MECHANISM",
                "expected PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512",
            ));
        }
    }
    let sasl_username = get("BARAZA_KAFKA_SASL_USERNAME").map(str::to_owned);
    let sasl_password = get("BARAZA_KAFKA_SASL_PASSWORD").map(Secret::new);
    if sasl && (sasl_username.is_none() || sasl_password.is_none()) {
        return Err(format!(
            "BARAZA_KAFKA_SECURITY_PROTOCOL={security_protocol} needs \
             BARAZA_KAFKA_SASL_USERNAME and BARAZA_KAFKA_SASL_PASSWORD"
        ));
    }
    if !sasl && (sasl_mechanism.is_some() || sasl_username.is_some() || sasl_password.is_some()) {
        return Err(
            "the BARAZA_KAFKA_SASL_* settings need BARAZA_KAFKA_SECURITY_PROTOCOL \
             sasl_plaintext or sasl_ssl"
                .to_owned(),
        );
    }
    let file = |name: &str| -> Result<Option<PathBuf>, String> {
        match get(name) {
            None => Ok(None),
            Some(p) if std::path::Path::new(p).is_file() => Ok(Some(PathBuf::from(p))),
            Some(_) => Err(bad(name, "expected a readable PEM file")),
        }
    };
    let payload = match get("BARAZA_KAFKA_PAYLOAD").unwrap_or("reference") {
        "reference" => KafkaPayload::Reference,
        "resource" => KafkaPayload::Resource,
        _ => {
            return Err(bad(
                "BARAZA_KAFKA_PAYLOAD",
                "expected reference or resource",
            ));
        }
    };
    let ingest = match get("BARAZA_KAFKA_INGEST").unwrap_or("on") {
        "on" => true,
        "off" => false,
        _ => return Err(bad("BARAZA_KAFKA_INGEST", "expected on or off")),
    };
    let group = get("BARAZA_KAFKA_GROUP")
        .unwrap_or("baraza-ingest")
        .to_owned();
    if group.is_empty() {
        return Err(bad("BARAZA_KAFKA_GROUP", "expected a consumer group name"));
    }
    let ingest_groups: Vec<String> = get("BARAZA_KAFKA_INGEST_GROUPS")
        .unwrap_or("registry-integrator")
        .split(',')
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .map(str::to_owned)
        .collect();
    let count = |name: &str, default: i32, low: i32| -> Result<i32, String> {
        match get(name) {
            None => Ok(default),
            Some(v) => v
                .parse::<i32>()
                .ok()
                .filter(|n| *n >= low && *n <= 1000)
                .ok_or_else(|| bad(name, &format!("expected a whole number from {low} to 1000"))),
        }
    };
    Ok(Some(KafkaSettings {
        brokers: listed.join(","),
        security_protocol,
        sasl_mechanism,
        sasl_username,
        sasl_password,
        ssl_ca: file("BARAZA_KAFKA_SSL_CA")?,
        ssl_cert: file("BARAZA_KAFKA_SSL_CERT")?,
        ssl_key: file("BARAZA_KAFKA_SSL_KEY")?,
        payload,
        ingest,
        group,
        ingest_groups,
        partitions: count("BARAZA_KAFKA_PARTITIONS", 3, 1)?,
        replication: count("BARAZA_KAFKA_REPLICATION", 1, 1)?,
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn no_brokers_no_kafka_and_no_stray_settings() {
        assert!(kafka_from_vars(&vars(&[])).unwrap().is_none());
        let err = kafka_from_vars(&vars(&[("BARAZA_KAFKA_PAYLOAD", "resource")])).unwrap_err();
        assert!(err.contains("needs BARAZA_KAFKA_BROKERS"), "{err}");
    }

    #[test]
    fn sasl_needs_its_credentials_and_the_password_stays_secret() {
        let err = kafka_from_vars(&vars(&[
            ("BARAZA_KAFKA_BROKERS", "k1:9093"),
            ("BARAZA_KAFKA_SECURITY_PROTOCOL", "sasl_ssl"),
        ]))
        .unwrap_err();
        assert!(err.contains("SASL_USERNAME"), "{err}");
        let s = kafka_from_vars(&vars(&[
            ("BARAZA_KAFKA_BROKERS", "k1:9093, k2:9093"),
            ("BARAZA_KAFKA_SECURITY_PROTOCOL", "SASL_SSL"),
            ("BARAZA_KAFKA_SASL_MECHANISM", "scram-sha-512"),
            ("BARAZA_KAFKA_SASL_USERNAME", "baraza"),
            ("BARAZA_KAFKA_SASL_PASSWORD", "hunter2-hunter2"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(s.brokers, "k1:9093,k2:9093");
        assert!(!format!("{s:?}").contains("hunter2"));
        let props = s.client_properties();
        assert!(props.contains(&("sasl.mechanism", "SCRAM-SHA-512".to_owned())));
        assert!(props.contains(&("security.protocol", "sasl_ssl".to_owned())));
    }

    #[test]
    fn malformed_values_are_refused_by_name() {
        for (name, value) in [
            ("BARAZA_KAFKA_BROKERS", "no-port"),
            ("BARAZA_KAFKA_PAYLOAD", "everything"),
            ("BARAZA_KAFKA_INGEST", "yes"),
            ("BARAZA_KAFKA_PARTITIONS", "0"),
            ("BARAZA_KAFKA_SSL_CA", "/nonexistent/ca.pem"),
        ] {
            let mut v = vars(&[("BARAZA_KAFKA_BROKERS", "127.0.0.1:9092")]);
            v.insert(name.to_owned(), value.to_owned());
            let err = kafka_from_vars(&v).unwrap_err();
            assert!(err.contains(name), "{name}: {err}");
        }
    }
}
