//! A ConceptMap's mappings as rows, one per `group.element.target` (or per
//! element without a target): what `term_map_entries` stores for a stored
//! map, and what `$translate` searches in memory for a map given inline.

use serde_json::Value;

/// One mapping of a ConceptMap (R4 `ConceptMap.group.element.target`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MapEntry {
    pub source_system: String,
    pub source_version: Option<String>,
    pub source_code: String,
    pub source_display: Option<String>,
    pub target_system: String,
    pub target_version: Option<String>,
    /// None for `unmatched` (no target code).
    pub target_code: Option<String>,
    pub target_display: Option<String>,
    /// R4 `ConceptMapEquivalence`; `equivalent` when absent.
    pub equivalence: String,
    pub comment: Option<String>,
}

/// The map's source and target value sets (`sourceCanonical`/`sourceUri`,
/// `targetCanonical`/`targetUri`).
pub fn scope(map: &Value) -> (Option<String>, Option<String>) {
    let canonical = |a: &str, b: &str| {
        map.get(a)
            .or_else(|| map.get(b))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    (
        canonical("sourceCanonical", "sourceUri"),
        canonical("targetCanonical", "targetUri"),
    )
}

fn list<'v>(v: &'v Value, key: &str) -> impl Iterator<Item = &'v Value> {
    v.get(key).and_then(Value::as_array).into_iter().flatten()
}

/// The mappings of `map`, in the order the map lists them. Elements
/// without a code are skipped; an element without a target gives nothing.
pub fn entries(map: &Value) -> Vec<MapEntry> {
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    let mut out = Vec::new();
    for group in list(map, "group") {
        for element in list(group, "element") {
            let Some(code) = s(element, "code") else {
                continue;
            };
            for target in list(element, "target") {
                out.push(MapEntry {
                    source_system: s(group, "source").unwrap_or_default(),
                    source_version: s(group, "sourceVersion"),
                    source_code: code.clone(),
                    source_display: s(element, "display"),
                    target_system: s(group, "target").unwrap_or_default(),
                    target_version: s(group, "targetVersion"),
                    target_code: s(target, "code"),
                    target_display: s(target, "display"),
                    equivalence: s(target, "equivalence").unwrap_or_else(|| "equivalent".into()),
                    comment: s(target, "comment"),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rows_follow_groups_elements_and_targets() {
        let map = json!({"resourceType": "ConceptMap", "sourceUri": "urn:vs:a",
            "targetCanonical": "urn:vs:b",
            "group": [{"source": "urn:a", "target": "urn:b", "targetVersion": "2",
                "element": [
                    {"code": "1", "display": "One", "target": [
                        {"code": "I", "equivalence": "equal"},
                        {"code": "uno", "display": "Uno", "equivalence": "wider", "comment": "c"}]},
                    {"code": "2", "target": [{"equivalence": "unmatched"}]},
                    {"display": "no code", "target": [{"code": "x"}]},
                    {"code": "3"}]}]});
        assert_eq!(
            scope(&map),
            (Some("urn:vs:a".into()), Some("urn:vs:b".into()))
        );
        let rows = entries(&map);
        let brief: Vec<(&str, Option<&str>, &str)> = rows
            .iter()
            .map(|e| {
                (
                    e.source_code.as_str(),
                    e.target_code.as_deref(),
                    e.equivalence.as_str(),
                )
            })
            .collect();
        assert_eq!(
            brief,
            [
                ("1", Some("I"), "equal"),
                ("1", Some("uno"), "wider"),
                ("2", None, "unmatched")
            ]
        );
        assert_eq!(rows[1].target_version.as_deref(), Some("2"));
        assert_eq!(rows[1].comment.as_deref(), Some("c"));
        assert_eq!(rows[0].source_display.as_deref(), Some("One"));
    }
}
