//! HTTPS at Baraza's own listener (issue 4): the rustls server
//! configuration from BARAZA_TLS_* (TLS 1.2 and 1.3 only), optional client
//! certificates (mTLS), and the identity a verified client certificate
//! gives the request handling.
//!
//! Identity rule: the subject's Common Name (CN); when the subject has no
//! CN, the first DNS name of subjectAltName, else its first URI. Only a
//! certificate that chained to BARAZA_TLS_CLIENT_CA during the handshake is
//! ever read, so the name is as trustworthy as that CA's issuance.

use crate::config::{ClientAuth, TlsSettings};
use actix_tls::accept::rustls_0_23::TlsStream;
use actix_web::HttpRequest;
use actix_web::dev::Extensions;
use actix_web::rt::net::TcpStream;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use std::any::Any;
use std::path::Path;
use std::sync::Arc;
use x509_cert::der::{Decode, Tag, Tagged};
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;

/// The protocol versions served: TLS 1.0 and 1.1 are deprecated (RFC 8996)
/// and rustls does not implement them.
pub const PROTOCOL_VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// Builds the rustls configuration, reading the PEM files. Each error is
/// one line naming the variable whose file is at fault; key material is
/// never part of it.
pub fn server_config(tls: &TlsSettings) -> Result<ServerConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certificates = read_certificates(&tls.cert, "BARAZA_TLS_CERT")?;
    let key = read_private_key(&tls.key)?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(PROTOCOL_VERSIONS)
        .map_err(|e| format!("cannot set up TLS: {e}"))?;
    let builder = match &tls.client_certificates {
        None => builder.with_no_client_auth(),
        Some(client) => {
            let mut roots = RootCertStore::empty();
            for certificate in read_certificates(&client.ca, "BARAZA_TLS_CLIENT_CA")? {
                roots.add(certificate).map_err(|e| {
                    format!(
                        "BARAZA_TLS_CLIENT_CA: {} holds a certificate that cannot be a CA: {e}",
                        client.ca.display()
                    )
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = match client.auth {
                ClientAuth::Required => verifier,
                ClientAuth::Optional => verifier.allow_unauthenticated(),
            };
            let verifier = verifier
                .build()
                .map_err(|e| format!("BARAZA_TLS_CLIENT_CA: cannot verify clients with it: {e}"))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    builder
        .with_single_cert(certificates, key)
        .map_err(|e| format!("BARAZA_TLS_KEY does not fit the certificate in BARAZA_TLS_CERT: {e}"))
}

/// Every certificate in a PEM file; none at all is an error.
fn read_certificates(path: &Path, variable: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let shown = path.display();
    let certificates = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("{variable}: cannot read {shown}: {}", pem_error(&e)))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{variable}: {shown} is not PEM: {}", pem_error(&e)))?;
    if certificates.is_empty() {
        return Err(format!(
            "{variable}: {shown} holds no certificate (expected PEM BEGIN CERTIFICATE)"
        ));
    }
    Ok(certificates)
}

/// The first private key of a PEM file. The parser's own messages are left
/// out: they could quote the file.
fn read_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| {
        let why = match e {
            rustls::pki_types::pem::Error::Io(io) => io.kind().to_string(),
            rustls::pki_types::pem::Error::NoItemsFound => {
                "no private key in it (expected PEM PKCS#8, PKCS#1 or SEC1)".to_owned()
            }
            _ => "not a PEM private key".to_owned(),
        };
        format!("BARAZA_TLS_KEY: cannot use {}: {why}", path.display())
    })
}

/// A PEM reading error without the file's content.
fn pem_error(e: &rustls::pki_types::pem::Error) -> String {
    match e {
        rustls::pki_types::pem::Error::Io(io) => io.kind().to_string(),
        _ => "malformed PEM".to_owned(),
    }
}

/// The identity of a connection's verified client certificate, kept with
/// the connection (see [`client_certificate_identity`]).
#[derive(Debug, Clone, PartialEq, Eq)]
struct ClientCertificate {
    identity: String,
}

/// actix-web's `on_connect` hook: records the identity of the client
/// certificate that the handshake verified, once per connection.
pub fn on_connect(connection: &dyn Any, data: &mut Extensions) {
    let Some(stream) = connection.downcast_ref::<TlsStream<TcpStream>>() else {
        return;
    };
    let (_, session) = stream.get_ref();
    let identity = session
        .peer_certificates()
        .and_then(|chain| chain.first())
        .and_then(|end_entity| certificate_identity(end_entity));
    if let Some(identity) = identity {
        data.insert(ClientCertificate { identity });
    }
}

/// The identity of the client certificate the connection of `req` presented
/// and the handshake verified against BARAZA_TLS_CLIENT_CA (the rule is at
/// the top of this file); `None` for plain HTTP, TLS without a client
/// certificate, or a certificate naming nothing.
pub fn client_certificate_identity(req: &HttpRequest) -> Option<String> {
    req.conn_data::<ClientCertificate>()
        .map(|certificate| certificate.identity.clone())
}

/// The identity a DER certificate names: subject CN, else first DNS
/// subjectAltName, else first URI subjectAltName.
pub fn certificate_identity(der: &[u8]) -> Option<String> {
    let certificate = x509_cert::Certificate::from_der(der).ok()?;
    let tbs = &certificate.tbs_certificate;
    let common_name = tbs
        .subject
        .0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .filter(|attribute| attribute.oid == x509_cert::der::oid::db::rfc4519::CN)
        .find_map(|attribute| match attribute.value.tag() {
            Tag::Utf8String | Tag::PrintableString | Tag::Ia5String | Tag::TeletexString => {
                std::str::from_utf8(attribute.value.value()).ok()
            }
            _ => None,
        })
        .filter(|name| !name.is_empty());
    if let Some(name) = common_name {
        return Some(name.to_owned());
    }
    let (_, names) = tbs.get::<SubjectAltName>().ok()??;
    let dns = names.0.iter().find_map(|name| match name {
        GeneralName::DnsName(dns) => Some(dns.as_str().to_owned()),
        _ => None,
    });
    dns.or_else(|| {
        names.0.iter().find_map(|name| match name {
            GeneralName::UniformResourceIdentifier(uri) => Some(uri.as_str().to_owned()),
            _ => None,
        })
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::ClientCertificates;
    use rcgen::{CertificateParams, DnType, KeyPair, SanType};

    /// A self-signed certificate with `cn` (if any) and `sans`.
    fn certificate(cn: Option<&str>, sans: Vec<SanType>) -> Vec<u8> {
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::OrganizationName, "Ministry of Health");
        if let Some(cn) = cn {
            params.distinguished_name.push(DnType::CommonName, cn);
        }
        params.subject_alt_names = sans;
        let key = KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    fn dns(name: &str) -> SanType {
        SanType::DnsName(name.try_into().unwrap())
    }

    fn uri(name: &str) -> SanType {
        SanType::URI(name.try_into().unwrap())
    }

    #[test]
    fn identity_is_the_common_name_then_a_dns_name_then_a_uri() {
        for (cn, sans, expected) in [
            (
                Some("dhis2-kenya"),
                vec![dns("dhis2.example")],
                Some("dhis2-kenya"),
            ),
            (
                None,
                vec![dns("dhis2.example"), dns("b.example")],
                Some("dhis2.example"),
            ),
            (
                None,
                vec![uri("urn:baraza:integrator:lab-1"), dns("lab.example")],
                Some("lab.example"),
            ),
            (
                None,
                vec![uri("urn:baraza:integrator:lab-1")],
                Some("urn:baraza:integrator:lab-1"),
            ),
            (None, vec![], None),
        ] {
            let der = certificate(cn, sans);
            assert_eq!(certificate_identity(&der).as_deref(), expected, "{cn:?}");
        }
    }

    #[test]
    fn garbage_names_nobody() {
        assert_eq!(certificate_identity(b"not a certificate"), None);
    }

    /// Writes `contents` to a fresh file and returns its path.
    fn file(dir: &Path, name: &str, contents: &str) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    #[test]
    fn load_errors_name_the_variable_in_one_line_without_key_material() {
        let dir = std::env::temp_dir().join(format!("baraza-tls-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = KeyPair::generate().unwrap();
        let other_key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let cert_pem = file(&dir, "cert.pem", &cert.pem());
        let key_pem = file(&dir, "key.pem", &key.serialize_pem());
        let other_key_pem = file(&dir, "other.pem", &other_key.serialize_pem());
        let broken_key = format!(
            "{}garbage-----END PRIVATE KEY-----\n",
            &key.serialize_pem()[..60]
        );
        let broken_key_pem = file(&dir, "broken.pem", &broken_key);
        let missing = dir.join("missing.pem");
        let settings = |cert: &Path, key: &Path, ca: Option<&Path>| TlsSettings {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            client_certificates: ca.map(|ca| ClientCertificates {
                ca: ca.to_path_buf(),
                auth: ClientAuth::Required,
            }),
        };
        assert!(server_config(&settings(&cert_pem, &key_pem, None)).is_ok());
        assert!(server_config(&settings(&cert_pem, &key_pem, Some(&cert_pem))).is_ok());
        for (tls, named) in [
            (settings(&missing, &key_pem, None), "BARAZA_TLS_CERT"),
            (settings(&key_pem, &key_pem, None), "BARAZA_TLS_CERT"),
            (settings(&cert_pem, &missing, None), "BARAZA_TLS_KEY"),
            (settings(&cert_pem, &cert_pem, None), "BARAZA_TLS_KEY"),
            (settings(&cert_pem, &broken_key_pem, None), "BARAZA_TLS_KEY"),
            (settings(&cert_pem, &other_key_pem, None), "BARAZA_TLS_KEY"),
            (
                settings(&cert_pem, &key_pem, Some(&missing)),
                "BARAZA_TLS_CLIENT_CA",
            ),
            (
                settings(&cert_pem, &key_pem, Some(&key_pem)),
                "BARAZA_TLS_CLIENT_CA",
            ),
        ] {
            let err = server_config(&tls).unwrap_err();
            assert!(err.contains(named), "{tls:?}: {err}");
            assert!(!err.contains('\n'), "{err}");
            for pem in [key.serialize_pem(), other_key.serialize_pem()] {
                let body = pem.lines().nth(1).unwrap();
                assert!(!err.contains(body), "key material in {err}");
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
