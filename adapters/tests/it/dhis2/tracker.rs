//! Tracker payloads (2.36+ and legacy) → Patient, EpisodeOfCare, Encounter,
//! Observation.

use crate::common::{
    assert_references_resolve, assert_valid, config, count, error_at, fixture, resource,
};
use adapters::dhis2::config::Unknown;
use adapters::dhis2::map_tracker;
use fhir::{IssueCode, Severity};
use serde_json::json;

const INSIDE: [&str; 4] = ["Patient", "EpisodeOfCare", "Encounter", "Observation"];

#[test]
fn new_format_tracked_entities_map_to_linked_valid_resources() {
    let mapped = map_tracker(&fixture("tracked-entities-2.40.json"), &config());
    assert!(mapped.errors.is_empty(), "{:#?}", mapped.errors);
    assert_valid(&mapped);
    assert_references_resolve(&mapped, &INSIDE);
    let counts =
        ["Patient", "EpisodeOfCare", "Encounter", "Observation"].map(|t| count(&mapped, t));
    assert_eq!(counts, [2, 2, 4, 13]);

    let amina = resource(&mapped, "Patient", "t1d-vfZ8UzDzV8f");
    assert_eq!(
        amina["identifier"],
        json!([
            {"system": "https://dhis2.example.org/api/trackedEntities", "value": "vfZ8UzDzV8f"},
            {"system": "https://moh.example.org/fhir/sid/national-id", "value": "MR-20090417-0042", "type": {"text": "National ID"}}
        ])
    );
    assert_eq!(
        amina["name"],
        json!([{"given": ["Amina"], "family": "Odhiambo", "use": "official"}])
    );
    assert_eq!(amina["gender"], "female");
    assert_eq!(amina["birthDate"], "2009-04-17");
    assert_eq!(
        amina["telecom"],
        json!([{"system": "phone", "value": "+254700000101"}])
    );
    assert_eq!(
        amina["address"],
        json!([{"district": "Lake District", "use": "home"}])
    );
    assert_eq!(
        amina["managingOrganization"]["reference"],
        "Organization/t1d-wCZ7Uw9xfog"
    );

    let episode = resource(&mapped, "EpisodeOfCare", "t1d-C3J27XDCG2L");
    assert_eq!(episode["status"], "active");
    assert_eq!(episode["patient"]["reference"], "Patient/t1d-vfZ8UzDzV8f");
    assert_eq!(episode["period"], json!({"start": "2023-02-10"}));
    assert_eq!(episode["type"][0]["text"], "Type 1 diabetes registry");
    assert_eq!(episode["type"][0]["coding"][0]["code"], "46635009");

    let registration = resource(&mapped, "Encounter", "t1d-mlZGEONYlgC");
    assert_eq!(registration["status"], "finished");
    assert_eq!(registration["class"]["code"], "AMB");
    assert_eq!(registration["type"][0]["text"], "T1D registration");
    assert_eq!(
        registration["episodeOfCare"][0]["reference"],
        "EpisodeOfCare/t1d-C3J27XDCG2L"
    );
    assert_eq!(
        registration["serviceProvider"]["reference"],
        "Organization/t1d-wCZ7Uw9xfog"
    );
    assert_eq!(registration["period"]["start"], "2023-02-10");
    let follow_up = resource(&mapped, "Encounter", "t1d-tjfIZ4SOcMz");
    assert_eq!(follow_up["period"]["start"], "2023-05-12T10:15:00+03:00");
    let scheduled = resource(&mapped, "Encounter", "t1d-CPVNPkNa1He");
    assert_eq!(scheduled["status"], "planned");
    assert!(scheduled.get("period").is_none());

    let hba1c = resource(&mapped, "Observation", "t1d-mlZGEONYlgC-c9QeWJKY40u");
    assert_eq!(hba1c["status"], "final");
    assert_eq!(
        hba1c["code"]["coding"][0],
        json!({"system": "http://loinc.org", "code": "4548-4", "display": "Hemoglobin A1c/Hemoglobin.total in Blood"})
    );
    assert_eq!(
        hba1c["valueQuantity"],
        json!({"value": 11.2, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"})
    );
    assert_eq!(hba1c["subject"]["reference"], "Patient/t1d-vfZ8UzDzV8f");
    assert_eq!(hba1c["encounter"]["reference"], "Encounter/t1d-mlZGEONYlgC");
    assert_eq!(hba1c["effectiveDateTime"], "2023-02-10");
    assert_eq!(hba1c["category"][0]["coding"][0]["code"], "laboratory");
    let glucose = resource(&mapped, "Observation", "t1d-mlZGEONYlgC-vSwMFLZDe1f");
    assert_eq!(glucose["valueQuantity"]["code"], "mg/dL");
    assert_eq!(glucose["code"]["coding"][0]["code"], "1558-6");
    // The decimal keeps its text.
    let weight = resource(&mapped, "Observation", "t1d-mlZGEONYlgC-rESQedUStPK");
    assert!(weight["valueQuantity"].to_string().contains("38.50"));
    let regimen = resource(&mapped, "Observation", "t1d-mlZGEONYlgC-DwkNhFdnXsi");
    assert_eq!(
        regimen["valueCodeableConcept"]["coding"][0]["code"],
        "basal-bolus"
    );
    assert_eq!(
        resource(&mapped, "Observation", "t1d-mlZGEONYlgC-Vpzz63FfkCz")["valueBoolean"],
        true
    );
    assert_eq!(
        resource(&mapped, "Observation", "t1d-tjfIZ4SOcMz-Vpzz63FfkCz")["valueBoolean"],
        false
    );
}

#[test]
fn completed_enrollment_and_active_event_of_the_second_entity() {
    let mapped = map_tracker(&fixture("tracked-entities-2.40.json"), &config());
    let brian = resource(&mapped, "Patient", "t1d-UkkibjL5DZP");
    assert_eq!(brian["gender"], "male");
    // The phone came with the enrollment's program attributes.
    assert_eq!(brian["telecom"][0]["value"], "+254700000202");
    let episode = resource(&mapped, "EpisodeOfCare", "t1d-dcm4pMbXDuC");
    assert_eq!(episode["status"], "finished");
    assert_eq!(
        episode["period"],
        json!({"start": "2021-09-01", "end": "2024-01-15"})
    );
    let encounter = resource(&mapped, "Encounter", "t1d-L1mHoOsFaQf");
    assert_eq!(encounter["status"], "in-progress");
    assert_eq!(encounter["subject"]["reference"], "Patient/t1d-UkkibjL5DZP");
    let hba1c = resource(&mapped, "Observation", "t1d-L1mHoOsFaQf-c9QeWJKY40u");
    assert_eq!(hba1c["status"], "preliminary");
    assert_eq!(hba1c["effectiveDateTime"], "2023-11-20T08:45:30+03:00");
    // An empty value is no Observation.
    assert!(
        mapped
            .resources("Observation")
            .all(|o| o["id"] != "t1d-L1mHoOsFaQf-R0CsTy4Qwb8")
    );
}

#[test]
fn legacy_tracked_entity_instances_map_like_the_new_format() {
    let mapped = map_tracker(&fixture("tracked-entity-instances-legacy.json"), &config());
    assert!(mapped.errors.is_empty(), "{:#?}", mapped.errors);
    assert_valid(&mapped);
    assert_references_resolve(&mapped, &INSIDE);
    let counts =
        ["Patient", "EpisodeOfCare", "Encounter", "Observation"].map(|t| count(&mapped, t));
    assert_eq!(counts, [2, 2, 3, 7]);
    let neema = resource(&mapped, "Patient", "t1d-jN0MEQ7wjJJ");
    assert_eq!(neema["gender"], "female");
    assert_eq!(neema["birthDate"], "2015-06-30");
    assert_eq!(neema["address"][0]["district"], "Harbour District");
    let episode = resource(&mapped, "EpisodeOfCare", "t1d-DPrAJ71fTqu");
    assert_eq!(episode["period"], json!({"start": "2022-03-03"}));
    let visit = resource(&mapped, "Encounter", "t1d-sye9b2Rann7");
    assert_eq!(visit["period"]["start"], "2022-09-14T15:05:00+03:00");
    assert_eq!(visit["subject"]["reference"], "Patient/t1d-jN0MEQ7wjJJ");
    assert_eq!(
        resource(&mapped, "Observation", "t1d-WoGsbeKXgzg-DwkNhFdnXsi")["valueCodeableConcept"]["coding"]
            [0]["code"],
        "premixed"
    );
    let cancelled = resource(&mapped, "EpisodeOfCare", "t1d-dEyTzAeKOmX");
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(cancelled["period"]["end"], "2020-02-01");
    assert_eq!(
        resource(&mapped, "Encounter", "t1d-Rrvftva9AW7")["status"],
        "cancelled"
    );
}

#[test]
fn the_same_record_in_both_formats_gives_the_same_bundle() {
    let new = json!({"trackedEntities": [{
        "trackedEntity": "vfZ8UzDzV8f", "orgUnit": "wCZ7Uw9xfog",
        "attributes": [{"attribute": "isAjIhKtJ0R", "value": "Amina"}],
        "enrollments": [{
            "enrollment": "C3J27XDCG2L", "program": "u8jzPde0Igx", "orgUnit": "wCZ7Uw9xfog",
            "status": "COMPLETED", "enrolledAt": "2023-02-10T00:00:00.000", "completedAt": "2023-12-01T00:00:00.000",
            "events": [{
                "event": "mlZGEONYlgC", "status": "COMPLETED", "program": "u8jzPde0Igx",
                "programStage": "Ld6GncfBAep", "orgUnit": "wCZ7Uw9xfog", "occurredAt": "2023-02-10T08:30:00.000",
                "dataValues": [{"dataElement": "c9QeWJKY40u", "value": "11.2"}]
            }]
        }]
    }]});
    let legacy = json!({"trackedEntityInstances": [{
        "trackedEntityInstance": "vfZ8UzDzV8f", "orgUnit": "wCZ7Uw9xfog",
        "attributes": [{"attribute": "isAjIhKtJ0R", "value": "Amina"}],
        "enrollments": [{
            "enrollment": "C3J27XDCG2L", "program": "u8jzPde0Igx", "orgUnit": "wCZ7Uw9xfog",
            "status": "COMPLETED", "enrollmentDate": "2023-02-10T00:00:00.000", "completedDate": "2023-12-01T00:00:00.000",
            "events": [{
                "event": "mlZGEONYlgC", "status": "COMPLETED", "program": "u8jzPde0Igx",
                "programStage": "Ld6GncfBAep", "orgUnit": "wCZ7Uw9xfog", "eventDate": "2023-02-10T08:30:00.000",
                "dataValues": [{"dataElement": "c9QeWJKY40u", "value": "11.2"}]
            }]
        }]
    }]});
    let cfg = config();
    assert_eq!(
        map_tracker(&new, &cfg).bundle,
        map_tracker(&legacy, &cfg).bundle
    );
}

#[test]
fn top_level_legacy_events_point_at_their_entity_and_enrollment() {
    let mapped = map_tracker(&fixture("events-legacy.json"), &config());
    assert!(mapped.errors.is_empty(), "{:#?}", mapped.errors);
    assert_valid(&mapped);
    let encounter = resource(&mapped, "Encounter", "t1d-hipTgadDZFl");
    assert_eq!(encounter["subject"]["reference"], "Patient/t1d-jN0MEQ7wjJJ");
    assert_eq!(
        encounter["episodeOfCare"][0]["reference"],
        "EpisodeOfCare/t1d-DPrAJ71fTqu"
    );
    assert_eq!(count(&mapped, "Observation"), 3);
    // One event per chunk when asked for small Bundles: an event stays with its Observations.
    let chunks = mapped.chunks(2);
    assert_eq!(
        chunks
            .iter()
            .map(|c| c["entry"].as_array().unwrap().len())
            .collect::<Vec<_>>(),
        [3, 2]
    );
}

#[test]
fn top_level_enrollment_without_its_entity_is_a_record_error() {
    let payload = json!({"enrollments": [
        {"enrollment": "C3J27XDCG2L", "program": "u8jzPde0Igx", "status": "ACTIVE", "enrolledAt": "2023-02-10"},
        {"enrollment": "dcm4pMbXDuC", "trackedEntity": "UkkibjL5DZP", "program": "u8jzPde0Igx", "status": "ACTIVE"}
    ]});
    let mapped = map_tracker(&payload, &config());
    let error = error_at(&mapped, "enrollments[0]");
    assert!(
        error.message.contains("EpisodeOfCare.patient is required"),
        "{error}"
    );
    assert_eq!(count(&mapped, "EpisodeOfCare"), 1);
    assert_valid(&mapped);
}

#[test]
fn malformed_tracker_records_yield_errors_at_their_paths_while_the_rest_maps() {
    let mapped = map_tracker(&fixture("tracked-entities-malformed.json"), &config());
    assert_valid(&mapped);
    let at = "trackedEntities[0].enrollments[0].events[0].dataValues";
    let unknown = error_at(&mapped, &format!("{at}[1].dataElement"));
    assert_eq!(unknown.record.as_deref(), Some("nCqaXNv1sye"));
    assert!(
        unknown.message.contains("unknown data element Xq0UnKnOwn1"),
        "{unknown}"
    );
    assert_eq!(
        (unknown.severity, unknown.code),
        (Severity::Error, IssueCode::CodeInvalid)
    );
    assert!(
        error_at(&mapped, &format!("{at}[2].value"))
            .message
            .contains("\"high\" is not a number")
    );
    assert!(
        error_at(&mapped, &format!("{at}[3].value"))
            .message
            .contains("option \"INHALED\"")
    );
    assert!(
        error_at(
            &mapped,
            "trackedEntities[0].enrollments[0].events[1].status"
        )
        .message
        .contains("\"DONE\"")
    );
    let paused = error_at(&mapped, "trackedEntities[0].enrollments[1].status");
    assert!(
        paused.message.contains("\"PAUSED\"") && paused.message.contains("1 event(s) are left out"),
        "{paused}"
    );
    assert!(
        error_at(&mapped, "trackedEntities[0].attributes[1].value")
            .message
            .contains("\"F?\"")
    );
    assert!(
        error_at(&mapped, "trackedEntities[0].attributes[2].value")
            .message
            .contains("2010-02-31")
    );
    assert!(
        error_at(&mapped, "trackedEntities[1]")
            .message
            .contains("without `trackedEntity`")
    );
    assert_eq!(mapped.errors.len(), 8, "{:#?}", mapped.errors);

    let grace = resource(&mapped, "Patient", "t1d-yhzAnar3ZLt");
    assert_eq!(grace["name"][0]["given"], json!(["Grace"]));
    assert!(grace.get("gender").is_none() && grace.get("birthDate").is_none());
    let kept: Vec<&str> = mapped
        .resources("Observation")
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        kept,
        ["t1d-nCqaXNv1sye-c9QeWJKY40u", "t1d-nCqaXNv1sye-rESQedUStPK"]
    );
    assert_eq!(count(&mapped, "Encounter"), 1);
    assert_eq!(count(&mapped, "EpisodeOfCare"), 1);
}

#[test]
fn unknown_data_elements_can_be_skipped_with_a_warning() {
    let mut cfg = config();
    cfg.tracker.unknown_data_elements = Unknown::Skip;
    let mapped = map_tracker(&fixture("tracked-entities-malformed.json"), &cfg);
    let unknown = error_at(
        &mapped,
        "trackedEntities[0].enrollments[0].events[0].dataValues[1].dataElement",
    );
    assert_eq!(unknown.severity, Severity::Warning);
    assert!(!unknown.is_error());
    assert_eq!(unknown.to_issue().severity, Severity::Warning);
}

#[test]
fn duplicate_uids_in_one_payload_are_refused_after_the_first() {
    let event = |uid: &str, hba1c: &str| {
        json!({"event": uid, "status": "COMPLETED", "orgUnit": "wCZ7Uw9xfog", "occurredAt": "2024-01-09",
               "dataValues": [{"dataElement": "c9QeWJKY40u", "value": hba1c}]})
    };
    let payload = json!({
        "trackedEntities": [
            {"trackedEntity": "vfZ8UzDzV8f", "attributes": [{"attribute": "isAjIhKtJ0R", "value": "Amina"}]},
            {"trackedEntity": "vfZ8UzDzV8f", "attributes": [{"attribute": "isAjIhKtJ0R", "value": "Amina (copy)"}]}
        ],
        "events": [
            event("mlZGEONYlgC", "9.1"),
            event("mlZGEONYlgC", "9.9"),
            {"event": "tjfIZ4SOcMz", "status": "ACTIVE", "dataValues": [
                {"dataElement": "c9QeWJKY40u", "value": "7.0"},
                {"dataElement": "c9QeWJKY40u", "value": "7.2"}
            ]}
        ]
    });
    let mapped = map_tracker(&payload, &config());
    assert_valid(&mapped);
    let patient = error_at(&mapped, "trackedEntities[1]");
    assert_eq!(patient.code, IssueCode::Duplicate);
    assert!(
        patient
            .message
            .contains("Patient/t1d-vfZ8UzDzV8f was already mapped from trackedEntities[0]"),
        "{patient}"
    );
    assert_eq!(error_at(&mapped, "events[1]").code, IssueCode::Duplicate);
    assert_eq!(
        error_at(&mapped, "events[2].dataValues[1]").code,
        IssueCode::Duplicate
    );
    assert_eq!(mapped.errors.len(), 3, "{:#?}", mapped.errors);
    assert_eq!(
        resource(&mapped, "Patient", "t1d-vfZ8UzDzV8f")["name"][0]["given"],
        json!(["Amina"])
    );
    let first = resource(&mapped, "Observation", "t1d-mlZGEONYlgC-c9QeWJKY40u");
    assert_eq!(first["valueQuantity"]["value"].as_f64(), Some(9.1));
    assert_eq!(count(&mapped, "Observation"), 2);
}

#[test]
fn paged_instances_are_told_apart_by_their_uid_field() {
    let payload = json!({"page": 1, "instances": [
        {"trackedEntity": "vfZ8UzDzV8f", "orgUnit": "wCZ7Uw9xfog"},
        {"enrollment": "C3J27XDCG2L", "trackedEntity": "vfZ8UzDzV8f", "status": "ACTIVE", "enrolledAt": "2023-02-10"},
        {"event": "mlZGEONYlgC", "enrollment": "C3J27XDCG2L", "trackedEntity": "vfZ8UzDzV8f", "status": "ACTIVE"}
    ]});
    let mapped = map_tracker(&payload, &config());
    assert!(mapped.errors.is_empty(), "{:#?}", mapped.errors);
    assert_valid(&mapped);
    assert_references_resolve(&mapped, &INSIDE);
    let kinds: Vec<&str> = mapped
        .entries()
        .iter()
        .map(|e| e["resource"]["resourceType"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["Patient", "EpisodeOfCare", "Encounter"]);
}

#[test]
fn records_deleted_in_dhis2_are_not_mapped_and_are_reported_as_warnings() {
    let payload = json!({"trackedEntities": [
        {"trackedEntity": "vfZ8UzDzV8f", "deleted": true},
        {"trackedEntity": "UkkibjL5DZP", "enrollments": [{
            "enrollment": "dcm4pMbXDuC", "status": "ACTIVE",
            "events": [{"event": "L1mHoOsFaQf", "status": "ACTIVE", "deleted": true}]
        }]}
    ]});
    let mapped = map_tracker(&payload, &config());
    let kinds: Vec<&str> = mapped
        .entries()
        .iter()
        .map(|e| e["resource"]["resourceType"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["Patient", "EpisodeOfCare"]);
    for path in [
        "trackedEntities[0]",
        "trackedEntities[1].enrollments[0].events[0]",
    ] {
        let warning = error_at(&mapped, path);
        assert_eq!(warning.severity, Severity::Warning);
        assert!(warning.message.contains("deleted in DHIS2"));
    }
}
