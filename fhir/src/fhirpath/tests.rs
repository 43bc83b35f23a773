//! Unit tests for the FHIRPath engine (filled below).
