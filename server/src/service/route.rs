//! Maps a method and a path relative to the FHIR base to an interaction
//! (http.html): unknown types are 404, malformed ids 400, and a method the
//! path does not support 405.

use crate::error::{ApiError, Category};
use crate::service::operations::{self, Invocation, Target};
use crate::store::history::HistoryScope;
use crate::store::tenants::{RESERVED_SEGMENTS, is_tenant_id};
use actix_web::http::Method;
use fhir::{Id, ResourceType};

mod analytics;
mod terminology;
pub use analytics::ViewRoute;
pub use terminology::TerminologyOp;
use terminology::terminology;

#[derive(Debug, Clone, PartialEq)]
pub enum Route {
    Capabilities,
    /// POST to the base: a batch or transaction Bundle.
    Transaction,
    History(HistoryKind),
    Search(SearchScope),
    Create(ResourceType),
    ConditionalUpdate(ResourceType),
    ConditionalDelete(ResourceType),
    ConditionalPatch(ResourceType),
    Read(ResourceType, Id),
    Vread(ResourceType, Id, String),
    Update(ResourceType, Id),
    Delete(ResourceType, Id),
    Patch(ResourceType, Id),
    Validate(ResourceType, Option<Id>),
    /// `$reindex` for one type or every type.
    Reindex(Option<ResourceType>),
    /// `GET $reindex/{job}`.
    ReindexStatus(String),
    /// A terminology operation at type level, or on the instance `Id`.
    Terminology(TerminologyOp, ResourceType, Option<Id>),
    /// Any other operation of `crate::service::operations`.
    Operation(Invocation),
    /// A Bulk Data job's status: GET polls, DELETE cancels.
    ExportStatus(String),
    /// One output file of a Bulk Data job.
    ExportFile(String, String),
    /// A Bulk Data `$import` job's status: GET polls, DELETE cancels.
    ImportStatus(String),
    /// The errors file of one input of an `$import` job.
    ImportErrors(String, String),
    /// SQL-on-FHIR ViewDefinitions and `$run`.
    View(ViewRoute),
}

/// Where a search looks (http.html#search).
#[derive(Debug, Clone, PartialEq)]
pub enum SearchScope {
    /// `/Type?...`
    Type(ResourceType),
    /// `/?_type=...`: every type, or those `_type` lists.
    System,
    /// `/Patient/123/Observation?...` (compartment.html); `target` None for
    /// `/Patient/123/*`.
    Compartment {
        compartment: ResourceType,
        id: Id,
        target: Option<ResourceType>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum HistoryKind {
    System,
    Type(ResourceType),
    Instance(ResourceType, Id),
}

impl HistoryKind {
    pub fn scope(&self) -> HistoryScope {
        match self {
            HistoryKind::System => HistoryScope::System,
            HistoryKind::Type(t) => HistoryScope::Type(t.as_str().to_owned()),
            HistoryKind::Instance(t, id) => {
                HistoryScope::Instance(t.as_str().to_owned(), id.as_str().to_owned())
            }
        }
    }
}

impl Route {
    /// `has_query` tells conditional interactions from malformed ones.
    pub fn parse(method: &Method, path: &str, has_query: bool) -> Result<Route, ApiError> {
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let m = method.as_str();
        let not_allowed = || {
            ApiError::new(
                Category::MethodNotAllowed,
                format!("{m} is not allowed on /{}", segments.join("/")),
            )
        };
        if let Some(route) = analytics::export(m, &segments) {
            return route;
        }
        match segments.as_slice() {
            ["AuditEvent", rest @ ..] => audit_event(m, rest),
            ["ViewDefinition", rest @ ..] => analytics::view_definition(m, rest),
            [] => match m {
                "POST" => Ok(Route::Transaction),
                "GET" => Ok(Route::Search(SearchScope::System)),
                _ => Err(not_allowed()),
            },
            ["_search"] => match m {
                "POST" => Ok(Route::Search(SearchScope::System)),
                _ => Err(not_allowed()),
            },
            ["$reindex"] => match m {
                "POST" => Ok(Route::Reindex(None)),
                _ => Err(not_allowed()),
            },
            ["$reindex", job] => match m {
                "GET" => Ok(Route::ReindexStatus((*job).to_owned())),
                _ => Err(not_allowed()),
            },
            ["metadata"] => match m {
                "GET" => Ok(Route::Capabilities),
                _ => Err(not_allowed()),
            },
            ["_history"] => match m {
                "GET" => Ok(Route::History(HistoryKind::System)),
                _ => Err(not_allowed()),
            },
            [op] if op.starts_with('$') => operation(m, op, Target::System),
            [t] => {
                let t = resource_type(t)?;
                match m {
                    "GET" => Ok(Route::Search(SearchScope::Type(t))),
                    "POST" => Ok(Route::Create(t)),
                    "PUT" | "DELETE" | "PATCH" if !has_query => Err(ApiError::invalid(format!(
                        "{m} on a resource type needs an id in the URL or search criteria (a conditional {})",
                        m.to_lowercase()
                    ))),
                    "PUT" => Ok(Route::ConditionalUpdate(t)),
                    "DELETE" => Ok(Route::ConditionalDelete(t)),
                    "PATCH" => Ok(Route::ConditionalPatch(t)),
                    _ => Err(not_allowed()),
                }
            }
            [t, "_search"] => {
                let t = resource_type(t)?;
                match m {
                    "POST" => Ok(Route::Search(SearchScope::Type(t))),
                    _ => Err(not_allowed()),
                }
            }
            [t, "_history"] => {
                let t = resource_type(t)?;
                match m {
                    "GET" => Ok(Route::History(HistoryKind::Type(t))),
                    _ => Err(not_allowed()),
                }
            }
            [t, op] if op.starts_with('$') => {
                let t = resource_type(t)?;
                if let Some(route) = terminology(m, t, op, None) {
                    return route;
                }
                match (*op, m) {
                    ("$validate", "POST") => Ok(Route::Validate(t, None)),
                    ("$reindex", "POST") => Ok(Route::Reindex(Some(t))),
                    ("$validate" | "$reindex", _) => Err(not_allowed()),
                    _ => operation(m, op, Target::Type(t)),
                }
            }
            [t, id] => {
                let (t, id) = (resource_type(t)?, resource_id(id)?);
                match m {
                    "GET" => Ok(Route::Read(t, id)),
                    "PUT" => Ok(Route::Update(t, id)),
                    "DELETE" => Ok(Route::Delete(t, id)),
                    "PATCH" => Ok(Route::Patch(t, id)),
                    _ => Err(not_allowed()),
                }
            }
            [t, id, op] if op.starts_with('$') => {
                let (t, id) = (resource_type(t)?, resource_id(id)?);
                if let Some(route) = terminology(m, t, op, Some(id.clone())) {
                    return route;
                }
                match (*op, m) {
                    ("$validate", "POST") => Ok(Route::Validate(t, Some(id))),
                    ("$validate", _) => Err(not_allowed()),
                    _ => operation(m, op, Target::Instance(t, id)),
                }
            }
            [t, id, "_history"] => {
                let (t, id) = (resource_type(t)?, resource_id(id)?);
                match m {
                    "GET" => Ok(Route::History(HistoryKind::Instance(t, id))),
                    _ => Err(not_allowed()),
                }
            }
            [t, id, "_history", vid] => {
                let (t, id) = (resource_type(t)?, resource_id(id)?);
                match m {
                    "GET" => Ok(Route::Vread(t, id, (*vid).to_owned())),
                    _ => Err(not_allowed()),
                }
            }
            [c, id, target] | [c, id, target, "_search"] => {
                let scope = compartment(c, id, target)?;
                match (m, segments.len()) {
                    ("GET", 3) | ("POST", 4) => Ok(Route::Search(scope)),
                    _ => Err(not_allowed()),
                }
            }
            _ => Err(ApiError::not_found(format!(
                "no FHIR endpoint at /{}",
                segments.join("/")
            ))),
        }
    }
}

/// Splits a path under `/fhir` into the tenant it names, if any, and the
/// path relative to that tenant's base. A first segment names a tenant when
/// it is a tenant id (lowercase, so never a resource type) other than a
/// system path such as `metadata`; `_history`, `_search` and `$reindex`
/// start with characters a tenant id cannot.
pub fn split_tenant(path: &str) -> (Option<&str>, &str) {
    let path = path.trim_matches('/');
    let (first, rest) = path.split_once('/').unwrap_or((path, ""));
    if is_tenant_id(first) && !RESERVED_SEGMENTS.contains(&first) {
        (Some(first), rest)
    } else {
        (None, path)
    }
}

/// AuditEvent is the audit trail's (`crate::audit::rest`): searched and
/// read, written only by the server, and without history.
fn audit_event(method: &str, rest: &[&str]) -> Result<Route, ApiError> {
    let t = resource_type("AuditEvent")?;
    match (method, rest) {
        ("GET", []) | ("POST", ["_search"]) => Ok(Route::Search(SearchScope::Type(t))),
        ("GET", [id]) if !id.starts_with(['_', '$']) => Ok(Route::Read(t, resource_id(id)?)),
        _ => Err(ApiError::new(
            Category::MethodNotAllowed,
            format!(
                "{method} is not allowed on /AuditEvent/{}: the server alone writes AuditEvents; \
                 they can be searched and read",
                rest.join("/")
            ),
        )),
    }
}

fn resource_type(raw: &str) -> Result<ResourceType, ApiError> {
    ResourceType::parse(raw).ok_or_else(|| {
        ApiError::not_found(format!("{raw:?} is not a FHIR R4 resource type"))
            .with_code(fhir::IssueCode::NotSupported)
    })
}

fn compartment(c: &str, id: &str, target: &str) -> Result<SearchScope, ApiError> {
    let compartment = resource_type(c)?;
    if fhir::compartment::compartment_types(compartment.as_str())
        .next()
        .is_none()
    {
        return Err(ApiError::not_found(format!(
            "there is no {compartment} compartment (only Patient)"
        ))
        .with_code(fhir::IssueCode::NotSupported));
    }
    let id = resource_id(id)?;
    let target = match target {
        "*" => None,
        t => Some(resource_type(t)?),
    };
    Ok(SearchScope::Compartment {
        compartment,
        id,
        target,
    })
}

fn resource_id(raw: &str) -> Result<Id, ApiError> {
    Id::parse(raw).ok_or_else(|| {
        ApiError::invalid(format!(
            "{raw:?} is not a valid resource id (1-64 of A-Z a-z 0-9 - .)"
        ))
    })
}

/// An operation of `crate::service::operations` at `target`.
fn operation(method: &str, op: &str, target: Target) -> Result<Route, ApiError> {
    let definition = operations::find(op, &target).ok_or_else(|| unknown_operation(op))?;
    if !operations::allows(definition, method) {
        return Err(ApiError::new(
            Category::MethodNotAllowed,
            format!(
                "{method} is not allowed for {op} (use {})",
                definition.methods.join(" or ")
            ),
        ));
    }
    Ok(Route::Operation(Invocation { definition, target }))
}

fn unknown_operation(op: &str) -> ApiError {
    ApiError::not_found(format!("operation {op} is not supported"))
        .with_code(fhir::IssueCode::NotSupported)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn route(m: &str, path: &str) -> Result<Route, ApiError> {
        Route::parse(&Method::from_bytes(m.as_bytes()).unwrap(), path, false)
    }

    #[test]
    fn routes_each_interaction() {
        assert_eq!(route("GET", "metadata").unwrap(), Route::Capabilities);
        assert_eq!(route("POST", "").unwrap(), Route::Transaction);
        assert!(matches!(
            route("GET", "Patient/1").unwrap(),
            Route::Read(..)
        ));
        assert!(matches!(
            route("GET", "Patient/1/_history/2").unwrap(),
            Route::Vread(..)
        ));
        assert!(matches!(
            route("POST", "Patient/$validate").unwrap(),
            Route::Validate(_, None)
        ));
        assert!(matches!(
            route("GET", "_history").unwrap(),
            Route::History(HistoryKind::System)
        ));
        assert_eq!(
            route("GET", "").unwrap(),
            Route::Search(SearchScope::System)
        );
        assert!(matches!(
            route("GET", "Patient/1/Observation").unwrap(),
            Route::Search(SearchScope::Compartment {
                target: Some(_),
                ..
            })
        ));
        assert!(matches!(
            route("POST", "Patient/1/*/_search").unwrap(),
            Route::Search(SearchScope::Compartment { target: None, .. })
        ));
        assert_eq!(
            route("GET", "Observation/1/Patient").unwrap_err().category,
            Category::NotFound
        );
    }

    #[test]
    fn a_lowercase_first_segment_names_the_tenant() {
        for (path, tenant, rest) in [
            ("", None, ""),
            ("Patient/1", None, "Patient/1"),
            ("metadata", None, "metadata"),
            ("_history", None, "_history"),
            ("$reindex/job", None, "$reindex/job"),
            ("a", Some("a"), ""),
            ("a/", Some("a"), ""),
            ("a/Patient/1/_history/2", Some("a"), "Patient/1/_history/2"),
            ("county-7/metadata", Some("county-7"), "metadata"),
            ("default/Patient", Some("default"), "Patient"),
            ("Bad/Patient", None, "Bad/Patient"),
        ] {
            assert_eq!(split_tenant(path), (tenant, rest), "{path}");
        }
    }

    #[test]
    fn audit_events_are_only_searched_and_read() {
        assert!(matches!(
            route("GET", "AuditEvent").unwrap(),
            Route::Search(SearchScope::Type(_))
        ));
        assert!(matches!(
            route("POST", "AuditEvent/_search").unwrap(),
            Route::Search(SearchScope::Type(_))
        ));
        assert!(matches!(
            route("GET", "AuditEvent/12").unwrap(),
            Route::Read(..)
        ));
        for (m, path) in [
            ("POST", "AuditEvent"),
            ("PUT", "AuditEvent/1"),
            ("PATCH", "AuditEvent/1"),
            ("DELETE", "AuditEvent/1"),
            ("GET", "AuditEvent/_history"),
            ("GET", "AuditEvent/1/_history/1"),
        ] {
            let e = route(m, path).unwrap_err();
            assert_eq!(e.category, Category::MethodNotAllowed, "{m} {path}");
        }
    }

    #[test]
    fn errors_have_the_right_status() {
        assert_eq!(
            route("GET", "Patientx/1").unwrap_err().category,
            Category::NotFound
        );
        assert_eq!(
            route("GET", "Patient/a b").unwrap_err().category,
            Category::Invalid
        );
        assert_eq!(
            route("POST", "Patient/1").unwrap_err().category,
            Category::MethodNotAllowed
        );
        assert_eq!(
            route("DELETE", "Patient").unwrap_err().category,
            Category::Invalid
        );
    }
}
