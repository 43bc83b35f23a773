//! Baraza's terminology service: the concept model shared by the loaders
//! and the store, the loaders of each distribution format, and the
//! operations of terminology-service.html.
//!
//! The crate holds its own SQL (the `term_*` tables of migrations V15 and
//! V33) and runs it on a transaction the server opened for a tenant (its
//! `baraza.tenant` set), or for global content under the marker
//! [`GLOBAL_MARKER`], through [`Tx`], which prepares each statement once.
//! Content of tenant [`GLOBAL`] is visible to every tenant; a tenant's own
//! content overrides global content of the same url.

pub mod cache;
pub mod closure;
pub mod concept_map;
pub mod db;
pub mod error;
pub mod expand;
pub mod formats;
pub mod load;
pub mod mirror;
pub mod model;
pub mod ops;
pub mod params;
pub mod r4;
pub mod release;
pub mod resource;
pub mod store;
pub mod text;
pub mod valueset;

pub use db::Tx;
pub use error::TermError;

/// The tenant key of global content.
pub const GLOBAL: &str = "";

/// The `baraza.tenant` setting of a transaction that writes global content.
/// It cannot be a tenant id (those start with a letter or a digit).
pub const GLOBAL_MARKER: &str = ".global";
