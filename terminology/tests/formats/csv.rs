//! Plain CSV code lists.

use super::{TempDir, assert_error, fixture, load, load_error, string};
use terminology::formats::plain_csv::CsvOptions;
use terminology::formats::{Format, Options};
use terminology::model::{PropertyKind, PropertyValue};

fn districts() -> super::Loaded {
    load(
        Format::Csv,
        &fixture("csv/districts.csv"),
        &Options::default(),
    )
}

#[test]
fn metadata_lines_give_the_header_and_columns_the_properties() {
    let loaded = districts();
    let header = &loaded.header;
    assert_eq!(
        header.url,
        "https://health.example.go.ke/fhir/CodeSystem/districts"
    );
    assert_eq!(header.version.as_deref(), Some("2024.1"));
    assert_eq!(header.name.as_deref(), Some("KenyaDistricts"));
    assert_eq!(
        header.title.as_deref(),
        Some("Administrative districts (test list)")
    );
    assert_eq!(header.hierarchy_meaning.as_deref(), Some("is-a"));
    let kinds: Vec<(&str, PropertyKind)> = header
        .properties
        .iter()
        .map(|p| (p.code.as_str(), p.kind))
        .collect();
    assert_eq!(
        kinds,
        [
            ("population", PropertyKind::Integer),
            ("capital", PropertyKind::Boolean),
            ("area_km2", PropertyKind::Decimal),
            ("since", PropertyKind::DateTime),
            ("region_type", PropertyKind::String),
        ]
    );
}

#[test]
fn rows_are_concepts_with_parents_designations_and_typed_properties() {
    let loaded = districts();
    assert_eq!(loaded.concepts().len(), 12);
    assert_eq!(loaded.display("KE-30"), Some("Nairobi"));
    assert_eq!(loaded.definition("KE-01-01"), Some("Old town, island"));
    assert_eq!(loaded.parents("KE-30-01"), ["KE-30"]);
    assert_eq!(loaded.parents("KE-17-LAKE"), ["KE-17", "KE-LAKE"]);
    assert!(loaded.parents("KE").is_empty());
    assert!(!loaded.active("KE-OLD"));
    assert!(loaded.active("KE-30-01"));
    assert_eq!(
        loaded.property("KE", "population"),
        Some(&PropertyValue::Integer(47564296))
    );
    assert_eq!(
        loaded.property("KE-30", "capital"),
        Some(&PropertyValue::Boolean(true))
    );
    assert_eq!(
        loaded.property("KE-30", "area_km2"),
        Some(&PropertyValue::Decimal("696.1".to_owned()))
    );
    assert_eq!(
        loaded.property("KE", "since"),
        Some(&PropertyValue::DateTime("1963-12-12".to_owned()))
    );
    assert_eq!(
        loaded.property("KE-30-01", "region_type"),
        Some(&string("sub-county"))
    );
    // Empty cells give nothing.
    assert_eq!(loaded.property("KE-30-01", "population"), None);
    let designations = loaded.designations("KE-LAKE");
    let languages: Vec<(&str, &str)> = designations
        .iter()
        .map(|d| (d.language.as_deref().unwrap(), d.value.as_str()))
        .collect();
    assert_eq!(
        languages,
        [("sw", "Eneo la Ziwa"), ("fr", "Région des lacs")]
    );
}

#[test]
fn options_give_the_url_of_a_list_without_metadata() {
    let path = fixture("csv/facility-types.csv");
    let error = load_error(Format::Csv, &path, &Options::default());
    assert_error(&error, "facility-types.csv", 0, "no code system url");
    let options = Options {
        url: Some("https://health.example.go.ke/fhir/CodeSystem/facility-type".to_owned()),
        version: Some("1".to_owned()),
        ..Options::default()
    };
    let loaded = load(Format::Csv, &path, &options);
    assert_eq!(loaded.header.version.as_deref(), Some("1"));
    assert_eq!(loaded.display("PHARM"), Some("Pharmacy, retail"));
    assert_eq!(loaded.concepts().len(), 4);
    assert_eq!(loaded.edges(), 0);
}

#[test]
fn a_tab_separated_list_with_a_bom() {
    let dir = TempDir::new("csv-tab");
    let path = dir.write(
        "labs.tsv",
        "\u{feff}#url=urn:lab\ncode\tdisplay\tprop:unit:code\nGLU\tGlucose\tmg/dL\n",
    );
    let options = Options {
        csv: CsvOptions { delimiter: b'\t' },
        ..Options::default()
    };
    let loaded = load(Format::Csv, &path, &options);
    assert_eq!(loaded.header.url, "urn:lab");
    assert_eq!(loaded.display("GLU"), Some("Glucose"));
    assert_eq!(
        loaded.property("GLU", "unit"),
        Some(&PropertyValue::Code("mg/dL".to_owned()))
    );
}

fn csv_error(name: &str, text: &str) -> terminology::model::LoadError {
    let dir = TempDir::new(name);
    let path = dir.write("list.csv", text);
    load_error(Format::Csv, &path, &Options::default())
}

#[test]
fn malformed_lists_are_reported_at_their_line() {
    let check = |text: &str, line: u64, message: &str| {
        assert_error(&csv_error("csv-bad", text), "list.csv", line, message);
    };
    check("#url=urn:x\ncode,name\nA,B\n", 2, "missing column display");
    check(
        "#url=urn:x\n#version=1\ncode,display,active\nA,Aa,true\nB,Bb,maybe\n",
        5,
        "bad active value 'maybe'",
    );
    check(
        "#url=urn:x\ncode,display,prop:n:integer\nA,Aa,1\nB,Bb,1.5\n",
        4,
        "bad Integer value '1.5' for property n",
    );
    check(
        "#url=urn:x\ncode,display\nA,Aa\n,Nothing\n",
        4,
        "empty code",
    );
    check(
        "#url=urn:x\ncode,display\nA,\"two\nlines\"\nB,Bb,extra\n",
        5,
        "the row has 3 fields, the header 2",
    );
    check(
        "#url=urn:x\ncode,display,prop:n:color\n",
        2,
        "unknown type 'color'",
    );
    check(
        "#url=urn:x\n#owner=me\ncode,display\n",
        2,
        "unknown metadata key 'owner'",
    );
}
