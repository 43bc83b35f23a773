//! Data value sets → MeasureReport, or Observation where configured.

use crate::common::{assert_valid, config, count, error_at, fixture};
use adapters::dhis2::config::ReportType;
use adapters::dhis2::{Mapped, map_data_value_sets};
use fhir::IssueCode;
use serde_json::{Value, json};

/// The MeasureReport whose identifier is `dataSet/orgUnit/period/aoc`.
fn report<'a>(mapped: &'a Mapped, org_unit: &str, period: &str) -> &'a Value {
    let key = format!("VvVqE1SkHbn/{org_unit}/{period}/HllvX50cXC0");
    mapped
        .resources("MeasureReport")
        .find(|r| r["identifier"][0]["value"] == key.as_str())
        .unwrap_or_else(|| panic!("no MeasureReport {key}"))
}

#[test]
fn data_value_set_with_several_period_types_maps_to_measure_reports() {
    let mapped = map_data_value_sets(&fixture("data-value-sets.json"), &config());
    assert_valid(&mapped);
    assert_eq!(count(&mapped, "MeasureReport"), 6);

    let monthly = report(&mapped, "wCZ7Uw9xfog", "202401");
    assert_eq!(monthly["status"], "complete");
    assert_eq!(monthly["type"], "summary");
    assert_eq!(
        monthly["measure"],
        "https://dhis2.example.org/api/dataSets/VvVqE1SkHbn"
    );
    assert_eq!(
        monthly["period"],
        json!({"start": "2024-01-01", "end": "2024-01-31"})
    );
    assert_eq!(monthly["date"], "2024-02-05");
    assert_eq!(
        monthly["reporter"]["reference"],
        "Organization/t1d-wCZ7Uw9xfog"
    );
    assert_eq!(monthly["subject"]["reference"], "Location/t1d-wCZ7Uw9xfog");
    let groups = monthly["group"].as_array().unwrap();
    assert_eq!(groups.len(), 2);
    let new_cases = &groups[0];
    assert_eq!(new_cases["code"]["coding"][0]["code"], "new-cases");
    assert!(new_cases.get("measureScore").is_none());
    let strata = new_cases["stratifier"][0]["stratum"].as_array().unwrap();
    let by_combo: Vec<(String, f64)> = strata
        .iter()
        .map(|s| {
            (
                s["value"]["coding"][0]["display"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
                s["measureScore"]["value"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        by_combo,
        [
            ("Male, under 15".to_owned(), 3.0),
            ("Female, under 15".to_owned(), 2.0),
            ("Male, 15 and over".to_owned(), 1.0)
        ]
    );
    assert_eq!(groups[1]["code"]["coding"][0]["code"], "hba1c-tested");
    assert_eq!(groups[1]["measureScore"], json!({"value": 41}));

    for (org_unit, period, start, end) in [
        ("wCZ7Uw9xfog", "2024Q1", "2024-01-01", "2024-03-31"),
        ("oEmvnEN5N1a", "2024W5", "2024-01-29", "2024-02-04"),
        ("oEmvnEN5N1a", "20240131", "2024-01-31", "2024-01-31"),
        ("HxjSI6bWHtP", "2023April", "2023-04-01", "2024-03-31"),
        ("HxjSI6bWHtP", "2024AprilS1", "2024-04-01", "2024-09-30"),
    ] {
        let found = report(&mapped, org_unit, period);
        assert_eq!(
            found["period"],
            json!({"start": start, "end": end}),
            "{period}"
        );
    }
}

#[test]
fn data_elements_configured_as_observations_become_observations() {
    let mapped = map_data_value_sets(&fixture("data-value-sets.json"), &config());
    let observations: Vec<&Value> = mapped.resources("Observation").collect();
    assert_eq!(observations.len(), 1);
    let stock = observations[0];
    assert_eq!(stock["code"]["coding"][0]["code"], "insulin-stock");
    assert_eq!(
        stock["valueQuantity"],
        json!({"value": 120, "unit": "vials", "system": "http://unitsofmeasure.org", "code": "{vial}"})
    );
    assert_eq!(
        stock["effectivePeriod"],
        json!({"start": "2024-01-01", "end": "2024-01-31"})
    );
    assert_eq!(stock["subject"]["reference"], "Location/t1d-wCZ7Uw9xfog");
    assert_eq!(
        stock["note"],
        json!([{"text": "Counted on 31 January", "authorString": "pharmacy.lake"}])
    );
}

#[test]
fn bad_periods_unknown_elements_and_bad_values_are_record_errors() {
    let mapped = map_data_value_sets(&fixture("data-value-sets.json"), &config());
    let at = "dataValueSets[0].dataValues";
    let week = error_at(&mapped, &format!("{at}[10].period"));
    assert!(week.message.contains("\"2024W54\""), "{week}");
    assert_eq!(week.code, IssueCode::Value);
    assert!(
        error_at(&mapped, &format!("{at}[11].dataElement"))
            .message
            .contains("unknown data element Zq8UnKnOwn2")
    );
    assert!(
        error_at(&mapped, &format!("{at}[12].period"))
            .message
            .contains("\"202402B\"")
    );
    assert!(
        error_at(&mapped, &format!("{at}[13].value"))
            .message
            .contains("must be numeric")
    );
    assert_eq!(mapped.errors.len(), 4, "{:#?}", mapped.errors);
}

#[test]
fn a_bad_period_on_the_set_is_reported_once() {
    let payload = json!({
        "dataSet": "VvVqE1SkHbn", "period": "2024Q5", "completeDate": "2024-13-40", "orgUnit": "wCZ7Uw9xfog",
        "dataValues": [
            {"dataElement": "Jr4i0B3JrTA", "value": "1"},
            {"dataElement": "wR4y9ojfljo", "value": "2"},
            {"dataElement": "wR4y9ojfljo", "period": "2024Q4", "value": "3"}
        ]
    });
    let mapped = map_data_value_sets(&payload, &config());
    let error = error_at(&mapped, "period");
    assert!(error.message.contains("\"2024Q5\""), "{error}");
    let complete = error_at(&mapped, "completeDate");
    assert_eq!(complete.severity, fhir::Severity::Warning);
    assert_eq!(mapped.errors.len(), 2);
    assert!(
        mapped
            .resources("MeasureReport")
            .all(|r| r.get("date").is_none())
    );
    assert_eq!(count(&mapped, "MeasureReport"), 1);
    assert_valid(&mapped);
}

#[test]
fn report_type_and_ids_follow_the_config() {
    let mut cfg = config();
    cfg.aggregate.report_type = ReportType::DataCollection;
    let payload = fixture("data-value-sets.json");
    let mapped = map_data_value_sets(&payload, &cfg);
    assert!(
        mapped
            .resources("MeasureReport")
            .all(|r| r["type"] == "data-collection")
    );
    let ids: Vec<&str> = mapped
        .resources("MeasureReport")
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.iter()
            .all(|id| id.starts_with("t1d-mr-") && id.len() == "t1d-mr-".len() + 32)
    );
    let again = map_data_value_sets(&payload, &cfg);
    assert_eq!(mapped.bundle, again.bundle);
}
