//! The result-shaping parameters of a search (search.html#count,
//! #sort, #include, #summary, #elements, #total): read once into a
//! [`Shape`], and applied to each resource's stored text.

use super::super::bundle_out::Embedded;
use super::AppState;
use crate::error::ApiError;
use crate::search::criteria::Strictness;
use crate::search::include::{self, Include};
use crate::search::registry::Registry;
use crate::search::sort::{Cursor, SortKey, parse_sort};
use fhir::Issue;
use fhir::summary::{SummaryMode, select_elements, summarize};
use serde_json::Value;

const DEFAULT_COUNT: usize = 50;

/// `_total` (search.html#total).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Total {
    /// Not asked: given when the whole result fits on the first page.
    Default,
    None,
    Estimate,
    Accurate,
}

/// The result-shaping parameters of one search.
pub(super) struct Shape {
    pub(super) count: usize,
    pub(super) after: Option<Cursor>,
    pub(super) sort: Vec<SortKey>,
    pub(super) includes: Vec<Include>,
    pub(super) summary: SummaryMode,
    pub(super) elements: Option<Vec<String>>,
    pub(super) total: Total,
    /// The parameters to repeat in page links.
    pub(super) echo: Vec<(String, String)>,
}

/// The stored text, cut down by `_summary`/`_elements` when asked.
pub(super) fn shaped(text: String, shape: &Shape) -> Result<Embedded, ApiError> {
    if shape.summary == SummaryMode::False && shape.elements.is_none() {
        return Ok(Embedded::stored(text));
    }
    let resource: Value = serde_json::from_str(&text).map_err(ApiError::fault)?;
    let resource = match &shape.elements {
        Some(elements) => {
            let names: Vec<&str> = elements.iter().map(String::as_str).collect();
            select_elements(&resource, &names).0
        }
        None => summarize(&resource, shape.summary),
    };
    Embedded::tree(&resource)
}

/// Reads the result parameters.
pub(super) fn shape(
    registry: &Registry,
    state: &AppState,
    types: &[String],
    params: &[(String, String)],
    strictness: Strictness,
    warnings: &mut Vec<Issue>,
) -> Result<Shape, ApiError> {
    let mut shape = Shape {
        count: DEFAULT_COUNT.min(state.max_page_size),
        after: None,
        sort: Vec::new(),
        includes: Vec::new(),
        summary: SummaryMode::False,
        elements: None,
        total: Total::Default,
        echo: Vec::new(),
    };
    let mut page = None;
    for (name, value) in params {
        let echo = (name.clone(), value.clone());
        match name.as_str() {
            "_count" => {
                shape.count = value
                    .parse::<usize>()
                    .map_err(|_| {
                        ApiError::invalid(format!("_count {value:?} is not a non-negative integer"))
                            .at("_count")
                    })?
                    .min(state.max_page_size);
            }
            "_page" => page = Some(value.clone()),
            "_sort" => {
                shape.sort = parse_sort(registry, types, value)?;
                shape.echo.push(echo);
            }
            "_type" => shape.echo.push(echo),
            n if n.starts_with("_include") || n.starts_with("_revinclude") => {
                shape
                    .includes
                    .push(include::parse_include(registry, n, value)?);
                shape.echo.push(echo);
            }
            "_summary" => {
                shape.summary = SummaryMode::parse(value)
                    .map_err(|e| ApiError::invalid(e.to_string()).at("_summary"))?;
                shape.echo.push(echo);
            }
            "_elements" => {
                let names: Vec<String> = value
                    .split(',')
                    .map(|e| e.trim().to_owned())
                    .filter(|e| !e.is_empty())
                    .collect();
                shape.elements = Some(names);
                shape.echo.push(echo);
            }
            "_total" => {
                shape.total = match value.as_str() {
                    "none" => Total::None,
                    "estimate" => Total::Estimate,
                    "accurate" => Total::Accurate,
                    _ => {
                        return Err(ApiError::invalid(format!(
                            "_total takes none, estimate or accurate, not {value:?}"
                        ))
                        .at("_total"));
                    }
                };
                shape.echo.push(echo);
            }
            "_contained" | "_containedType" => {
                let plain = matches!(
                    (name.as_str(), value.as_str()),
                    ("_contained", "false") | ("_containedType", "container")
                );
                if !plain {
                    let why = format!(
                        "{name}={value} is not supported: contained resources are not searched"
                    );
                    strictness.unsupported(name, why, warnings)?;
                }
            }
            _ => {}
        }
    }
    if shape.summary != SummaryMode::False && shape.elements.is_some() {
        return Err(
            ApiError::invalid("_summary and _elements cannot be used together").at("_elements"),
        );
    }
    if let Some(page) = page {
        shape.after = Some(Cursor::decode(&page, shape.sort.len())?);
    }
    Ok(shape)
}
