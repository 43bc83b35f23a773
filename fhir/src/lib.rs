//! FHIR R4 (4.0.1) knowledge for Baraza: the official definitions, validation,
//! references, ids, OperationOutcome, `_summary`/`_elements`, the Patient
//! compartment and SQL-on-FHIR ViewDefinitions. This crate does no I/O: the
//! definitions are compiled in, and every function is pure.

pub mod bindings;
pub mod compartment;
mod cursor;
pub mod definitions;
pub mod deidentify;
pub mod fhirpath;
pub mod id;
pub mod outcome;
pub mod reference;
pub mod search_values;
pub mod summary;
pub mod validation;
pub mod view;

pub use id::{Id, ResourceType};
pub use outcome::{Issue, IssueCode, Severity};
