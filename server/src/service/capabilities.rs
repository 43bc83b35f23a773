//! The CapabilityStatement (capabilitystatement.html), listing only what
//! this server really does.

use super::{AppState, FhirResponse, ResponseBody};
use crate::search::registry::Registry;
use actix_web::http::StatusCode;
use serde_json::{Value, json};

pub fn capability_statement(state: &AppState) -> FhirResponse {
    FhirResponse {
        status: StatusCode::OK,
        body: ResponseBody::Text(state.capabilities.as_ref().clone()),
        location: None,
        version_id: None,
        last_modified: None,
    }
}

/// Builds the statement once at start-up.
pub fn build(base_url: &str) -> Value {
    let registry = Registry::global();
    let interactions: Vec<Value> = [
        "read",
        "vread",
        "update",
        "patch",
        "delete",
        "history-instance",
        "history-type",
        "create",
        "search-type",
    ]
    .iter()
    .map(|code| json!({ "code": code }))
    .collect();
    let resources: Vec<Value> = fhir::ResourceType::all()
        .map(|t| {
            let mut params = vec![json!({
                "name": "_id",
                "definition": "http://hl7.org/fhir/SearchParameter/Resource-id",
                "type": "token"
            })];
            params.extend(
                registry
                    .params(t.as_str())
                    .iter()
                    .map(|p| json!({ "name": p.code, "type": p.kind.as_str() })),
            );
            json!({
                "type": t.as_str(),
                "interaction": interactions,
                "versioning": "versioned",
                "readHistory": true,
                "updateCreate": true,
                "conditionalCreate": true,
                "conditionalRead": "full-support",
                "conditionalUpdate": true,
                "conditionalDelete": "single",
                "referencePolicy": ["literal", "local"],
                "searchParam": params,
                "operation": [{
                    "name": "validate",
                    "definition": "http://hl7.org/fhir/OperationDefinition/Resource-validate"
                }]
            })
        })
        .collect();
    json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-23",
        "publisher": "Baraza",
        "kind": "instance",
        "software": { "name": "Baraza", "version": env!("CARGO_PKG_VERSION") },
        "implementation": { "description": "Baraza FHIR R4 server", "url": base_url },
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "patchFormat": ["application/json-patch+json"],
        "rest": [{
            "mode": "server",
            "documentation": "JSON only. Search supports _id and every token, reference, string, date, number, quantity and uri parameter (with :missing) (indexed by evaluating its FHIRPath expression); other parameters are ignored and reported (or rejected with Prefer: handling=strict).",
            "resource": resources,
            "interaction": [
                { "code": "transaction" },
                { "code": "batch" },
                { "code": "history-system" }
            ]
        }]
    })
}
