//! WHO ICD-10 ClaML.

use super::{TempDir, assert_error, fixture, load, load_error, string};
use terminology::formats::{DESIGNATION_USE, Format, Options};
use terminology::model::PropertyValue;

fn icd10() -> super::Loaded {
    load(
        Format::Icd10,
        &fixture("claml/icd10-test.xml"),
        &Options::default(),
    )
}

#[test]
fn header_comes_from_title_and_meta() {
    let loaded = icd10();
    assert_eq!(loaded.header.url, "http://hl7.org/fhir/sid/icd-10");
    assert_eq!(loaded.header.name.as_deref(), Some("ICD-10-TEST"));
    assert_eq!(loaded.header.version.as_deref(), Some("2019-test"));
    assert_eq!(
        loaded.header.title.as_deref(),
        Some("International Statistical Classification of Diseases, test edition")
    );
    let properties: Vec<&str> = loaded
        .header
        .properties
        .iter()
        .map(|p| p.code.as_str())
        .collect();
    for expected in ["kind", "exclusion", "coding-hint", "note", "text"] {
        assert!(properties.contains(&expected), "{properties:?}");
    }
    assert!(!properties.contains(&"inclusion"), "{properties:?}");
}

#[test]
fn every_class_is_a_concept_with_its_preferred_label() {
    let loaded = icd10();
    let concepts = loaded.concepts();
    // 29 classes and 5 codes made by modifiers.
    assert_eq!(concepts.len(), 34);
    assert!(concepts.values().all(|(_, active)| *active));
    assert_eq!(
        loaded.display("A00.0"),
        Some("Cholera due to Vibrio cholerae 01, biovar cholerae")
    );
    assert_eq!(
        loaded.display("I"),
        Some("Certain infectious and parasitic diseases")
    );
    // Mixed content: references run inline.
    assert_eq!(
        loaded.display("A17.0"),
        Some("Tuberculous meningitis (G01)")
    );
    // Modifier classes are not concepts.
    assert!(!concepts.contains_key(".0") && !concepts.contains_key("0"));
}

#[test]
fn superclasses_give_the_hierarchy() {
    let loaded = icd10();
    assert_eq!(loaded.parents("A00.0"), ["A00"]);
    assert_eq!(loaded.parents("A00"), ["A00-A09"]);
    assert_eq!(loaded.parents("A00-A09"), ["I"]);
    assert!(loaded.parents("I").is_empty());
    assert_eq!(loaded.edges(), 30);
}

#[test]
fn kind_usage_and_meta_become_properties() {
    let loaded = icd10();
    let code = |c: &str| PropertyValue::Code(c.to_owned());
    assert_eq!(loaded.property("I", "kind"), Some(&code("chapter")));
    assert_eq!(loaded.property("A15-A19", "kind"), Some(&code("block")));
    assert_eq!(loaded.property("A00.9", "kind"), Some(&code("category")));
    assert_eq!(loaded.property("A17.0", "usage"), Some(&code("dagger")));
    assert_eq!(loaded.property("G01", "usage"), Some(&code("aster")));
    assert_eq!(
        loaded.property("A00.0", "MortL1Code"),
        Some(&string("1-002"))
    );
}

#[test]
fn rubrics_become_designations_properties_and_definitions() {
    let loaded = icd10();
    // Inclusions are designations; fragments are separate phrases.
    let a010 = loaded.designations("A01.0");
    assert_eq!(a010.len(), 1);
    assert_eq!(
        a010[0].value,
        "Infection due to Salmonella typhi with or without complication"
    );
    assert_eq!(
        a010[0].use_,
        Some((DESIGNATION_USE.to_owned(), "inclusion".to_owned()))
    );
    assert_eq!(a010[0].language.as_deref(), Some("en"));
    let a01 = loaded.designations("A01");
    assert_eq!(a01[0].use_.as_ref().unwrap().1, "preferredLong");
    // A preferred label in another language is a preferred designation.
    let chapter = loaded.designations("I");
    let french = chapter
        .iter()
        .find(|d| d.language.as_deref() == Some("fr"))
        .unwrap();
    assert_eq!(
        french.value,
        "Certaines maladies infectieuses et parasitaires"
    );
    assert!(french.preferred);
    // Other rubrics are string properties, entities resolved.
    assert_eq!(
        loaded.property("I", "exclusion"),
        Some(&string(
            "influenza and other acute respiratory infections (J00-J22)"
        ))
    );
    assert_eq!(
        loaded.property("A01.0", "coding-hint"),
        Some(&string(
            "Use an additional code to identify complications & sequelae."
        ))
    );
    assert_eq!(
        loaded.property("A15-A19", "note"),
        Some(&string(
            "Includes: infections due to Mycobacterium tuberculosis"
        ))
    );
    assert_eq!(
        loaded.definition("A00"),
        Some("An acute intestinal infection caused by a comma-shaped bacterium.")
    );
}

const HEAD: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ClaML version=\"2.0.0\">\n  <Title name=\"T\" version=\"1\">Test</Title>\n";

fn claml_error(body: &str) -> terminology::model::LoadError {
    let dir = TempDir::new("claml");
    let path = dir.write("broken.xml", &format!("{HEAD}{body}"));
    load_error(Format::Icd10, &path, &Options::default())
}

#[test]
fn a_wrong_end_tag_is_reported_at_its_line() {
    let error = claml_error(concat!(
        "  <Class code=\"A\" kind=\"chapter\">\n",
        "    <Rubric kind=\"preferred\"><Label>A</Label></Rubric>\n",
        "  </Class>\n",
        "  <Class code=\"B\" kind=\"chapter\">\n",
        "    <Rubric kind=\"preferred\"><Label>B</Label>\n",
        "  </Class>\n",
        "</ClaML>\n",
    ));
    assert_error(&error, "broken.xml", 9, "Rubric");
}

#[test]
fn an_unclosed_element_is_reported_at_its_start() {
    let error = claml_error(concat!(
        "  <Class code=\"A\" kind=\"chapter\">\n",
        "    <Rubric kind=\"preferred\">\n",
        "      <Label>A</Label>\n",
    ));
    assert_error(&error, "broken.xml", 5, "unclosed element <Rubric>");
}

#[test]
fn a_class_without_preferred_label_or_code_is_an_error() {
    let error = claml_error(concat!(
        "  <Class code=\"A\" kind=\"chapter\">\n",
        "    <Rubric kind=\"preferred\"><Label>A</Label></Rubric>\n",
        "  </Class>\n",
        "  <Class code=\"B\" kind=\"chapter\">\n",
        "    <Rubric kind=\"note\"><Label>only a note</Label></Rubric>\n",
        "  </Class>\n",
        "</ClaML>\n",
    ));
    assert_error(&error, "broken.xml", 7, "class B has no preferred rubric");
    let error = claml_error("  <Class kind=\"chapter\">\n  </Class>\n</ClaML>\n");
    assert_error(&error, "broken.xml", 4, "<Class> without a code attribute");
}

#[test]
fn an_unknown_entity_is_an_error() {
    let error = claml_error(concat!(
        "  <Class code=\"A\" kind=\"chapter\">\n",
        "    <Rubric kind=\"preferred\"><Label>A&nbsp;B</Label></Rubric>\n",
        "  </Class>\n",
        "</ClaML>\n",
    ));
    assert_error(&error, "broken.xml", 5, "unknown entity &nbsp;");
}

#[test]
fn another_document_is_refused_and_a_bom_is_tolerated() {
    let dir = TempDir::new("claml-other");
    let path = dir.write("other.xml", "<?xml version=\"1.0\"?>\n<Other/>\n");
    assert_error(
        &load_error(Format::Icd10, &path, &Options::default()),
        "other.xml",
        2,
        "not a ClaML file",
    );
    let text = std::fs::read_to_string(fixture("claml/icd10-test.xml")).unwrap();
    let path = dir.write("bom.xml", &format!("\u{feff}{text}"));
    assert_eq!(
        load(Format::Icd10, &path, &Options::default())
            .concepts()
            .len(),
        34
    );
}

#[test]
fn modifiers_make_codes_at_the_leaves_they_apply_to() {
    let loaded = icd10();
    for (code, display, parent) in [
        (
            "M00.00",
            "Staphylococcal arthritis and polyarthritis, multiple sites",
            "M00.0",
        ),
        (
            "M00.01",
            "Staphylococcal arthritis and polyarthritis, shoulder region",
            "M00.0",
        ),
        (
            "E10.0",
            "Insulin-dependent diabetes mellitus, with coma",
            "E10",
        ),
        (
            "E10.1",
            "Insulin-dependent diabetes mellitus, with ketoacidosis",
            "E10",
        ),
        (
            "E11.0",
            "Non-insulin-dependent diabetes mellitus, with coma",
            "E11",
        ),
    ] {
        assert_eq!(loaded.display(code), Some(display), "{code}");
        assert_eq!(loaded.parents(code), [parent], "{code}");
        assert_eq!(
            loaded.property(code, "kind"),
            Some(&PropertyValue::Code("category".to_owned()))
        );
        assert!(loaded.active(code));
    }
    assert_eq!(
        loaded.property("M00.01", "modifier"),
        Some(&PropertyValue::Code("S13M00_5".to_owned()))
    );
    let concepts = loaded.concepts();
    // M00 has subcategories, M00.1 excludes the modifier, E11 allows only .0.
    for absent in ["M00.0.0", "M000", "M00.10", "M00.11", "E11.1"] {
        assert!(!concepts.contains_key(absent), "{absent}");
    }
    assert!(
        loaded
            .header
            .properties
            .iter()
            .any(|p| p.code == "modifier")
    );
}

#[test]
fn undefined_modifiers_are_errors_at_their_line() {
    let error = claml_error(concat!(
        "  <ModifierClass modifier=\"S1\" code=\"0\">\n",
        "    <Rubric kind=\"preferred\"><Label>Zero</Label></Rubric>\n",
        "  </ModifierClass>\n",
        "  <Class code=\"A\" kind=\"chapter\">\n",
        "    <ModifiedBy code=\"S2\"/>\n",
        "    <Rubric kind=\"preferred\"><Label>A</Label></Rubric>\n",
        "  </Class>\n",
        "</ClaML>\n",
    ));
    assert_error(&error, "broken.xml", 8, "modified by S2");
    let error = claml_error(concat!(
        "  <ModifierClass modifier=\"S1\" code=\"0\">\n",
        "    <Rubric kind=\"preferred\"><Label>Zero</Label></Rubric>\n",
        "  </ModifierClass>\n",
        "  <Class code=\"A\" kind=\"chapter\">\n",
        "    <ModifiedBy code=\"S1\" all=\"false\"><ValidModifierClass code=\"9\"/></ModifiedBy>\n",
        "    <Rubric kind=\"preferred\"><Label>A</Label></Rubric>\n",
        "  </Class>\n",
        "</ClaML>\n",
    ));
    assert_error(&error, "broken.xml", 8, "modifier class 9 of S1");
    let error = claml_error(concat!(
        "  <ModifierClass modifier=\"S1\" code=\"0\">\n",
        "    <Rubric kind=\"text\"><Label>no preferred label</Label></Rubric>\n",
        "  </ModifierClass>\n",
        "</ClaML>\n",
    ));
    assert_error(
        &error,
        "broken.xml",
        4,
        "modifier class 0 of S1 has no preferred rubric",
    );
    let error = claml_error(concat!(
        "  <Class code=\"A\" kind=\"chapter\">\n",
        "    <ModifiedBy code=\"S1\" position=\"fifth\"/>\n",
        "    <Rubric kind=\"preferred\"><Label>A</Label></Rubric>\n",
        "  </Class>\n",
        "</ClaML>\n",
    ));
    assert_error(&error, "broken.xml", 5, "position=\"fifth\"");
}
