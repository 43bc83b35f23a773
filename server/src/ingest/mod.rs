//! Ingest batches (issue 7, docs/ingest.md): integrators open a batch,
//! upload records to it (FHIR Bundles, NDJSON or DHIS2 payloads), send it
//! complete, and a background worker writes each record through the normal
//! transaction path (`service::transaction`), with the record's state and
//! the batch counts committed in the same database transaction.
//!
//! - [`api`]: the lifecycle (create, upload, actions, status, list,
//!   errors), as plain JSON answers for `http::ingest`.
//! - [`records`]: splitting an upload into records, each a transaction
//!   Bundle with a source id and a content hash.
//! - [`store`]: the SQL of `ingest_batches`, `ingest_records` and
//!   `ingest_sources` (migrations V29–V31), always in a tenant transaction.
//! - [`worker`]: the background processing and its resumption.
//! - [`operations`]: `$ingest-status` and `$dhis2-import`.
//! - [`caller`]: who a batch belongs to and who may see it.
//! - [`sync`]: `baraza dhis2 sync`, the DHIS2 pull into a batch.
//! - [`chunk`] (with [`chunk_store`]): the worker's fast path, a chunk of
//!   records per transaction; `chunk_parts` writes a chunk of plain creates
//!   and updates in two transactions at once.
//! - [`import`]: Bulk Data `$import`, NDJSON inputs read into batches.

mod ahead;
pub mod api;
pub mod caller;
pub mod chunk;
mod chunk_parts;
pub mod chunk_store;
pub mod import;
pub mod operations;
pub mod records;
pub mod store;
pub mod sync;
pub mod worker;

use crate::error::{ApiError, Category};
use fhir::IssueCode;

/// What an upload to a batch contains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataType {
    /// A FHIR Bundle: a transaction is one record; each entry of a batch or
    /// collection is one record.
    FhirBundle,
    /// One FHIR resource per line; each line is one record.
    Ndjson,
    /// DHIS2 tracker JSON (`adapters::dhis2::map_tracker`).
    Dhis2Tracker,
    /// DHIS2 metadata with `organisationUnits`.
    Dhis2Metadata,
    /// DHIS2 `dataValueSets`.
    Dhis2DataValues,
    /// CSV rows (`adapters::csv`, with BARAZA_CSV_CONFIG).
    Csv,
}

impl DataType {
    pub const ALL: [DataType; 6] = [
        DataType::FhirBundle,
        DataType::Ndjson,
        DataType::Dhis2Tracker,
        DataType::Dhis2Metadata,
        DataType::Dhis2DataValues,
        DataType::Csv,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DataType::FhirBundle => "fhir-bundle",
            DataType::Ndjson => "ndjson",
            DataType::Dhis2Tracker => "dhis2-tracker",
            DataType::Dhis2Metadata => "dhis2-metadata",
            DataType::Dhis2DataValues => "dhis2-datavalues",
            DataType::Csv => "csv",
        }
    }

    pub fn parse(text: &str) -> Option<DataType> {
        DataType::ALL.into_iter().find(|t| t.as_str() == text)
    }

    pub fn is_dhis2(self) -> bool {
        matches!(
            self,
            DataType::Dhis2Tracker | DataType::Dhis2Metadata | DataType::Dhis2DataValues
        )
    }
}

/// A batch's place in its lifecycle (docs/ingest.md):
/// `started → sendCompleted → processing → completed | failed`, and
/// `terminated` from any state before the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Started,
    SendCompleted,
    Processing,
    Completed,
    Failed,
    Terminated,
}

impl Status {
    pub const ALL: [Status; 6] = [
        Status::Started,
        Status::SendCompleted,
        Status::Processing,
        Status::Completed,
        Status::Failed,
        Status::Terminated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Started => "started",
            Status::SendCompleted => "sendCompleted",
            Status::Processing => "processing",
            Status::Completed => "completed",
            Status::Failed => "failed",
            Status::Terminated => "terminated",
        }
    }

    pub fn parse(text: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Whether the batch has ended (nothing changes it any more).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Status::Completed | Status::Failed | Status::Terminated
        )
    }
}

/// The 409 of an action the batch's status does not allow.
pub fn illegal_transition(action: &str, status: Status) -> ApiError {
    ApiError::new(
        Category::Conflict,
        format!(
            "{action} is not allowed on a batch that is {}",
            status.as_str()
        ),
    )
    .with_code(IssueCode::Conflict)
    .at("status")
}
