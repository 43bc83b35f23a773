//! Benchmark support: synthetic data generators shared by the benchmark
//! commands and the integration tests.

pub mod population;
pub mod synthetic;
