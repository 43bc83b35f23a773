//! SQL-on-FHIR v2 ViewDefinitions (https://sql-on-fhir.org/ig/latest/):
//! parse a ViewDefinition once into a [`ViewDefinition`], then
//! [`evaluate`](ViewDefinition::evaluate) it against resources one at a
//! time, each resource giving its rows. Pure evaluation: where resources
//! come from and where rows go (CSV, NDJSON, PostgreSQL tables) is the
//! server's business.
//!
//! ```
//! use fhir::view::ViewDefinition;
//! use serde_json::json;
//! let view = ViewDefinition::parse(&json!({
//!     "resourceType": "ViewDefinition",
//!     "resource": "Patient",
//!     "select": [
//!         {"column": [{"name": "id", "path": "getResourceKey()", "type": "id"}]},
//!         {"forEach": "name", "column": [{"name": "family", "path": "family", "type": "string"}]}
//!     ]
//! })).unwrap();
//! let patient = json!({"resourceType": "Patient", "id": "p1", "name": [{"family": "Chalmers"}]});
//! let rows = view.evaluate(&patient).unwrap();
//! assert_eq!(rows, vec![vec![json!("p1"), json!("Chalmers")]]);
//! assert_eq!(view.columns()[1].sql_type(), "text");
//! ```

mod column;
mod constant;
mod eval;
mod json;
mod parse;

#[cfg(test)]
mod tests;

pub use column::Column;

use crate::fhirpath::Expression;
use crate::id::ResourceType;
use serde_json::{Map, Value as Json};
use std::fmt;

/// One row: a JSON value per column, in [`ViewDefinition::columns`] order.
/// A column without a value is `null`; a `collection` column is an array.
pub type Row = Vec<Json>;

/// An invalid ViewDefinition, or a failure while evaluating one. `path` is
/// where in the ViewDefinition the problem is (`select[0].column[2].path`),
/// suitable for an OperationOutcome `expression`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewError {
    pub path: String,
    pub message: String,
}

impl ViewError {
    pub(crate) fn new(path: impl Into<String>, message: impl Into<String>) -> ViewError {
        ViewError {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ViewError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for ViewError {}

/// A validated ViewDefinition, ready to evaluate any number of resources.
/// It holds parsed FHIRPath only, so it can be shared between threads.
#[derive(Debug, Clone)]
pub struct ViewDefinition {
    resource: ResourceType,
    name: Option<String>,
    constants: Vec<constant::Constant>,
    filters: Vec<parse::Located>,
    root: parse::Select,
    columns: Vec<Column>,
}

impl ViewDefinition {
    /// Validates a ViewDefinition (JSON as the specification shows it) and
    /// parses its FHIRPath. The error names the offending element.
    pub fn parse(json: &Json) -> Result<ViewDefinition, ViewError> {
        parse::view_definition(json)
    }

    /// The resource type the view reads (`resource`).
    pub fn resource(&self) -> ResourceType {
        self.resource
    }

    /// The view's `name`, which the specification intends as a table name.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The columns every row has, in order.
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// The rows one resource gives. A resource of another type than
    /// [`resource`](Self::resource), or one the `where` clauses exclude,
    /// gives none. Errors (a column with several values that is not a
    /// `collection`, a `where` path that is not boolean) name the element
    /// whose expression failed.
    pub fn evaluate(&self, resource: &Json) -> Result<Vec<Row>, ViewError> {
        eval::evaluate(self, resource)
    }

    /// A row as a JSON object keyed by column name, in column order (for
    /// JSON and NDJSON output).
    pub fn row_object(&self, row: Row) -> Map<String, Json> {
        self.columns
            .iter()
            .map(|c| c.name.clone())
            .zip(row)
            .collect()
    }
}

/// Parses one FHIRPath expression of the view, naming `at` on failure.
fn parse_expression(text: &str, at: &str) -> Result<Expression, ViewError> {
    Expression::parse(text).map_err(|e| ViewError::new(at, e.to_string()))
}
