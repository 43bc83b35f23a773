//! One delivery round of a subscription: read it, the due events and
//! what matches (as the owner) in one snapshot, then send in order and
//! move the cursor, under the consumer's lease.

use super::owner::owner_context;
use super::send::{handshake, send};
use super::status::{recover, round_failed, set_status};
use super::{Channel, Filter, Payload, Subscription, diagnostics, parse};
use crate::error::{ApiError, Category};
use crate::events::Node;
use crate::events::outbox::{self, Consumer, Event, Position};
use crate::service::route::{Route, SearchScope};
use crate::service::{AppState, Body, FhirRequest, ResponseBody};
use crate::store::{Access, Db, TenantCtx, begin};
use serde_json::Value;
use std::time::Instant;

/// Events read per delivery round.
const BATCH: i64 = 100;

/// One notification to send.
#[derive(Debug)]
pub(super) struct Notification {
    pub(super) event: Event,
    /// The version's JSON, for full-resource payloads.
    pub(super) content: Option<String>,
}

/// What a delivery round found out.
#[derive(Debug)]
enum Round {
    /// The lease was lost: another instance delivers now.
    LostLease,
    /// Delivered (or skipped) up to the batch's end.
    Done { delivered: i64 },
    /// A delivery failed.
    Failed(String),
}

/// Delivers what is due for one subscription consumer held by this node:
/// one batch of events, matched, sent in order, the cursor moved past what
/// was sent. Returns whether more may be waiting.
pub async fn deliver(
    state: &AppState,
    node: &Node,
    http: &reqwest::Client,
    ctx: &TenantCtx,
    consumer: &Consumer,
) -> Result<bool, ApiError> {
    let Some(id) = consumer.name.strip_prefix("Subscription/") else {
        return Ok(false);
    };
    if !consumer.due {
        return Ok(false);
    }
    let lease = node.lease_interval();
    // Read the subscription, the events and what matches, in one snapshot;
    // no transaction stays open while notifications are sent.
    let mut client = state.pool.get().await?;
    let tx = begin(&mut client, ctx, Access::ReadOnly).await?;
    let Some(stored) = crate::store::read::read_current(&tx, ctx, "Subscription", id).await? else {
        return Ok(false);
    };
    let Some(content) = stored.content.as_deref().filter(|_| !stored.deleted) else {
        return Ok(false);
    };
    let resource: Value = serde_json::from_str(content).map_err(ApiError::fault)?;
    let subscription = match parse(&tx, ctx, &resource).await {
        Ok(s) => s,
        Err(e) => {
            drop(tx);
            let reason = format!("the subscription cannot be used: {}", diagnostics(&e));
            round_failed(state, node, ctx, consumer, None, &reason).await?;
            return Ok(false);
        }
    };
    if subscription.status == "off" {
        return Ok(false);
    }
    if let Channel::RestHook { endpoint, .. } = &subscription.channel {
        let allowed = &node.settings.allowed_endpoints;
        if !allowed.is_empty() && !allowed.iter().any(|p| endpoint.starts_with(p.as_str())) {
            drop(tx);
            let reason = format!(
                "the endpoint {endpoint} is not allowed here (BARAZA_SUBSCRIPTION_ENDPOINTS)"
            );
            round_failed(state, node, ctx, consumer, Some(&subscription), &reason).await?;
            return Ok(false);
        }
    }
    let (events, end) =
        outbox::read_after(&tx, ctx, consumer.cursor, node.watermark(), BATCH).await?;
    let more = events.len() as i64 == BATCH;
    let as_owner = match owner_context(state, ctx, consumer.owner.as_ref()).await {
        Ok(c) => c,
        Err(reason) => {
            drop(tx);
            round_failed(state, node, ctx, consumer, Some(&subscription), &reason).await?;
            return Ok(false);
        }
    };
    let notifications = match matching(&tx, state, &as_owner, &subscription, events).await {
        Ok(n) => n,
        Err(e) if e.category != Category::Fault => {
            drop(tx);
            let reason = format!("the criteria cannot be searched: {}", diagnostics(&e));
            round_failed(state, node, ctx, consumer, Some(&subscription), &reason).await?;
            return Ok(false);
        }
        Err(e) => return Err(e),
    };
    drop(tx);
    drop(client);

    if subscription.status == "requested" {
        if subscription.topic.is_some() {
            if let Err(reason) = handshake(http, ctx, &subscription).await {
                round_failed(state, node, ctx, consumer, Some(&subscription), &reason).await?;
                return Ok(false);
            }
        }
        set_status(state, ctx, &subscription, "active", None).await?;
    }
    if notifications.is_empty() && end == consumer.cursor {
        return Ok(false);
    }

    let round = send_all(
        state,
        node,
        http,
        ctx,
        consumer,
        &subscription,
        notifications,
        end,
        &lease,
    )
    .await?;
    match round {
        Round::LostLease => Ok(false),
        Round::Done { delivered } => {
            if consumer.failures > 0 || subscription.status == "error" {
                recover(state, ctx, consumer, &subscription).await?;
            }
            let _ = delivered;
            Ok(more)
        }
        Round::Failed(reason) => {
            round_failed(state, node, ctx, consumer, Some(&subscription), &reason).await?;
            Ok(false)
        }
    }
}

/// Sends the notifications in order, moving the cursor as it goes (at
/// least every quarter lease, which also renews the lease).
#[allow(clippy::too_many_arguments)]
async fn send_all(
    state: &AppState,
    node: &Node,
    http: &reqwest::Client,
    ctx: &TenantCtx,
    consumer: &Consumer,
    subscription: &Subscription,
    notifications: Vec<Notification>,
    end: Position,
    lease: &str,
) -> Result<Round, ApiError> {
    let mut acked = consumer.cursor;
    let mut unsaved: i64 = 0;
    let mut saved_at = Instant::now();
    let mut event_number = consumer.delivered;
    let save_every = node.settings.lease / 4;
    for notification in notifications {
        event_number += 1;
        let sent = send(state, http, ctx, subscription, &notification, event_number).await;
        if let Err(reason) = sent {
            // Everything before this event is done.
            let before: Position = notification.event.position - 1;
            if before > acked || unsaved > 0 {
                save(
                    state,
                    node,
                    ctx,
                    consumer,
                    before.max(acked),
                    unsaved,
                    lease,
                )
                .await?;
            }
            return Ok(Round::Failed(reason));
        }
        acked = notification.event.position;
        unsaved += 1;
        if saved_at.elapsed() >= save_every {
            if !save(state, node, ctx, consumer, acked, unsaved, lease).await? {
                return Ok(Round::LostLease);
            }
            unsaved = 0;
            saved_at = Instant::now();
        }
    }
    let delivered = event_number - consumer.delivered;
    if !save(state, node, ctx, consumer, end.max(acked), unsaved, lease).await? {
        return Ok(Round::LostLease);
    }
    Ok(Round::Done { delivered })
}

async fn save(
    state: &AppState,
    node: &Node,
    ctx: &TenantCtx,
    consumer: &Consumer,
    to: Position,
    delivered: i64,
    lease: &str,
) -> Result<bool, ApiError> {
    let mut client = state.pool.get().await?;
    let tx = begin(&mut client, ctx, Access::ReadWrite).await?;
    let held = outbox::advance(&tx, ctx, &node.id, &consumer.name, to, delivered, lease).await?;
    tx.commit().await?;
    Ok(held)
}

/// The events of the batch that the subscription matches, with the
/// content its payload needs, in event order: of a filter's type and
/// interaction, found by the filter's search plus `_id` (searched as the
/// owner, so only what the owner may see). A deletion matches a filter
/// without search parameters (there is nothing left to search).
async fn matching(
    db: &impl Db,
    state: &AppState,
    as_owner: &TenantCtx,
    subscription: &Subscription,
    events: Vec<Event>,
) -> Result<Vec<Notification>, ApiError> {
    let mut wanted = vec![false; events.len()];
    for filter in &subscription.filters {
        let t = filter.resource_type.as_str();
        let mine = |e: &Event| e.resource_type == t && filter.interactions.contains(&e.action);
        let mut live_ids: Vec<&str> = events
            .iter()
            .filter(|e| mine(e) && e.action != "delete")
            .map(|e| e.id.as_str())
            .collect();
        live_ids.sort_unstable();
        live_ids.dedup();
        // Without search parameters, an owner who may search the type
        // everywhere (not just one patient's record, not just its own
        // submissions) gets every version, deletions included, with no
        // search. Otherwise the search decides, on the resource as it is
        // now; a deletion cannot be searched.
        let everywhere = matches!(
            crate::service::authorize::check(
                as_owner,
                &Route::Search(SearchScope::Type(filter.resource_type)),
                &[],
            ),
            Ok(crate::service::authorize::Reach::Everything)
        ) && crate::service::authorize::integrator(as_owner).is_none();
        let all = filter.params.is_empty() && everywhere;
        let matched = if all || live_ids.is_empty() {
            std::collections::HashSet::new()
        } else {
            search_ids(db, state, as_owner, filter, &live_ids).await?
        };
        for (event, wanted) in events.iter().zip(wanted.iter_mut()) {
            if !mine(event) {
                continue;
            }
            if all {
                *wanted = true;
            } else if event.action != "delete" {
                *wanted |= matched.contains(&event.id);
            }
        }
    }
    let mut notifications = Vec::new();
    for (event, wanted) in events.into_iter().zip(wanted) {
        if !wanted {
            continue;
        }
        let content = if subscription.payload == Payload::Full && event.action != "delete" {
            crate::store::read::read_version(
                db,
                as_owner,
                &event.resource_type,
                &event.id,
                event.version_id,
            )
            .await?
            .and_then(|s| s.content)
        } else {
            None
        };
        notifications.push(Notification { event, content });
    }
    Ok(notifications)
}

/// Which of `ids` the filter's search finds, as the owner.
async fn search_ids(
    db: &impl Db,
    state: &AppState,
    as_owner: &TenantCtx,
    filter: &Filter,
    ids: &[&str],
) -> Result<std::collections::HashSet<String>, ApiError> {
    let mut matched = std::collections::HashSet::new();
    for chunk in ids.chunks(50) {
        let mut params = filter.params.clone();
        params.push(("_id".into(), chunk.join(",")));
        params.push(("_elements".into(), "id".into()));
        params.push(("_count".into(), chunk.len().to_string()));
        params.push(("_total".into(), "none".into()));
        let req = FhirRequest {
            method: actix_web::http::Method::GET,
            path: filter.resource_type.as_str().to_owned(),
            params,
            body: Body::None,
            strict: true,
            ..FhirRequest::default()
        };
        let response = crate::service::search::search(
            db,
            state,
            as_owner,
            SearchScope::Type(filter.resource_type),
            &req,
        )
        .await?;
        let bundle = match response.body {
            ResponseBody::Json(v) => v,
            ResponseBody::Text(text) => serde_json::from_str(&text).map_err(ApiError::fault)?,
            ResponseBody::Empty | ResponseBody::Data { .. } => Value::Null,
        };
        for entry in bundle["entry"].as_array().into_iter().flatten() {
            if entry["search"]["mode"] == "match" {
                if let Some(id) = entry["resource"]["id"].as_str() {
                    matched.insert(id.to_owned());
                }
            }
        }
    }
    Ok(matched)
}
