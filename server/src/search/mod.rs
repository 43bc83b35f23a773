//! Search: the parameter registry, index extraction at write time, criteria
//! parsing and query execution.
//!
//! This first version indexes every token parameter of R4 by evaluating its
//! FHIRPath expression at write time; together with `_id` this serves search
//! and the conditional interactions. The other parameter types follow the
//! same pattern with their own index tables.

pub mod criteria;
pub mod execute;
pub mod index;
pub mod registry;
