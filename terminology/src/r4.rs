//! The R4 (4.0.1) code systems, value sets and concept maps, compiled in
//! and loaded once as global content at first start (`bootstrap`, run by
//! the migration step): `valuesets.json`, `v2-tables.json`,
//! `v3-codesystems.json` and `conceptmaps.json` of the specification.

use crate::{GLOBAL, GLOBAL_MARKER, TermError, Tx};
use flate2::read::GzDecoder;
use serde_json::Value;
use std::collections::HashSet;
use std::io::Read;

static VALUESETS_GZ: &[u8] = include_bytes!("../definitions/valuesets.json.gz");
static V2_TABLES_GZ: &[u8] = include_bytes!("../definitions/v2-tables.json.gz");
static V3_CODESYSTEMS_GZ: &[u8] = include_bytes!("../definitions/v3-codesystems.json.gz");
static CONCEPTMAPS_GZ: &[u8] = include_bytes!("../definitions/conceptmaps.json.gz");

/// The marker row's release name.
pub const RELEASE: &str = "fhir-r4-4.0.1";

/// Advisory-lock key serialising the first load between instances.
const BOOTSTRAP_LOCK: i64 = 0x7465_726d_7234; // "termr4"

/// The resources of the compiled-in Bundles, in file order.
pub fn resources() -> Result<Vec<Value>, TermError> {
    let mut out = Vec::new();
    for bytes in [
        VALUESETS_GZ,
        V3_CODESYSTEMS_GZ,
        V2_TABLES_GZ,
        CONCEPTMAPS_GZ,
    ] {
        let mut text = String::new();
        GzDecoder::new(bytes)
            .read_to_string(&mut text)
            .map_err(|e| {
                TermError::fault(format!("the compiled-in R4 terminology is unreadable: {e}"))
            })?;
        let bundle: Value = serde_json::from_str(&text).map_err(|e| {
            TermError::fault(format!("the compiled-in R4 terminology is malformed: {e}"))
        })?;
        let entries = bundle
            .get("entry")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        out.extend(
            entries
                .into_iter()
                .filter_map(|mut e| e.get_mut("resource").map(Value::take)),
        );
    }
    Ok(out)
}

/// Loads the R4 content as global content unless it is there already.
/// Idempotent and safe to run from several instances at once (an advisory
/// lock and a marker row). Returns whether it loaded.
pub async fn bootstrap(client: &mut tokio_postgres::Client) -> Result<bool, TermError> {
    let tx = client.transaction().await?;
    tx.execute(
        "SELECT set_config('baraza.tenant', $1, true)",
        &[&GLOBAL_MARKER],
    )
    .await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&BOOTSTRAP_LOCK])
        .await?;
    let done = tx
        .query_opt(
            "SELECT 1 FROM term_bootstrap WHERE tenant = '' AND release = $1",
            &[&RELEASE],
        )
        .await?
        .is_some();
    if done {
        return Ok(false);
    }
    load_all(&Tx::unpooled(&tx)).await?;
    tx.batch_execute(
        "ANALYZE term_code_systems, term_concepts, term_closure, term_edges, term_words, \
         term_designations, term_properties, term_value_sets, term_concept_maps, term_map_entries",
    )
    .await?;
    tx.execute(
        "INSERT INTO term_bootstrap (tenant, release) VALUES ('', $1)",
        &[&RELEASE],
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}

async fn load_all(tx: &Tx<'_>) -> Result<(), TermError> {
    let mut seen: HashSet<(String, String, String)> = HashSet::new();
    let mut seen_ids: HashSet<(String, String)> = HashSet::new();
    for resource in resources()? {
        let t = resource
            .get("resourceType")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let s = |k: &str| {
            resource
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        // The files overlap a little: the first definition of a url and
        // version (and of a resource id) wins.
        if !seen.insert((t.clone(), s("url"), s("version")))
            || !seen_ids.insert((t.clone(), s("id")))
        {
            continue;
        }
        if !crate::mirror::mirrored(&t) {
            continue;
        }
        if t == "CodeSystem" && s("content") == "supplement" {
            continue;
        }
        crate::mirror::store(tx, GLOBAL, "r4", &resource).await?;
    }
    Ok(())
}
