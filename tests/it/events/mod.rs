//! Change events (issue 9): the outbox, R4 Subscriptions over rest-hook
//! and websocket, and several instances on one database.

mod instances;
mod outbox;
pub mod receiver;
mod replica;
mod subscriptions;

use crate::harness::{TestApp, status_json};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// A rest-hook Subscription (no payload unless `payload` names one).
pub fn rest_hook(criteria: &str, endpoint: &str, payload: Option<&str>) -> Value {
    let mut channel = json!({"type": "rest-hook", "endpoint": endpoint,
                             "header": ["X-Hook-Secret: s3cret"]});
    if let Some(payload) = payload {
        channel["payload"] = json!(payload);
    }
    json!({"resourceType": "Subscription", "status": "requested",
           "reason": "test", "criteria": criteria, "channel": channel})
}

/// Creates a subscription and returns its id.
pub async fn subscribe(app: &TestApp, subscription: &Value) -> String {
    let created = app.create(subscription).await;
    created["id"].as_str().unwrap().to_owned()
}

/// Polls a Subscription until `check` holds for it.
pub async fn wait_subscription(
    app: &TestApp,
    id: &str,
    limit: Duration,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let (status, resource) = status_json(app.get(&format!("Subscription/{id}")).await).await;
        assert_eq!(status, 200, "{resource}");
        if check(&resource) {
            return resource;
        }
        assert!(
            Instant::now() < deadline,
            "subscription state not reached: {resource}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Fast settings for tests: short polls, leases and retries.
pub fn fast(settings: &mut baraza::config::Settings) {
    settings.events.poll = Duration::from_millis(50);
    settings.events.lease = Duration::from_secs(2);
    settings.events.retry_max = Duration::from_secs(1);
}
