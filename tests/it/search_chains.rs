//! Search: chained parameters (one and several levels), reverse chaining
//! with `_has` (nested), and conditional interactions with chained
//! criteria. Expected results are written by hand from search.html.

use crate::harness::{TestApp, assert_outcome_names, spawn_app, status_json};
use reqwest::Method;
use serde_json::{Value, json};

/// Two organizations, three patients, observations and a provenance.
async fn clinic(app: &TestApp) {
    let patient = |id: &str, family: &str, org: &str, nid: &str| {
        json!({"resourceType": "Patient", "id": id, "name": [{"family": family}],
               "identifier": [{"system": "urn:nid", "value": nid}],
               "managingOrganization": {"reference": format!("Organization/{org}")}})
    };
    let observation = |id: &str, subject: &str, code: &str| {
        json!({"resourceType": "Observation", "id": id, "status": "final",
               "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
               "subject": {"reference": subject}})
    };
    let resources: Vec<Value> = vec![
        json!({"resourceType": "Organization", "id": "knh", "name": "Kenyatta National Hospital"}),
        json!({"resourceType": "Organization", "id": "mtrh", "name": "Moi Teaching and Referral"}),
        json!({"resourceType": "Practitioner", "id": "d1", "name": [{"family": "Otieno"}]}),
        patient("p1", "Smith", "knh", "N1"),
        patient("p2", "Smithers", "mtrh", "N2"),
        patient("p3", "Otieno", "knh", "N3"),
        json!({"resourceType": "Location", "id": "l1", "name": "Smith Ward"}),
        observation("o1", "Patient/p1", "4548-4"),
        observation("o2", "Patient/p2", "8867-4"),
        observation("o3", "Patient/p3", "4548-4"),
        observation("o4", "Location/l1", "8867-4"),
        json!({"resourceType": "Encounter", "id": "e1", "status": "finished",
               "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
               "subject": {"reference": "Patient/p1"}}),
        json!({"resourceType": "Encounter", "id": "e2", "status": "finished",
               "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
               "subject": {"reference": "Patient/p2"}}),
        json!({"resourceType": "Provenance", "id": "prov1", "recorded": "2026-01-01T00:00:00Z",
               "target": [{"reference": "Observation/o3"}],
               "agent": [{"who": {"reference": "Practitioner/d1"}}]}),
    ];
    app.load(&resources).await;
}

#[tokio::test]
async fn chained_parameters_follow_references() {
    let app = spawn_app().await;
    clinic(&app).await;
    assert_eq!(
        app.match_keys("Observation?subject:Patient.name=smith")
            .await,
        ["Observation/o1", "Observation/o2"],
        "name=smith starts-with matches Smith and Smithers"
    );
    // Without :Type every target type with a `name` parameter is searched:
    // Location l1 is "Smith Ward".
    assert_eq!(
        app.match_keys("Observation?subject.name=smith").await,
        ["Observation/o1", "Observation/o2", "Observation/o4"]
    );
    assert_eq!(
        app.match_keys("Encounter?patient.identifier=urn:nid|N2")
            .await,
        ["Encounter/e2"]
    );
    // Two levels: observations of patients managed by KNH.
    assert_eq!(
        app.match_keys("Observation?subject:Patient.organization.name=kenyatta")
            .await,
        ["Observation/o1", "Observation/o3"]
    );
    assert_eq!(
        app.match_keys("Observation?subject:Patient.organization.name=kenyatta&code=4548-4&subject:Patient.name=otieno"
        )
        .await,
        ["Observation/o3"]
    );
    assert!(
        app.match_keys("Observation?subject:Patient.organization.name=nobody")
            .await
            .is_empty()
    );
    // A chain through a non-reference parameter is reported or rejected.
    let (status, body) = status_json(app.get_strict("Observation?code.name=x").await).await;
    assert_eq!(status, 400);
    assert_outcome_names(&body, "code.name");
    let (status, body) = status_json(
        app.get("Observation?subject:Patient.birthdate=notadate")
            .await,
    )
    .await;
    assert_eq!(status, 400, "a malformed chained value is always an error");
    assert_outcome_names(&body, "subject:Patient.birthdate");
}

#[tokio::test]
async fn has_selects_by_resources_that_refer_back() {
    let app = spawn_app().await;
    clinic(&app).await;
    assert_eq!(
        app.match_keys("Patient?_has:Observation:patient:code=http://loinc.org|4548-4")
            .await,
        ["Patient/p1", "Patient/p3"]
    );
    assert_eq!(
        app.match_keys(
            "Patient?_has:Observation:patient:code=4548-4&_has:Encounter:subject:status=finished"
        )
        .await,
        ["Patient/p1"]
    );
    // Nested: patients with an observation that has a provenance by d1.
    assert_eq!(
        app.match_keys(
            "Patient?_has:Observation:patient:_has:Provenance:target:agent=Practitioner/d1"
        )
        .await,
        ["Patient/p3"]
    );
    // _has combined with a chain inside.
    assert_eq!(
        app.match_keys(
            "Organization?_has:Patient:organization:_has:Observation:patient:code=8867-4"
        )
        .await,
        ["Organization/mtrh"]
    );
    app.assert_rejected(
        "Patient?_has:Observation:patient",
        "_has:Observation:patient",
    )
    .await;
}

#[tokio::test]
async fn conditional_interactions_accept_chained_criteria() {
    let app = spawn_app().await;
    clinic(&app).await;
    // Conditional update of the one Encounter whose patient is N1.
    let mut e1 = json!({"resourceType": "Encounter", "status": "cancelled",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "subject": {"reference": "Patient/p1"}});
    let response = app
        .put("Encounter?patient.identifier=urn:nid|N1", &e1)
        .await;
    assert_eq!(response.status().as_u16(), 200);
    let (_, stored) = status_json(app.get("Encounter/e1").await).await;
    assert_eq!(stored["status"], "cancelled");
    // Both encounters' patients match name=smith (Smith, Smithers): 412.
    e1["status"] = json!("finished");
    let response = app.put("Encounter?patient.name=smith", &e1).await;
    assert_eq!(response.status().as_u16(), 412);
    // Conditional delete through _has.
    let response = app
        .request(
            Method::DELETE,
            "Patient?_has:Observation:patient:code=8867-4",
        )
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    assert_eq!(app.get("Patient/p2").await.status().as_u16(), 410);
}

/// `_has` over many sources spread among the searched Patients (walked
/// from the Patients, `search::execute::walk`) finds exactly those that
/// are referred to, pages by id, combines with other criteria, and a rare
/// code (the `IN` form) still works beside it.
#[tokio::test]
async fn has_over_thousands_of_sources_pages_through_every_referred_patient() {
    let app = spawn_app().await;
    load_hba1c_population(&app).await;
    // `patient` is answered from token rows keyed by Patient, `subject`
    // from the reference rows: the same Patients.
    assert_hba1c_searches(&app, "patient").await;
    assert_hba1c_searches(&app, "subject").await;
}

/// 60 Patients; the even ones have 60 HbA1c results each (1,800), the
/// first five of every ten also 10 more (300 more sources of that code),
/// p00 alone a rare code. Analysed afterwards. The Observations' long ids
/// make their hash table (`search_plans`) need about 190 kB.
pub async fn load_hba1c_population(app: &TestApp) {
    let mut resources = Vec::new();
    for i in 0..60 {
        let gender = if i % 3 == 0 { "male" } else { "female" };
        resources.push(json!({"resourceType": "Patient", "id": format!("p{i:02}"),
            "gender": gender}));
    }
    let observation = |id: String, patient: String, code: &str| {
        json!({"resourceType": "Observation", "id": id, "status": "final",
               "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
               "subject": {"reference": format!("Patient/{patient}")}})
    };
    for i in (0..60).step_by(2) {
        for n in 0..60 {
            resources.push(observation(
                format!("hba1c-result-of-patient-p{i:02}-number-{n:02}-of-sixty-aaaaaaa"),
                format!("p{i:02}"),
                "4548-4",
            ));
        }
    }
    for i in (0..60).filter(|i| i % 10 < 5) {
        for n in 0..10 {
            resources.push(observation(
                format!("hba1c-result-of-patient-p{i:02}-number-{n:02}-of-ten-ggggggggg"),
                format!("p{i:02}"),
                "4548-4",
            ));
        }
    }
    resources.push(observation("rare".into(), "p00".into(), "99999-9"));
    for chunk in resources.chunks(700) {
        app.load(chunk).await;
    }
    // As autovacuum does within seconds of a load: without statistics the
    // planner takes every table for one row, and the IN form of the rare
    // code below becomes a quadratic nested loop (89 s here).
    app.analyze("resources, search_reference, search_token")
        .await;
}

/// The searches of the population above, with their answers: the HbA1c
/// `_has` over 9 pages of 7, the same with `gender`, and the rare code.
pub async fn assert_hba1c_searches(app: &TestApp, param: &str) {
    // The walk and the IN form must agree with the data: every Patient
    // with an HbA1c, in id order, over pages of 7.
    let expected: Vec<String> = (0..60)
        .filter(|i| i % 2 == 0 || i % 10 < 5)
        .map(|i| format!("Patient/p{i:02}"))
        .collect();
    let mut seen = Vec::new();
    let mut next = Some(format!(
        "Patient?_has:Observation:{param}:code=http://loinc.org|4548-4&_count=7"
    ));
    while let Some(url) = next.take() {
        let (status, bundle) = status_json(app.get(&url).await).await;
        assert_eq!(status, 200, "{bundle}");
        for entry in bundle["entry"].as_array().into_iter().flatten() {
            seen.push(format!(
                "Patient/{}",
                entry["resource"]["id"].as_str().unwrap()
            ));
        }
        next = bundle["link"].as_array().and_then(|links| {
            links.iter().find(|l| l["relation"] == "next").map(|l| {
                let href = l["url"].as_str().unwrap();
                href[href.find("/fhir/").unwrap() + 6..].to_owned()
            })
        });
    }
    assert_eq!(seen, expected);

    // With another criterion on the Patient.
    let women: Vec<String> = expected
        .iter()
        .filter(|key| key[9..].parse::<u32>().unwrap() % 3 != 0)
        .cloned()
        .collect();
    assert_eq!(
        app.match_keys(&format!(
            "Patient?_has:Observation:{param}:code=4548-4&gender=female&_count=100"
        ))
        .await,
        women
    );
    // A rare code: one Patient.
    assert_eq!(
        app.match_keys(&format!("Patient?_has:Observation:{param}:code=99999-9"))
            .await,
        ["Patient/p00"]
    );
}
