//! Resource validation against the R4 definitions: a walk over the
//! StructureDefinition model (`structure`, `primitives`) followed by the
//! official JSON Schema (`schema`), merged into one list of issues.
//!
//! What is checked: resourceType; unknown elements (in resources, backbone
//! elements and datatypes, through `contentReference`); cardinality and the
//! JSON array-vs-single rule; choice type names and single variants; primitive
//! JSON types and lexical forms (with real calendar dates and integer ranges);
//! primitive `_name` companions and null alignment in primitive arrays; empty
//! objects, arrays, strings and nulls; contained resources (as their own type,
//! and dom-2) and every other nested resource (Bundle entries, Parameters,
//! any element of type Resource); ext-1 on extensions; basic narrative xhtml;
//! well-formed `Reference.reference`; required-binding enums (from the schema).
//!
//! Not checked: the FHIRPath constraint invariants of the StructureDefinitions
//! (other than ext-1 and dom-2, which are hand-coded) because Baraza has no
//! FHIRPath engine yet; profiles (`meta.profile`, SimpleQuantity...);
//! terminology bindings beyond the schema's enums; full XHTML rules.
//!
//! Official HL7 examples that the rules reject are listed in `fhir/README.md`.

mod primitives;
mod schema;
mod seen;
mod structure;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests_nested;
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests_rules;

pub use schema::warm_up as warm_up_schemas;

use crate::definitions::structure_model;
use crate::outcome::Issue;
use serde_json::Value;

/// Which steps [`validate_resource_with`] runs.
#[derive(Debug, Clone, Copy)]
pub struct ValidationOptions {
    /// Also run the official JSON Schema (adds the required-binding enum
    /// checks; the StructureDefinition walk covers everything else).
    pub json_schema: bool,
}

impl Default for ValidationOptions {
    fn default() -> Self {
        ValidationOptions { json_schema: true }
    }
}

/// Validates one resource; returns every problem found (errors and warnings),
/// each with the FHIRPath of the offending element. Empty means valid.
pub fn validate_resource(resource: &Value) -> Vec<Issue> {
    validate_resource_with(resource, ValidationOptions::default())
}

/// [`validate_resource`] with explicit options.
pub fn validate_resource_with(resource: &Value, options: ValidationOptions) -> Vec<Issue> {
    let mut walker = structure::Walker::new(structure_model());
    walker.resource(resource, false);
    let mut issues = walker.issues;
    if options.json_schema {
        let reported = issues.len();
        for found in &walker.resources {
            for issue in schema::validate(found) {
                let duplicate = issue.expression.iter().any(|schema_path| {
                    issues[..reported]
                        .iter()
                        .flat_map(|i| &i.expression)
                        .any(|path| related(schema_path, path))
                });
                if !duplicate {
                    issues.push(issue);
                }
            }
        }
        crate::bindings::explain_enum_issues(resource, &mut issues);
    }
    issues
}

/// Whether two FHIRPaths are equal or one contains the other: a schema error
/// there describes a problem the structure walk already reported (the schema
/// reports unknown and missing properties on the parent object).
fn related(a: &str, b: &str) -> bool {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    long.strip_prefix(short)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
}
