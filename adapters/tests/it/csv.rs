//! CSV rows → Patients and Observations (`examples/csv-t1d-visits.yaml`).

use crate::common::{
    assert_references_resolve, assert_valid, count, crate_dir, error_at, resource,
};
use adapters::csv::{CsvConfig, map_csv};
use fhir::Severity;
use serde_json::json;

fn config() -> CsvConfig {
    CsvConfig::load(&crate_dir().join("examples/csv-t1d-visits.yaml")).unwrap()
}

fn visits() -> String {
    std::fs::read_to_string(crate_dir().join("tests/fixtures/csv/t1d-visits.csv")).unwrap()
}

#[test]
fn rows_map_to_one_patient_each_and_an_observation_per_measurement() {
    let mapped = map_csv(&visits(), &config());
    assert_valid(&mapped);
    assert_references_resolve(&mapped, &["Patient"]);
    assert_eq!(
        (count(&mapped, "Patient"), count(&mapped, "Observation")),
        (3, 12)
    );

    let amina = resource(&mapped, "Patient", "csv-R-0001");
    assert_eq!(
        amina["identifier"],
        json!([
            {"system": "https://clinic.example.org/t1d-visits/patients", "value": "R-0001"},
            {"system": "https://moh.example.org/fhir/sid/national-id", "value": "MR-20090417-0042"}
        ])
    );
    assert_eq!(amina["name"][0]["family"], "Odhiambo");
    assert_eq!(amina["gender"], "female");
    let brian_hba1c = mapped
        .resources("Observation")
        .find(|o| {
            o["subject"]["reference"] == "Patient/csv-R-0002"
                && o["code"]["coding"][0]["code"] == "4548-4"
        })
        .unwrap();
    assert_eq!(
        brian_hba1c["effectiveDateTime"],
        "2024-01-15T09:30:00+03:00"
    );
    assert_eq!(brian_hba1c["valueQuantity"]["code"], "%");
    let weights: Vec<String> = mapped
        .resources("Observation")
        .filter(|o| {
            o["subject"]["reference"] == "Patient/csv-R-0001"
                && o["code"]["coding"][0]["code"] == "29463-7"
        })
        .map(|o| o["valueQuantity"]["value"].to_string())
        .collect();
    assert_eq!(weights, ["41.20", "42.0", "43.5"]);
}

#[test]
fn bad_cells_are_errors_at_row_and_column_while_the_rest_of_the_row_maps() {
    let mapped = map_csv(&visits(), &config());
    assert!(error_at(&mapped, "rows[3].sex").message.contains("\"X\""));
    assert!(
        error_at(&mapped, "rows[3].dob")
            .message
            .contains("2011-13-01")
    );
    let hba1c = error_at(&mapped, "rows[3].hba1c_percent");
    assert!(
        hba1c.message.contains("\"high\" is not a number") && hba1c.message.contains("line 5"),
        "{hba1c}"
    );
    assert!(
        error_at(&mapped, "rows[4].record_no")
            .message
            .contains("the row is left out")
    );
    let differs = error_at(&mapped, "rows[5]");
    assert_eq!(differs.severity, Severity::Warning);
    assert!(
        differs.message.contains("differs from rows[0]"),
        "{differs}"
    );
    assert_eq!(mapped.errors.len(), 5, "{:#?}", mapped.errors);
    let grace = resource(&mapped, "Patient", "csv-R-0003");
    assert_eq!(grace["name"][0]["given"], json!(["Wanjiru, Grace"]));
    assert!(grace.get("gender").is_none());
}

#[test]
fn reloading_the_file_gives_the_same_ids() {
    let cfg = config();
    assert_eq!(
        map_csv(&visits(), &cfg).bundle,
        map_csv(&visits(), &cfg).bundle
    );
}

#[test]
fn columns_missing_from_the_header_stop_the_file() {
    let mapped = map_csv("record_no,visit_date\nR-1,2024-01-01\n", &config());
    let error = error_at(&mapped, "header");
    assert!(
        error.message.contains("hba1c_percent") && error.message.contains("national_id"),
        "{error}"
    );
    assert!(mapped.entries().is_empty());
}

#[test]
fn config_errors_name_the_line() {
    let error = CsvConfig::from_yaml("source:\n  systemBase: https://x.org\n").unwrap_err();
    assert!(error.message.contains("maps nothing"), "{error}");
    let yaml = "source:\n  systemBase: https://x.org\ndelimiter: ';;'\npatient:\n  idColumn: id\n";
    let error = CsvConfig::from_yaml(yaml).unwrap_err();
    assert!(error.message.contains("delimiter \";;\""), "{error}");
    let yaml = "source:\n  systemBase: https://x.org\npatient:\n  idColumn: id\n  columns:\n    sex: {element: sex}\n";
    let error = CsvConfig::from_yaml(yaml).unwrap_err();
    assert_eq!(error.line, Some(6), "{error}");
    assert!(
        error.message.contains("patient.columns.sex.element"),
        "{error}"
    );
    let tsv = CsvConfig::from_yaml(
        "source:\n  systemBase: https://x.org\ndelimiter: tab\npatient:\n  idColumn: id\n",
    )
    .unwrap();
    let mapped = map_csv("id\tother\nA1\tx\n", &tsv);
    assert_eq!(count(&mapped, "Patient"), 1);
}
