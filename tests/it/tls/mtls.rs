//! Client certificates (mTLS): required or optional, only from
//! BARAZA_TLS_CLIENT_CA, and the verified certificate's identity reaching
//! the request handling.

use super::certs::{Authority, Dir};
use super::{https_client, tls_settings};
use crate::harness::spawn_app_with;
use actix_web::{App, HttpRequest, HttpServer, web};
use baraza::config::ClientAuth;
use baraza::http::tls::client_certificate_identity;

/// The status of a GET, or `None` when the TLS handshake (or the
/// connection right after it) was refused.
async fn status(client: &reqwest::Client, url: &str) -> Option<u16> {
    client
        .get(url)
        .send()
        .await
        .ok()
        .map(|r| r.status().as_u16())
}

#[tokio::test]
async fn required_client_certificates_refuse_anonymous_and_foreign_clients() {
    let dir = Dir::new();
    let ca = Authority::new(&dir, "ca");
    let other_ca = Authority::new(&dir, "other-ca");
    let server = ca.server(&dir, &["localhost", "127.0.0.1"]);
    let integrator = ca.client(&dir, "dhis2-kenya");
    let impostor = other_ca.client(&dir, "dhis2-kenya");
    let app =
        spawn_app_with(|s| s.tls = Some(tls_settings(&server, Some((&ca, ClientAuth::Required)))))
            .await;
    let url = app.url("metadata");
    assert_eq!(status(&https_client(&ca, None), &url).await, None);
    assert_eq!(
        status(&https_client(&ca, Some(&impostor)), &url).await,
        None
    );
    assert_eq!(
        status(&https_client(&ca, Some(&integrator)), &url).await,
        Some(200)
    );
}

#[tokio::test]
async fn optional_client_certificates_admit_anonymous_clients_but_not_foreign_ones() {
    let dir = Dir::new();
    let ca = Authority::new(&dir, "ca");
    let other_ca = Authority::new(&dir, "other-ca");
    let server = ca.server(&dir, &["localhost", "127.0.0.1"]);
    let integrator = ca.client(&dir, "dhis2-kenya");
    let impostor = other_ca.client(&dir, "dhis2-kenya");
    let app =
        spawn_app_with(|s| s.tls = Some(tls_settings(&server, Some((&ca, ClientAuth::Optional)))))
            .await;
    let url = app.url("metadata");
    assert_eq!(status(&https_client(&ca, None), &url).await, Some(200));
    assert_eq!(
        status(&https_client(&ca, Some(&impostor)), &url).await,
        None
    );
    assert_eq!(
        status(&https_client(&ca, Some(&integrator)), &url).await,
        Some(200)
    );
}

async fn whoami(req: HttpRequest) -> String {
    client_certificate_identity(&req).unwrap_or_else(|| "nobody".to_owned())
}

/// Baraza's own TLS set-up and `on_connect` hook on a one-route server, so
/// that what the request handling sees can be read back.
#[tokio::test]
async fn the_verified_certificate_names_the_client_to_request_handling() {
    let dir = Dir::new();
    let ca = Authority::new(&dir, "ca");
    let server = ca.server(&dir, &["127.0.0.1"]);
    let integrator = ca.client(&dir, "dhis2-kenya");
    let settings = tls_settings(&server, Some((&ca, ClientAuth::Optional)));
    let config = baraza::http::tls::server_config(&settings).expect("server config");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = HttpServer::new(|| App::new().route("/whoami", web::get().to(whoami)))
        .workers(1)
        .on_connect(baraza::http::tls::on_connect)
        .listen_rustls_0_23(listener, config)
        .expect("listen")
        .run();
    let handle = server.handle();
    tokio::spawn(server);
    let url = format!("https://127.0.0.1:{port}/whoami");
    for (identity, expected) in [(Some(&integrator), "dhis2-kenya"), (None, "nobody")] {
        let response = https_client(&ca, identity)
            .get(&url)
            .send()
            .await
            .expect("request");
        assert_eq!(response.text().await.expect("body"), expected);
    }
    handle.stop(false).await;
}
