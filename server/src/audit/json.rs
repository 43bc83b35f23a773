//! The AuditEvent resource of one event, after the IHE Basic Audit Log
//! Patterns (BALP, profiles.ihe.net/ITI/BALP): type `rest` with the
//! restful-interaction subtype (a login: DICOM's user authentication and
//! login codes), the requesting user and client as agents
//! (the client with its network address), Baraza as the source observer
//! with the tenant as its site, and one entity per resource touched, per
//! patient, and per search query.

use super::event::Event;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::io::Write;

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
) -> Result<String, String> {
    let interaction = &event.interaction;
    let login = interaction.subtype == "login";
    let mut subtype = vec![if login {
        json!({ "system": DCM, "code": "110122", "display": "Login" })
    } else {
        json!({
            "system": "http://hl7.org/fhir/restful-interaction",
            "code": interaction.subtype,
        })
    }];
    if let Some(operation) = interaction.operation {
        subtype.push(json!({ "system": "urn:baraza:operation", "code": operation }));
    }
    let audit = json!({
        "resourceType": "AuditEvent",
        "id": seq.to_string(),
        "type": if login {
            json!({ "system": DCM, "code": "110114", "display": "User Authentication" })
        } else {
            json!({
                "system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
                "code": "rest",
                "display": "RESTful Operation",
            })
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
    let mut text = Vec::with_capacity(1024 + 160 * (entities.len() + patients.len()));
    serde_json::to_writer(&mut text, &audit).map_err(|e| e.to_string())?;
    if !patients.is_empty() || !entities.is_empty() || event.query.is_some() {
        // The entities are written as text, the element the object ends
        // with: a search's page of resources made a tree of several
        // hundred small maps per event (docs/audit.md, "Stored as text").
        text.pop();
        text.extend_from_slice(b",\"entity\":[");
        let mut reference = String::new();
        for id in patients {
            reference.clear();
            reference.push_str("Patient/");
            reference.push_str(id);
            entity(&mut text, &reference, "1", "1")?;
        }
        for (target, version) in entities {
            reference.clear();
            reference.push_str(target);
            if let Some(v) = version {
                reference.push_str("/_history/");
                reference.push_str(&v.to_string());
            }
            entity(&mut text, &reference, "2", "4")?;
        }
        if let Some(query) = &event.query {
            let query = base64::engine::general_purpose::STANDARD.encode(query);
            write!(
                text,
                "{{\"type\":{{\"system\":\"{ENTITY_TYPE}\",\"code\":\"2\"}},\
                 \"role\":{{\"system\":\"{OBJECT_ROLE}\",\"code\":\"24\"}},\
                 \"query\":\"{query}\"}},"
            )
            .map_err(|e| e.to_string())?;
        }
        // The last entity's comma becomes the array's end.
        text.pop();
        text.extend_from_slice(b"]}");
    }
    String::from_utf8(text).map_err(|e| e.to_string())
}

/// One entity naming `reference`, with its type and role codes, and a
/// comma after it.
fn entity(text: &mut Vec<u8>, reference: &str, type_code: &str, role: &str) -> Result<(), String> {
    text.extend_from_slice(b"{\"what\":{\"reference\":");
    serde_json::to_writer(&mut *text, reference).map_err(|e| e.to_string())?;
    write!(
        text,
        "}},\"type\":{{\"system\":\"{ENTITY_TYPE}\",\"code\":\"{type_code}\"}},\
         \"role\":{{\"system\":\"{OBJECT_ROLE}\",\"code\":\"{role}\"}}}},"
    )
    .map_err(|e| e.to_string())
}

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
        client["who"] = json!({ "display": "unauthenticated" });
        return match &event.user {
            Some(user) => {
                client["requestor"] = json!(false);
                vec![user_agent(user), client]
            }
            None => vec![client],
        };
    };
    let client_id = caller.client_id.as_deref().unwrap_or(&caller.subject);
    client["who"] = json!({ "identifier": { "system": CLIENT_ID_SYSTEM, "value": client_id } });
    if caller.client_id.as_deref() == Some(caller.subject.as_str()) {
        // Client credentials: the client acts for itself.
        return vec![client];
    }
    client["requestor"] = json!(false);
    vec![user_agent(&caller.subject), client]
}

fn user_agent(user: &str) -> Value {
    json!({
        "type": { "coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/extra-security-role-type",
            "code": "humanuser",
            "display": "human user",
        }] },
        "who": { "identifier": { "system": USER_ID_SYSTEM, "value": user } },
        "requestor": true,
    })
}

/// An instant with microseconds, as stored in the `recorded` column.
pub fn instant(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::audit::{Action, EntityRef, Interaction};
    use crate::auth::Principal;

    fn event(caller: Option<Principal>, user: Option<&str>, subtype: &'static str) -> Event {
        let t: DateTime<Utc> = "2025-05-01T10:00:00Z".parse().unwrap();
        Event {
            started: t,
            ended: t,
            tenant: "acme".into(),
            caller: caller.map(std::sync::Arc::new),
            user: user.map(str::to_owned),
            source: Some("10.1.2.3".parse().unwrap()),
            interaction: Interaction {
                action: Action::Execute,
                subtype,
                operation: None,
                target: None,
            },
            status: 200,
            query: Some("subject=Patient%2Fp1".into()),
            entities: vec![EntityRef {
                reference: "Observation/o1".into(),
                version: Some(2),
            }],
            patients: vec!["p1".into()],
        }
    }

    fn alice() -> Principal {
        Principal {
            subject: "alice".into(),
            client_id: Some("portal".into()),
            scopes: Default::default(),
            tenants: Vec::new(),
            groups: Vec::new(),
            integrator: None,
            patient: None,
        }
    }

    fn render_event(e: &Event) -> Value {
        let entities = [("Observation/o1".to_owned(), Some(2))];
        let t = "2025-05-01T10:00:01Z".parse().unwrap();
        serde_json::from_str(&render(e, 42, t, &entities, &e.patients).unwrap()).unwrap()
    }

    #[test]
    fn renders_a_valid_r4_audit_event() {
        for e in [
            event(Some(alice()), None, "search-type"),
            event(None, None, "read"),
            event(None, Some("bob"), "login"),
        ] {
            let audit = render_event(&e);
            let errors: Vec<_> = fhir::validation::validate_resource(&audit)
                .into_iter()
                .filter(fhir::Issue::is_error)
                .collect();
            assert!(errors.is_empty(), "{audit}: {errors:?}");
        }
    }

    #[test]
    fn names_the_user_and_the_client_with_its_address() {
        let audit = render_event(&event(Some(alice()), None, "search-type"));
        assert_eq!(audit["id"], "42");
        assert_eq!(audit["recorded"], "2025-05-01T10:00:01.000000Z");
        assert_eq!(audit["agent"][0]["who"]["identifier"]["value"], "alice");
        assert_eq!(audit["agent"][0]["requestor"], true);
        assert_eq!(audit["agent"][1]["who"]["identifier"]["value"], "portal");
        assert_eq!(audit["agent"][1]["network"]["address"], "10.1.2.3");
        assert_eq!(audit["source"]["site"], "acme");
        assert_eq!(audit["entity"][0]["what"]["reference"], "Patient/p1");
        assert_eq!(
            audit["entity"][1]["what"]["reference"],
            "Observation/o1/_history/2"
        );
        assert_eq!(audit["entity"][2]["query"], "c3ViamVjdD1QYXRpZW50JTJGcDE=");
        assert_eq!(audit["entity"][1]["type"]["code"], "2");
        assert_eq!(audit["entity"][1]["role"]["code"], "4");
        assert_eq!(audit["entity"][2]["role"]["code"], "24");
        assert_eq!(audit["entity"].as_array().map(Vec::len), Some(3));
        let mut bare = event(None, None, "read");
        bare.query = None;
        let t = "2025-05-01T10:00:01Z".parse().unwrap();
        let text = render(&bare, 43, t, &[], &[]).unwrap();
        let value: Value = serde_json::from_str(&text).unwrap();
        assert!(value.get("entity").is_none(), "{text}");
        let login = render_event(&event(None, Some("bob"), "login"));
        assert_eq!(login["type"]["code"], "110114");
        assert_eq!(login["subtype"][0]["code"], "110122");
        assert_eq!(login["agent"][0]["who"]["identifier"]["value"], "bob");
    }
}
