//! Authentication over HTTP across time (issue 4): a running Baraza keeps
//! accepting tokens when the provider rotates its signing key, and counts
//! every token of one client against that client's one rate limit.

use crate::harness::{TestApp, spawn_app_with};
use crate::oidc::OidcProvider;
use baraza::config::Settings;

async fn status(app: &TestApp, token: &str, path: &str) -> u16 {
    let response = app
        .request(reqwest::Method::GET, path)
        .bearer_auth(token)
        .send()
        .await
        .expect("GET");
    response.status().as_u16()
}

#[tokio::test]
async fn auth_a_running_server_accepts_tokens_signed_by_a_rotated_key() {
    let provider = OidcProvider::start().await;
    let settings = provider.settings();
    let app = spawn_app_with(move |s| s.oidc = Some(settings)).await;
    let before = provider.token("admin-client").await;
    assert_eq!(status(&app, &before, "Patient?_count=1").await, 200);

    provider.rotate().await;
    let after = provider.token("admin-client").await;
    assert_ne!(before, after);
    // The server has never seen the new kid: it refetches the key set.
    assert_eq!(status(&app, &after, "Patient?_count=1").await, 200);
    // Tokens of the earlier key stay valid while the provider publishes it.
    assert_eq!(status(&app, &before, "Patient?_count=1").await, 200);
}

#[tokio::test]
async fn auth_every_token_of_a_client_counts_against_one_rate_limit() {
    let provider = OidcProvider::start().await;
    let settings = provider.settings();
    let limit = Settings::from_vars([("BARAZA_RATE_LIMIT".to_owned(), "1/min burst 2".to_owned())])
        .expect("rate limit")
        .rate_limit;
    let app = spawn_app_with(move |s| {
        s.oidc = Some(settings);
        s.rate_limit = limit;
    })
    .await;
    // Three tokens of one client: each is new to the limiter before
    // authentication, but after it all three are the same client.
    let mut tokens = Vec::new();
    for _ in 0..3 {
        tokens.push(provider.token("integrator-a").await);
    }
    assert_eq!(status(&app, &tokens[0], "Patient?_count=1").await, 200);
    assert_eq!(status(&app, &tokens[1], "Patient?_count=1").await, 200);
    let response = app
        .request(reqwest::Method::GET, "Patient?_count=1")
        .bearer_auth(&tokens[2])
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), 429);
    assert!(response.headers().contains_key("retry-after"));
    // Another client has its own bucket.
    let other = provider.token("integrator-b").await;
    assert_eq!(status(&app, &other, "Patient?_count=1").await, 200);
}
