//! `GET /metadata?mode=terminology`: the TerminologyCapabilities resource
//! listing the code systems (and versions) a tenant can use.

use crate::{TermError, Tx};
use serde_json::{Value, json};
use std::collections::BTreeMap;

pub async fn terminology_capabilities(
    tx: &Tx<'_>,
    tenant: &str,
    base_url: &str,
) -> Result<Value, TermError> {
    let mut systems: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (url, version, _, _) in crate::store::list_systems(tx, tenant).await? {
        let versions = systems.entry(url).or_default();
        if !versions.contains(&version) {
            versions.push(version);
        }
    }
    let code_systems: Vec<Value> = systems
        .into_iter()
        .map(|(uri, versions)| {
            let versions: Vec<Value> = versions
                .into_iter()
                .filter(|v| !v.is_empty())
                .map(|v| json!({"code": v}))
                .collect();
            let mut cs = json!({"uri": uri});
            if !versions.is_empty() {
                cs["version"] = json!(versions);
            }
            cs
        })
        .collect();
    Ok(json!({
        "resourceType": "TerminologyCapabilities",
        "status": "active",
        "date": "2026-11-29",
        "kind": "instance",
        "software": {"name": "Baraza"},
        "implementation": {"description": "Baraza terminology service", "url": base_url},
        "codeSearch": "all",
        "codeSystem": code_systems,
        "expansion": {
            "hierarchical": false,
            "paging": true,
            "incomplete": false,
            "parameter": [
                {"name": "filter"}, {"name": "offset"}, {"name": "count"}, {"name": "activeOnly"},
                {"name": "includeDesignations"}, {"name": "displayLanguage"}, {"name": "excludeNested"}
            ],
            "textFilter": "Each word of the filter must start a word of the display or a designation; ranked exact, prefix, word prefix, then (code systems up to 10,000 concepts) contains, shorter displays first."
        },
        "validateCode": {"translations": false},
        "translation": {"needsMap": true},
        "closure": {"translation": false}
    }))
}
