//! A forward `_include` read from the matches themselves. The targets of
//! `_include=Observation:performer` are the references in each match's
//! `performer`, which the search already holds as stored text: reading
//! them there saves a statement that descends `search_reference`'s owner
//! index once for every match (a quarter of the benchmark's Q8,
//! docs/search.md).
//!
//! Only where that gives exactly the rows the index holds:
//! - the parameter is an R4 definition (custom ones may have been added
//!   after a resource was indexed, and indexed only at `$reindex`) whose
//!   expression is one element of the source type (`Source.element`, see
//!   `Include::element`);
//! - each value is a Reference whose `reference` is relative (`Type/id`,
//!   possibly versioned): an absolute URL is local or not according to the
//!   base URL at the time it was indexed. Anything else, or a text the
//!   scanner does not follow, gives `None`, and the index is asked.

use super::Include;
use crate::json_members::members;
use crate::store::Stored;
use fhir::reference::{ReferenceTarget, parse_reference};
use serde_json::Value;

/// The (type, id) targets of `include` from the resources `from`, sorted
/// and without repeats as the index's `SELECT DISTINCT` gives them; `None`
/// when they must come from the index.
pub fn targets(include: &Include, from: &[Stored]) -> Option<Vec<(String, String)>> {
    let element = include.element.as_deref()?;
    let source = include.source.as_deref()?;
    if include.reverse {
        return None;
    }
    let mut keys = Vec::new();
    for stored in from.iter().filter(|s| s.resource_type == source) {
        let Some(text) = stored.content.as_deref() else {
            continue;
        };
        let mut values = Vec::new();
        members(text, &[element], |_, value| values.push(value))?;
        for value in values {
            match serde_json::from_str::<Value>(value).ok()? {
                Value::Array(items) => {
                    for item in &items {
                        target(item, include.target.as_deref(), &mut keys)?;
                    }
                }
                item => target(&item, include.target.as_deref(), &mut keys)?,
            }
        }
    }
    keys.sort_unstable();
    keys.dedup();
    Some(keys)
}

/// Adds the target of one Reference to `keys`, as the index reads it;
/// `None` for a value the index may read otherwise.
fn target(item: &Value, only: Option<&str>, keys: &mut Vec<(String, String)>) -> Option<()> {
    let Some(reference) = item.as_object()?.get("reference") else {
        // A Reference by identifier or display only: no row.
        return Some(());
    };
    let reference = reference.as_str()?;
    if reference.contains(':') {
        return None;
    }
    if let Some(ReferenceTarget::Local {
        resource_type, id, ..
    }) = parse_reference(reference, "")
    {
        if only.is_none_or(|t| t == resource_type.as_str()) {
            keys.push((resource_type.as_str().to_owned(), id.to_owned()));
        }
    }
    Some(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::parse_include;
    use super::targets;
    use crate::search::registry::Registry;
    use crate::store::Stored;

    fn stored(resource_type: &str, id: &str, content: &str) -> Stored {
        Stored {
            resource_type: resource_type.into(),
            id: id.into(),
            version_id: 1,
            last_updated: chrono::Utc::now(),
            deleted: false,
            content: Some(content.into()),
        }
    }

    fn keys(list: &[(&str, &str)]) -> Option<Vec<(String, String)>> {
        Some(
            list.iter()
                .map(|(t, i)| ((*t).into(), (*i).into()))
                .collect(),
        )
    }

    #[test]
    fn reads_one_element_of_each_match() {
        let include =
            parse_include(Registry::global(), "_include", "Observation:performer").unwrap();
        let from = [
            stored(
                "Observation",
                "o1",
                r##"{"resourceType":"Observation","performer":[{"reference":"Practitioner/b"},{"reference":"Organization/o/_history/2"},{"display":"someone"},{"reference":"#c"}],"note":[{"text":"performer"}]}"##,
            ),
            stored(
                "Observation",
                "o2",
                r#"{"performer":[{"reference":"Practitioner/b"},{"reference":"Practitioner/a"}]}"#,
            ),
            stored("Observation", "o3", r#"{"status":"final"}"#),
            stored(
                "Patient",
                "p",
                r#"{"performer":[{"reference":"Practitioner/z"}]}"#,
            ),
        ];
        assert_eq!(
            targets(&include, &from),
            keys(&[
                ("Organization", "o"),
                ("Practitioner", "a"),
                ("Practitioner", "b")
            ])
        );
        let only = parse_include(
            Registry::global(),
            "_include",
            "Observation:performer:Practitioner",
        )
        .unwrap();
        assert_eq!(
            targets(&only, &from),
            keys(&[("Practitioner", "a"), ("Practitioner", "b")])
        );
    }

    #[test]
    fn leaves_to_the_index_what_it_may_read_otherwise() {
        let include =
            parse_include(Registry::global(), "_include", "Observation:performer").unwrap();
        for content in [
            r#"{"performer":[{"reference":"http://example.org/fhir/Practitioner/1"}]}"#,
            r#"{"performer":[{"reference":"urn:uuid:0f6c1e1a-4e7b-4d7e-9a55-2a3a3c1d9e11"}]}"#,
            r#"{"performer":[{"reference":7}]}"#,
            r#"{"performer":["Practitioner/1"]}"#,
            r#"{"perf\u006frmer":[]}"#,
        ] {
            assert_eq!(
                targets(&include, &[stored("Observation", "o", content)]),
                None,
                "{content}"
            );
        }
        // Not one element: `Observation.subject.where(resolve() is Patient)`.
        let patient = parse_include(Registry::global(), "_include", "Observation:patient").unwrap();
        assert_eq!(patient.element, None);
        let reverse =
            parse_include(Registry::global(), "_revinclude", "Observation:performer").unwrap();
        assert_eq!(targets(&reverse, &[]), None);
        let any = parse_include(Registry::global(), "_include", "Observation:*").unwrap();
        assert_eq!(any.element, None);
    }
}
