//! Baraza's integration tests: the real server, over real HTTP, on a real
//! PostgreSQL (a private cluster started by the harness, or the server at
//! BARAZA_TEST_DATABASE_URL). One binary, one module per area.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod audit;
mod audit_chain;
mod auth;
mod auth_http;
mod auth_limits;
mod batches;
mod batches_integrators;
mod batches_resume;
mod bulk_export;
mod bundles;
mod concurrency;
mod conditional;
mod conformance;
mod console;
mod crud;
mod deidentification;
mod dhis2;
mod dhis2_sync;
mod events;
mod everything;
mod export_auth;
mod expunge;
mod groups;
mod harness;
mod history;
mod import;
mod import_tenants;
mod integrators;
mod mcsd;
mod mpi_cli;
mod mpi_http;
mod mpi_review;
mod mpi_store;
mod negotiation;
mod node;
mod oidc;
mod operations;
mod overview;
mod processes;
mod search;
mod search_chains;
mod search_custom;
mod search_results;
mod search_tokens;
mod secrets;
mod tenants;
mod terminology;
mod terminology_cli;
mod terminology_content;
mod tls;
mod validation;
mod views;
