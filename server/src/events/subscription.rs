//! R4 Subscriptions (subscription.html): `criteria` is a search
//! (`Type?params`), matched by the search layer itself, as the
//! subscription's owner, against the changed resources; the channels are
//! `rest-hook` (with `header`s; no payload: a POST to the endpoint; a
//! payload: PUT or DELETE `[endpoint]/Type/id` with the resource; the
//! Backport IG's `id-only` content: a POST of a notification Bundle) and
//! `websocket` (`ws` module of `http`).
//!
//! A subscription's delivery state (cursor, failures, owner) is its
//! consumer row (`outbox`). A written Subscription is checked in the
//! writing transaction ([`written`]); the server moves it from
//! `requested` to `active`, to `error` with the reason after
//! [`ERROR_AFTER`] failed deliveries in a row (still retrying, backing
//! off exponentially), and back to `active` once a delivery succeeds.

use super::Node;
use super::outbox::{self, Consumer, Event, Position};
use crate::auth::Principal;
use crate::auth::scopes::Scopes;
use crate::error::{ApiError, Category};
use crate::search::criteria::{self, Strictness};
use crate::service::route::{Route, SearchScope};
use crate::service::{AppState, Body, FhirRequest, ResponseBody};
use crate::store::write::{Method, WriteOp};
use crate::store::{Access, Db, Stored, TenantCtx, begin};
use fhir::ResourceType;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Failed deliveries in a row after which `status` becomes `error`.
pub const ERROR_AFTER: i32 = 3;

/// Events read per delivery round.
const BATCH: i64 = 100;

/// The Backport IG's extension on `channel.payload` choosing its content.
pub const PAYLOAD_CONTENT_EXTENSION: &str =
    "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-payload-content";

/// What a notification carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload {
    /// No payload: a POST with an empty body.
    Empty,
    /// A notification Bundle naming the changed resources.
    IdOnly,
    /// The resource: PUT (or DELETE) `[endpoint]/Type/id`.
    Full,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Channel {
    RestHook {
        endpoint: String,
        headers: Vec<(String, String)>,
    },
    Websocket,
}

/// What a subscription listens to: changes of one type, with these
/// interactions, that a search with these parameters finds.
#[derive(Debug, Clone)]
pub struct Filter {
    pub resource_type: ResourceType,
    pub params: Vec<(String, String)>,
    /// `create`, `update`, `delete`.
    pub interactions: Vec<String>,
}

/// A Subscription resource, checked.
#[derive(Debug, Clone)]
pub struct Subscription {
    pub id: String,
    pub status: String,
    pub filters: Vec<Filter>,
    /// The topic's canonical URL, for topic-based subscriptions (Backport
    /// IG); `None` for R4 criteria.
    pub topic: Option<String>,
    pub channel: Channel,
    pub payload: Payload,
    /// The resource as stored, for status changes.
    pub resource: Value,
}

/// The Backport IG's filter on a topic-based subscription's `criteria`.
pub const FILTER_CRITERIA_EXTENSION: &str =
    "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-filter-criteria";

const ALL_INTERACTIONS: [&str; 3] = ["create", "update", "delete"];

pub fn consumer_name(id: &str) -> String {
    format!("Subscription/{id}")
}

/// Parses and checks a Subscription, finding its topic (a topic-based
/// one) in `db`; the errors name the element.
pub async fn parse(
    db: &impl Db,
    ctx: &TenantCtx,
    resource: &Value,
) -> Result<Subscription, ApiError> {
    let id = resource["id"].as_str().unwrap_or_default().to_owned();
    let status = resource["status"]
        .as_str()
        .unwrap_or("requested")
        .to_owned();
    if !matches!(status.as_str(), "requested" | "active" | "error" | "off") {
        return Err(
            ApiError::invalid(format!("unknown status {status:?}")).at("Subscription.status")
        );
    }
    let criteria_text = resource["criteria"].as_str().ok_or_else(|| {
        ApiError::invalid("a Subscription needs criteria such as Observation?code=1234-5")
            .at("Subscription.criteria")
    })?;
    let (filters, topic) =
        if criteria_text.starts_with("http://") || criteria_text.starts_with("https://") {
            let topic = super::topic::find(db, ctx, criteria_text)
                .await?
                .ok_or_else(|| {
                    ApiError::new(
                        Category::Unprocessable,
                        format!("no SubscriptionTopic has the url {criteria_text}"),
                    )
                    .at("Subscription.criteria")
                })?;
            let filter = resource["_criteria"]["extension"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|e| e["url"] == FILTER_CRITERIA_EXTENSION)
                .and_then(|e| e["valueString"].as_str());
            let filters = match filter {
                None => topic.triggers.clone(),
                Some(filter) => {
                    let (t, params) = parse_criteria(ctx, filter)?;
                    let trigger = topic
                        .triggers
                        .iter()
                        .find(|f| f.resource_type == t)
                        .ok_or_else(|| {
                            ApiError::new(
                                Category::Unprocessable,
                                format!("the topic {criteria_text} has no trigger on {t}"),
                            )
                            .at("Subscription.criteria")
                        })?;
                    vec![Filter {
                        resource_type: t,
                        params,
                        interactions: trigger.interactions.clone(),
                    }]
                }
            };
            (filters, Some(criteria_text.to_owned()))
        } else {
            let (resource_type, params) = parse_criteria(ctx, criteria_text)?;
            let filter = Filter {
                resource_type,
                params,
                interactions: ALL_INTERACTIONS.iter().map(|s| (*s).to_owned()).collect(),
            };
            (vec![filter], None)
        };
    let channel = &resource["channel"];
    let payload = match channel["payload"].as_str() {
        None => Payload::Empty,
        Some("application/fhir+json" | "application/json" | "application/json+fhir") => {
            match content_extension(&channel["_payload"]) {
                Some("id-only") => Payload::IdOnly,
                Some("empty") => Payload::Empty,
                Some("full-resource") | None => Payload::Full,
                Some(other) => {
                    return Err(ApiError::invalid(format!(
                        "unknown payload content {other:?}: use empty, id-only or full-resource"
                    ))
                    .at("Subscription.channel.payload"));
                }
            }
        }
        Some(other) => {
            return Err(ApiError::new(
                Category::Unprocessable,
                format!("payloads are sent as application/fhir+json, not {other}"),
            )
            .at("Subscription.channel.payload"));
        }
    };
    let channel = match channel["type"].as_str() {
        Some("rest-hook") => {
            let endpoint = channel["endpoint"].as_str().unwrap_or_default();
            let parsed = url::Url::parse(endpoint).ok();
            if !parsed.is_some_and(|u| matches!(u.scheme(), "http" | "https")) {
                return Err(
                    ApiError::invalid("a rest-hook needs an absolute http(s) endpoint")
                        .at("Subscription.channel.endpoint"),
                );
            }
            let mut headers = Vec::new();
            for header in channel["header"].as_array().into_iter().flatten() {
                let parsed =
                    header
                        .as_str()
                        .and_then(|h| h.split_once(':'))
                        .and_then(|(name, value)| {
                            let (name, value) = (name.trim(), value.trim());
                            let valid = reqwest::header::HeaderName::from_bytes(name.as_bytes())
                                .is_ok()
                                && reqwest::header::HeaderValue::from_str(value).is_ok();
                            valid.then(|| (name.to_owned(), value.to_owned()))
                        });
                match parsed {
                    Some(pair) => headers.push(pair),
                    None => {
                        return Err(ApiError::invalid("a header is written as \"Name: value\"")
                            .at("Subscription.channel.header"));
                    }
                }
            }
            Channel::RestHook {
                endpoint: endpoint.trim_end_matches('/').to_owned(),
                headers,
            }
        }
        Some("websocket") => Channel::Websocket,
        Some(other) => {
            return Err(ApiError::new(
                Category::Unprocessable,
                format!("the {other} channel is not supported: use rest-hook or websocket"),
            )
            .at("Subscription.channel.type"));
        }
        None => {
            return Err(ApiError::invalid("a Subscription needs a channel type")
                .at("Subscription.channel.type"));
        }
    };
    Ok(Subscription {
        id,
        status,
        filters,
        topic,
        channel,
        payload,
        resource: resource.clone(),
    })
}

fn content_extension(payload_element: &Value) -> Option<&str> {
    payload_element["extension"]
        .as_array()?
        .iter()
        .find(|e| e["url"] == PAYLOAD_CONTENT_EXTENSION)
        .and_then(|e| e["valueCode"].as_str())
}

/// `Type?a=1&b=2` → the type and the parameters, checked by the search
/// layer as a strict search would be.
pub fn parse_criteria(
    ctx: &TenantCtx,
    text: &str,
) -> Result<(ResourceType, Vec<(String, String)>), ApiError> {
    let at = "Subscription.criteria";
    let (type_name, query) = text.split_once('?').unwrap_or((text, ""));
    let resource_type =
        ResourceType::parse(type_name.trim_start_matches('/')).ok_or_else(|| {
            ApiError::invalid(format!(
                "the criteria must start with a resource type, not {type_name:?}"
            ))
            .at(at)
        })?;
    let params: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if let Some((name, _)) = params
        .iter()
        .find(|(name, _)| criteria::RESULT_PARAMETERS.contains(&name.as_str()) || name == "_id")
    {
        return Err(
            ApiError::invalid(format!("{name} cannot be used in subscription criteria")).at(at),
        );
    }
    criteria::parse(
        &ctx.registry(),
        resource_type.as_str(),
        &params,
        Strictness::Strict,
        &ctx.base_url,
    )
    .map_err(|e| e.at(at))?;
    Ok((resource_type, params))
}

/// Called in the transaction that stored a version of a Subscription:
/// checks it (a bad one fails the write) and keeps its consumer row,
/// owned by the caller who wrote it.
pub async fn written(db: &impl Db, ctx: &TenantCtx, stored: &Stored) -> Result<(), ApiError> {
    let name = consumer_name(&stored.id);
    match stored.content.as_deref() {
        None => outbox::remove_consumer(db, ctx, &name).await?,
        Some(text) => {
            let resource: Value = serde_json::from_str(text).map_err(ApiError::fault)?;
            let subscription = parse(db, ctx, &resource).await?;
            let enabled = subscription.status != "off";
            let owner = ctx.caller.as_deref().map(owner_claims);
            outbox::upsert_consumer(db, ctx, &name, enabled, owner.as_ref()).await?;
        }
    }
    super::notify::send(db, super::notify::Message::Consumers(ctx.tenant.clone())).await
}

/// The claims that stand for `principal` when its subscription is
/// delivered (the tenant and group rights are re-checked each time).
pub fn owner_claims(principal: &Principal) -> Value {
    let scopes: Vec<String> = principal
        .scopes
        .smart()
        .iter()
        .map(ToString::to_string)
        .chain(principal.scopes.other().iter().cloned())
        .collect();
    json!({
        "sub": principal.subject,
        "client_id": principal.client_id,
        "scope": scopes.join(" "),
        "tenants": principal.tenants,
        "groups": principal.groups,
        "integrator": principal.integrator,
        "patient": principal.patient,
    })
}

fn owner_principal(claims: &Value) -> Option<Principal> {
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let text = |v: &Value| v.as_str().map(str::to_owned);
    Some(Principal {
        subject: claims["sub"].as_str()?.to_owned(),
        client_id: text(&claims["client_id"]),
        scopes: Scopes::parse(claims["scope"].as_str().unwrap_or_default()),
        tenants: strings(&claims["tenants"]),
        groups: strings(&claims["groups"]),
        integrator: text(&claims["integrator"]),
        patient: text(&claims["patient"]),
    })
}

/// The tenant context a subscription's deliveries run as: its owner with
/// the rights of the owner's groups now, or no caller for a subscription
/// written without authentication.
async fn owner_context(
    state: &AppState,
    ctx: &TenantCtx,
    owner: Option<&Value>,
) -> Result<TenantCtx, String> {
    let mut ctx = ctx.clone();
    let Some(claims) = owner else {
        return Ok(ctx);
    };
    let principal = owner_principal(claims)
        .ok_or_else(|| "the subscription's owner is not known".to_owned())?;
    if !principal.tenants.contains(&ctx.tenant) {
        return Err("the subscription's owner no longer has access to this tenant".to_owned());
    }
    let rights = state
        .groups
        .rights(state, &ctx, &principal.groups)
        .await
        .map_err(|e| format!("cannot read the owner's groups: {}", diagnostics(&e)))?;
    ctx.caller = Some(std::sync::Arc::new(principal));
    ctx.rights = Some(std::sync::Arc::new(rights));
    Ok(ctx)
}

/// One notification to send.
#[derive(Debug)]
struct Notification {
    event: Event,
    /// The version's JSON, for full-resource payloads.
    content: Option<String>,
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

/// Sends one notification; the error is the reason, for `Subscription.error`.
async fn send(
    state: &AppState,
    http: &reqwest::Client,
    ctx: &TenantCtx,
    subscription: &Subscription,
    notification: &Notification,
    event_number: i64,
) -> Result<(), String> {
    let Channel::RestHook { endpoint, .. } = &subscription.channel else {
        super::websocket::publish(state, ctx, subscription, &notification.event).await;
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
async fn handshake(
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

/// The wait before retry `failures` (1 s, 2 s, 4 s, … up to the maximum).
pub fn backoff(failures: i32, max: Duration) -> Duration {
    let exponent = failures.clamp(1, 20) as u32 - 1;
    Duration::from_secs(1u64 << exponent).min(max)
}

async fn round_failed(
    state: &AppState,
    node: &Node,
    ctx: &TenantCtx,
    consumer: &Consumer,
    subscription: Option<&Subscription>,
    reason: &str,
) -> Result<(), ApiError> {
    let failures = consumer.failures.saturating_add(1);
    let wait = backoff(failures, node.settings.retry_max);
    tracing::warn!(
        tenant = ctx.tenant,
        consumer = consumer.name,
        failures,
        retry_in_ms = wait.as_millis() as u64,
        reason,
        "subscription delivery failed"
    );
    if let Some(subscription) = subscription {
        if failures >= ERROR_AFTER && subscription.status != "error" {
            set_status(state, ctx, subscription, "error", Some(reason)).await?;
        }
    }
    let mut client = state.pool.get().await?;
    let tx = begin(&mut client, ctx, Access::ReadWrite).await?;
    outbox::failed(&tx, ctx, &node.id, &consumer.name, failures, wait, reason).await?;
    tx.commit().await?;
    Ok(())
}

async fn recover(
    state: &AppState,
    ctx: &TenantCtx,
    consumer: &Consumer,
    subscription: &Subscription,
) -> Result<(), ApiError> {
    if subscription.status == "error" {
        set_status(state, ctx, subscription, "active", None).await?;
    }
    let mut client = state.pool.get().await?;
    let tx = begin(&mut client, ctx, Access::ReadWrite).await?;
    outbox::recovered(&tx, ctx, &consumer.name).await?;
    tx.commit().await?;
    Ok(())
}

/// Writes a new version of the Subscription with `status` (and `error`),
/// as the server, unless someone changed it meanwhile (If-Match).
async fn set_status(
    state: &AppState,
    ctx: &TenantCtx,
    subscription: &Subscription,
    status: &str,
    error: Option<&str>,
) -> Result<(), ApiError> {
    let mut resource = subscription.resource.clone();
    let version = resource["meta"]["versionId"]
        .as_str()
        .and_then(|v| v.parse::<i64>().ok());
    if let Value::Object(map) = &mut resource {
        map.insert("status".into(), Value::String(status.to_owned()));
        match error {
            Some(reason) => {
                map.insert("error".into(), Value::String(reason.to_owned()));
            }
            None => {
                map.shift_remove("error");
            }
        }
    }
    let mut server = ctx.clone();
    server.caller = None;
    server.rights = None;
    let mut client = state.pool.get().await?;
    let tx = begin(&mut client, &server, Access::ReadWrite).await?;
    let op = WriteOp {
        resource_type: "Subscription".into(),
        id: subscription.id.clone(),
        method: Method::Put,
        resource: Some(resource),
        if_match: version,
        fresh_id: false,
    };
    match crate::service::write::apply(&tx, &server, vec![op], crate::store::now()).await {
        Ok(_) => {
            tx.commit().await?;
            tracing::info!(
                tenant = ctx.tenant,
                subscription = subscription.id,
                status,
                "subscription status changed"
            );
            Ok(())
        }
        // Changed by its owner meanwhile: the next round reads it again.
        Err(e) if e.category == Category::PreconditionFailed => Ok(()),
        Err(e) => Err(e),
    }
}

/// `Subscription/{id}/$status` (Backport IG): the status Parameters.
pub async fn status_parameters(db: &impl Db, ctx: &TenantCtx, id: &str) -> Result<Value, ApiError> {
    let stored = crate::store::read::read_current(db, ctx, "Subscription", id)
        .await?
        .filter(|s| !s.deleted)
        .ok_or_else(|| ApiError::not_found(format!("Subscription/{id} is not known")))?;
    let resource: Value =
        serde_json::from_str(stored.content.as_deref().unwrap_or("{}")).map_err(ApiError::fault)?;
    let state = outbox::consumer_state(db, ctx, &consumer_name(id)).await?;
    let mut parameters = vec![
        json!({"name": "subscription", "valueReference": {"reference": format!("{}/Subscription/{id}", ctx.base_url)}}),
        json!({"name": "topic", "valueCanonical": resource["criteria"]}),
        json!({"name": "status", "valueCode": resource["status"]}),
        json!({"name": "type", "valueCode": "query-status"}),
        json!({"name": "events-since-subscription-start", "valueString": state.as_ref().map_or(0, |s| s.delivered).to_string()}),
    ];
    if let Some(error) = state.and_then(|s| s.last_error) {
        parameters.push(json!({"name": "error", "valueCodeableConcept": {"text": error}}));
    }
    Ok(json!({"resourceType": "Parameters", "parameter": parameters}))
}

/// The first issue's text of an error.
fn diagnostics(e: &ApiError) -> String {
    e.issues
        .first()
        .map(|i| i.diagnostics.clone())
        .unwrap_or_default()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ctx() -> TenantCtx {
        TenantCtx::new(
            "default",
            "http://localhost/fhir",
            std::sync::Arc::default(),
        )
    }

    #[test]
    fn retries_back_off_exponentially_up_to_the_maximum() {
        let max = Duration::from_secs(60);
        let waits: Vec<u64> = (1..=8).map(|n| backoff(n, max).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(backoff(i32::MAX, max), max);
    }

    #[test]
    fn criteria_are_searches_the_server_can_run() {
        let (t, params) = parse_criteria(
            &ctx(),
            "Observation?code=http://loinc.org|1234-5&status=final",
        )
        .unwrap();
        assert_eq!(t.as_str(), "Observation");
        assert_eq!(params.len(), 2);
        assert_eq!(params[0].1, "http://loinc.org|1234-5");
        assert!(parse_criteria(&ctx(), "Patient").unwrap().1.is_empty());
        for bad in [
            "patient?x=1",
            "Patient?nosuch=1",
            "Patient?_count=5",
            "Patient?_id=1",
        ] {
            assert!(parse_criteria(&ctx(), bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn owners_survive_the_round_trip_through_their_claims() {
        let principal = Principal {
            subject: "u1".into(),
            client_id: Some("portal".into()),
            scopes: Scopes::parse("user/Patient.rs openid"),
            tenants: vec!["acme".into()],
            groups: vec!["clinician".into()],
            integrator: None,
            patient: Some("p1".into()),
        };
        assert_eq!(owner_principal(&owner_claims(&principal)), Some(principal));
    }
}
