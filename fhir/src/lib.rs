//! FHIR R4 (4.0.1) knowledge for Baraza: the official definitions, validation,
//! references, ids and OperationOutcome. This crate does no I/O: the
//! definitions are compiled in, and every function is pure.

mod cursor;
pub mod definitions;
pub mod fhirpath;
pub mod id;
pub mod outcome;
pub mod reference;
pub mod search_values;
pub mod validation;

pub use id::{Id, ResourceType};
pub use outcome::{Issue, IssueCode, Severity};
