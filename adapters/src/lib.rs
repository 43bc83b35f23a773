//! Source adapters: payloads of other systems mapped to FHIR R4 transaction
//! Bundles that the server then pushes through its normal write path
//! (validation, terminology, MPI, audit). Pure mapping: no database, no
//! HTTP, no I/O beyond reading a mapping config file.
//!
//! - [`dhis2`]: DHIS2 Web API JSON (org units, tracker, data value sets).
//! - [`csv`]: rows of a CSV file → Patients and Observations.
//! - [`output`]: what every adapter returns ([`Mapped`], [`RecordError`]).

pub mod csv;
pub mod dhis2;
pub mod output;

pub use output::{Mapped, RecordError};
