//! Organisation units → mCSD Organization + Location pairs.

use crate::common::{assert_valid, count, error_at, fixture, resource};
use adapters::dhis2::map_org_units;
use base64::Engine;
use fhir::IssueCode;
use serde_json::{Value, json};
use std::collections::HashSet;

const MCSD: &str =
    "https://profiles.ihe.net/ITI/mCSD/CodeSystem/IHE.mCSD.Organization.Location.Types";

fn mcsd_code(resource: &Value) -> &str {
    resource["type"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|t| t["coding"].as_array().unwrap())
        .find(|c| c["system"] == MCSD)
        .unwrap()["code"]
        .as_str()
        .unwrap()
}

#[test]
fn four_level_tree_maps_to_valid_organization_location_pairs() {
    let cfg = crate::common::config();
    let mapped = map_org_units(&fixture("organisation-units.json"), &cfg, &HashSet::new());
    assert!(mapped.errors.is_empty(), "{:#?}", mapped.errors);
    assert_valid(&mapped);
    assert_eq!(
        (count(&mapped, "Organization"), count(&mapped, "Location")),
        (9, 9)
    );
    // Parents first: the country leads although the payload lists a facility first.
    assert_eq!(
        mapped.entries()[0]["request"]["url"],
        "Organization/t1d-HxjSI6bWHtP"
    );

    let country = resource(&mapped, "Location", "t1d-HxjSI6bWHtP");
    assert_eq!(mcsd_code(country), "jurisdiction");
    assert_eq!(country["physicalType"]["coding"][0]["code"], "jdn");
    assert!(country.get("partOf").is_none());

    let district = resource(&mapped, "Organization", "t1d-mZp0zVZomHF");
    assert_eq!(mcsd_code(district), "jurisdiction");
    assert_eq!(
        district["partOf"]["reference"],
        "Organization/t1d-fS2qHx6kwXo"
    );

    let hospital = resource(&mapped, "Location", "t1d-wCZ7Uw9xfog");
    assert_eq!(mcsd_code(hospital), "facility");
    assert_eq!(hospital["status"], "active");
    assert_eq!(hospital["partOf"]["reference"], "Location/t1d-mZp0zVZomHF");
    assert_eq!(
        hospital["managingOrganization"]["reference"],
        "Organization/t1d-wCZ7Uw9xfog"
    );
    assert_eq!(hospital["position"]["longitude"].as_f64(), Some(32.5825));
    assert_eq!(hospital["position"]["latitude"].as_f64(), Some(-1.2921));
    assert_eq!(hospital["alias"], json!(["Lake Hospital"]));
    assert_eq!(
        hospital["identifier"],
        json!([
            {"system": "https://dhis2.example.org/api/organisationUnits", "value": "wCZ7Uw9xfog"},
            {"system": "https://dhis2.example.org/api/organisationUnits/code", "value": "MR_LK_HOSP"}
        ])
    );
    assert!(
        hospital["meta"]["profile"][0]
            .as_str()
            .unwrap()
            .ends_with("IHE.mCSD.FacilityLocation")
    );
    let location_types: Vec<&Value> = hospital["type"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| &t["coding"][0]["code"])
        .collect();
    assert_eq!(location_types, [&json!("facility"), &json!("HOSP")]);
    let hospital_org = resource(&mapped, "Organization", "t1d-wCZ7Uw9xfog");
    let org_types: Vec<&Value> = hospital_org["type"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| &t["coding"][0]["code"])
        .collect();
    assert_eq!(
        org_types,
        [&json!("facility"), &json!("prov"), &json!("govt")]
    );
    assert_eq!(hospital_org["active"], true);
}

#[test]
fn closed_unit_is_inactive() {
    let cfg = crate::common::config();
    let mapped = map_org_units(&fixture("organisation-units.json"), &cfg, &HashSet::new());
    assert_eq!(
        resource(&mapped, "Organization", "t1d-E6PwZPf1Qh6")["active"],
        false
    );
    assert_eq!(
        resource(&mapped, "Location", "t1d-E6PwZPf1Qh6")["status"],
        "inactive"
    );
}

#[test]
fn polygons_become_the_boundary_extension_with_base64_geojson() {
    let cfg = crate::common::config();
    let payload = fixture("organisation-units.json");
    let mapped = map_org_units(&payload, &cfg, &HashSet::new());
    for (uid, kind) in [
        ("HxjSI6bWHtP", "Polygon"),
        ("IIXGvOoNZYW", "MultiPolygon"),
        ("mZp0zVZomHF", "Polygon"),
    ] {
        let location = resource(&mapped, "Location", &format!("t1d-{uid}"));
        let extension = &location["extension"][0];
        assert_eq!(
            extension["url"],
            "http://hl7.org/fhir/StructureDefinition/location-boundary-geojson"
        );
        assert_eq!(
            extension["valueAttachment"]["contentType"],
            "application/geo+json"
        );
        let data = base64::engine::general_purpose::STANDARD
            .decode(extension["valueAttachment"]["data"].as_str().unwrap())
            .unwrap();
        let geometry: Value = serde_json::from_slice(&data).unwrap();
        let source = payload["organisationUnits"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["id"] == uid)
            .unwrap();
        assert_eq!(geometry["type"], kind);
        assert_eq!(geometry["coordinates"], source["geometry"]["coordinates"]);
        assert!(location.get("position").is_none());
    }
}

#[test]
fn facility_level_is_configurable() {
    let mut cfg = crate::common::config();
    cfg.org_units.facility_level = 3;
    let mapped = map_org_units(&fixture("organisation-units.json"), &cfg, &HashSet::new());
    assert_eq!(
        mcsd_code(resource(&mapped, "Location", "t1d-mZp0zVZomHF")),
        "facility"
    );
    assert_eq!(
        mcsd_code(resource(&mapped, "Location", "t1d-fS2qHx6kwXo")),
        "jurisdiction"
    );
    assert_valid(&mapped);
}

#[test]
fn reimport_produces_the_same_ids_and_full_urls() {
    let cfg = crate::common::config();
    let payload = fixture("organisation-units.json");
    let first = map_org_units(&payload, &cfg, &HashSet::new());
    let second = map_org_units(&payload, &cfg, &HashSet::new());
    assert_eq!(first.bundle, second.bundle);
}

#[test]
fn chunks_keep_each_pair_together() {
    let cfg = crate::common::config();
    let mapped = map_org_units(&fixture("organisation-units.json"), &cfg, &HashSet::new());
    let chunks = mapped.chunks(5);
    assert_eq!(chunks.len(), 5);
    let mut total = 0;
    for chunk in &chunks {
        let entries = chunk["entry"].as_array().unwrap();
        assert!(entries.len() <= 5 && entries.len() % 2 == 0);
        for pair in entries.chunks(2) {
            assert_eq!(pair[0]["resource"]["id"], pair[1]["resource"]["id"]);
        }
        assert_eq!(chunk["type"], "transaction");
        total += entries.len();
    }
    assert_eq!(total, 18);
}

#[test]
fn malformed_hierarchy_yields_one_error_per_bad_unit_while_the_rest_maps() {
    let cfg = crate::common::config();
    let known: HashSet<String> = ["HxjSI6bWHtP", "fS2qHx6kwXo"].map(String::from).into();
    let mapped = map_org_units(&fixture("organisation-units-malformed.json"), &cfg, &known);
    assert_valid(&mapped);

    let missing = error_at(&mapped, "organisationUnits[2]");
    assert_eq!(missing.record.as_deref(), Some("mN8oP9qR0sT"));
    assert!(
        missing.message.contains("missing parent: Zz9NotHere1"),
        "{missing}"
    );
    for (path, uid) in [
        ("organisationUnits[3]", "cY1cLeAaaa1"),
        ("organisationUnits[4]", "cY1cLeBbbb2"),
    ] {
        let cycle = error_at(&mapped, path);
        assert_eq!(cycle.record.as_deref(), Some(uid));
        assert!(cycle.message.contains("cycle in the hierarchy"), "{cycle}");
    }
    assert!(
        error_at(&mapped, "organisationUnits[5]")
            .message
            .contains("parent cY1cLeAaaa1 was rejected")
    );
    let disagrees = error_at(&mapped, "organisationUnits[6].path");
    assert!(
        disagrees
            .message
            .contains("disagrees with parent mZp0zVZomHF"),
        "{disagrees}"
    );
    let duplicate = error_at(&mapped, "organisationUnits[7].id");
    assert_eq!(duplicate.code, IssueCode::Duplicate);
    assert!(
        duplicate.message.contains("first at organisationUnits[1]"),
        "{duplicate}"
    );
    assert!(
        error_at(&mapped, "organisationUnits[8]")
            .message
            .contains("without an id")
    );
    assert_eq!(mapped.errors.len(), 7, "{:#?}", mapped.errors);

    // The district under a known region and its dispensary (first copy) map.
    let district = resource(&mapped, "Location", "t1d-pQ7rStUvWx1");
    assert_eq!(district["partOf"]["reference"], "Location/t1d-fS2qHx6kwXo");
    assert_eq!(
        resource(&mapped, "Location", "t1d-aB3cD4eF5gH")["name"],
        "Upland Dispensary"
    );
    assert_eq!(count(&mapped, "Location"), 2);

    // Every error becomes an OperationOutcome issue at its path.
    let issue = missing.to_issue();
    assert_eq!(issue.expression, vec!["organisationUnits[2]".to_owned()]);
    assert!(issue.diagnostics.contains("mN8oP9qR0sT"));
}

#[test]
fn a_parent_neither_in_the_payload_nor_known_rejects_the_subtree() {
    let cfg = crate::common::config();
    let mapped = map_org_units(
        &fixture("organisation-units-malformed.json"),
        &cfg,
        &HashSet::new(),
    );
    assert!(
        error_at(&mapped, "organisationUnits[0]")
            .message
            .contains("missing parent: fS2qHx6kwXo")
    );
    assert!(
        error_at(&mapped, "organisationUnits[1]")
            .message
            .contains("parent pQ7rStUvWx1 was rejected")
    );
    assert_eq!(count(&mapped, "Location"), 0);
}

#[test]
fn the_validator_used_by_these_tests_checks_inside_the_bundle() {
    let cfg = crate::common::config();
    let mut mapped = map_org_units(&fixture("organisation-units.json"), &cfg, &HashSet::new());
    mapped.bundle["entry"][1]["resource"]["status"] = json!("closed");
    mapped.bundle["entry"][0]["resource"]["partOf"] = json!("Organization/x");
    let issues = fhir::validation::validate_resource(&mapped.bundle);
    let errors: Vec<&fhir::Issue> = issues.iter().filter(|i| i.is_error()).collect();
    assert!(errors.len() >= 2, "{errors:#?}");
}
