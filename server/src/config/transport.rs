//! Transport-security settings (issue 4): TLS termination and client
//! certificates (`BARAZA_TLS_*`) and per-client rate limits
//! (`BARAZA_RATE_LIMIT`). Only names and numbers are read here; the files
//! are loaded when the listener is built (`crate::http::tls`).

use std::collections::BTreeMap;
use std::fmt;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

/// HTTPS at Baraza's own listener. Present only when BARAZA_TLS_CERT and
/// BARAZA_TLS_KEY are set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// PEM: the server certificate first, then its intermediates.
    pub cert: PathBuf,
    /// PEM: the private key (PKCS#8, PKCS#1 or SEC1). Never printed.
    pub key: PathBuf,
    pub client_certificates: Option<ClientCertificates>,
}

/// Client certificates (mTLS): which CAs may issue them, and whether a
/// client must present one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCertificates {
    /// PEM bundle of the CAs whose certificates are accepted.
    pub ca: PathBuf,
    pub auth: ClientAuth,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// The handshake fails without a certificate chaining to the CA.
    Required,
    /// A client may present no certificate; one it presents must chain to
    /// the CA.
    Optional,
}

/// `requests` per `per`, with up to `burst` at once (a GCRA bucket).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub requests: NonZeroU32,
    pub per: Duration,
    pub burst: NonZeroU32,
}

impl RateLimit {
    /// The time in which one more request is allowed.
    pub fn replenish_interval(&self) -> Duration {
        self.per / self.requests.get()
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = if self.per == Duration::from_secs(60) {
            "min"
        } else {
            "s"
        };
        write!(f, "{}/{unit} burst {}", self.requests, self.burst)
    }
}

/// The BARAZA_TLS_* settings: none at all, or a certificate and a key with
/// optional client certificates.
pub fn tls_from_vars(vars: &BTreeMap<String, String>) -> Result<Option<TlsSettings>, String> {
    let path = |name: &str| -> Result<Option<PathBuf>, String> {
        match vars.get(name).map(String::as_str) {
            None => Ok(None),
            Some("") => Err(format!("{name} is empty: expected the path of a PEM file")),
            Some(value) => Ok(Some(PathBuf::from(value))),
        }
    };
    let client_ca = path("BARAZA_TLS_CLIENT_CA")?;
    let client_auth = match vars.get("BARAZA_TLS_CLIENT_AUTH").map(String::as_str) {
        None => None,
        Some("required") => Some(ClientAuth::Required),
        Some("optional") => Some(ClientAuth::Optional),
        Some(value) => {
            return Err(format!(
                "BARAZA_TLS_CLIENT_AUTH={value:?} is not valid: expected required or optional"
            ));
        }
    };
    let client_certificates = match (client_ca, client_auth) {
        (None, None) => None,
        (None, Some(_)) => {
            return Err("BARAZA_TLS_CLIENT_AUTH needs BARAZA_TLS_CLIENT_CA".to_owned());
        }
        (Some(ca), auth) => Some(ClientCertificates {
            ca,
            auth: auth.unwrap_or(ClientAuth::Required),
        }),
    };
    match (path("BARAZA_TLS_CERT")?, path("BARAZA_TLS_KEY")?) {
        (Some(cert), Some(key)) => Ok(Some(TlsSettings {
            cert,
            key,
            client_certificates,
        })),
        (None, None) if client_certificates.is_none() => Ok(None),
        (None, None) => {
            Err("BARAZA_TLS_CLIENT_CA needs BARAZA_TLS_CERT and BARAZA_TLS_KEY".to_owned())
        }
        _ => Err("BARAZA_TLS_CERT and BARAZA_TLS_KEY go together".to_owned()),
    }
}

/// BARAZA_RATE_LIMIT: unset or `off` (no limit), or `<n>/s` or `<n>/min`,
/// optionally followed by `burst <b>` (default: `<n>`).
pub fn rate_limit_from_vars(vars: &BTreeMap<String, String>) -> Result<Option<RateLimit>, String> {
    let Some(value) = vars.get("BARAZA_RATE_LIMIT") else {
        return Ok(None);
    };
    if value.trim() == "off" {
        return Ok(None);
    }
    parse_rate_limit(value).map(Some).ok_or_else(|| {
        format!(
            "BARAZA_RATE_LIMIT={value:?} is not valid: expected e.g. 50/s burst 100, 600/min, or off"
        )
    })
}

fn parse_rate_limit(value: &str) -> Option<RateLimit> {
    let words: Vec<&str> = value.split_whitespace().collect();
    let (rate, burst) = match words.as_slice() {
        [rate] => (*rate, None),
        [rate, "burst", burst] => (*rate, Some(*burst)),
        _ => return None,
    };
    let (requests, unit) = rate.split_once('/')?;
    let requests = requests.parse::<NonZeroU32>().ok()?;
    let per = match unit {
        "s" | "sec" | "second" => Duration::from_secs(1),
        "min" | "minute" => Duration::from_secs(60),
        _ => return None,
    };
    let burst = match burst {
        None => requests,
        Some(burst) => burst.parse::<NonZeroU32>().ok()?,
    };
    Some(RateLimit {
        requests,
        per,
        burst,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn tls_is_off_without_variables() {
        assert_eq!(tls_from_vars(&vars(&[])).unwrap(), None);
    }

    #[test]
    fn client_certificates_are_required_by_default() {
        let tls = tls_from_vars(&vars(&[
            ("BARAZA_TLS_CERT", "/etc/baraza/cert.pem"),
            ("BARAZA_TLS_KEY", "/etc/baraza/key.pem"),
            ("BARAZA_TLS_CLIENT_CA", "/etc/baraza/clients.pem"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(tls.cert, PathBuf::from("/etc/baraza/cert.pem"));
        let client = tls.client_certificates.unwrap();
        assert_eq!(client.ca, PathBuf::from("/etc/baraza/clients.pem"));
        assert_eq!(client.auth, ClientAuth::Required);
    }

    #[test]
    fn client_certificates_can_be_optional() {
        let tls = tls_from_vars(&vars(&[
            ("BARAZA_TLS_CERT", "c"),
            ("BARAZA_TLS_KEY", "k"),
            ("BARAZA_TLS_CLIENT_CA", "ca"),
            ("BARAZA_TLS_CLIENT_AUTH", "optional"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(tls.client_certificates.unwrap().auth, ClientAuth::Optional);
    }

    #[test]
    fn incomplete_tls_settings_are_rejected_by_name() {
        for (pairs, named) in [
            (vec![("BARAZA_TLS_CERT", "c")], "BARAZA_TLS_KEY"),
            (vec![("BARAZA_TLS_KEY", "k")], "BARAZA_TLS_CERT"),
            (
                vec![("BARAZA_TLS_CERT", ""), ("BARAZA_TLS_KEY", "k")],
                "BARAZA_TLS_CERT",
            ),
            (vec![("BARAZA_TLS_CLIENT_CA", "ca")], "BARAZA_TLS_CLIENT_CA"),
            (
                vec![
                    ("BARAZA_TLS_CERT", "c"),
                    ("BARAZA_TLS_KEY", "k"),
                    ("BARAZA_TLS_CLIENT_AUTH", "required"),
                ],
                "BARAZA_TLS_CLIENT_AUTH",
            ),
            (
                vec![
                    ("BARAZA_TLS_CERT", "c"),
                    ("BARAZA_TLS_KEY", "k"),
                    ("BARAZA_TLS_CLIENT_CA", "ca"),
                    ("BARAZA_TLS_CLIENT_AUTH", "sometimes"),
                ],
                "BARAZA_TLS_CLIENT_AUTH",
            ),
        ] {
            let err = tls_from_vars(&vars(&pairs)).unwrap_err();
            assert!(err.contains(named), "{pairs:?}: {err}");
            assert!(!err.contains('\n'));
        }
    }

    fn check_rate(value: &str, expected: Option<(u32, u64, u32)>) {
        let parsed = rate_limit_from_vars(&vars(&[("BARAZA_RATE_LIMIT", value)]));
        match expected {
            None => {
                let err = parsed.unwrap_err();
                assert!(err.contains("BARAZA_RATE_LIMIT"), "{value}: {err}");
            }
            Some((requests, per_secs, burst)) => {
                let limit = parsed.unwrap().unwrap();
                assert_eq!(limit.requests.get(), requests, "{value}");
                assert_eq!(limit.per, Duration::from_secs(per_secs), "{value}");
                assert_eq!(limit.burst.get(), burst, "{value}");
            }
        }
    }

    #[test]
    fn rate_limits_parse() {
        check_rate("50/s burst 100", Some((50, 1, 100)));
        check_rate("50/s", Some((50, 1, 50)));
        check_rate("  600/min   burst 20 ", Some((600, 60, 20)));
        check_rate("1/second", Some((1, 1, 1)));
        check_rate("0/s", None);
        check_rate("50/s burst 0", None);
        check_rate("50/h", None);
        check_rate("50", None);
        check_rate("50/s burst", None);
        check_rate("fast", None);
    }

    #[test]
    fn rate_limit_is_off_unless_set() {
        assert_eq!(rate_limit_from_vars(&vars(&[])).unwrap(), None);
        let off = vars(&[("BARAZA_RATE_LIMIT", "off")]);
        assert_eq!(rate_limit_from_vars(&off).unwrap(), None);
    }

    #[test]
    fn default_base_url_is_https_with_tls() {
        let mut settings = super::super::Settings::default();
        let bound = "127.0.0.1:8443".parse().unwrap();
        assert_eq!(settings.public_base(bound), "http://127.0.0.1:8443/fhir");
        settings.tls =
            tls_from_vars(&vars(&[("BARAZA_TLS_CERT", "c"), ("BARAZA_TLS_KEY", "k")])).unwrap();
        assert_eq!(settings.public_base(bound), "https://127.0.0.1:8443/fhir");
    }

    #[test]
    fn rate_limit_prints_as_configured() {
        let limit = parse_rate_limit("50/s burst 100").unwrap();
        assert_eq!(limit.to_string(), "50/s burst 100");
        assert_eq!(limit.replenish_interval(), Duration::from_millis(20));
    }
}
