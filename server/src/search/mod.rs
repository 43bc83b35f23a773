//! Search: the parameter registry, index extraction at write time, criteria
//! parsing and query execution.
//!
//! This first version indexes token parameters whose FHIRPath expression is
//! a plain path (e.g. `Patient.identifier`, `Observation.code`), which covers
//! `identifier`, codes and `_tag`; together with `_id` this serves search and
//! the conditional interactions. The full engine replaces the path evaluator.

pub mod criteria;
pub mod date_range;
pub mod execute;
pub mod index;
pub mod registry;
