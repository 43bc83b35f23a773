//! Subscription topics of the Backport IG in R4: a `Basic` resource whose
//! `code` is `SubscriptionTopic` (http://hl7.org/fhir/fhir-types), with the
//! cross-version extensions of R4B or R5 SubscriptionTopic: its canonical
//! `url` and its `resourceTrigger`s (a `resource` type and the
//! `supportedInteraction`s create, update, delete). A topic-based
//! Subscription names the topic's url in `criteria` and may narrow it with
//! the `backport-filter-criteria` extension, a search on a trigger's type.

use super::subscription::Filter;
use crate::error::ApiError;
use crate::store::{Db, TenantCtx};
use fhir::ResourceType;
use serde_json::Value;

/// A topic: the changes it is about.
#[derive(Debug, Clone)]
pub struct Topic {
    pub url: String,
    pub triggers: Vec<Filter>,
}

const PREFIXES: [&str; 2] = [
    "http://hl7.org/fhir/5.0/StructureDefinition/extension-SubscriptionTopic.",
    "http://hl7.org/fhir/4.3/StructureDefinition/extension-SubscriptionTopic.",
];

/// Whether an extension is the cross-version one for `element`.
fn is(extension: &Value, element: &str) -> bool {
    extension["url"].as_str().is_some_and(|url| {
        PREFIXES
            .iter()
            .any(|p| url.strip_prefix(p).is_some_and(|rest| rest == element))
    })
}

/// A sub-extension of a complex extension, by its short or full url.
fn part<'a>(extension: &'a Value, name: &'a str) -> impl Iterator<Item = &'a Value> {
    extension["extension"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(move |e| {
            e["url"]
                .as_str()
                .is_some_and(|u| u == name || u.ends_with(&format!(".{name}")))
        })
}

/// Reads a topic from a Basic resource; `None` when it is not one.
pub fn from_basic(basic: &Value) -> Option<Topic> {
    let extensions = basic["extension"].as_array()?;
    let url = extensions
        .iter()
        .find(|e| is(e, "url"))
        .and_then(|e| {
            e["valueUri"]
                .as_str()
                .or(e["valueUrl"].as_str())
                .or(e["valueString"].as_str())
        })?
        .to_owned();
    let mut triggers = Vec::new();
    for trigger in extensions.iter().filter(|e| is(e, "resourceTrigger")) {
        let resource = part(trigger, "resource")
            .next()
            .and_then(|e| e["valueUri"].as_str().or(e["valueUrl"].as_str()))?;
        // "Patient" or "http://hl7.org/fhir/StructureDefinition/Patient".
        let resource_type = ResourceType::parse(resource.rsplit('/').next()?)?;
        let mut interactions: Vec<String> = part(trigger, "supportedInteraction")
            .filter_map(|e| e["valueCode"].as_str())
            .filter(|c| matches!(*c, "create" | "update" | "delete"))
            .map(str::to_owned)
            .collect();
        if interactions.is_empty() {
            interactions = vec!["create".into(), "update".into(), "delete".into()];
        }
        triggers.push(Filter {
            resource_type,
            params: Vec::new(),
            interactions,
        });
    }
    (!triggers.is_empty()).then_some(Topic { url, triggers })
}

/// The tenant's topic with canonical `url`, if any.
pub async fn find(db: &impl Db, ctx: &TenantCtx, url: &str) -> Result<Option<Topic>, ApiError> {
    let rows = db
        .query(
            "SELECT h.content::text FROM search_token t \
             JOIN resources r ON r.tenant = t.tenant AND r.res_type = t.res_type AND r.id = t.res_id \
             JOIN resource_history h ON h.tenant = r.tenant AND h.res_type = r.res_type \
               AND h.id = r.id AND h.version_id = r.version_id \
             WHERE t.tenant = $1 AND t.res_type = 'Basic' AND t.param = 'code' \
               AND t.code = 'SubscriptionTopic' AND NOT r.deleted",
            &[&ctx.tenant],
        )
        .await?;
    Ok(rows
        .iter()
        .filter_map(|row| serde_json::from_str::<Value>(&row.get::<_, String>(0)).ok())
        .filter_map(|basic| from_basic(&basic))
        .find(|topic| topic.url == url))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_a_backported_topic() {
        let basic = json!({"resourceType": "Basic",
            "code": {"coding": [{"system": "http://hl7.org/fhir/fhir-types", "code": "SubscriptionTopic"}]},
            "extension": [
                {"url": "http://hl7.org/fhir/5.0/StructureDefinition/extension-SubscriptionTopic.url",
                 "valueUri": "http://example.org/topic/new-patients"},
                {"url": "http://hl7.org/fhir/5.0/StructureDefinition/extension-SubscriptionTopic.resourceTrigger",
                 "extension": [
                    {"url": "resource", "valueUri": "http://hl7.org/fhir/StructureDefinition/Patient"},
                    {"url": "supportedInteraction", "valueCode": "create"}]}]});
        let topic = from_basic(&basic).unwrap();
        assert_eq!(topic.url, "http://example.org/topic/new-patients");
        assert_eq!(topic.triggers[0].resource_type.as_str(), "Patient");
        assert_eq!(topic.triggers[0].interactions, ["create"]);
        assert!(from_basic(&json!({"resourceType": "Basic"})).is_none());
    }
}
