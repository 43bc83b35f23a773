//! Baraza's master patient index: how two Patient records are compared
//! and scored, and (in `store`) how the index is kept in PostgreSQL. The
//! engine modules do no I/O and no async; `store` holds all of the
//! index's SQL and runs inside the server's tenant transaction, returning
//! what the server must write (golden Patients, `Patient.link`).
//!
//! Flow: `Features::from_patient` once per record → `blocking::blocking_keys`
//! (stored, looked up) → `Matcher::score` / `Matcher::compare` per
//! candidate → `Decision` by thresholds. `train` re-estimates the
//! probabilities, `golden` builds the golden record of a linked cluster,
//! `generator` and `evaluate` measure quality (docs/mpi-matching.md).

pub mod blocking;
pub mod compare;
pub mod config;
pub mod defaults;
pub mod evaluate;
pub mod features;
pub mod fields;
pub mod generator;
pub mod golden;
pub mod model;
pub mod normalize;
pub mod phonetic;
pub mod store;
pub mod train;

pub use blocking::{BlockKey, blocking_keys};
pub use config::{Config, ConfigError};
pub use features::Features;
pub use fields::{Field, Gamma};
pub use model::{Comparison, Decision, MatchGrade, Matcher, NameFrequencies};
