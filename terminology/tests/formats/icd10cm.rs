//! ICD-10-CM tabular XML.

use super::{TempDir, assert_error, fixture, load, load_error, string};
use terminology::formats::{DESIGNATION_USE, Format, Options};
use terminology::model::PropertyValue;

fn icd10cm() -> super::Loaded {
    load(
        Format::Icd10Cm,
        &fixture("icd10cm/icd10cm_tabular_test.xml"),
        &Options::default(),
    )
}

#[test]
fn header_has_the_version_element() {
    let loaded = icd10cm();
    assert_eq!(loaded.header.url, "http://hl7.org/fhir/sid/icd-10-cm");
    assert_eq!(loaded.header.version.as_deref(), Some("2025"));
    assert_eq!(loaded.header.name.as_deref(), Some("ICD-10-CM"));
}

#[test]
fn chapters_sections_and_diags_are_concepts_under_their_enclosing_element() {
    let loaded = icd10cm();
    // 2 chapters, 3 sections, 18 diags, 12 seventh-character codes.
    assert_eq!(loaded.concepts().len(), 35);
    assert_eq!(
        loaded.display("1"),
        Some("Certain infectious and parasitic diseases (A00-B99)")
    );
    assert_eq!(
        loaded.display("A00-A09"),
        Some("Intestinal infectious diseases (A00-A09)")
    );
    assert_eq!(loaded.parents("A00-A09"), ["1"]);
    assert_eq!(loaded.parents("A00"), ["A00-A09"]);
    assert_eq!(loaded.parents("A01.01"), ["A01.0"]);
    assert_eq!(loaded.parents("T07"), ["T07-T07"]);
    assert!(loaded.parents("19").is_empty());
    let kind = |code: &str| loaded.property(code, "kind").cloned();
    let value = |v: &str| Some(PropertyValue::Code(v.to_owned()));
    assert_eq!(kind("19"), value("chapter"));
    assert_eq!(kind("S00-S09"), value("section"));
    assert_eq!(kind("S00"), value("category"));
    assert_eq!(kind("S00.01"), value("code"));
    assert_eq!(kind("S00.01XA"), value("extension"));
    assert_eq!(
        loaded.property("S00-S09", "notSelectable"),
        Some(&PropertyValue::Boolean(true))
    );
}

#[test]
fn seventh_characters_extend_every_leaf_below_the_definition() {
    let loaded = icd10cm();
    let concepts = loaded.concepts();
    for code in [
        "S00.00XA", "S00.00XD", "S00.00XS", "S00.01XA", "S02.0XXA", "S02.0XXB",
    ] {
        assert!(concepts.contains_key(code), "{code} missing");
    }
    assert_eq!(
        loaded.display("S00.01XD"),
        Some("Abrasion of scalp, subsequent encounter")
    );
    assert_eq!(loaded.parents("S00.01XD"), ["S00.01"]);
    // A category without subdivisions pads with X: T07 → T07.XXXA.
    assert_eq!(
        loaded.display("T07.XXXS"),
        Some("Unspecified multiple injuries, sequela")
    );
    // The nearest definition wins: S02.10 redefines S02's.
    assert!(concepts.contains_key("S02.101G"));
    assert!(!concepts.contains_key("S02.101A"));
    // Non-leaf codes get no extensions.
    assert!(!concepts.contains_key("S00.0XXA"));
    assert!(!concepts.contains_key("S00.XXXA"));
    let billable = |code: &str| loaded.property(code, "billable").cloned();
    assert_eq!(billable("S00.01"), Some(PropertyValue::Boolean(false)));
    assert_eq!(billable("S00.01XA"), Some(PropertyValue::Boolean(true)));
    assert_eq!(billable("A00.9"), Some(PropertyValue::Boolean(true)));
    assert_eq!(billable("A00"), None);
}

#[test]
fn notes_become_properties_and_inclusion_terms_designations() {
    let loaded = icd10cm();
    assert_eq!(
        loaded.properties("S00", "excludes1"),
        [
            &string("diffuse cerebral contusion (S06.2-)"),
            &string("focal cerebral contusion (S06.3-)")
        ]
    );
    assert_eq!(
        loaded.property("1", "includes"),
        Some(&string(
            "diseases generally recognized as communicable or transmissible"
        ))
    );
    assert_eq!(
        loaded.property("A01.01", "codeAlso"),
        Some(&string("any associated condition"))
    );
    assert_eq!(
        loaded.property("T07", "useAdditionalCode"),
        Some(&string("code to identify the cause of injury"))
    );
    assert!(loaded.property("S00", "sevenChrNote").is_some());
    let inclusion = loaded.designations("A00.0");
    assert_eq!(inclusion.len(), 1);
    assert_eq!(inclusion[0].value, "Classical cholera");
    assert_eq!(
        inclusion[0].use_,
        Some((DESIGNATION_USE.to_owned(), "inclusionTerm".to_owned()))
    );
}

fn tabular_error(body: &str) -> terminology::model::LoadError {
    let dir = TempDir::new("icd10cm");
    let text =
        format!("<?xml version=\"1.0\"?>\n<ICD10CM.tabular>\n  <version>2025</version>\n{body}");
    let path = dir.write("tabular.xml", &text);
    load_error(Format::Icd10Cm, &path, &Options::default())
}

#[test]
fn a_diag_without_name_is_reported_at_its_line() {
    let error = tabular_error(concat!(
        "  <chapter>\n",
        "    <name>1</name>\n",
        "    <desc>One</desc>\n",
        "    <section id=\"A00-A09\">\n",
        "      <desc>Section</desc>\n",
        "      <diag>\n",
        "        <desc>No name</desc>\n",
        "      </diag>\n",
        "    </section>\n",
        "  </chapter>\n",
        "</ICD10CM.tabular>\n",
    ));
    assert_error(&error, "tabular.xml", 9, "<diag> without a <name>");
}

#[test]
fn a_bad_seventh_character_and_an_unclosed_file_are_errors() {
    let error = tabular_error(concat!(
        "  <chapter>\n",
        "    <name>19</name>\n",
        "    <section id=\"S00-S09\">\n",
        "      <diag>\n",
        "        <name>S00</name>\n",
        "        <sevenChrDef>\n",
        "          <extension char=\"AB\">initial</extension>\n",
    ));
    assert_error(&error, "tabular.xml", 10, "one character, found \"AB\"");
    let error = tabular_error(concat!(
        "  <chapter>\n",
        "    <name>19</name>\n",
        "    <section id=\"S00-S09\">\n",
        "      <desc>Injuries</desc>\n",
    ));
    assert_error(&error, "tabular.xml", 6, "unclosed element <section>");
}
