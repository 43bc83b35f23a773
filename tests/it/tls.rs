//! Transport security (issue 4): HTTPS at Baraza's own listener with TLS 1.2
//! and 1.3 only, client certificates (`mtls`), per-client rate limits
//! (`rate_limit`) and PostgreSQL with `sslmode=verify-full` (`postgres`).
//! Every certificate is made at run time (`certs`).

pub mod certs;
mod mtls;
mod postgres;
mod rate_limit;

use crate::harness::{TestApp, spawn_app_with};
use baraza::config::{ClientAuth, ClientCertificates, TlsSettings};
use certs::{Authority, Dir, Issued};
use rustls::pki_types::ServerName;
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Settings that serve `server`'s certificate, asking for client
/// certificates from `clients` when given.
pub fn tls_settings(server: &Issued, clients: Option<(&Authority, ClientAuth)>) -> TlsSettings {
    TlsSettings {
        cert: server.cert_path.clone(),
        key: server.key_path.clone(),
        client_certificates: clients.map(|(ca, auth)| ClientCertificates {
            ca: ca.pem_path.clone(),
            auth,
        }),
    }
}

/// An HTTPS client that trusts only `ca`, presenting `identity` if given.
pub fn https_client(ca: &Authority, identity: Option<&Issued>) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca.reqwest_root());
    if let Some(identity) = identity {
        builder = builder.identity(identity.identity());
    }
    builder.build().expect("https client")
}

/// A server certificate for the loopback names, and an app serving it.
async fn https_app(dir: &Dir, ca: &Authority) -> TestApp {
    let server = ca.server(dir, &["localhost", "127.0.0.1"]);
    spawn_app_with(|s| s.tls = Some(tls_settings(&server, None))).await
}

fn socket_of(app: &TestApp) -> SocketAddr {
    let url = reqwest::Url::parse(&app.base).expect("base URL");
    SocketAddr::from(([127, 0, 0, 1], url.port().expect("port")))
}

/// A rustls client offering exactly one protocol version.
fn client_config(
    ca: &Authority,
    version: &'static rustls::SupportedProtocolVersion,
) -> rustls::ClientConfig {
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_protocol_versions(&[version])
        .expect("protocol version")
        .with_root_certificates(ca.root_store())
        .with_no_client_auth()
}

#[tokio::test]
async fn https_serves_fhir_and_the_default_base_url_is_https() {
    let dir = Dir::new();
    let ca = Authority::new(&dir, "ca");
    let app = https_app(&dir, &ca).await;
    assert!(app.base.starts_with("https://127.0.0.1:"), "{}", app.base);
    let response = https_client(&ca, None)
        .get(app.url("metadata"))
        .send()
        .await
        .expect("HTTPS request");
    assert_eq!(response.status(), 200);
    let capabilities: Value = response.json().await.expect("json");
    assert_eq!(capabilities["resourceType"], "CapabilityStatement");
    assert_eq!(capabilities["implementation"]["url"], app.base.as_str());
    // Plain HTTP to the TLS port gets no HTTP answer.
    let plain = reqwest::Client::new()
        .get(app.url("metadata").replacen("https://", "http://", 1))
        .send()
        .await;
    assert!(plain.is_err(), "plain HTTP was answered: {plain:?}");
}

#[tokio::test]
async fn tls_1_2_and_1_3_handshakes_succeed() {
    let dir = Dir::new();
    let ca = Authority::new(&dir, "ca");
    let app = https_app(&dir, &ca).await;
    for version in [&rustls::version::TLS12, &rustls::version::TLS13] {
        let connector = tokio_rustls::TlsConnector::from(Arc::new(client_config(&ca, version)));
        let tcp = TcpStream::connect(socket_of(&app)).await.expect("connect");
        let name = ServerName::try_from("localhost").expect("name");
        let mut tls = connector
            .connect(name, tcp)
            .await
            .unwrap_or_else(|e| panic!("{:?} handshake failed: {e}", version.version));
        assert_eq!(tls.get_ref().1.protocol_version(), Some(version.version));
        tls.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await
            .expect("write");
        let mut response = Vec::new();
        // The server may close without close_notify; what was read counts.
        let _ = tls.read_to_end(&mut response).await;
        let response = String::from_utf8_lossy(&response);
        assert!(
            response.starts_with("HTTP/1.1 200"),
            "{version:?}: {response}"
        );
    }
}

/// A ClientHello offering only `version` (`[3, 2]` is TLS 1.1: RFC 4346
/// §7.4.1.2, no supported_versions extension) that is otherwise acceptable
/// to a TLS 1.2 server (AEAD suites, signature algorithms, groups), so that
/// the version alone decides. rustls offers no way to make a TLS 1.1 one.
fn client_hello(version: [u8; 2]) -> Vec<u8> {
    fn u16_list(items: &[u16]) -> Vec<u8> {
        let mut out = ((items.len() * 2) as u16).to_be_bytes().to_vec();
        items.iter().for_each(|i| out.extend(i.to_be_bytes()));
        out
    }
    fn extension(kind: u16, data: Vec<u8>) -> Vec<u8> {
        let mut out = kind.to_be_bytes().to_vec();
        out.extend((data.len() as u16).to_be_bytes());
        out.extend(data);
        out
    }
    let mut hello = version.to_vec(); // client_version
    hello.extend([0x42; 32]); // random
    hello.push(0); // no session id
    // ECDHE-ECDSA/RSA with AES-128-GCM and ChaCha20-Poly1305, AES-CBC-SHA.
    hello.extend(u16_list(&[0xc02b, 0xc02f, 0xcca9, 0xcca8, 0xc013, 0x002f]));
    hello.extend([1, 0]); // compression: null only
    let mut extensions = Vec::new();
    extensions.extend(extension(0x000d, u16_list(&[0x0403, 0x0804, 0x0401]))); // signature_algorithms
    extensions.extend(extension(0x000a, u16_list(&[0x001d, 0x0017]))); // supported_groups
    extensions.extend(extension(0x000b, vec![1, 0])); // ec_point_formats: uncompressed
    hello.extend((extensions.len() as u16).to_be_bytes());
    hello.extend(extensions);
    let mut handshake = vec![0x01]; // client_hello
    handshake.extend(&(hello.len() as u32).to_be_bytes()[1..]);
    handshake.extend(hello);
    let mut record = vec![0x16, 0x03, 0x01]; // handshake record, TLS 1.0 framing
    record.extend((handshake.len() as u16).to_be_bytes());
    record.extend(handshake);
    record
}

/// The server's first record in answer to `hello`.
async fn first_record(app: &TestApp, hello: &[u8]) -> Vec<u8> {
    let mut tcp = TcpStream::connect(socket_of(app)).await.expect("connect");
    tcp.write_all(hello).await.expect("write");
    let mut answer = vec![0; 7];
    tokio::time::timeout(
        std::time::Duration::from_secs(5),
        tcp.read_exact(&mut answer),
    )
    .await
    .expect("an answer in time")
    .expect("seven bytes");
    answer
}

#[tokio::test]
async fn a_tls_1_1_client_is_refused_with_a_protocol_version_alert() {
    let dir = Dir::new();
    let ca = Authority::new(&dir, "ca");
    let app = https_app(&dir, &ca).await;
    // The same hello saying TLS 1.2 gets a ServerHello (a handshake record)...
    let answer = first_record(&app, &client_hello([3, 3])).await;
    assert_eq!(answer[0], 22, "no handshake for TLS 1.2: {answer:?}");
    // ...and saying TLS 1.1, a fatal protocol_version alert (70).
    let answer = first_record(&app, &client_hello([3, 2])).await;
    assert_eq!(answer[0], 21, "not an alert: {answer:?}");
    assert_eq!((answer[5], answer[6]), (2, 70), "{answer:?}");
    // And the configuration offers nothing older than TLS 1.2.
    let versions: Vec<_> = baraza::http::tls::PROTOCOL_VERSIONS
        .iter()
        .map(|v| v.version)
        .collect();
    assert_eq!(
        versions,
        [
            rustls::ProtocolVersion::TLSv1_3,
            rustls::ProtocolVersion::TLSv1_2
        ]
    );
}

#[tokio::test]
async fn unusable_tls_files_stop_start_up_naming_the_variable() {
    let dir = Dir::new();
    let ca = Authority::new(&dir, "ca");
    let server = ca.server(&dir, &["localhost"]);
    let other = ca.server(&dir, &["elsewhere.example"]);
    let mut mismatched = tls_settings(&server, None);
    mismatched.key = other.key_path.clone();
    let mut missing_ca = tls_settings(&server, Some((&ca, ClientAuth::Required)));
    if let Some(client) = missing_ca.client_certificates.as_mut() {
        client.ca = dir.path().join("no-such-ca.pem");
    }
    // The TLS files are read before the database is touched.
    let nowhere: tokio_postgres::Config = "host=/nonexistent user=nobody".parse().expect("config");
    for (tls, variable) in [
        (mismatched, "BARAZA_TLS_KEY"),
        (missing_ca, "BARAZA_TLS_CLIENT_CA"),
    ] {
        let settings = baraza::config::Settings {
            listen: "127.0.0.1:0".parse().expect("addr"),
            tls: Some(tls),
            ..Default::default()
        };
        let pool = baraza::db::pool(nowhere.clone(), 1).expect("pool");
        let err = baraza::app::Application::build(&settings, pool)
            .await
            .expect_err("start-up with a bad TLS file");
        let message = format!("{err:#}");
        assert!(message.contains(variable), "{message}");
        assert!(!message.contains('\n'), "{message}");
        assert!(!message.contains(other.key_pem.lines().nth(1).expect("key line")));
    }
}
