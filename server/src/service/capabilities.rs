//! The CapabilityStatement (capabilitystatement.html), listing only what
//! this server really does.

use super::{AppState, FhirResponse, ResponseBody};
use crate::error::ApiError;
use crate::search::registry::{ParamKind, Registry};
use crate::store::TenantCtx;
use actix_web::http::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;

/// The shared statement, or for a tenant with custom search parameters
/// its own (built once per set of active parameters). Tenants other than
/// `default` name their own base in `implementation.url`.
pub fn capability_statement(state: &AppState, ctx: &TenantCtx) -> Result<FhirResponse, ApiError> {
    let registries = ctx.registries.get(&ctx.tenant);
    let build_text = || {
        serde_json::to_string(&build(&ctx.base_url, &registries.searching)).map_err(ApiError::fault)
    };
    let text = if registries.custom {
        match registries.capabilities.get() {
            Some(text) => text.clone(),
            None => {
                let text = build_text()?;
                registries
                    .capabilities
                    .get_or_init(|| Arc::new(text))
                    .clone()
            }
        }
    } else if ctx.base_url != state.base_url {
        Arc::new(build_text()?)
    } else {
        state.capabilities.clone()
    };
    Ok(FhirResponse {
        status: StatusCode::OK,
        body: ResponseBody::Text(text.as_ref().clone()),
        location: None,
        version_id: None,
        last_modified: None,
        touched: crate::audit::Touched::default(),
    })
}

/// The operations of a resource type: `$validate` everywhere, and the
/// terminology service's on CodeSystem, ValueSet and ConceptMap.
fn operations(resource_type: &str) -> Vec<Value> {
    let op = |name: &str, definition: &str| json!({"name": name, "definition": format!("http://hl7.org/fhir/OperationDefinition/{definition}")});
    let mut list = vec![op("validate", "Resource-validate")];
    match resource_type {
        "CodeSystem" => {
            list.push(op("lookup", "CodeSystem-lookup"));
            list.push(op("validate-code", "CodeSystem-validate-code"));
            list.push(op("subsumes", "CodeSystem-subsumes"));
            list.push(json!({"name": "load", "definition": "https://baraza.dev/fhir/OperationDefinition/CodeSystem-load"}));
        }
        "ValueSet" => {
            list.push(op("expand", "ValueSet-expand"));
            list.push(op("validate-code", "ValueSet-validate-code"));
        }
        "ConceptMap" => list.push(op("translate", "ConceptMap-translate")),
        _ => {}
    }
    list.extend(super::operations::capability_entries(Some(resource_type)));
    list
}

/// Builds the statement for a registry (the R4 one once at start-up).
pub fn build(base_url: &str, registry: &Registry) -> Value {
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
            params.extend(registry.params(t.as_str()).iter().map(|p| {
                json!({ "name": p.code, "definition": p.url.as_ref(), "type": p.kind.as_str() })
            }));
            let references = |source: &str| -> Vec<String> {
                registry
                    .params(source)
                    .iter()
                    .filter(|p| p.kind == ParamKind::Reference)
                    .map(|p| format!("{source}:{}", p.code))
                    .collect()
            };
            let mut includes = vec!["*".to_owned()];
            includes.extend(references(t.as_str()));
            let mut revincludes = vec!["*".to_owned()];
            for source in fhir::id::RESOURCE_TYPES {
                revincludes.extend(registry.params(source).iter().filter_map(|p| {
                    let points_here =
                        p.kind == ParamKind::Reference && p.targets.iter().any(|x| x == t.as_str());
                    points_here.then(|| format!("{source}:{}", p.code))
                }));
            }
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
                "searchInclude": includes,
                "searchRevInclude": revincludes,
                "searchParam": params,
                "operation": operations(t.as_str())
            })
        })
        .collect();
    let mut statement = json!({
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
            "documentation": "JSON only. Search supports every R4 search parameter listed per resource (indexed at write time by evaluating its FHIRPath expression): all prefixes; modifiers :missing, :exact, :contains, :not, :text, :of-type, :identifier, :Type, :above and :below on uris; chaining, _has, _include/_revinclude (:iterate, *), _sort, _summary, _elements, _total and keyset paging. Token :in, :not-in, :below and :above use the terminology service (docs/terminology.md). Not supported (reported, or 400 with Prefer: handling=strict): _contained, _text, _content, _list, _query, _filter, the three-part MolecularSequence composites and DocumentReference relationship.",
            "compartment": ["http://hl7.org/fhir/CompartmentDefinition/patient"],
            "resource": resources,
            "interaction": [
                { "code": "transaction" },
                { "code": "batch" },
                { "code": "history-system" },
                { "code": "search-system" }
            ]
        }]
    });
    // Subscriptions' websocket channel (subscription.html#2.46.7.2).
    statement["rest"][0]["extension"] = json!([{
        "url": "http://hl7.org/fhir/StructureDefinition/capabilitystatement-websocket",
        "valueUri": crate::events::websocket::socket_url(base_url),
    }]);
    let system_operations = super::operations::capability_entries(None);
    if !system_operations.is_empty() {
        statement["rest"][0]["operation"] = Value::Array(system_operations);
    }
    statement
}
