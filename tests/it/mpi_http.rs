//! The master patient index over HTTP (issue 6): duplicates from two
//! integrators are linked to one golden record in the writes' own
//! transactions; `$match`, PIXm and PDQm; golden records belong to the
//! MPI; conditional writes and ingest batches; the tenant boundary holds.
//! The review queue and merges are in `mpi_review`.

use crate::harness::{TestApp, cluster, fresh_database, spawn_app_on, status_json};
use crate::oidc::OidcProvider;
use reqwest::Method;
use serde_json::{Value, json};

const NATIONAL: &str = "http://baraza.health/sid/national-id";

pub(crate) async fn secured_app(provider: &OidcProvider) -> TestApp {
    let dbname = fresh_database().await;
    let owner = baraza::db::connect(&cluster().config(&dbname))
        .await
        .unwrap();
    for id in ["acme", "globex"] {
        baraza::store::tenants::create(&owner, id, "")
            .await
            .unwrap();
    }
    let settings = provider.settings();
    spawn_app_on(dbname, move |s| {
        s.oidc = Some(settings);
        s.mpi = true;
    })
    .await
}

/// An app on loopback without authentication, with the MPI on.
async fn open_app() -> TestApp {
    crate::harness::spawn_app_with(|s| s.mpi = true).await
}

pub(crate) async fn call(
    app: &TestApp,
    token: Option<&str>,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let mut request = app.request(method, path);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request
            .header("content-type", "application/fhir+json")
            .body(body.to_string());
    }
    let response = request.send().await.unwrap();
    if response.status() == 204 {
        return (204, Value::Null);
    }
    status_json(response).await
}

/// A Patient as a facility would send it.
pub(crate) fn person(
    id: &str,
    given: &str,
    family: &str,
    birth: &str,
    local: (&str, &str),
) -> Value {
    json!({
        "resourceType": "Patient", "id": id,
        "identifier": [{"system": local.0, "value": local.1}],
        "name": [{"family": family, "given": [given]}],
        "gender": "female", "birthDate": birth,
        "telecom": [{"system": "phone", "value": "+254 722 555 019"}],
        "address": [{"city": "Kisumu", "district": "Kisumu Central"}]
    })
}

/// The golden record a source Patient refers to.
pub(crate) fn golden_of(patient: &Value) -> Option<String> {
    patient["link"].as_array()?.iter().find_map(|l| {
        let other = l["other"]["reference"].as_str()?;
        (l["type"] == "refer")
            .then(|| other.strip_prefix("Patient/"))
            .flatten()
            .map(str::to_owned)
    })
}

pub(crate) fn parameter<'a>(parameters: &'a Value, name: &str) -> Vec<&'a Value> {
    parameters["parameter"]
        .as_array()
        .map(|all| all.iter().filter(|p| p["name"] == name).collect())
        .unwrap_or_default()
}

pub(crate) fn part<'a>(parameter: &'a Value, name: &str) -> Option<&'a Value> {
    parameter["part"]
        .as_array()?
        .iter()
        .find(|p| p["name"] == name)
}

#[tokio::test]
async fn duplicates_from_two_integrators_get_one_golden_record() {
    let provider = OidcProvider::start().await;
    let app = secured_app(&provider).await;
    let a = provider.token("integrator-a").await;
    let b = provider.token("integrator-b").await;

    let first = person(
        "fa-1",
        "Achieng",
        "Odhiambo",
        "1987-03-14",
        ("urn:facility:a", "A-100"),
    );
    let (status, stored_a) = call(
        &app,
        Some(&a),
        Method::PUT,
        "acme/Patient/fa-1",
        Some(&first),
    )
    .await;
    assert_eq!(status, 201, "{stored_a}");
    let golden = golden_of(&stored_a).expect("the first record gets a golden record");
    assert!(golden.starts_with("golden-"), "{golden}");

    // The same woman at another facility: a typo and another local id.
    let second = person(
        "fb-7",
        "Achieng",
        "Odhiambu",
        "1987-03-14",
        ("urn:facility:b", "B-7"),
    );
    let (status, stored_b) = call(
        &app,
        Some(&b),
        Method::PUT,
        "acme/Patient/fb-7",
        Some(&second),
    )
    .await;
    assert_eq!(status, 201, "{stored_b}");
    assert_eq!(
        golden_of(&stored_b).as_deref(),
        Some(golden.as_str()),
        "{stored_b}"
    );

    // The golden record is a Patient tagged golden that sees both sources.
    let admin = provider.token("admin-client").await;
    let (status, record) = call(
        &app,
        Some(&admin),
        Method::GET,
        &format!("acme/Patient/{golden}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{record}");
    assert!(
        record["meta"]["tag"].to_string().contains("golden"),
        "{record}"
    );
    let others: Vec<&str> = record["link"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["type"] == "seealso")
        .filter_map(|l| l["other"]["reference"].as_str())
        .collect();
    assert!(
        others.contains(&"Patient/fa-1") && others.contains(&"Patient/fb-7"),
        "{record}"
    );
    let identifiers = record["identifier"].to_string();
    assert!(
        identifiers.contains("A-100") && identifiers.contains("B-7"),
        "{record}"
    );

    // Writing a golden record directly is refused.
    let (status, outcome) = call(
        &app,
        Some(&admin),
        Method::PUT,
        &format!("acme/Patient/{golden}"),
        Some(&record),
    )
    .await;
    assert_eq!(status, 409, "{outcome}");
    crate::harness::assert_outcome_names(&outcome, "Patient.id");

    // PIXm: facility A's id finds facility B's.
    let (status, pix) = call(
        &app,
        Some(&admin),
        Method::GET,
        "acme/Patient/$ihe-pix?sourceIdentifier=urn:facility:a|A-100&targetSystem=urn:facility:b",
        None,
    )
    .await;
    assert_eq!(status, 200, "{pix}");
    let targets = parameter(&pix, "targetIdentifier");
    assert_eq!(targets.len(), 1, "{pix}");
    assert_eq!(targets[0]["valueIdentifier"]["value"], "B-7");
    assert!(pix.to_string().contains("Patient/fb-7"), "{pix}");
    for (query, status_wanted, names) in [
        (
            "sourceIdentifier=urn:nowhere|A-100",
            400,
            "sourceIdentifier",
        ),
        (
            "sourceIdentifier=urn:facility:a|A-999",
            404,
            "sourceIdentifier",
        ),
        (
            "sourceIdentifier=urn:facility:a|A-100&targetSystem=urn:nowhere",
            403,
            "targetSystem",
        ),
        ("sourceIdentifier=A-100", 400, "sourceIdentifier"),
    ] {
        let (status, outcome) = call(
            &app,
            Some(&admin),
            Method::GET,
            &format!("acme/Patient/$ihe-pix?{query}"),
            None,
        )
        .await;
        assert_eq!(status, status_wanted, "{query}: {outcome}");
        crate::harness::assert_outcome_names(&outcome, names);
    }

    // $match finds both, graded, best first; tenant globex finds nothing.
    let probe = json!({"resourceType": "Parameters", "parameter": [
        {"name": "resource", "resource": person("x", "Achieng", "Odhiambo", "1987-03-14", ("urn:facility:c", "C-1"))},
        {"name": "count", "valueInteger": 5}]});
    let (status, bundle) = call(
        &app,
        Some(&admin),
        Method::POST,
        "acme/Patient/$match",
        Some(&probe),
    )
    .await;
    assert_eq!(status, 200, "{bundle}");
    let entries = bundle["entry"].as_array().unwrap();
    let ids: Vec<&str> = entries
        .iter()
        .filter_map(|e| e["resource"]["id"].as_str())
        .collect();
    assert!(ids.contains(&"fa-1") && ids.contains(&"fb-7"), "{bundle}");
    let scores: Vec<f64> = entries
        .iter()
        .map(|e| e["search"]["score"].as_f64().unwrap())
        .collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
    assert_eq!(
        entries[0]["search"]["extension"][0]["url"],
        "http://hl7.org/fhir/StructureDefinition/match-grade"
    );
    let (status, other_tenant) = call(
        &app,
        Some(&admin),
        Method::POST,
        "globex/Patient/$match",
        Some(&probe),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(other_tenant["total"], 0, "{other_tenant}");

    // A clinician may not match (it needs the $match permission).
    let clinician = provider.token("clinician-client").await;
    let (status, _) = call(
        &app,
        Some(&clinician),
        Method::POST,
        "acme/Patient/$match",
        Some(&probe),
    )
    .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn different_national_ids_are_never_linked_and_a_delete_unlinks() {
    let app = open_app().await;
    let mut one = person(
        "n1",
        "Wanjiru",
        "Kamau",
        "1990-06-01",
        ("urn:facility:a", "1"),
    );
    one["identifier"] = json!([{"system": NATIONAL, "value": "12345678"}]);
    let mut two = person(
        "n2",
        "Wanjiru",
        "Kamau",
        "1990-06-01",
        ("urn:facility:a", "2"),
    );
    two["identifier"] = json!([{"system": NATIONAL, "value": "87654321"}]);
    let (_, one) = call(&app, None, Method::PUT, "Patient/n1", Some(&one)).await;
    let (_, two) = call(&app, None, Method::PUT, "Patient/n2", Some(&two)).await;
    assert_ne!(golden_of(&one), golden_of(&two), "{one}\n{two}");

    // The same national id with a changed surname links.
    let mut three = person(
        "n3",
        "Wanjiru",
        "Otieno",
        "1990-06-01",
        ("urn:facility:b", "3"),
    );
    three["identifier"] = json!([{"system": NATIONAL, "value": "12345678"}]);
    let (_, three) = call(&app, None, Method::PUT, "Patient/n3", Some(&three)).await;
    assert_eq!(golden_of(&three), golden_of(&one), "{three}");

    // Deleting n3 takes it out of the golden record.
    let golden = golden_of(&one).unwrap();
    let (status, _) = call(&app, None, Method::DELETE, "Patient/n3", None).await;
    assert!(status == 200 || status == 204);
    let (_, record) = call(&app, None, Method::GET, &format!("Patient/{golden}"), None).await;
    assert!(!record.to_string().contains("Patient/n3"), "{record}");
    assert!(record.to_string().contains("Patient/n1"), "{record}");
}

#[tokio::test]
async fn matching_off_serves_no_mpi() {
    let app = crate::harness::spawn_app_with(|s| s.mpi = false).await;
    let (_, stored) = call(
        &app,
        None,
        Method::PUT,
        "Patient/p",
        Some(&person("p", "A", "B", "2000-01-01", ("urn:x", "1"))),
    )
    .await;
    assert!(stored.get("link").is_none(), "{stored}");
    let probe = json!({"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": {"resourceType": "Patient"}}]});
    let (status, outcome) = call(&app, None, Method::POST, "Patient/$match", Some(&probe)).await;
    assert_eq!(status, 404, "{outcome}");
}

#[tokio::test]
async fn conditional_writes_by_identifier_target_the_source_not_its_golden_record() {
    let app = open_app().await;
    let entry = |given: &str| {
        json!({"resource": person("ignored", given, "Barasa", "1982-08-08", ("urn:facility:k", "K-1")),
               "request": {"method": "PUT", "url": "Patient?identifier=urn:facility:k|K-1"}})
    };
    let bundle = |given: &str| json!({"resourceType": "Bundle", "type": "transaction", "entry": [entry(given)]});
    let (status, first) = call(&app, None, Method::POST, "", Some(&bundle("Juma"))).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(
        first["entry"][0]["response"]["status"], "201 Created",
        "{first}"
    );
    // The golden record carries K-1 too; the update still finds one match:
    // the source Patient.
    let (status, second) = call(&app, None, Method::POST, "", Some(&bundle("Jumaa"))).await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(
        second["entry"][0]["response"]["status"], "200 OK",
        "{second}"
    );
    let (_, found) = call(
        &app,
        None,
        Method::GET,
        "Patient?identifier=urn:facility:k|K-1",
        None,
    )
    .await;
    let ids: Vec<&str> = found["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["resource"]["id"].as_str())
        .collect();
    assert_eq!(ids.len(), 2, "the source and its golden record: {found}");
    // `_tag:not` leaves golden records out of a search.
    let (_, sources) = call(
        &app,
        None,
        Method::GET,
        "Patient?identifier=urn:facility:k|K-1&_tag:not=http://baraza.health/fhir/CodeSystem/mpi|golden",
        None,
    )
    .await;
    assert_eq!(sources["entry"].as_array().unwrap().len(), 1, "{sources}");
    assert_eq!(
        sources["entry"][0]["resource"]["name"][0]["given"][0],
        "Jumaa"
    );
}

#[tokio::test]
async fn pdqm_demographics_queries_find_the_source_records() {
    let app = open_app().await;
    let anna = json!({"resourceType": "Patient", "id": "pdq-1", "active": true,
        "identifier": [{"system": "urn:oid:1.3.6.1.4.1.21367.13.20.1000", "value": "IHERED-994"}],
        "name": [{"family": "Müller", "given": ["Anna", "Maria"]}],
        "gender": "female", "birthDate": "1980-05-17",
        "telecom": [{"system": "phone", "value": "+254700111222"}],
        "address": [{"line": ["12 Moi Avenue"], "city": "Nairobi", "state": "Nairobi",
                     "postalCode": "00100", "country": "KE"}],
        "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName",
                       "valueString": "Wambui"}]});
    let other = json!({"resourceType": "Patient", "id": "pdq-2", "active": true,
        "name": [{"family": "Mutua", "given": ["Annette"]}], "gender": "female",
        "birthDate": "1979-01-02", "address": [{"city": "Mombasa", "postalCode": "80100"}]});
    for body in [&anna, &other] {
        let id = body["id"].as_str().unwrap();
        let (status, _) = call(
            &app,
            None,
            Method::PUT,
            &format!("Patient/{id}"),
            Some(body),
        )
        .await;
        assert_eq!(status, 201);
    }
    let sources = "_tag:not=http://baraza.health/fhir/CodeSystem/mpi|golden";
    for (query, expected) in [
        ("family=muller&given=anna", vec!["pdq-1"]),
        ("family:exact=Müller", vec!["pdq-1"]),
        ("family:exact=muller", vec![]),
        ("given:contains=nnet", vec!["pdq-2"]),
        ("given=ann", vec!["pdq-1", "pdq-2"]),
        ("birthdate=1980-05-17&gender=female", vec!["pdq-1"]),
        ("birthdate=ge1980", vec!["pdq-1"]),
        (
            "identifier=urn:oid:1.3.6.1.4.1.21367.13.20.1000|IHERED-994",
            vec!["pdq-1"],
        ),
        ("telecom=%2B254700111222", vec!["pdq-1"]),
        // The ContactPoint token's system is ContactPoint.system.
        ("telecom=phone|%2B254700111222", vec!["pdq-1"]),
        ("phone=phone|%2B254700111222", vec!["pdq-1"]),
        ("telecom=email|%2B254700111222", vec![]),
        ("telecom=|%2B254700111222", vec![]),
        ("address=nairobi", vec!["pdq-1"]),
        ("address:contains=moi", vec!["pdq-1"]),
        (
            "address-city=Nairobi&address-postalcode=00100",
            vec!["pdq-1"],
        ),
        ("address-state=nairobi&address-country=KE", vec!["pdq-1"]),
        ("mothersMaidenName=wambui", vec!["pdq-1"]),
        ("active=true&_id=pdq-2", vec!["pdq-2"]),
    ] {
        let (status, bundle) = call(
            &app,
            None,
            Method::GET,
            &format!("Patient?{query}&{sources}"),
            None,
        )
        .await;
        assert_eq!(status, 200, "{query}: {bundle}");
        let mut ids: Vec<&str> = bundle["entry"]
            .as_array()
            .map(|e| {
                e.iter()
                    .filter_map(|e| e["resource"]["id"].as_str())
                    .collect()
            })
            .unwrap_or_default();
        ids.sort();
        assert_eq!(ids, expected, "{query}");
    }
}

#[tokio::test]
async fn patients_ingested_in_a_batch_are_linked_like_any_write() {
    let app = open_app().await;
    let lines: String = [
        person(
            "in-1",
            "Achieng",
            "Odhiambo",
            "1987-03-14",
            ("urn:facility:a", "A-1"),
        ),
        person(
            "in-2",
            "Achieng",
            "Odhiambu",
            "1987-03-14",
            ("urn:facility:b", "B-1"),
        ),
    ]
    .iter()
    .map(|p| format!("{p}\n"))
    .collect();
    let batch = crate::batches::run_ndjson_batch(&app, "linked", lines).await;
    assert_eq!(batch["status"], "completed", "{batch}");
    let (_, one) = call(&app, None, Method::GET, "Patient/in-1", None).await;
    let (_, two) = call(&app, None, Method::GET, "Patient/in-2", None).await;
    assert!(golden_of(&one).is_some(), "{one}");
    assert_eq!(golden_of(&one), golden_of(&two));
}
