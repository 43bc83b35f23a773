//! The AuditEvent resource of one event, after the IHE Basic Audit Log
//! Patterns (BALP, profiles.ihe.net/ITI/BALP): type `rest` with the
//! restful-interaction subtype, the requesting user and client as agents
//! (the client with its network address), Baraza as the source observer
//! with the tenant as its site, and one entity per resource touched, per
//! patient, and per search query.

use super::event::Event;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

const DCM: &str = "http://dicom.nema.org/resources/ontology/DCM";
const ENTITY_TYPE: &str = "http://terminology.hl7.org/CodeSystem/audit-entity-type";
const OBJECT_ROLE: &str = "http://terminology.hl7.org/CodeSystem/object-role";
/// BALP's identifier systems for the user and the OAuth client.
const USER_ID_SYSTEM: &str = "urn:baraza:oidc:sub";
const CLIENT_ID_SYSTEM: &str = "urn:baraza:oidc:client_id";

/// The AuditEvent of `event`, stored as chain row `seq` at `recorded`.
/// `entities` and `patients` are the event's, without duplicates.
pub fn render(
    event: &Event,
    seq: i64,
    recorded: DateTime<Utc>,
    entities: &[(String, Option<i64>)],
    patients: &[String],
) -> Value {
    let interaction = &event.interaction;
    let mut subtype = vec![json!({
        "system": "http://hl7.org/fhir/restful-interaction",
        "code": interaction.subtype,
    })];
    if let Some(operation) = interaction.operation {
        subtype.push(json!({ "system": "urn:baraza:operation", "code": operation }));
    }
    let mut entity: Vec<Value> = Vec::with_capacity(entities.len() + patients.len() + 1);
    for id in patients {
        entity.push(json!({
            "what": { "reference": format!("Patient/{id}") },
            "type": { "system": ENTITY_TYPE, "code": "1", "display": "Person" },
            "role": { "system": OBJECT_ROLE, "code": "1", "display": "Patient" },
        }));
    }
    for (reference, version) in entities {
        let reference = match version {
            Some(v) => format!("{reference}/_history/{v}"),
            None => reference.clone(),
        };
        entity.push(json!({
            "what": { "reference": reference },
            "type": { "system": ENTITY_TYPE, "code": "2", "display": "System Object" },
            "role": { "system": OBJECT_ROLE, "code": "4", "display": "Domain Resource" },
        }));
    }
    if let Some(query) = &event.query {
        entity.push(json!({
            "type": { "system": ENTITY_TYPE, "code": "2", "display": "System Object" },
            "role": { "system": OBJECT_ROLE, "code": "24", "display": "Query" },
            "query": base64::engine::general_purpose::STANDARD.encode(query),
        }));
    }
    let mut audit = json!({
        "resourceType": "AuditEvent",
        "id": seq.to_string(),
        "type": {
            "system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
            "code": "rest",
            "display": "RESTful Operation",
        },
        "subtype": subtype,
        "action": event.action().code(),
        "period": { "start": instant(event.started), "end": instant(event.ended) },
        "recorded": instant(recorded),
        "outcome": event.outcome().to_string(),
        "outcomeDesc": format!("HTTP {}", event.status),
        "agent": agents(event),
        "source": {
            "site": event.tenant,
            "observer": { "display": "Baraza" },
            "type": [{
                "system": "http://terminology.hl7.org/CodeSystem/security-source-type",
                "code": "4",
                "display": "Application Server",
            }],
        },
    });
    if !entity.is_empty() {
        audit["entity"] = Value::Array(entity);
    }
    audit
}

/// The user (when the token names one besides the client), then the
/// client with its network address. With authentication off the client is
/// anonymous.
fn agents(event: &Event) -> Vec<Value> {
    // Network access point type 2: an IP address.
    let network = event
        .source
        .map(|ip| json!({ "address": ip.to_string(), "type": "2" }));
    let mut client = json!({
        "type": { "coding": [{ "system": DCM, "code": "110153", "display": "Source Role ID" }] },
        "requestor": true,
    });
    if let Some(network) = network {
        client["network"] = network;
    }
    let Some(caller) = event.caller.as_deref() else {
        client["who"] = json!({ "display": "anonymous (authentication is off)" });
        return vec![client];
    };
    let client_id = caller.client_id.as_deref().unwrap_or(&caller.subject);
    client["who"] = json!({ "identifier": { "system": CLIENT_ID_SYSTEM, "value": client_id } });
    if caller.client_id.as_deref() == Some(caller.subject.as_str()) {
        // Client credentials: the client acts for itself.
        return vec![client];
    }
    client["requestor"] = json!(false);
    let user = json!({
        "type": { "coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/extra-security-role-type",
            "code": "humanuser",
            "display": "human user",
        }] },
        "who": { "identifier": { "system": USER_ID_SYSTEM, "value": caller.subject } },
        "requestor": true,
    });
    vec![user, client]
}

/// An instant with microseconds, as stored in the `recorded` column.
pub fn instant(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}
