//! Ingest batches and who sees them (issue 7): an integrator sees, uploads
//! to and acts on only its own batches, tenant admins see all of the
//! tenant's, other callers none; the records an integrator's batch writes
//! carry its integrator stamp, as if it had posted them itself.

use crate::batches::{create_batch, ingest, wait_final};
use crate::harness::{cluster, fresh_database, spawn_app_on, status_json};
use crate::oidc::OidcProvider;
use reqwest::Method;
use serde_json::{Value, json};

fn ids(list: &Value) -> Vec<String> {
    let mut ids: Vec<String> = list["batches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn batches_integrators_see_only_their_own_and_admins_see_all() {
    let provider = OidcProvider::start().await;
    let dbname = fresh_database().await;
    let owner = baraza::db::connect(&cluster().config(&dbname))
        .await
        .unwrap();
    baraza::store::tenants::create(&owner, "acme", "")
        .await
        .unwrap();
    let settings = provider.settings();
    let app = spawn_app_on(dbname, move |s| s.oidc = Some(settings)).await;
    let a = provider.token("integrator-a").await;
    let b = provider.token("integrator-b").await;
    let admin = provider.token("admin-client").await;
    let clinician = provider.token("clinician-client").await;

    let batch_a = create_batch(
        &app,
        Some(&a),
        "acme",
        json!({"name": "a", "dataType": "ndjson"}),
    )
    .await;
    assert_eq!(batch_a["integrator"], "integrator-a");
    let batch_b = create_batch(
        &app,
        Some(&b),
        "acme",
        json!({"name": "b", "dataType": "ndjson"}),
    )
    .await;
    let id_a = batch_a["id"].as_str().unwrap();
    let id_b = batch_b["id"].as_str().unwrap();

    // B cannot see, upload to or act on A's batch: it does not exist for B.
    let line = json!({"resourceType": "Patient", "id": "ia-1"}).to_string();
    for (method, path, body) in [
        (Method::GET, format!("acme/batches/{id_a}"), None),
        (Method::GET, format!("acme/batches/{id_a}/errors"), None),
        (
            Method::POST,
            format!("acme/batches/{id_a}/records"),
            Some(line.clone()),
        ),
        (
            Method::PUT,
            format!("acme/batches/{id_a}/action/terminate"),
            None,
        ),
    ] {
        let (status, body) = ingest(&app, Some(&b), method, &path, body).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert_eq!(body["resourceType"], "OperationOutcome");
    }
    let (_, list) = ingest(&app, Some(&b), Method::GET, "acme/batches", None).await;
    assert_eq!(ids(&list), [id_b.to_owned()]);
    // Filtering on another integrator does not widen B's view.
    let (_, list) = ingest(
        &app,
        Some(&b),
        Method::GET,
        "acme/batches?integrator=integrator-a",
        None,
    )
    .await;
    assert_eq!(ids(&list), Vec::<String>::new());
    let (_, list) = ingest(&app, Some(&admin), Method::GET, "acme/batches", None).await;
    let mut both = vec![id_a.to_owned(), id_b.to_owned()];
    both.sort();
    assert_eq!(ids(&list), both);
    let (_, list) = ingest(
        &app,
        Some(&admin),
        Method::GET,
        "acme/batches?integrator=integrator-a",
        None,
    )
    .await;
    assert_eq!(ids(&list), [id_a.to_owned()]);
    // A caller that is neither an integrator nor a tenant admin: 403.
    let (status, body) = ingest(&app, Some(&clinician), Method::GET, "acme/batches", None).await;
    assert_eq!(status, 403, "{body}");
    // Without a token: 401.
    let (status, _) = ingest(&app, None, Method::GET, "acme/batches", None).await;
    assert_eq!(status, 401);

    // A's batch is written with A's rights and stamp.
    let (status, body) = ingest(
        &app,
        Some(&a),
        Method::POST,
        &format!("acme/batches/{id_a}/records"),
        Some(line),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = ingest(
        &app,
        Some(&a),
        Method::PUT,
        &format!("acme/batches/{id_a}/action/sendComplete"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let done = wait_final(&app, Some(&a), "acme", id_a).await;
    assert_eq!(done["counts"]["created"], 1, "{done}");
    let response = app
        .request(Method::GET, "acme/Patient/ia-1")
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    let (status, patient) = status_json(response).await;
    assert_eq!(status, 200);
    let tags = patient["meta"]["tag"].as_array().unwrap();
    assert!(
        tags.iter().any(|t| t["code"] == "integrator-a"),
        "{patient}"
    );
    // The FHIR status: B sees only its own totals, the admin both.
    let response = app
        .request(Method::GET, "acme/$ingest-status")
        .bearer_auth(&b)
        .send()
        .await
        .unwrap();
    let (status, parameters) = status_json(response).await;
    assert_eq!(status, 200, "{parameters}");
    let names: Vec<&str> = parameters["parameter"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["part"][0]["valueString"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["integrator-b"]);
    let response = app
        .request(Method::GET, "acme/$ingest-status")
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    let (_, parameters) = status_json(response).await;
    assert_eq!(
        parameters["parameter"].as_array().unwrap().len(),
        2,
        "{parameters}"
    );
}
