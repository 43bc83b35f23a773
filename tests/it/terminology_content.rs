//! Terminology content (issue 5): CodeSystems and ValueSets written through
//! the API feed the operations at once; required bindings refuse bad codes
//! on write; token `:in`/`:not-in`/`:below`/`:above` use the terminology
//! tables; tenants see their own and global content only; `$load` uploads
//! versions, and a malformed upload changes nothing.

use crate::harness::{
    TestApp, assert_outcome_names, cluster, fresh_database, spawn_app, spawn_app_on, status_json,
};
use crate::terminology::{codes, get, param, post};
use base64::Engine;
use serde_json::{Value, json};

const FOOD: &str = "http://example.org/fhir/CodeSystem/food";

fn food_system() -> Value {
    json!({"resourceType": "CodeSystem", "id": "food", "url": FOOD, "version": "1",
        "status": "active", "content": "complete", "hierarchyMeaning": "is-a",
        "concept": [
            {"code": "fruit", "display": "Fruit", "concept": [
                {"code": "apple", "display": "Apple"},
                {"code": "pineapple", "display": "Pineapple"},
                {"code": "apple-pie", "display": "Apple pie dessert"},
                {"code": "old-apple", "display": "Crab apple",
                 "property": [{"code": "inactive", "valueBoolean": true}]}]},
            {"code": "veg", "display": "Vegetable", "concept": [
                {"code": "kale", "display": "Kale"}]}]})
}

fn value_set(id: &str, compose: Value) -> Value {
    json!({"resourceType": "ValueSet", "id": id, "url": format!("http://example.org/fhir/ValueSet/{id}"),
           "status": "active", "compose": compose})
}

async fn put(app: &TestApp, resource: &Value) -> (u16, Value) {
    let path = format!(
        "{}/{}",
        resource["resourceType"].as_str().unwrap(),
        resource["id"].as_str().unwrap()
    );
    status_json(app.put(&path, resource).await).await
}

#[tokio::test]
async fn written_code_systems_expand_with_ranked_filters_and_cycles_fail() {
    let app = spawn_app().await;
    assert_eq!(put(&app, &food_system()).await.0, 201);
    let fruit = value_set(
        "fruit",
        json!({"include": [{"system": FOOD,
        "filter": [{"property": "concept", "op": "is-a", "value": "fruit"}]}]}),
    );
    assert_eq!(put(&app, &fruit).await.0, 201);
    let url = "http://example.org/fhir/ValueSet/fruit";
    let (status, all) = get(&app, &format!("ValueSet/$expand?url={url}")).await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(all["expansion"]["total"], 5);
    let (_, active) = get(&app, &format!("ValueSet/$expand?url={url}&activeOnly=true")).await;
    assert!(!codes(&active).contains(&"old-apple".to_owned()));
    // exact, then prefix, then word prefix, then (small systems) inside a word.
    let (_, ranked) = get(&app, &format!("ValueSet/$expand?url={url}&filter=apple")).await;
    assert_eq!(
        codes(&ranked),
        ["apple", "apple-pie", "old-apple", "pineapple"],
        "{ranked}"
    );
    let (_, inactive) = get(
        &app,
        &format!("ValueSet/$validate-code?url={url}&system={FOOD}&code=old-apple"),
    )
    .await;
    assert_eq!(param(&inactive, "result"), true);
    assert!(
        param(&inactive, "message")
            .as_str()
            .unwrap()
            .contains("inactive")
    );
    let (_, outside) = get(
        &app,
        &format!("ValueSet/$validate-code?url={url}&system={FOOD}&code=kale"),
    )
    .await;
    assert_eq!(param(&outside, "result"), false);

    // Updating the CodeSystem changes the answers (the cache follows).
    let mut changed = food_system();
    changed["concept"][0]["concept"] = json!([{"code": "apple", "display": "Apple"}]);
    assert_eq!(put(&app, &changed).await.0, 200);
    let (_, after) = get(
        &app,
        &format!("ValueSet/$validate-code?url={url}&system={FOOD}&code=pineapple"),
    )
    .await;
    assert_eq!(param(&after, "result"), false, "{after}");

    // Value sets that include each other: an error, not a hang.
    let a = value_set(
        "cycle-a",
        json!({"include": [{"valueSet": ["http://example.org/fhir/ValueSet/cycle-b"]}]}),
    );
    let b = value_set(
        "cycle-b",
        json!({"include": [{"valueSet": ["http://example.org/fhir/ValueSet/cycle-a"]}]}),
    );
    assert_eq!(put(&app, &a).await.0, 201);
    assert_eq!(put(&app, &b).await.0, 201);
    let (status, body) = get(&app, "ValueSet/cycle-a/$expand").await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("cycle"),
        "{body}"
    );
}

#[tokio::test]
async fn required_bindings_refuse_bad_codes_on_write() {
    let app = spawn_app().await;
    let bad = json!({"resourceType": "Patient", "gender": "nonsense"});
    let (status, body) = status_json(app.post("Patient", &bad).await).await;
    assert_eq!(status, 422, "{body}");
    assert_outcome_names(&body, "Patient.gender");
    let text = body["issue"][0]["diagnostics"].as_str().unwrap();
    assert!(
        text.contains("nonsense") && text.contains("administrative-gender"),
        "{text}"
    );
    let good = json!({"resourceType": "Patient", "gender": "female",
        "name": [{"use": "official", "family": "Wanjiru"}]});
    assert_eq!(status_json(app.post("Patient", &good).await).await.0, 201);
    // Nested datatypes are checked too.
    let bad_use =
        json!({"resourceType": "Patient", "name": [{"use": "nickname-ish", "family": "X"}]});
    let (status, body) = status_json(app.post("Patient", &bad_use).await).await;
    assert_eq!(status, 422, "{body}");
    assert_outcome_names(&body, "Patient.name[0].use");
    // A CodeableConcept under a required binding needs a coding in the set
    // (checked by the terminology service: the JSON schema has no enum here).
    let allergy = |code: &str| {
        json!({"resourceType": "AllergyIntolerance",
        "patient": {"reference": "Patient/x"},
        "clinicalStatus": {"coding": [{"system":
            "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "code": code}]}})
    };
    let (status, body) = status_json(app.post("AllergyIntolerance", &allergy("bogus")).await).await;
    assert_eq!(status, 422, "{body}");
    assert_outcome_names(&body, "AllergyIntolerance.clinicalStatus");
    assert!(
        body["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("allergyintolerance-clinical"),
        "{body}"
    );
    assert_eq!(
        status_json(app.post("AllergyIntolerance", &allergy("active")).await)
            .await
            .0,
        201
    );
    // A transaction with a bad code writes nothing.
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": good, "request": {"method": "POST", "url": "Patient"}},
        {"resource": bad, "request": {"method": "POST", "url": "Patient"}}]});
    let (status, _) = status_json(app.post("", &bundle).await).await;
    assert_eq!(status, 422);
    // $validate reports the same error; an extensible binding only warns.
    let marital = json!({"resourceType": "Parameters", "parameter": [{"name": "resource", "resource":
        {"resourceType": "Patient", "gender": "male", "maritalStatus": {"coding": [
            {"system": "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", "code": "ZZ"}]}}}]});
    let (status, outcome) = post(&app, "Patient/$validate", &marital).await;
    assert_eq!(status, 200, "{outcome}");
    let warning = outcome["issue"]
        .as_array()
        .unwrap()
        .iter()
        .any(|i| i["severity"] == "warning" && i["expression"][0] == "Patient.maritalStatus");
    assert!(warning, "{outcome}");
    // A write with that code is stored; the warning comes with the outcome.
    let response = app
        .request(reqwest::Method::POST, "Patient")
        .header("content-type", "application/fhir+json")
        .header("prefer", "return=OperationOutcome")
        .body(marital["parameter"][0]["resource"].to_string())
        .send()
        .await
        .unwrap();
    let (status, outcome) = status_json(response).await;
    assert_eq!(status, 201, "{outcome}");
    assert!(
        outcome["issue"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["severity"] == "warning"),
        "{outcome}"
    );
}

#[tokio::test]
async fn token_modifiers_in_not_in_below_and_above() {
    let app = spawn_app().await;
    put(&app, &food_system()).await;
    put(&app, &value_set("green", json!({"include": [{"system": FOOD, "concept": [{"code": "kale"}, {"code": "apple"}]}]}))).await;
    for (id, code) in [
        ("o-apple", "apple"),
        ("o-kale", "kale"),
        ("o-fruit", "fruit"),
        ("o-pie", "apple-pie"),
    ] {
        let obs = json!({"resourceType": "Observation", "id": id, "status": "final",
            "code": {"coding": [{"system": FOOD, "code": code}]}});
        assert!(put(&app, &obs).await.0 < 300);
    }
    let ids = |q: &'static str| {
        let app = &app;
        async move {
            let mut ids = app.match_ids(q).await;
            ids.sort();
            ids
        }
    };
    assert_eq!(
        ids("Observation?code:below=http://example.org/fhir/CodeSystem/food|fruit").await,
        ["o-apple", "o-fruit", "o-pie"]
    );
    assert_eq!(
        ids("Observation?code:above=http://example.org/fhir/CodeSystem/food|apple").await,
        ["o-apple", "o-fruit"]
    );
    assert_eq!(
        ids("Observation?code:in=http://example.org/fhir/ValueSet/green").await,
        ["o-apple", "o-kale"]
    );
    assert_eq!(
        ids("Observation?code:not-in=http://example.org/fhir/ValueSet/green").await,
        ["o-fruit", "o-pie"]
    );
    let (status, body) = get(&app, "Observation?code:in=http://example.org/none").await;
    assert_eq!(status, 400, "{body}");
    assert_outcome_names(&body, "code:in");
}

#[tokio::test]
async fn tenants_see_their_own_and_global_content_only() {
    let dbname = fresh_database().await;
    let owner = baraza::db::connect(&cluster().config(&dbname))
        .await
        .unwrap();
    for id in ["county-a", "county-b"] {
        baraza::store::tenants::create(&owner, id, "")
            .await
            .unwrap();
    }
    let app = spawn_app_on(dbname, |_| {}).await;
    assert_eq!(put(&app, &json!({"resourceType": "CodeSystem", "id": "food", "url": FOOD,
        "status": "active", "content": "complete", "concept": [{"code": "ugali", "display": "Ugali"}]}))
        .await.0, 201);
    let (status, _) = status_json(app.put("county-a/CodeSystem/food", &food_system()).await).await;
    assert_eq!(status, 201);
    let lookup =
        |tenant: &str, code: &str| format!("{tenant}/CodeSystem/$lookup?system={FOOD}&code={code}");
    assert_eq!(get(&app, &lookup("county-a", "kale")).await.0, 200);
    // county-b sees neither county-a's nor the default tenant's code system.
    let (status, body) = get(&app, &lookup("county-b", "kale")).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(get(&app, &lookup("county-b", "ugali")).await.0, 404);
    assert_eq!(
        get(
            &app,
            "county-a/CodeSystem/$lookup?system=http://hl7.org/fhir/administrative-gender&code=male"
        )
        .await
        .0,
        200
    );
    assert_eq!(
        get(
            &app,
            "county-b/CodeSystem/$lookup?system=http://hl7.org/fhir/administrative-gender&code=male"
        )
        .await
        .0,
        200
    );
    // Row-level security alone hides other tenants' rows.
    let db = app.request_db().await;
    let tx_rows: i64 = {
        db.batch_execute("BEGIN").await.unwrap();
        db.execute("SELECT set_config('baraza.tenant', 'county-b', true)", &[])
            .await
            .unwrap();
        let n = db
            .query_one(
                "SELECT count(*) FROM term_concepts WHERE code IN ('kale', 'ugali')",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        db.batch_execute("ROLLBACK").await.unwrap();
        n
    };
    assert_eq!(tx_rows, 0);
}

fn upload(csv: &str, version: &str) -> Value {
    json!({"resourceType": "Parameters", "parameter": [
        {"name": "format", "valueCode": "csv"},
        {"name": "version", "valueString": version},
        {"name": "file", "valueAttachment": {"contentType": "text/csv",
            "data": base64::engine::general_purpose::STANDARD.encode(csv)}}]})
}

#[tokio::test]
async fn load_operation_keeps_versions_and_refuses_malformed_input() {
    let app = spawn_app().await;
    let url = "https://health.example.go.ke/fhir/CodeSystem/districts";
    let v1 = format!("#url={url}\ncode,display,parent\nKE,Kenya,\nKE-30,Nairobi,KE\n");
    let (status, out) = post(&app, "CodeSystem/$load", &upload(&v1, "1")).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(param(&out, "concepts"), 2);
    let v2 = format!(
        "#url={url}\ncode,display,parent\nKE,Kenya,\nKE-30,Nairobi City,KE\nKE-47,Nakuru,KE\n"
    );
    assert_eq!(
        post(&app, "CodeSystem/$load", &upload(&v2, "2")).await.0,
        200
    );
    let display = |version: &'static str| {
        let app = &app;
        async move {
            let (_, l) = get(
                app,
                &format!("CodeSystem/$lookup?system={url}&code=KE-30&version={version}"),
            )
            .await;
            param(&l, "display").clone()
        }
    };
    assert_eq!(display("1").await, "Nairobi");
    assert_eq!(display("2").await, "Nairobi City");
    let (_, current) = get(&app, &format!("CodeSystem/$lookup?system={url}&code=KE-47")).await;
    assert_eq!(param(&current, "display"), "Nakuru");
    // A parent that is not a concept: refused, naming the code; version 2 intact.
    let broken = format!("#url={url}\ncode,display,parent\nKE,Kenya,\nKE-30,Broken,KE-99\n");
    let (status, body) = post(&app, "CodeSystem/$load", &upload(&broken, "2")).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("KE-99"),
        "{body}"
    );
    assert_eq!(display("2").await, "Nairobi City");
    // A malformed file: the line is named.
    let malformed = format!("#url={url}\ncode,display,parent\nKE,Kenya\n");
    let (status, body) = post(&app, "CodeSystem/$load", &upload(&malformed, "2")).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("line 3"),
        "{body}"
    );
    assert_outcome_names(&body, "Parameters.parameter[2]");
    assert_eq!(display("2").await, "Nairobi City");
}

/// `:below` and `:in` an is-a value set stand for more codes than are
/// listed (1,200 children): they are matched against the closure in the
/// database, and a client cannot use the internal form itself.
#[tokio::test]
async fn token_modifiers_over_large_hierarchies() {
    let app = spawn_app().await;
    let system = "http://example.org/fhir/CodeSystem/districts";
    let children: Vec<Value> = (0..1200)
        .map(|i| json!({"code": format!("d{i}"), "display": format!("District {i}")}))
        .collect();
    let cs = json!({"resourceType": "CodeSystem", "id": "districts", "url": system,
        "status": "active", "content": "complete", "hierarchyMeaning": "is-a",
        "concept": [{"code": "kenya", "display": "Kenya", "concept": children},
                    {"code": "elsewhere", "display": "Elsewhere"}]});
    assert!(put(&app, &cs).await.0 < 300);
    for (id, code) in [
        ("o-7", "d7"),
        ("o-1100", "d1100"),
        ("o-root", "kenya"),
        ("o-out", "elsewhere"),
    ] {
        let obs = json!({"resourceType": "Observation", "id": id, "status": "final",
            "code": {"coding": [{"system": system, "code": code}]}});
        assert!(put(&app, &obs).await.0 < 300);
    }
    let ids = |q: String| {
        let app = &app;
        async move {
            let mut ids = app.match_ids(&q).await;
            ids.sort();
            ids
        }
    };
    assert_eq!(
        ids(format!("Observation?code:below={system}|kenya")).await,
        ["o-1100", "o-7", "o-root"]
    );
    assert_eq!(
        ids(format!("Observation?code:in={system}?fhir_vs=isa/kenya")).await,
        ["o-1100", "o-7", "o-root"]
    );
    // Combined with another criterion, and few codes above: listed.
    assert_eq!(
        ids(format!(
            "Observation?code:below={system}|kenya&_id=o-7,o-out"
        ))
        .await,
        ["o-7"]
    );
    assert_eq!(
        ids(format!("Observation?code:above={system}|d1100")).await,
        ["o-1100", "o-root"]
    );
    let (status, body) = get(
        &app,
        &format!("Observation?code:baraza-hierarchy=below||1|1|{system}"),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_outcome_names(&body, "code:baraza-hierarchy");
}
