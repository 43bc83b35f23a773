//! Sending notifications: the rest-hook requests per payload kind, the
//! topic-based handshake, and the Backport IG's notification Bundle.

use super::deliver::Notification;
use super::{Channel, Payload, Subscription};
use crate::events::outbox::Event;
use crate::service::AppState;
use crate::store::TenantCtx;
use serde_json::{Value, json};

/// Sends one notification; the error is the reason, for `Subscription.error`.
pub(super) async fn send(
    state: &AppState,
    http: &reqwest::Client,
    ctx: &TenantCtx,
    subscription: &Subscription,
    notification: &Notification,
    event_number: i64,
) -> Result<(), String> {
    let Channel::RestHook { endpoint, .. } = &subscription.channel else {
        crate::events::websocket::publish(state, ctx, subscription, &notification.event).await;
        return Ok(());
    };
    let event = &notification.event;
    let bundle = |content: Option<&str>| {
        notification_bundle(
            ctx,
            subscription,
            "event-notification",
            Some((event, event_number)),
            content,
        )
        .to_string()
    };
    let request = match (subscription.topic.is_some(), subscription.payload) {
        // Topic-based: always a notification Bundle.
        (true, payload) => http
            .post(endpoint.as_str())
            .header("content-type", "application/fhir+json")
            .body(bundle(
                notification
                    .content
                    .as_deref()
                    .filter(|_| payload == Payload::Full),
            )),
        (false, Payload::Empty) => http.post(endpoint.as_str()),
        (false, Payload::IdOnly) => http
            .post(endpoint.as_str())
            .header("content-type", "application/fhir+json")
            .body(bundle(None)),
        (false, Payload::Full) => {
            let url = format!("{endpoint}/{}/{}", event.resource_type, event.id);
            match &notification.content {
                Some(content) => http
                    .put(url)
                    .header("content-type", "application/fhir+json")
                    .body(content.clone()),
                None => http.delete(url),
            }
        }
    };
    post(
        subscription,
        request,
        &format!("{}/{}", event.resource_type, event.id),
    )
    .await
}

/// Adds the channel's headers, sends, and turns a failure into its reason.
async fn post(
    subscription: &Subscription,
    mut request: reqwest::RequestBuilder,
    what: &str,
) -> Result<(), String> {
    if let Channel::RestHook { headers, .. } = &subscription.channel {
        for (name, value) in headers {
            request = request.header(name.as_str(), value.as_str());
        }
    }
    match request.send().await {
        Ok(response) if response.status().is_success() => Ok(()),
        Ok(response) => Err(format!(
            "the endpoint answered {} to the notification of {what}",
            response.status().as_u16(),
        )),
        Err(e) if e.is_timeout() => Err("the endpoint did not answer in time".to_owned()),
        Err(e) if e.is_connect() => Err("the endpoint cannot be reached".to_owned()),
        Err(_) => Err("the notification could not be sent".to_owned()),
    }
}

/// A topic-based subscription's handshake (Backport IG): a notification
/// Bundle of type `handshake` sent before it becomes active.
pub(super) async fn handshake(
    http: &reqwest::Client,
    ctx: &TenantCtx,
    subscription: &Subscription,
) -> Result<(), String> {
    let Channel::RestHook { endpoint, .. } = &subscription.channel else {
        return Ok(());
    };
    let request = http
        .post(endpoint.as_str())
        .header("content-type", "application/fhir+json")
        .body(notification_bundle(ctx, subscription, "handshake", None, None).to_string());
    post(subscription, request, "the handshake").await
}

/// A Backport IG notification Bundle (R4 form): the status Parameters and,
/// for an event, its number, time and focus (not for `empty` payloads of
/// topic-based subscriptions), then the resource for `full-resource`.
pub fn notification_bundle(
    ctx: &TenantCtx,
    subscription: &Subscription,
    kind: &str,
    event: Option<(&Event, i64)>,
    content: Option<&str>,
) -> Value {
    let subscription_url = format!("{}/Subscription/{}", ctx.base_url, subscription.id);
    let topic = subscription
        .topic
        .clone()
        .map_or_else(|| subscription.resource["criteria"].clone(), Value::String);
    let count = event.map_or(0, |(_, n)| n);
    let mut parameters = vec![
        json!({"name": "subscription", "valueReference": {"reference": subscription_url}}),
        json!({"name": "topic", "valueCanonical": topic}),
        json!({"name": "status", "valueCode": if kind == "handshake" { "requested" } else { "active" }}),
        json!({"name": "type", "valueCode": kind}),
        json!({"name": "events-since-subscription-start", "valueString": count.to_string()}),
    ];
    let mut entries = Vec::new();
    if let Some((event, number)) = event {
        let mut parts = vec![
            json!({"name": "event-number", "valueString": number.to_string()}),
            json!({"name": "timestamp", "valueInstant": crate::store::format_instant(crate::store::now())}),
        ];
        let focus = format!("{}/{}/{}", ctx.base_url, event.resource_type, event.id);
        if subscription.topic.is_none() || subscription.payload != Payload::Empty {
            parts.push(json!({"name": "focus", "valueReference": {"reference": focus}}));
        }
        parameters.push(json!({"name": "notification-event", "part": parts}));
        if let Some(content) = content {
            if let Ok(resource) = serde_json::from_str::<Value>(content) {
                let method = if event.action == "create" {
                    "POST"
                } else {
                    "PUT"
                };
                entries.push(json!({
                    "fullUrl": focus,
                    "resource": resource,
                    "request": {"method": method, "url": format!("{}/{}", event.resource_type, event.id)},
                }));
            }
        }
    }
    let status = json!({"resourceType": "Parameters", "parameter": parameters});
    let mut all = vec![json!({
        "fullUrl": format!("urn:uuid:{}", uuid::Uuid::new_v4()),
        "resource": status,
        "request": {"method": "GET", "url": format!("{subscription_url}/$status")},
        "response": {"status": "200"},
    })];
    all.extend(entries);
    json!({
        "resourceType": "Bundle",
        "type": "history",
        "timestamp": crate::store::format_instant(crate::store::now()),
        "entry": all,
    })
}
