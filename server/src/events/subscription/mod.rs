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

use super::outbox;
use crate::error::{ApiError, Category};
use crate::search::criteria::{self, Strictness};
use crate::store::{Db, Stored, TenantCtx};
use fhir::ResourceType;
use serde_json::{Value, json};
mod deliver;
mod owner;
mod send;
mod status;

pub use deliver::deliver;
pub use owner::owner_claims;
pub use send::notification_bundle;
pub use status::{back_off, backoff};

/// Failed deliveries in a row after which `status` becomes `error`.
pub const ERROR_AFTER: i32 = 3;

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
pub(crate) fn diagnostics(e: &ApiError) -> String {
    e.issues
        .first()
        .map(|i| i.diagnostics.clone())
        .unwrap_or_default()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::owner::owner_principal;
    use super::*;
    use crate::auth::Principal;
    use crate::auth::scopes::Scopes;
    use std::time::Duration;

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
