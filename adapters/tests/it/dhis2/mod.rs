//! DHIS2 payloads with the example T1D config (`examples/dhis2-t1d.yaml`).

mod aggregate;
mod config;
mod orgunits;
mod tracker;
