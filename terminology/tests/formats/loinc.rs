//! A LOINC release directory.

use super::{TempDir, assert_error, copy_fixture, fixture, load, load_error, string};
use terminology::formats::{DESIGNATION_USE, Format, Options};
use terminology::model::PropertyValue;

fn loinc() -> super::Loaded {
    load(
        Format::Loinc,
        &fixture("loinc/Loinc_2.78"),
        &Options::default(),
    )
}

#[test]
fn header_version_comes_from_the_directory_name() {
    let loaded = loinc();
    assert_eq!(loaded.header.url, "http://loinc.org");
    assert_eq!(loaded.header.version.as_deref(), Some("2.78"));
}

#[test]
fn loinc_codes_have_display_status_and_parts() {
    let loaded = loinc();
    assert_eq!(
        loaded.display("99001-7"),
        Some("Glucose [Mass/volume] in Serum or Plasma")
    );
    assert_eq!(
        loaded.definition("99001-7"),
        Some("Test definition of a glucose mass concentration.")
    );
    for (code, active, status) in [
        ("99001-7", true, "ACTIVE"),
        ("99003-3", true, "TRIAL"),
        ("99004-1", true, "DISCOURAGED"),
        ("99005-8", false, "DEPRECATED"),
    ] {
        assert_eq!(loaded.active(code), active, "{code}");
        assert_eq!(
            loaded.property(code, "STATUS"),
            Some(&PropertyValue::Code(status.to_owned()))
        );
    }
    for (property, value) in [
        ("COMPONENT", "Glucose"),
        ("PROPERTY", "MCnc"),
        ("TIME_ASPCT", "Pt"),
        ("SYSTEM", "Bld"),
        ("SCALE_TYP", "Qn"),
        ("METHOD_TYP", "Test strip"),
        ("CLASS", "CHEM"),
        ("CLASSTYPE", "1"),
    ] {
        assert_eq!(
            loaded.property("99002-5", property),
            Some(&string(value)),
            "{property}"
        );
    }
    // Empty columns give no property.
    assert_eq!(loaded.property("99001-7", "METHOD_TYP"), None);
}

#[test]
fn short_and_display_names_are_designations() {
    let loaded = loinc();
    let designations = loaded.designations("99001-7");
    let by_use = |use_code: &str| {
        designations
            .iter()
            .find(|d| d.use_ == Some((DESIGNATION_USE.to_owned(), use_code.to_owned())))
            .map(|d| d.value.as_str())
    };
    assert_eq!(by_use("SHORTNAME"), Some("Glucose SerPl-mCnc"));
    assert_eq!(by_use("CONSUMER_NAME"), Some("Glucose, serum or plasma"));
    assert_eq!(by_use("DisplayName"), Some("Glucose SerPl-mCnc"));
}

#[test]
fn the_hierarchy_gives_is_a_edges_and_part_concepts() {
    let loaded = loinc();
    assert_eq!(loaded.parents("99001-7"), ["LP90002-7"]);
    assert_eq!(loaded.parents("LP90002-7"), ["LP90001-9"]);
    assert!(loaded.parents("LP90000-1").is_empty());
    assert_eq!(loaded.edges(), 12);
    assert_eq!(loaded.display("LP90003-5"), Some("Electrolytes"));
    // Part.csv (read after the hierarchy) gives parts their display and
    // status, and adds parts that are not in the hierarchy.
    assert_eq!(loaded.display("LP90001-9"), Some("Chemistry"));
    assert_eq!(loaded.display("LP90007-6"), Some("Serum or Plasma"));
    assert!(!loaded.active("LP90008-4"));
    assert_eq!(
        loaded.property("LP90007-6", "PartTypeName"),
        Some(&string("SYSTEM"))
    );
    let part_name = loaded.designations("LP90007-6");
    assert_eq!(part_name.len(), 1);
    assert_eq!(part_name[0].value, "Ser/Plas");
    // 8 LOINC codes; LP90000-1 … LP90008-4 are parts.
    assert_eq!(loaded.concepts().len(), 8 + 9);
}

#[test]
fn the_table_alone_is_enough_and_errors_name_the_file_and_line() {
    let dir = TempDir::new("loinc-table");
    copy_fixture(&fixture("loinc/Loinc_2.78/LoincTable"), &dir.0);
    let loaded = load(Format::Loinc, &dir.0, &Options::default());
    assert_eq!(loaded.concepts().len(), 8);
    assert_eq!(loaded.edges(), 0);
    assert_eq!(loaded.header.version, None);

    // A bad status after a quoted field that spans two lines (7 and 8).
    let table = std::fs::read_to_string(dir.0.join("Loinc.csv")).unwrap();
    let broken = table.replacen("\"99007-4\",\"Body weight\",\"Mass\",\"Pt\",\"^Patient\",\"Qn\",\"Measured\",\"BDYWGT.MOLEC\",\"2.78\",\"MIN\",\"\",\"ACTIVE\"", "\"99007-4\",\"Body weight\",\"Mass\",\"Pt\",\"^Patient\",\"Qn\",\"Measured\",\"BDYWGT.MOLEC\",\"2.78\",\"MIN\",\"\",\"RETIRED\"", 1);
    assert_ne!(broken, table);
    std::fs::write(dir.0.join("Loinc.csv"), broken).unwrap();
    let error = load_error(Format::Loinc, &dir.0, &Options::default());
    assert_error(&error, "Loinc.csv", 9, "unknown STATUS 'RETIRED'");

    std::fs::write(
        dir.0.join("Loinc.csv"),
        "\"LOINC_NUM\",\"COMPONENT\"\n\"1-8\",\"X\"\n",
    )
    .unwrap();
    let error = load_error(Format::Loinc, &dir.0, &Options::default());
    assert_error(&error, "Loinc.csv", 1, "missing column LONG_COMMON_NAME");

    std::fs::write(
        dir.0.join("Loinc.csv"),
        "\u{feff}\"LOINC_NUM\",\"LONG_COMMON_NAME\"\n\"1-8\",\"One\"\n\"2-6\",\"Two\",\"extra\"\n",
    )
    .unwrap();
    let error = load_error(Format::Loinc, &dir.0, &Options::default());
    assert_error(&error, "Loinc.csv", 3, "the row has 3 fields, the header 2");
}

#[test]
fn a_directory_without_the_table_is_an_error() {
    let dir = TempDir::new("loinc-empty");
    dir.write("AccessoryFiles/PartFile/Part.csv", "\"PartNumber\"\n");
    let error = load_error(Format::Loinc, &dir.0, &Options::default());
    assert_eq!(error.position.line, 0);
    assert!(error.message.contains("no Loinc.csv"), "{error}");
}

#[test]
fn hierarchy_errors_name_the_file_relative_to_the_release() {
    let dir = TempDir::new("loinc-hierarchy");
    copy_fixture(&fixture("loinc/Loinc_2.78"), &dir.0);
    let hierarchy = "AccessoryFiles/ComponentHierarchyBySystem/ComponentHierarchyBySystem.csv";
    dir.write(
        hierarchy,
        "\"PATH_TO_ROOT\",\"SEQUENCE\",\"IMMEDIATE_PARENT\",\"CODE\",\"CODE_TEXT\"\n\"\",\"1\",\"\",\"LP1-1\",\"Root\"\n\"LP1-1\",\"1\",\"LP1-1\",\"\",\"No code\"\n",
    );
    let error = load_error(Format::Loinc, &dir.0, &Options::default());
    assert_eq!(error.position.file, hierarchy);
    assert_eq!(error.position.line, 3);
    assert_eq!(error.message, "empty CODE");
}
