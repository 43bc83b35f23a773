//! Named operations (operations.html) other than `$validate`, `$reindex`
//! and the terminology service's: one table of [`Definition`]s, each with
//! where it may be invoked, by which methods, the permissions it needs and
//! its handler. [`Route::parse`](super::route::Route::parse) turns `$name`
//! into [`Route::Operation`](super::route::Route::Operation) when the table
//! has it at that level, so authorization, audit, metrics and the
//! CapabilityStatement all read the same definition.
//!
//! A feature adds its operations by listing its own `DEFINITIONS` slice in
//! [`MODULES`]; its handlers open whatever transactions they need.

use super::{AppState, FhirRequest, FhirResponse};
use crate::auth::Interaction;
use crate::error::ApiError;
use crate::store::TenantCtx;
use fhir::{Id, ResourceType};
use futures_util::future::BoxFuture;

/// Where an operation was invoked (operations.html#invoking).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `[base]/$name`
    System,
    /// `[base]/Type/$name`
    Type(ResourceType),
    /// `[base]/Type/id/$name`
    Instance(ResourceType, Id),
}

impl Target {
    pub fn level(&self) -> Level {
        match self {
            Target::System => Level::System,
            Target::Type(_) => Level::Type,
            Target::Instance(..) => Level::Instance,
        }
    }

    pub fn resource_type(&self) -> Option<ResourceType> {
        match self {
            Target::System => None,
            Target::Type(t) | Target::Instance(t, _) => Some(*t),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    System,
    Type,
    Instance,
}

/// Runs an operation: the server state, the tenant (with the caller), the
/// invocation and the request (query parameters and body).
pub type Handler = for<'a> fn(
    &'a AppState,
    &'a TenantCtx,
    Invocation,
    FhirRequest,
) -> BoxFuture<'a, Result<FhirResponse, ApiError>>;

/// The permissions an invocation needs, as (interaction, resource type)
/// pairs; `"*"` is every type.
pub type Needs = fn(&Target) -> Vec<(Interaction, String)>;

/// One operation of the server.
pub struct Definition {
    /// With the `$`, as in the URL.
    pub name: &'static str,
    /// Where it may be invoked.
    pub levels: &'static [Level],
    /// The resource types it is defined on; empty: system level only, or
    /// every type.
    pub types: &'static [&'static str],
    /// `["GET", "POST"]` for operations that change nothing, else POST.
    pub methods: &'static [&'static str],
    /// The canonical URL of its OperationDefinition.
    pub definition_url: &'static str,
    pub needs: Needs,
    /// A purpose permission (groups.html of docs/security.md) it needs
    /// besides `needs`, such as `tenant-admin`.
    pub purpose: Option<&'static str>,
    pub handler: Handler,
}

impl std::fmt::Debug for Definition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Definition")
            .field("name", &self.name)
            .finish()
    }
}

/// An operation as the router placed it.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub definition: &'static Definition,
    pub target: Target,
}

impl PartialEq for Invocation {
    fn eq(&self, other: &Invocation) -> bool {
        self.definition.name == other.definition.name && self.target == other.target
    }
}

impl Invocation {
    pub fn name(&self) -> &'static str {
        self.definition.name
    }
}

/// Every feature's operations.
const MODULES: &[&[Definition]] = &[
    super::patient_index::DEFINITIONS,
    crate::ingest::operations::DEFINITIONS,
    crate::ingest::import::DEFINITIONS,
    super::mcsd::DEFINITIONS,
    super::export::DEFINITIONS,
    super::everything::DEFINITIONS,
    super::expunge::DEFINITIONS,
    crate::events::operations::DEFINITIONS,
];

/// Every operation the server has.
pub fn all() -> impl Iterator<Item = &'static Definition> {
    MODULES.iter().flat_map(|defs| defs.iter())
}

/// The definition of `name` that may be invoked at `target`.
pub fn find(name: &str, target: &Target) -> Option<&'static Definition> {
    all().find(|d| {
        d.name == name
            && d.levels.contains(&target.level())
            && (d.types.is_empty()
                || target
                    .resource_type()
                    .is_some_and(|t| d.types.contains(&t.as_str())))
    })
}

/// Whether `method` may invoke the operation.
pub fn allows(definition: &Definition, method: &str) -> bool {
    definition.methods.contains(&method)
}

/// Runs the invocation.
pub async fn invoke(
    state: &AppState,
    ctx: &TenantCtx,
    invocation: Invocation,
    req: FhirRequest,
) -> Result<FhirResponse, ApiError> {
    (invocation.definition.handler)(state, ctx, invocation, req).await
}

/// The CapabilityStatement entries for operations on `resource_type`
/// (`None`: the system-level ones).
pub fn capability_entries(resource_type: Option<&str>) -> Vec<serde_json::Value> {
    all()
        .filter(|d| match resource_type {
            None => d.levels.contains(&Level::System),
            Some(t) => {
                (d.levels.contains(&Level::Type) || d.levels.contains(&Level::Instance))
                    && (d.types.is_empty() || d.types.contains(&t))
            }
        })
        .map(|d| {
            serde_json::json!({
                "name": d.name.trim_start_matches('$'),
                "definition": d.definition_url,
            })
        })
        .collect()
}

/// Needs for operations that read one resource type at type or instance
/// level (and every type at system level).
pub fn reads_the_type(target: &Target) -> Vec<(Interaction, String)> {
    let t = target.resource_type().map_or("*", |t| t.as_str());
    vec![(Interaction::Read, t.to_owned())]
}

/// Needs for operations that change resources of the type.
pub fn updates_the_type(target: &Target) -> Vec<(Interaction, String)> {
    let t = target.resource_type().map_or("*", |t| t.as_str());
    vec![(Interaction::Update, t.to_owned())]
}

/// An operation's input as (name, value) pairs: the query's parameters,
/// then those of a Parameters body with a primitive `value[x]`
/// (operations.html#request). A part-valued or resource-valued parameter
/// is the handler's to read from the body.
pub fn input_parameters(req: &FhirRequest) -> Result<Vec<(String, String)>, ApiError> {
    let mut params: Vec<(String, String)> = req
        .params
        .iter()
        .filter(|(name, _)| !matches!(name.as_str(), "_format" | "_pretty"))
        .cloned()
        .collect();
    let super::Body::Resource(body) = &req.body else {
        return Ok(params);
    };
    if body.get("resourceType").and_then(serde_json::Value::as_str) != Some("Parameters") {
        return Err(ApiError::invalid(
            "the operation takes a Parameters resource",
        ));
    }
    for parameter in body["parameter"].as_array().into_iter().flatten() {
        let Some(name) = parameter["name"].as_str() else {
            continue;
        };
        let value = parameter.as_object().and_then(|p| {
            p.iter().find_map(|(key, value)| {
                if !key.starts_with("value") {
                    return None;
                }
                match value {
                    serde_json::Value::String(s) => Some(s.clone()),
                    serde_json::Value::Bool(_) | serde_json::Value::Number(_) => {
                        Some(value.to_string())
                    }
                    _ => None,
                }
            })
        });
        if let Some(value) = value {
            params.push((name.to_owned(), value));
        }
    }
    Ok(params)
}
