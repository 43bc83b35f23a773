//! Search: token modifiers, reference `:identifier`, composites and
//! `near`. Expected results are written by hand from search.html.

use crate::harness::spawn_app;
use serde_json::{Value, json};

fn patient(id: &str, gender: Option<&str>) -> Value {
    let mut p = json!({"resourceType": "Patient", "id": id});
    if let Some(g) = gender {
        p["gender"] = json!(g);
    }
    p
}

#[tokio::test]
async fn token_not_text_and_of_type() {
    let app = spawn_app().await;
    let mut mr = patient("mr", Some("female"));
    mr["identifier"] = json!([{"system": "urn:mrn", "value": "446053",
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}],
                 "text": "Medical record number"}}]);
    let mut ni = patient("ni", Some("male"));
    ni["identifier"] = json!([{"system": "urn:nid", "value": "446053",
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "NI"}]}}]);
    app.load(&[mr, ni, patient("none", None)]).await;

    // :not also matches resources without the element (search.html#token).
    assert_eq!(
        app.match_ids("Patient?gender:not=male").await,
        ["mr", "none"]
    );
    assert_eq!(
        app.match_ids("Patient?gender:not=male,female").await,
        ["none"]
    );
    assert_eq!(
        app.match_ids(
            "Patient?identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|MR|446053"
        )
        .await,
        ["mr"]
    );
    assert_eq!(
        app.match_ids(
            "Patient?identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|NI|446053"
        )
        .await,
        ["ni"]
    );
    // :text searches Identifier.type.text, case- and accent-insensitively,
    // from the start.
    assert_eq!(
        app.match_ids("Patient?identifier:text=medical").await,
        ["mr"]
    );
    assert!(
        app.match_ids("Patient?identifier:text=record")
            .await
            .is_empty()
    );

    app.assert_rejected("Patient?identifier:of-type=MR|446053", "identifier:of-type")
        .await;

    let observation = |id: &str, display: &str| {
        json!({"resourceType": "Observation", "id": id, "status": "final",
               "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": display}]},
               "subject": {"identifier": {"system": "urn:nid", "value": "N-1"}}})
    };
    app.load(&[observation("o1", "Heart rate"), observation("o2", "Pulse")])
        .await;
    assert_eq!(app.match_ids("Observation?code:text=heart").await, ["o1"]);
    assert_eq!(
        app.match_ids("Observation?subject:identifier=urn:nid|N-1")
            .await,
        ["o1", "o2"]
    );
    assert!(
        app.match_ids("Observation?subject:identifier=urn:nid|N-2")
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn composites_pair_code_and_value_within_one_component() {
    let app = spawn_app().await;
    let bp = |id: &str, systolic: u32, diastolic: u32| {
        json!({"resourceType": "Observation", "id": id, "status": "final",
               "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
               "component": [
                 {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
                  "valueQuantity": {"value": systolic, "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}},
                 {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
                  "valueQuantity": {"value": diastolic, "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}}]})
    };
    let glucose = json!({"resourceType": "Observation", "id": "g", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "2339-0"}]},
        "valueQuantity": {"value": 200, "unit": "mg/dL", "system": "http://unitsofmeasure.org", "code": "mg/dL"}});
    app.load(&[bp("bp1", 120, 80), bp("bp2", 150, 70), glucose])
        .await;

    let q = "Observation?component-code-value-quantity=";
    assert_eq!(
        app.match_ids(&format!("{q}http://loinc.org|8480-6$gt130"))
            .await,
        ["bp2"]
    );
    assert_eq!(app.match_ids(&format!("{q}8462-4$gt75")).await, ["bp1"]);
    // 80 < 90 is the diastolic value; paired with the systolic code
    // nothing matches.
    assert!(app.match_ids(&format!("{q}8480-6$lt90")).await.is_empty());
    // OR across values, AND across repetitions.
    assert_eq!(
        app.match_ids(&format!("{q}8480-6$gt130,8462-4$gt75")).await,
        ["bp1", "bp2"]
    );
    assert_eq!(
        app.match_ids(&format!(
            "{q}8480-6$gt100&component-code-value-quantity=8462-4$lt75"
        ))
        .await,
        ["bp2"]
    );
    // Units: 200 mg/dL is 2 g/L.
    assert_eq!(
        app.match_ids("Observation?code-value-quantity=http://loinc.org|2339-0$gt1.8|http://unitsofmeasure.org|g/L"
        )
        .await,
        ["g"]
    );
    assert!(
        app.match_ids("Observation?code-value-quantity=2339-0$gt250")
            .await
            .is_empty()
    );
    app.assert_rejected(
        "Observation?code-value-quantity=2339-0",
        "code-value-quantity",
    )
    .await;
}

#[tokio::test]
async fn near_finds_locations_within_the_distance() {
    let app = spawn_app().await;
    let location = |id: &str, lat: f64, lon: f64| {
        json!({"resourceType": "Location", "id": id, "name": id,
               "position": {"latitude": lat, "longitude": lon}})
    };
    app.load(&[
        location("nairobi", -1.2864, 36.8172),
        location("thika", -1.0333, 37.0693),
        location("mombasa", -4.0435, 39.6682),
        json!({"resourceType": "Location", "id": "nowhere", "name": "nowhere"}),
    ])
    .await;
    // Nairobi–Thika is about 40 km, Nairobi–Mombasa about 440 km.
    let near = |rest: &str| format!("Location?near=-1.2864|36.8172|{rest}");
    assert_eq!(app.match_ids(&near("10|km")).await, ["nairobi"]);
    assert_eq!(app.match_ids(&near("50|km")).await, ["nairobi", "thika"]);
    assert_eq!(app.match_ids(&near("50000|m")).await, ["nairobi", "thika"]);
    assert_eq!(
        app.match_ids(&near("300|[mi_i]")).await,
        ["mombasa", "nairobi", "thika"]
    );
    assert_eq!(app.match_ids(&near("400|km")).await, ["nairobi", "thika"]);
    app.assert_rejected("Location?near=91|0|1|km", "near").await;
}
