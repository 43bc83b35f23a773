//! The audit trail (issue 4, docs/audit.md): one AuditEvent in the IHE
//! BALP style for every FHIR request and every refused attempt: who,
//! tenant, action and interaction, the resources and patients touched,
//! outcome, network address and time; never bodies, tokens or secrets.
//!
//! The HTTP layer opens a [`Pending`] record per request and fills it as
//! the request is understood (interaction, tenant, caller, and what the
//! service layer reports it [`Touched`]); the [`Recorder`] queues the
//! resulting events for one writer task, which appends them in batches to
//! an append-only, hash-chained, monthly-partitioned table (migration V12).
//! [`verify`] recomputes the chain, [`retention`] keeps the partitions and
//! [`rest`] serves `AuditEvent` search and read. Like `store` and `search`,
//! this module holds its own SQL.

mod chain;
mod entity;
mod event;
mod json;
mod query;
pub mod rest;
pub mod retention;
pub mod stats;
pub mod verify;
mod writer;

pub use chain::{AppendError, GENESIS, Row, append};
pub use entity::{EntityRef, EntryAudit, Touched, patients_of};
pub use event::{Action, Event, Interaction, Pending, outcome_code};
pub use writer::{MAX_BATCH, Recorder};
