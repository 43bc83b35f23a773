//! Data integrators (issue 4): organisations that send data for tenants.
//! What an integrator's client writes is stamped with `meta.source` and a
//! `meta.tag` naming the integrator, and the integrator sees, corrects and
//! deletes only resources carrying its own tag.

use serde_json::{Value, json};

/// The `meta.tag` system naming the integrator that submitted a resource.
pub const TAG_SYSTEM: &str = "https://baraza.dev/fhir/CodeSystem/integrator";

/// `meta.source` of an integrator's submissions (a URI, R4 Meta.source).
pub fn source_uri(integrator: &str) -> String {
    format!("urn:baraza:integrator:{integrator}")
}

/// Stamps `resource` as submitted by `integrator`: `meta.source`, and the
/// integrator tag in place of any integrator tag the client sent (a client
/// cannot claim another integrator's submissions).
pub fn stamp(resource: &mut Value, integrator: &str) {
    let Some(object) = resource.as_object_mut() else {
        return;
    };
    let meta = object.entry("meta").or_insert_with(|| json!({}));
    if !meta.is_object() {
        *meta = json!({});
    }
    let Some(meta) = meta.as_object_mut() else {
        return;
    };
    meta.insert("source".into(), json!(source_uri(integrator)));
    let tags = meta.entry("tag").or_insert_with(|| json!([]));
    if !tags.is_array() {
        *tags = json!([]);
    }
    if let Some(tags) = tags.as_array_mut() {
        tags.retain(|tag| tag["system"] != TAG_SYSTEM);
        tags.push(json!({"system": TAG_SYSTEM, "code": integrator}));
    }
}

/// Whether `resource` carries `integrator`'s tag.
pub fn submitted_by(resource: &Value, integrator: &str) -> bool {
    resource["meta"]["tag"].as_array().is_some_and(|tags| {
        tags.iter()
            .any(|tag| tag["system"] == TAG_SYSTEM && tag["code"] == integrator)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamping_replaces_other_integrator_tags_and_keeps_the_rest() {
        let mut r = json!({"resourceType": "Patient", "meta": {"tag": [
            {"system": TAG_SYSTEM, "code": "integrator-b"},
            {"system": "http://example.org/tags", "code": "keep"}
        ]}});
        stamp(&mut r, "integrator-a");
        assert_eq!(r["meta"]["source"], "urn:baraza:integrator:integrator-a");
        assert_eq!(
            r["meta"]["tag"],
            json!([{"system": "http://example.org/tags", "code": "keep"},
                   {"system": TAG_SYSTEM, "code": "integrator-a"}])
        );
        assert!(submitted_by(&r, "integrator-a"));
        assert!(!submitted_by(&r, "integrator-b"));
        let mut bare = json!({"resourceType": "Patient"});
        stamp(&mut bare, "x");
        assert!(submitted_by(&bare, "x"));
        assert!(!submitted_by(&json!({"resourceType": "Patient"}), "x"));
    }
}
