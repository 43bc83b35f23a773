//! The adapters' integration tests (one binary): DHIS2 fixtures written
//! from the DHIS2 Web API documentation (`tests/fixtures/dhis2/`), the
//! example configs, and every produced Bundle checked by Baraza's own R4
//! validator.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod csv;
mod dhis2;
