//! Search: the parameter registry, index extraction at write time, criteria
//! parsing, sorting and paging, and query execution.
//!
//! Every R4 search parameter is indexed by evaluating its FHIRPath
//! expression at write time into one table per parameter type; a search is
//! one SQL statement over those tables (see `execute`).

pub mod criteria;
pub mod custom;
pub mod execute;
pub mod include;
pub mod index;
pub mod patient_keyed;
pub mod registry;
pub mod sort;
pub mod token_sets;
