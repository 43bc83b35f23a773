//! The official R4 definitions, compiled into the binary (gzip-compressed) and
//! parsed once on first use.

use flate2::read::GzDecoder;
use serde_json::Value;
use std::io::Read;
use std::sync::OnceLock;

static SEARCH_PARAMETERS_GZ: &[u8] = include_bytes!("../definitions/search-parameters.json.gz");

/// Decompresses and parses one embedded definitions file.
pub fn parse_gz_json(bytes: &[u8]) -> Value {
    let mut text = String::new();
    // The files are compiled in and checked by unit tests, so a failure here
    // is a build defect; an empty object keeps callers total.
    if GzDecoder::new(bytes).read_to_string(&mut text).is_err() {
        return Value::Null;
    }
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// The R4 SearchParameter Bundle (`search-parameters.json`).
pub fn search_parameters_bundle() -> &'static Value {
    static CELL: OnceLock<Value> = OnceLock::new();
    CELL.get_or_init(|| parse_gz_json(SEARCH_PARAMETERS_GZ))
}
