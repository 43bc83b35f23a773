//! The routes of issue 8 that are not operations of the registry: the Bulk
//! Data status and file endpoints the `$export` kick-off points at, and the
//! SQL-on-FHIR ViewDefinitions, which R4 has no resource type for.

use super::Route;
use crate::error::{ApiError, Category};
use fhir::Id;

/// What a path under `ViewDefinition` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ViewRoute {
    /// `GET ViewDefinition`: the tenant's stored views.
    List,
    /// `GET ViewDefinition/{id}`
    Read(Id),
    /// `PUT ViewDefinition/{id}`: store (create or replace) a view.
    Store(Id),
    /// `DELETE ViewDefinition/{id}`: the view and its table.
    Delete(Id),
    /// `ViewDefinition/$run` (inline `viewResource`) or
    /// `ViewDefinition/{id}/$run` (stored), by GET or POST.
    Run(Option<Id>),
    /// `POST ViewDefinition/{id}/$materialize`: (re)build its table.
    Materialize(Id),
}

/// `$export-status/{job}` (GET polls, DELETE cancels) and
/// `$export-file/{job}/{file}` (GET); `$import-status/{job}` and
/// `$import-errors/{job}/{file}` alike.
pub fn export(method: &str, segments: &[&str]) -> Option<Result<Route, ApiError>> {
    let route = match segments {
        ["$export-status", job] => match method {
            "GET" | "DELETE" => Ok(Route::ExportStatus((*job).to_owned())),
            _ => Err(not_allowed(method, segments)),
        },
        ["$export-file", job, file] => match method {
            "GET" => Ok(Route::ExportFile((*job).to_owned(), (*file).to_owned())),
            _ => Err(not_allowed(method, segments)),
        },
        ["$import-status", job] => match method {
            "GET" | "DELETE" => Ok(Route::ImportStatus((*job).to_owned())),
            _ => Err(not_allowed(method, segments)),
        },
        ["$import-errors", job, file] => match method {
            "GET" => Ok(Route::ImportErrors((*job).to_owned(), (*file).to_owned())),
            _ => Err(not_allowed(method, segments)),
        },
        _ => return None,
    };
    Some(route)
}

/// A path whose first segment is `ViewDefinition`.
pub fn view_definition(method: &str, rest: &[&str]) -> Result<Route, ApiError> {
    let id = |raw: &str| {
        Id::parse(raw).ok_or_else(|| {
            ApiError::invalid(format!(
                "{raw:?} is not a valid ViewDefinition id (1-64 of A-Z a-z 0-9 - .)"
            ))
        })
    };
    let route = match (method, rest) {
        ("GET", []) => ViewRoute::List,
        ("GET" | "POST", ["$run"]) => ViewRoute::Run(None),
        ("GET", [raw]) if !raw.starts_with('$') => ViewRoute::Read(id(raw)?),
        ("PUT", [raw]) if !raw.starts_with('$') => ViewRoute::Store(id(raw)?),
        ("DELETE", [raw]) if !raw.starts_with('$') => ViewRoute::Delete(id(raw)?),
        ("GET" | "POST", [raw, "$run"]) => ViewRoute::Run(Some(id(raw)?)),
        ("POST", [raw, "$materialize"]) => ViewRoute::Materialize(id(raw)?),
        (_, [] | ["$run"] | [_] | [_, "$run" | "$materialize"]) => {
            let mut segments = vec!["ViewDefinition"];
            segments.extend_from_slice(rest);
            return Err(not_allowed(method, &segments));
        }
        _ => {
            return Err(ApiError::not_found(format!(
                "no ViewDefinition endpoint at /ViewDefinition/{}",
                rest.join("/")
            )));
        }
    };
    Ok(Route::View(route))
}

fn not_allowed(method: &str, segments: &[&str]) -> ApiError {
    ApiError::new(
        Category::MethodNotAllowed,
        format!("{method} is not allowed on /{}", segments.join("/")),
    )
}
