//! Unit tests for the embedded definitions and the structure model.

use super::*;

#[test]
fn embedded_files_decompress() {
    for bytes in [
        PROFILES_TYPES_GZ,
        PROFILES_RESOURCES_GZ,
        JSON_SCHEMA_GZ,
        COMPARTMENT_PATIENT_GZ,
    ] {
        assert!(!gunzip(bytes).is_empty());
    }
    assert!(search_parameters_bundle().get("entry").is_some());
}

#[test]
fn model_knows_every_resource_type() {
    let model = structure_model();
    for t in crate::ResourceType::all() {
        assert!(model.resource(t.as_str()).is_some(), "{t}");
    }
    assert!(model.resource("DomainResource").is_none());
}

#[test]
fn choice_and_primitive_lookups() {
    let (element, ty) = structure_model()
        .element("Observation", "valueQuantity")
        .unwrap();
    assert!(element.choice);
    assert_eq!(&*element.name, "value");
    assert_eq!(&*ty.code, "Quantity");
    assert!(matches!(ty.kind, ValueKind::Complex(_)));
    let birth = element_info("Patient", "birthDate").unwrap();
    assert_eq!((birth.min, birth.max), (0, Some(1)));
    assert!(matches!(
        structure_model()
            .element("Patient", "birthDate")
            .unwrap()
            .1
            .kind,
        ValueKind::Primitive {
            primitive: Primitive::Date,
            extension_node: Some(_)
        }
    ));
    assert!(element_info("Observation", "value").is_none());
}

#[test]
fn system_types_map_to_fhir_types() {
    let model = structure_model();
    let (_, url) = model.element("Extension", "url").unwrap();
    assert!(matches!(
        url.kind,
        ValueKind::Primitive {
            primitive: Primitive::Uri,
            extension_node: None
        }
    ));
    let (_, id) = model.element("Patient", "id").unwrap();
    assert!(matches!(
        id.kind,
        ValueKind::Primitive {
            primitive: Primitive::Id,
            extension_node: None
        }
    ));
    let (_, element_id) = model.element("HumanName", "id").unwrap();
    assert!(matches!(
        element_id.kind,
        ValueKind::Primitive {
            primitive: Primitive::String,
            ..
        }
    ));
    let date = model.node_named("date").unwrap();
    assert!(date.lookup("value").is_none());
    assert!(date.lookup("extension").is_some());
}

#[test]
fn backbones_and_content_references() {
    let model = structure_model();
    let (item, ty) = model.element("Questionnaire.item", "item").unwrap();
    assert_eq!(
        item.content_reference.as_deref(),
        Some("Questionnaire.item")
    );
    assert_eq!(
        ty.kind,
        ValueKind::Complex(model.node_id("Questionnaire.item").unwrap())
    );
    let (contact, _) = model.element("Patient", "contact").unwrap();
    assert!(contact.is_array());
    assert!(model.element("Patient.contact", "relationship").is_some());
    let (resource, ty) = model.element("Bundle.entry", "resource").unwrap();
    assert_eq!(resource.max, Some(1));
    assert_eq!(ty.kind, ValueKind::Resource);
    assert!(model.element("Timing.repeat", "boundsDuration").is_some());
    assert!(model.element("Condition", "onsetAge").is_some());
}

#[test]
fn summary_flags() {
    let model = structure_model();
    let summary = |path: &str, name: &str| model.element(path, name).unwrap().0.is_summary;
    // Resource.id/meta/implicitRules are summary; DomainResource.text,
    // contained, extension and (R4 snapshot) modifierExtension are not.
    for name in [
        "id",
        "meta",
        "implicitRules",
        "name",
        "birthDate",
        "deceasedBoolean",
    ] {
        assert!(summary("Patient", name), "{name}");
    }
    for name in [
        "language",
        "text",
        "contained",
        "extension",
        "modifierExtension",
        "photo",
        "contact",
    ] {
        assert!(!summary("Patient", name), "{name}");
    }
    assert!(summary("Observation", "valueQuantity"));
    assert!(!summary("Observation", "category"));
    // Datatype properties are summary except Attachment.data; Element.id and
    // extension are not. Backbone modifierExtension is.
    assert!(summary("HumanName", "family"));
    assert!(summary("Coding", "code"));
    assert!(!summary("HumanName", "id"));
    assert!(!summary("HumanName", "extension"));
    assert!(!summary("Attachment", "data"));
    assert!(summary("Attachment", "url"));
    assert!(summary("Patient.contact", "modifierExtension"));
    assert!(!summary("Patient.contact", "name"));
    assert!(summary("Questionnaire.item", "item") == summary("Questionnaire", "item"));
}
