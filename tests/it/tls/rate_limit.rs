//! Per-client rate limits: a burst, then 429 with the real wait in
//! Retry-After and an OperationOutcome; one bucket per client (token or
//! verified certificate), and probes never limited.

use super::certs::{Authority, Dir};
use super::{https_client, tls_settings};
use crate::harness::{TestApp, spawn_app_with, status_json};
use baraza::config::{ClientAuth, RateLimit, Settings};

fn rate_limit(value: &str) -> RateLimit {
    Settings::from_vars([("BARAZA_RATE_LIMIT".to_owned(), value.to_owned())])
        .expect("rate limit")
        .rate_limit
        .expect("a limit")
}

async fn limited_app(value: &str) -> TestApp {
    let limit = rate_limit(value);
    spawn_app_with(|s| s.rate_limit = Some(limit)).await
}

/// The status of `GET /fhir/metadata` with `Authorization: token`, if any.
async fn metadata_status(app: &TestApp, token: Option<&str>) -> u16 {
    let mut request = app.request(reqwest::Method::GET, "metadata");
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("GET").status().as_u16()
}

#[tokio::test]
async fn burst_plus_one_rapid_requests_get_429_with_retry_after() {
    let app = limited_app("1/min burst 3").await;
    for _ in 0..3 {
        assert_eq!(metadata_status(&app, None).await, 200);
    }
    let response = app.get("metadata").await;
    let retry_after: u64 = response
        .headers()
        .get("retry-after")
        .expect("Retry-After")
        .to_str()
        .expect("ascii")
        .parse()
        .expect("whole seconds");
    let (status, body) = status_json(response).await;
    assert_eq!(status, 429);
    // One request a minute: the next is allowed about a minute after the burst.
    assert!(
        (50..=60).contains(&retry_after),
        "Retry-After: {retry_after}"
    );
    assert_eq!(body["resourceType"], "OperationOutcome", "{body}");
    assert_eq!(body["issue"][0]["code"], "throttled", "{body}");
    // Probes are not limited.
    let health = app
        .client
        .get(app.base.replace("/fhir", "/health"))
        .send()
        .await;
    assert_eq!(health.expect("health").status(), 200);
}

#[tokio::test]
async fn each_bearer_token_and_each_address_has_its_own_bucket() {
    let app = limited_app("1/min").await;
    assert_eq!(metadata_status(&app, Some("token-a")).await, 200);
    assert_eq!(metadata_status(&app, Some("token-a")).await, 429);
    assert_eq!(metadata_status(&app, Some("token-b")).await, 200);
    assert_eq!(metadata_status(&app, None).await, 200);
    assert_eq!(metadata_status(&app, None).await, 429);
}

#[tokio::test]
async fn unlimited_without_a_setting() {
    let app = spawn_app_with(|_| {}).await;
    for _ in 0..30 {
        assert_eq!(metadata_status(&app, None).await, 200);
    }
}

/// The bucket follows the certificate's identity across connections, and
/// another integrator on the same address has its own.
#[tokio::test]
async fn a_verified_client_certificate_keys_the_limit() {
    let dir = Dir::new();
    let ca = Authority::new(&dir, "ca");
    let server = ca.server(&dir, &["localhost", "127.0.0.1"]);
    let (kenya, uganda) = (
        ca.client(&dir, "dhis2-kenya"),
        ca.client(&dir, "dhis2-uganda"),
    );
    let limit = rate_limit("1/min burst 2");
    let app = spawn_app_with(|s| {
        s.tls = Some(tls_settings(&server, Some((&ca, ClientAuth::Required))));
        s.rate_limit = Some(limit);
    })
    .await;
    let url = app.url("metadata");
    let get = |client: reqwest::Client| {
        let url = url.clone();
        async move { client.get(url).send().await.expect("GET").status().as_u16() }
    };
    assert_eq!(get(https_client(&ca, Some(&kenya))).await, 200);
    assert_eq!(get(https_client(&ca, Some(&kenya))).await, 200);
    assert_eq!(get(https_client(&ca, Some(&kenya))).await, 429);
    assert_eq!(get(https_client(&ca, Some(&uganda))).await, 200);
}
