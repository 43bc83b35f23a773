//! Maps one DHIS2 payload file with a mapping config and prints the
//! transaction Bundle, then the per-record errors on stderr:
//! `cargo run -p adapters --example dhis2_map -- CONFIG.yaml PAYLOAD.json [KNOWN_ORG_UNIT_UID...]`.

use adapters::dhis2::{Config, map_payload};
use std::collections::HashSet;
use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [config, payload, known @ ..] = args.as_slice() else {
        eprintln!("usage: dhis2_map CONFIG.yaml PAYLOAD.json [KNOWN_ORG_UNIT_UID...]");
        return ExitCode::from(2);
    };
    let cfg = match Config::load(Path::new(config)) {
        Ok(cfg) => cfg,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(2);
        }
    };
    let payload = match std::fs::read_to_string(payload)
        .map_err(|e| e.to_string())
        .and_then(|text| serde_json::from_str(&text).map_err(|e| e.to_string()))
    {
        Ok(payload) => payload,
        Err(error) => {
            eprintln!("{payload}: {error}");
            return ExitCode::from(2);
        }
    };
    let known: HashSet<String> = known.iter().cloned().collect();
    let mapped = map_payload(&payload, &cfg, &known);
    match serde_json::to_string_pretty(&mapped.bundle) {
        Ok(text) => println!("{text}"),
        Err(error) => eprintln!("{error}"),
    }
    for error in &mapped.errors {
        eprintln!("{:?} {error}", error.severity);
    }
    if mapped.errors.iter().any(|e| e.is_error()) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
