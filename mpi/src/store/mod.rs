//! The index's storage and linking in PostgreSQL (migration V20,
//! docs/mpi.md): the only part of the crate that does I/O. Every function
//! runs in the caller's transaction, which must have `baraza.tenant` set
//! to `tenant` (the server's `store::TenantTx`; row-level security holds
//! each table to it), and names its tenant in every statement.
//!
//! The store never writes FHIR resources: each call returns a
//! [`LinkOutcome`] with the golden Patients to write or retire and the
//! `Patient.link` entries to set on source Patients, which the server
//! applies in the same transaction.
//!
//! Files: `db` (the `Db` trait over transactions), `records` (records,
//! keys, candidates, clusters), `batch` (`index_batch`: storing, reading
//! the neighbourhood into a `snapshot`, linking each record in memory
//! with `link`, writing with `flush`), `link` (one record's decision,
//! `index_patient`, `remove_patient`), `golden` (golden ids and content,
//! links, the link log), `review` (the queue and decisions), `merge`
//! (`$merge`, `$unmerge`), `query` (`$match`, PIXm), `jobs` (name
//! frequencies, training samples), `relink` (relink jobs, their leases).

mod batch;
mod db;
mod flush;
mod golden;
mod jobs;
mod link;
mod merge;
mod outcome;
mod query;
mod records;
mod relink;
mod review;
mod snapshot;

pub use batch::{Incoming, index_batch};
pub use db::Db;
pub use golden::{golden_id, source_links};
pub use jobs::{
    TrainingSample, name_frequency_drift, refresh_name_frequencies, sample_pairs, train_from_index,
};
pub use link::{index_patient, national_ids_disagree, remove_patient};
pub use merge::{merge, unmerge};
pub use outcome::{
    CrossReference, GoldenChange, LinkAction, LinkChange, LinkKind, LinkOutcome, LinkType,
    MatchResult, Pair, PatientLink, ReviewPair, ReviewStatus, SourceLinks,
};
pub use query::{cross_references, match_patient};
pub use records::indexed;
pub use relink::{
    DEFAULT_RELINK_BATCH, JobProgress, Lease, adopt_relinks, fail_job, hold_lease, job_progress,
    latest_relink, relink_step, running_relink, start_relink, start_relink_job,
};
pub use review::{ReviewDecision, ReviewItem, ReviewPage, decide, list_review};

use crate::config::{Config, ConfigError};
use crate::model::Matcher;

/// The actor of automatic link decisions in the link log.
pub const MPI_ACTOR: &str = "mpi";

/// Keys held by this many records or more are not used to find
/// candidates (as `evaluate::MAX_BLOCK`): such a key stopped being
/// selective, and the record's other keys still find its matches.
pub const DEFAULT_MAX_BLOCK: usize = crate::evaluate::MAX_BLOCK;

/// What a store call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("MPI database error: {0}")]
    Db(#[from] tokio_postgres::Error),
    /// A record, pair or job that does not exist.
    #[error("{0}")]
    NotFound(String),
    /// Refused by a rule (national ids differ, already merged, …).
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// A validated configuration ready to link: build it once (at start or
/// when the configuration file changes) and share it.
#[derive(Debug, Clone)]
pub struct Linker {
    matcher: Matcher,
    max_block: usize,
}

impl Linker {
    pub fn new(cfg: Config) -> Result<Linker, ConfigError> {
        Ok(Linker {
            matcher: Matcher::new(cfg)?,
            max_block: DEFAULT_MAX_BLOCK,
        })
    }

    /// Sets the candidate guard (keys held by `max_block` records or more
    /// are skipped).
    pub fn with_max_block(mut self, max_block: usize) -> Linker {
        self.max_block = max_block.max(2);
        self
    }

    pub fn config(&self) -> &Config {
        self.matcher.config()
    }

    pub fn max_block(&self) -> usize {
        self.max_block
    }
}
