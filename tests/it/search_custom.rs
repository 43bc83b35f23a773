//! Custom search parameters: a SearchParameter resource becomes searchable
//! after `$reindex`, which runs in the background with pollable progress,
//! does not block writes, and resumes after a restart.

use crate::harness::{TestApp, assert_outcome_names, spawn_app, spawn_app_on, status_json};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

const ETHNICITY: &str = "http://example.org/fhir/StructureDefinition/ethnicity";

fn patient(id: &str, ethnicity: &str) -> Value {
    json!({"resourceType": "Patient", "id": id,
           "extension": [{"url": ETHNICITY, "valueCode": ethnicity}]})
}

fn search_parameter() -> Value {
    json!({"resourceType": "SearchParameter", "id": "ethnicity",
           "url": "http://example.org/fhir/SearchParameter/patient-ethnicity",
           "name": "ethnicity", "status": "active", "description": "Ethnicity",
           "code": "ethnicity", "base": ["Patient"], "type": "token",
           "expression": format!("Patient.extension('{ETHNICITY}').value")})
}

async fn strict(app: &TestApp, query: &str) -> (u16, Value) {
    status_json(app.get_strict(query).await).await
}

fn ids(bundle: &Value) -> Vec<String> {
    let mut ids: Vec<String> = bundle["entry"]
        .as_array()
        .map(|e| {
            e.iter()
                .map(|e| e["resource"]["id"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

/// Polls the job at `location` until it is no longer running.
async fn wait_for(app: &TestApp, location: &str) -> Value {
    for _ in 0..200 {
        let (status, job) = status_json(app.client.get(location).send().await.unwrap()).await;
        assert_eq!(status, 200, "{job}");
        let state = job["parameter"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "status")
            .unwrap()["valueCode"]
            .clone();
        if state != "running" {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("$reindex did not finish");
}

fn parameter<'a>(job: &'a Value, name: &str) -> &'a Value {
    job["parameter"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap()
}

#[tokio::test]
async fn search_parameters_become_searchable_after_reindex() {
    let app = spawn_app().await;
    let mut resources: Vec<Value> = (0..450)
        .map(|i| patient(&format!("p{i:03}"), if i % 3 == 0 { "a" } else { "b" }))
        .collect();
    resources.push(search_parameter());
    app.load(&resources).await;

    // Stored but not yet active.
    let (status, body) = strict(&app, "Patient?ethnicity=a").await;
    assert_eq!(status, 400);
    assert_outcome_names(&body, "ethnicity");

    let response = app
        .request(Method::POST, "Patient/$reindex")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 202);
    let location = response
        .headers()
        .get("content-location")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    // Writes go on while the job runs (and are indexed with the new
    // parameter).
    app.load(&[patient("late", "a")]).await;
    let job = wait_for(&app, &location).await;
    assert_eq!(parameter(&job, "status")["valueCode"], "done", "{job}");
    assert_eq!(parameter(&job, "total")["valueInteger"], 450);

    let (status, bundle) = strict(&app, "Patient?ethnicity=a&_count=1000").await;
    assert_eq!(status, 200, "{bundle}");
    let found = ids(&bundle);
    assert_eq!(found.len(), 151, "150 of p000..p449 and late");
    assert!(found.contains(&"late".to_string()) && found.contains(&"p447".to_string()));
    app.load(&[patient("later", "b")]).await;
    let (_, bundle) = strict(&app, "Patient?ethnicity=b&_count=1000").await;
    assert_eq!(ids(&bundle).len(), 301);

    let (_, capabilities) = status_json(app.get("metadata").await).await;
    let listed = capabilities["rest"][0]["resource"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "Patient")
        .unwrap()["searchParam"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["name"] == "ethnicity");
    assert!(
        listed,
        "the CapabilityStatement lists active custom parameters"
    );

    // An unknown job is 404.
    assert_eq!(app.get("$reindex/nope").await.status().as_u16(), 404);
}

#[tokio::test]
async fn reindex_resumes_after_a_restart() {
    let first = spawn_app().await;
    let resources: Vec<Value> = (0..300)
        .map(|i| patient(&format!("p{i:03}"), "a"))
        .chain([search_parameter()])
        .collect();
    first.load(&resources).await;
    // A job a killed process left half done: running, cursor in the middle,
    // definitions pending.
    let db = first.db().await;
    db.execute(
        "INSERT INTO search_param_sets (tenant, pending) VALUES ('default', $1::text::json)",
        &[&Value::Array(vec![search_parameter()]).to_string()],
    )
    .await
    .unwrap();
    db.execute(
        "INSERT INTO reindex_jobs (id, tenant, types, status, cursor_type, cursor_id, processed, total, started_at) \
         VALUES ('j1', 'default', '{Patient}', 'running', 'Patient', 'p149', 150, 300, now())",
        &[],
    )
    .await
    .unwrap();
    let dbname = first.dbname.clone();
    drop(first);
    let app = spawn_app_on(dbname, |_| {}).await;
    let job = wait_for(&app, &app.url("$reindex/j1")).await;
    assert_eq!(parameter(&job, "status")["valueCode"], "done", "{job}");
    // The resumed job went on from its cursor (150 more, plus the catch-up
    // pass over everything written since shortly before it started).
    assert!(
        parameter(&job, "processed")["valueInteger"]
            .as_i64()
            .unwrap()
            >= 300
    );
    let (status, bundle) = strict(&app, "Patient?ethnicity=a&_count=1000").await;
    assert_eq!(status, 200, "{bundle}");
    // p000..p149 were before the cursor: the restart does not redo them,
    // but the catch-up pass covers them because they were written within
    // the margin before the job's start.
    assert_eq!(ids(&bundle).len(), 300);
}
