//! PostgreSQL over TLS (issue 4): reads libpq's `sslmode` and `sslrootcert`
//! from BARAZA_DATABASE_URL (tokio-postgres knows neither `verify-full` nor
//! `sslrootcert`) and connects through rustls when the URL asks for a
//! verified server.
//!
//! `verify-full` checks the chain and the host name, `verify-ca` the chain
//! only. `allow`, `prefer` and `require` are refused: each would encrypt
//! without checking who answers, so anyone on the network path could pose as
//! the database and read every record. Without `sslmode` (or with
//! `disable`) the connection is plain, as on the embedded cluster's socket.

use percent_encoding::percent_decode_str;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use std::fmt;
use std::sync::{Arc, OnceLock};
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres_rustls::MakeRustlsConnect;

/// How to reach the database: plain, or TLS verified against given roots.
#[derive(Clone)]
pub enum DbTls {
    Off,
    Verified(MakeRustlsConnect),
}

impl fmt::Debug for DbTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DbTls::Off => "DbTls::Off",
            DbTls::Verified(_) => "DbTls::Verified",
        })
    }
}

/// The TLS of the one database server this process serves from.
static PROCESS_TLS: OnceLock<DbTls> = OnceLock::new();

/// Sets, once at start-up, the TLS that [`super::connect`] and
/// [`super::pool`] use: every connection the process makes to
/// BARAZA_DATABASE_URL's server then goes through it, including those of
/// commands that know nothing of TLS. A URL that asks for TLS makes
/// tokio-postgres require it, so a connection made without this fails
/// instead of falling back to plain text.
pub fn set_process_tls(tls: DbTls) {
    let _ = PROCESS_TLS.set(tls);
}

pub(crate) fn process_tls() -> &'static DbTls {
    PROCESS_TLS.get().unwrap_or(&DbTls::Off)
}

/// BARAZA_DATABASE_URL, understood: tokio-postgres settings and the TLS to
/// use. (No `Debug`: the settings hold the password.)
pub struct DatabaseUrl {
    pub config: tokio_postgres::Config,
    pub tls: DbTls,
}

/// The libpq TLS parameters, taken out of the URL.
#[derive(Default)]
struct SslParams {
    mode: Option<String>,
    rootcert: Option<String>,
}

/// Parses a `postgres://` URL or a `key=value` string. The error is one
/// line naming BARAZA_DATABASE_URL and never repeats the URL (it may hold a
/// password).
pub fn parse_database_url(url: &str) -> Result<DatabaseUrl, String> {
    let (rest, ssl) = take_ssl_params(url)?;
    let mut config: tokio_postgres::Config = rest
        .parse()
        .map_err(|e| format!("BARAZA_DATABASE_URL is not a valid PostgreSQL URL: {e}"))?;
    let verify_host = match ssl.mode.as_deref() {
        None => return Ok(plain(config)),
        Some("disable") => {
            config.ssl_mode(SslMode::Disable);
            return Ok(plain(config));
        }
        Some(mode @ ("allow" | "prefer" | "require")) => {
            return Err(format!(
                "BARAZA_DATABASE_URL: sslmode={mode} would encrypt without checking the server's certificate, \
                 so anyone on the network path could pose as the database; use sslmode=verify-full with \
                 sslrootcert=<PEM file of the CA> (or sslmode=disable on a trusted socket)"
            ));
        }
        Some("verify-full") => true,
        Some("verify-ca") => false,
        Some(other) => {
            return Err(format!(
                "BARAZA_DATABASE_URL: sslmode={other:?} is not valid: expected verify-full, verify-ca or disable"
            ));
        }
    };
    let hosts = config.get_hosts();
    if hosts.is_empty() || hosts.iter().any(|h| matches!(h, Host::Unix(_))) {
        return Err(
            "BARAZA_DATABASE_URL: sslmode=verify-full and verify-ca need host=<the name in the server's certificate>; \
             PostgreSQL does not use TLS on a unix socket"
                .to_owned(),
        );
    }
    let roots = root_store(ssl.rootcert.as_deref())?;
    config.ssl_mode(SslMode::Require);
    let client = client_config(roots, verify_host)?;
    Ok(DatabaseUrl {
        config,
        tls: DbTls::Verified(MakeRustlsConnect::new(client)),
    })
}

fn plain(config: tokio_postgres::Config) -> DatabaseUrl {
    DatabaseUrl {
        config,
        tls: DbTls::Off,
    }
}

/// Removes `sslmode` and `sslrootcert` from a URL's query or a key=value
/// string, returning the rest for tokio-postgres.
fn take_ssl_params(url: &str) -> Result<(String, SslParams), String> {
    let mut ssl = SslParams::default();
    let mut take = |key: &str, value: String| -> Result<bool, String> {
        match key {
            "sslmode" => ssl.mode = Some(value),
            "sslrootcert" => ssl.rootcert = Some(value),
            "sslcert" | "sslkey" | "sslpassword" | "sslcrl" | "sslcrldir" => {
                return Err(format!(
                    "BARAZA_DATABASE_URL: {key} is not supported: Baraza authenticates to PostgreSQL with a password or SCRAM"
                ));
            }
            _ => return Ok(false),
        }
        Ok(true)
    };
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let Some((base, query)) = url.split_once('?') else {
            return Ok((url.to_owned(), ssl));
        };
        let mut kept = Vec::new();
        for pair in query.split('&') {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |s: &str| percent_decode_str(s).decode_utf8_lossy().into_owned();
            if !take(&decode(key), decode(value))? {
                kept.push(pair);
            }
        }
        let rest = if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        return Ok((rest, ssl));
    }
    // A string tokio-postgres cannot split either is left to its error.
    let Some(pairs) = split_key_values(url) else {
        return Ok((url.to_owned(), ssl));
    };
    let mut kept = Vec::new();
    for (key, value) in pairs {
        if !take(&key, value.clone())? {
            let quoted = value.replace('\\', "\\\\").replace('\'', "\\'");
            kept.push(format!("{key}='{quoted}'"));
        }
    }
    Ok((kept.join(" "), ssl))
}

/// Splits libpq's `key = value` form (values bare or single-quoted, with
/// backslash escapes).
fn split_key_values(text: &str) -> Option<Vec<(String, String)>> {
    let mut pairs = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Some(pairs);
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        chars.next_if_eq(&'=')?;
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next()? {
                    '\\' => value.push(chars.next()?),
                    '\'' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                value.push(if c == '\\' { chars.next()? } else { c });
            }
        }
        pairs.push((key, value));
    }
}

/// The CAs that may sign the server's certificate: a PEM file, or
/// `system` for the operating system's store (as libpq 16).
fn root_store(rootcert: Option<&str>) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    match rootcert {
        None | Some("") => {
            return Err(
                "BARAZA_DATABASE_URL: sslmode=verify-full and verify-ca need sslrootcert=<PEM file of the CA> (or sslrootcert=system)"
                    .to_owned(),
            );
        }
        Some("system") => {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
        }
        Some(path) => {
            let certificates = CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| format!("BARAZA_DATABASE_URL: cannot read sslrootcert {path}: {e}"))?;
            for certificate in certificates {
                roots.add(certificate).map_err(|e| {
                    format!("BARAZA_DATABASE_URL: sslrootcert {path} holds a bad certificate: {e}")
                })?;
            }
        }
    }
    if roots.is_empty() {
        return Err(
            "BARAZA_DATABASE_URL: sslrootcert names no CA certificate (expected PEM)".to_owned(),
        );
    }
    Ok(roots)
}

fn client_config(roots: RootCertStore, verify_host: bool) -> Result<ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("BARAZA_DATABASE_URL: cannot set up TLS: {e}"))?;
    let config = if verify_host {
        builder.with_root_certificates(roots).with_no_client_auth()
    } else {
        let chain = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| format!("BARAZA_DATABASE_URL: cannot set up TLS: {e}"))?;
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(ChainOnly(chain)))
            .with_no_client_auth()
    };
    Ok(config)
}

/// `sslmode=verify-ca`: the chain must verify; the name may differ. The
/// WebPKI verifier checks the chain before the name, so a name mismatch is
/// the only error forgiven.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ssl_params(url: &str) -> (String, Option<String>, Option<String>) {
        let (rest, ssl) = take_ssl_params(url).unwrap();
        (rest, ssl.mode, ssl.rootcert)
    }

    #[test]
    fn ssl_params_leave_urls() {
        let (rest, mode, root) = ssl_params(
            "postgres://u:p@db.example:5432/baraza?application_name=x&sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem",
        );
        assert_eq!(
            rest,
            "postgres://u:p@db.example:5432/baraza?application_name=x"
        );
        assert_eq!(mode.as_deref(), Some("verify-full"));
        assert_eq!(root.as_deref(), Some("/etc/ca.pem"));
        let (rest, mode, _) = ssl_params("postgresql://db/x?sslmode=verify-ca");
        assert_eq!(rest, "postgresql://db/x");
        assert_eq!(mode.as_deref(), Some("verify-ca"));
    }

    #[test]
    fn ssl_params_leave_key_value_strings() {
        let (rest, mode, root) = ssl_params(
            r"host=db.example  user = baraza password='it\'s' sslmode=verify-full sslrootcert='/etc/my ca.pem'",
        );
        assert_eq!(mode.as_deref(), Some("verify-full"));
        assert_eq!(root.as_deref(), Some("/etc/my ca.pem"));
        assert!(!rest.contains("ssl"), "{rest}");
        let config: tokio_postgres::Config = rest.parse().unwrap();
        assert_eq!(config.get_user(), Some("baraza"));
    }

    #[test]
    fn quoted_values_survive_the_rewrite() {
        let (rest, _, _) = ssl_params(r"host=db password='a b\'c\\d' sslmode=disable");
        let config: tokio_postgres::Config = rest.parse().unwrap();
        assert_eq!(config.get_password(), Some(&br"a b'c\d"[..]));
    }

    #[test]
    fn plain_urls_stay_plain() {
        for url in [
            "postgres://u:p@localhost/db",
            "host=/run/baraza port=5432 user=baraza dbname=baraza",
            "postgres://u@db/x?sslmode=disable",
        ] {
            let parsed = parse_database_url(url).unwrap();
            assert!(matches!(parsed.tls, DbTls::Off), "{url}");
        }
    }

    #[test]
    fn unverified_and_unsupported_modes_are_refused_with_one_line() {
        for (url, says) in [
            ("postgres://u:secretpw@db/x?sslmode=require", "verify-full"),
            ("postgres://u:secretpw@db/x?sslmode=prefer", "verify-full"),
            ("host=db password=secretpw sslmode=allow", "verify-full"),
            ("postgres://u:secretpw@db/x?sslmode=strict", "not valid"),
            (
                "postgres://u:secretpw@db/x?sslmode=verify-full",
                "sslrootcert",
            ),
            (
                "host=/run/pg password=secretpw sslmode=verify-full sslrootcert=/x",
                "unix socket",
            ),
            (
                "postgres://u:secretpw@db/x?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
                "/nonexistent/ca.pem",
            ),
            ("postgres://u:secretpw@db/x?sslkey=/k.pem", "sslkey"),
        ] {
            let Err(err) = parse_database_url(url) else {
                panic!("{url} was accepted");
            };
            assert!(err.starts_with("BARAZA_DATABASE_URL"), "{err}");
            assert!(err.contains(says), "{url}: {err}");
            assert!(!err.contains("secretpw") && !err.contains('\n'), "{err}");
        }
    }
}
