//! Baraza, the FHIR R4 server: configuration, the embedded database, the
//! storage and search layers, the interactions and the HTTP edge.

pub mod app;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod config;
pub mod db;
pub mod embedded_pg;
pub mod error;
pub mod events;
pub mod http;
pub mod ingest;
pub mod json_members;
pub mod metrics;
pub mod mpi_config;
pub mod search;
pub mod service;
pub mod store;
pub mod telemetry;
