//! The facility registry over HTTP (IHE mCSD, issue 7, docs/registry.md):
//! the ITI-90 searches (`_id`, `_lastUpdated` with prefixes, `:contains`
//! and `:exact`, `partof`, `near`, the required `_include` and
//! `_revinclude`), ITI-91 (`_history?_since=`), `$hierarchy` at any depth,
//! and facility codes unique per tenant.

use crate::harness::{TestApp, assert_outcome_names, keys_in_mode, spawn_app, status_json};
use serde_json::{Value, json};

const CODES: &str = "https://moh.example.org/facility-code";

fn location(
    id: &str,
    name: &str,
    part_of: Option<&str>,
    code: &str,
    position: Option<(f64, f64)>,
) -> Value {
    let mut l = json!({
        "resourceType": "Location", "id": id, "status": "active", "name": name,
        "identifier": [{"system": CODES, "value": code}],
        "managingOrganization": {"reference": format!("Organization/{id}")},
        "type": [{"coding": [{"system": "https://profiles.ihe.net/ITI/mCSD/CodeSystem/IHE.mCSD.Organization.Location.Types", "code": if part_of.is_some() && position.is_some() { "facility" } else { "jurisdiction" }}]}],
    });
    if let Some(parent) = part_of {
        l["partOf"] = json!({"reference": format!("Location/{parent}")});
    }
    if let Some((lat, lon)) = position {
        l["position"] = json!({"latitude": lat, "longitude": lon});
    }
    l
}

fn organization(id: &str, name: &str, part_of: Option<&str>, code: &str) -> Value {
    let mut o = json!({"resourceType": "Organization", "id": id, "active": true, "name": name,
        "identifier": [{"system": CODES, "value": code}]});
    if let Some(parent) = part_of {
        o["partOf"] = json!({"reference": format!("Organization/{parent}")});
    }
    o
}

/// Country → region → district → two facilities, each a Location +
/// Organization pair, plus the other mCSD resources around a facility.
async fn registry() -> TestApp {
    let app = spawn_app().await;
    let tree = [
        ("ctry", "Maridia", None, "MR", None),
        ("reg", "Northern Region", Some("ctry"), "MR-N", None),
        ("dist", "Lake District", Some("reg"), "MR-N-L", None),
        (
            "hosp",
            "Lake District Hospital",
            Some("dist"),
            "F-001",
            Some((-1.2921, 32.5825)),
        ),
        (
            "disp",
            "Kanyama Dispensary",
            Some("dist"),
            "F-002",
            Some((-1.9, 33.4)),
        ),
    ];
    let mut resources = Vec::new();
    for (id, name, parent, code, position) in tree {
        resources.push(location(id, name, parent, code, position));
        resources.push(organization(id, name, parent, code));
    }
    resources.extend([
        json!({"resourceType": "Practitioner", "id": "dr-a", "name": [{"family": "Achieng"}]}),
        json!({"resourceType": "HealthcareService", "id": "svc", "name": "Diabetes clinic",
               "providedBy": {"reference": "Organization/hosp"}, "location": [{"reference": "Location/hosp"}]}),
        json!({"resourceType": "Endpoint", "id": "ep", "status": "active",
               "connectionType": {"system": "http://terminology.hl7.org/CodeSystem/endpoint-connection-type", "code": "hl7-fhir-rest"},
               "payloadType": [{"text": "any"}], "address": "https://hosp.example.org/fhir",
               "managingOrganization": {"reference": "Organization/hosp"}}),
        json!({"resourceType": "PractitionerRole", "id": "role", "active": true,
               "practitioner": {"reference": "Practitioner/dr-a"}, "organization": {"reference": "Organization/hosp"},
               "location": [{"reference": "Location/hosp"}], "healthcareService": [{"reference": "HealthcareService/svc"}]}),
        json!({"resourceType": "OrganizationAffiliation", "id": "aff", "active": true,
               "organization": {"reference": "Organization/dist"}, "participatingOrganization": {"reference": "Organization/disp"}}),
    ]);
    app.load(&resources).await;
    app
}

#[tokio::test]
async fn mcsd_iti90_searches_over_http() {
    let app = registry().await;
    assert_eq!(
        app.match_ids("Location?_id=hosp,disp").await,
        ["disp", "hosp"]
    );
    assert_eq!(
        app.match_ids("Location?_lastUpdated=gt2020-01-01&name=lake")
            .await,
        ["dist", "hosp"]
    );
    assert!(
        app.match_ids("Location?_lastUpdated=lt2020-01-01")
            .await
            .is_empty()
    );
    assert_eq!(
        app.match_ids("Location?_lastUpdated=ge2020-01-01T00:00:00Z&_id=reg")
            .await,
        ["reg"]
    );
    assert_eq!(
        app.match_ids("Location?name:contains=ANYAM").await,
        ["disp"]
    );
    assert_eq!(
        app.match_ids("Location?name:exact=Lake District").await,
        ["dist"]
    );
    assert!(
        app.match_ids("Location?name:exact=lake district")
            .await
            .is_empty()
    );
    assert_eq!(
        app.match_ids("Organization?name:contains=region").await,
        ["reg"]
    );
    assert_eq!(
        app.match_ids("Location?partof=Location/dist").await,
        ["disp", "hosp"]
    );
    assert_eq!(
        app.match_ids("Organization?partof=dist").await,
        ["disp", "hosp"]
    );
    assert_eq!(
        app.match_ids(&format!("Location?identifier={CODES}|F-001"))
            .await,
        ["hosp"]
    );
    // near: the hospital is within 5 km of Kampala-ish coordinates, the
    // dispensary is ~130 km away.
    assert_eq!(
        app.match_ids("Location?near=-1.30|32.58|5|km").await,
        ["hosp"]
    );
    assert_eq!(
        app.match_ids("Location?near=-1.30|32.58|200|km").await,
        ["disp", "hosp"]
    );

    // The _include and _revinclude combinations mCSD requires.
    let (_, entries) = app
        .search_entries(
            "PractitionerRole?_include=PractitionerRole:practitioner&_include=PractitionerRole:organization\
             &_include=PractitionerRole:location&_include=PractitionerRole:service",
        )
        .await;
    assert_eq!(
        keys_in_mode(&entries, "include"),
        [
            "HealthcareService/svc",
            "Location/hosp",
            "Organization/hosp",
            "Practitioner/dr-a"
        ]
    );
    let (_, entries) = app
        .search_entries("Practitioner?_revinclude=PractitionerRole:practitioner")
        .await;
    assert_eq!(keys_in_mode(&entries, "include"), ["PractitionerRole/role"]);
    let (_, entries) = app
        .search_entries("HealthcareService?_include=HealthcareService:organization&_include=HealthcareService:location")
        .await;
    assert_eq!(
        keys_in_mode(&entries, "include"),
        ["Location/hosp", "Organization/hosp"]
    );
    let (_, entries) = app
        .search_entries("Location?_id=hosp&_include=Location:organization&_include=Location:partof")
        .await;
    assert_eq!(
        keys_in_mode(&entries, "include"),
        ["Location/dist", "Organization/hosp"]
    );
    let (_, entries) = app
        .search_entries("Organization?_id=hosp&_revinclude=Location:organization&_revinclude=Endpoint:organization\
             &_revinclude=HealthcareService:organization&_revinclude=PractitionerRole:organization")
        .await;
    assert_eq!(
        keys_in_mode(&entries, "include"),
        [
            "Endpoint/ep",
            "HealthcareService/svc",
            "Location/hosp",
            "PractitionerRole/role"
        ]
    );
    let (_, entries) = app
        .search_entries(
            "OrganizationAffiliation?_include=OrganizationAffiliation:primary-organization\
             &_include=OrganizationAffiliation:participating-organization",
        )
        .await;
    assert_eq!(
        keys_in_mode(&entries, "include"),
        ["Organization/disp", "Organization/dist"]
    );
}

#[tokio::test]
async fn mcsd_iti91_history_since_and_hierarchy_at_any_depth() {
    let app = registry().await;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let since = chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let mut renamed = location(
        "disp",
        "Kanyama Health Centre",
        Some("dist"),
        "F-002",
        Some((-1.9, 33.4)),
    );
    renamed["status"] = json!("inactive");
    assert_eq!(app.put("Location/disp", &renamed).await.status(), 200);
    let (status, history) =
        status_json(app.get(&format!("Location/_history?_since={since}")).await).await;
    assert_eq!(status, 200, "{history}");
    let entries = history["entry"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{history}");
    assert_eq!(entries[0]["resource"]["name"], "Kanyama Health Centre");
    assert_eq!(entries[0]["request"]["method"], "PUT");
    let (_, all) = status_json(
        app.get("_history?_since=2000-01-01T00:00:00Z&_count=100")
            .await,
    )
    .await;
    assert!(all["entry"].as_array().unwrap().len() >= 15);

    let ids = |bundle: &Value| -> Vec<String> {
        bundle["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["resource"]["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let (status, below) = status_json(app.get("Location/reg/$hierarchy").await).await;
    assert_eq!(status, 200, "{below}");
    assert_eq!(ids(&below), ["reg", "disp", "dist", "hosp"]);
    let (_, below) = status_json(app.get("Organization/dist/$hierarchy").await).await;
    assert_eq!(ids(&below), ["dist", "disp", "hosp"]);
    // A cycle ends: ctry made part of hosp.
    let mut looped = location("ctry", "Maridia", Some("hosp"), "MR", None);
    looped["partOf"] = json!({"reference": "Location/hosp"});
    assert_eq!(app.put("Location/ctry", &looped).await.status(), 200);
    let (_, below) = status_json(app.get("Location/dist/$hierarchy").await).await;
    assert_eq!(ids(&below), ["dist", "ctry", "disp", "hosp", "reg"]);
    let (status, outcome) = status_json(app.get("Location/nowhere/$hierarchy").await).await;
    assert_eq!(
        (status, outcome["resourceType"].as_str()),
        (404, Some("OperationOutcome"))
    );
    let (status, _) = status_json(app.get("Patient/x/$hierarchy").await).await;
    assert!(status == 400 || status == 404, "{status}");
}

#[tokio::test]
async fn mcsd_facility_codes_are_unique_per_tenant() {
    let app = registry().await;
    // Another Location with the hospital's code: refused, naming the identifier.
    let copy = location("hosp-2", "Second Hospital", Some("dist"), "F-001", None);
    let (status, outcome) = status_json(app.put("Location/hosp-2", &copy).await).await;
    assert_eq!(status, 409, "{outcome}");
    assert_outcome_names(&outcome, "Location.identifier[0]");
    assert_eq!(outcome["issue"][0]["code"], "duplicate");
    assert_eq!(app.get("Location/hosp-2").await.status(), 404);
    // Also in a transaction: nothing of it is written.
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": location("new-1", "New One", Some("dist"), "F-100", None), "request": {"method": "PUT", "url": "Location/new-1"}},
        {"resource": organization("new-org", "Copy", None, "F-002"), "request": {"method": "PUT", "url": "Organization/new-org"}}
    ]});
    let (status, outcome) = status_json(app.post("", &bundle).await).await;
    assert_eq!(status, 409, "{outcome}");
    assert_outcome_names(&outcome, "Organization.identifier[0]");
    assert_eq!(app.get("Location/new-1").await.status(), 404);
    // Updating the holder itself, and a code moved off a resource, are fine.
    let mut hosp = location(
        "hosp",
        "Lake District General Hospital",
        Some("dist"),
        "F-001",
        None,
    );
    assert_eq!(app.put("Location/hosp", &hosp).await.status(), 200);
    hosp["identifier"] = json!([{"system": CODES, "value": "F-001-OLD"}]);
    assert_eq!(app.put("Location/hosp", &hosp).await.status(), 200);
    assert_eq!(app.put("Location/hosp-2", &copy).await.status(), 201);
    // A create by POST with a taken code.
    let (status, _) = status_json(
        app.post("Location", &location("x", "X", None, "F-002", None))
            .await,
    )
    .await;
    assert_eq!(status, 409);
}
