//! Loading and checking the mapping config.

use adapters::dhis2::Config;
use adapters::dhis2::config::{AggregateAs, PatientElement, ValueType};

/// A minimal valid config with `extra` appended (YAML).
fn with(extra: &str) -> String {
    format!("source:\n  systemBase: https://dhis2.example.org/api\n{extra}")
}

fn check_error(yaml: &str, line: usize, contains: &[&str]) {
    let error = Config::from_yaml(yaml).unwrap_err();
    assert_eq!(error.line, Some(line), "{error}");
    for part in contains {
        assert!(error.message.contains(part), "{error} lacks {part:?}");
    }
    assert!(
        error.to_string().contains(&format!("line {line}")),
        "{error}"
    );
}

#[test]
fn the_example_config_loads() {
    let cfg = crate::common::config();
    assert_eq!(cfg.source.id_prefix.as_str(), "t1d-");
    assert_eq!(cfg.org_units.facility_level, 4);
    let hba1c = cfg.data_elements.get("c9QeWJKY40u").unwrap();
    assert_eq!(
        (hba1c.value_type, hba1c.code.code.as_str()),
        (ValueType::Number, "4548-4")
    );
    assert_eq!(hba1c.unit.as_ref().unwrap().code.as_str(), "%");
    assert_eq!(
        cfg.data_elements
            .get("vSwMFLZDe1f")
            .unwrap()
            .code
            .code
            .as_str(),
        "1558-6"
    );
    assert_eq!(
        cfg.data_elements.get("DwkNhFdnXsi").unwrap().options.len(),
        3
    );
    assert_eq!(
        cfg.data_elements.get("QoaF1Llqsaj").unwrap().aggregate,
        AggregateAs::Observation
    );
    assert_eq!(
        cfg.tracker.attributes.get("KdNnFRIBXuD").unwrap().element,
        PatientElement::Gender
    );
    assert_eq!(
        cfg.tracker
            .programs
            .get("u8jzPde0Igx")
            .unwrap()
            .stages
            .0
            .len(),
        2
    );
}

#[test]
fn errors_name_the_line_and_the_key_path() {
    check_error(
        "sourc:\n  systemBase: https://x.org\n",
        1,
        &["unknown field `sourc`"],
    );
    check_error(
        &with(
            "dataElements:\n  c9QeWJKY40u:\n    code: {system: http://loinc.org, code: 4548-4}\n    valueType: number\n",
        ),
        5,
        &["dataElements.c9QeWJKY40u", "needs a UCUM `unit`"],
    );
    check_error(
        &with("dataElements:\n  1abc:\n    code: {system: http://loinc.org, code: x}\n"),
        4,
        &["dataElements: \"1abc\" is not a DHIS2 uid"],
    );
    check_error(
        &with(
            "tracker:\n  attributes:\n    KdNnFRIBXuD:\n      element: gender\n      valueMap: {F: woman}\n",
        ),
        6,
        &["tracker.attributes.KdNnFRIBXuD", "not a FHIR gender"],
    );
    check_error(
        &with("tracker:\n  attributes:\n    KdNnFRIBXuD:\n      element: name.middle\n"),
        6,
        &[
            "tracker.attributes.KdNnFRIBXuD.element",
            "unknown variant `name.middle`",
        ],
    );
    check_error(
        "source:\n  systemBase: dhis2.example.org\n",
        2,
        &["source.systemBase", "not an absolute URI"],
    );
    check_error(
        &with("  idPrefix: \"t1d_\"\n"),
        3,
        &["source.idPrefix", "not an id prefix"],
    );
    check_error(
        &with("  timeZone: \"+3\"\n"),
        3,
        &["source.timeZone", "not a UTC offset"],
    );
    check_error(
        &with("aggregate:\n  unknownDataElements: ignore\n"),
        4,
        &["aggregate.unknownDataElements", "unknown variant `ignore`"],
    );
    check_error(
        &with(
            "dataElements:\n  DwkNhFdnXsi:\n    code: {system: http://x.org/cs, code: r}\n    valueType: optionSet\n",
        ),
        5,
        &["dataElements.DwkNhFdnXsi", "needs `options`"],
    );
    check_error(
        &with("orgUnits:\n  groups:\n    AIxNKu8iS2G: {}\n    AIxNKu8iS2G: {}\n"),
        5,
        &["orgUnits.groups", "AIxNKu8iS2G is given twice"],
    );
}

#[test]
fn numeric_codes_and_json_configs_are_read() {
    let yaml = with(
        "tracker:\n  programs:\n    u8jzPde0Igx:\n      name: T1D\n      code: {system: http://snomed.info/sct, code: 46635009}\n",
    );
    let cfg = Config::from_yaml(&yaml).unwrap();
    assert_eq!(
        cfg.tracker
            .programs
            .get("u8jzPde0Igx")
            .unwrap()
            .code
            .as_ref()
            .unwrap()
            .code
            .as_str(),
        "46635009"
    );
    let json = r#"{"source": {"systemBase": "https://dhis2.example.org/api", "idPrefix": "x-"}, "orgUnits": {"facilityLevel": 3}}"#;
    let cfg = Config::from_yaml(json).unwrap();
    assert_eq!(
        (cfg.org_units.facility_level, cfg.id("wCZ7Uw9xfog")),
        (3, "x-wCZ7Uw9xfog".to_owned())
    );
}

#[test]
fn a_missing_file_names_the_path() {
    let error = Config::load(std::path::Path::new("/nonexistent/dhis2.yaml")).unwrap_err();
    assert!(error.message.contains("/nonexistent/dhis2.yaml"), "{error}");
}
