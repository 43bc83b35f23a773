//! Tenants granted by the token and data integrators (issue 4): a token
//! reaches only its tenants (another tenant is a 404, as if it did not
//! exist), and an integrator's client sees, corrects and deletes only what
//! it submitted, on every path: read, search, `_include`, history, batch
//! and transaction.

use crate::harness::{TestApp, cluster, fresh_database, spawn_app_on, status_json};
use crate::oidc::OidcProvider;
use reqwest::Method;
use serde_json::{Value, json};

async fn secured_app_with_tenants(provider: &OidcProvider, tenants: &[&str]) -> TestApp {
    let dbname = fresh_database().await;
    let owner = baraza::db::connect(&cluster().config(&dbname))
        .await
        .unwrap();
    for id in tenants {
        baraza::store::tenants::create(&owner, id, "")
            .await
            .unwrap();
    }
    let settings = provider.settings();
    spawn_app_on(dbname, move |s| s.oidc = Some(settings)).await
}

async fn call(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let mut request = app.request(method, path).bearer_auth(token);
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

fn ids(bundle: &Value) -> Vec<String> {
    bundle["entry"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .filter_map(|e| e["resource"]["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn tokens_reach_only_the_tenants_they_grant() {
    let provider = OidcProvider::start().await;
    let app = secured_app_with_tenants(&provider, &["acme", "globex"]).await;
    let globex = provider.token("globex-client").await;
    let admin = provider.token("admin-client").await;
    let patient = json!({"resourceType": "Patient", "id": "p1"});
    let (status, _) = call(&app, &admin, Method::PUT, "acme/Patient/p1", Some(&patient)).await;
    assert_eq!(status, 201);
    // globex-client is granted globex only: acme and default do not exist
    // for it, whether or not the data does.
    for path in [
        "acme/Patient/p1",
        "acme/Patient/nope",
        "acme/Patient",
        "Patient",
        "nosuch/Patient",
    ] {
        let (status, body) = call(&app, &globex, Method::GET, path, None).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert_eq!(body["resourceType"], "OperationOutcome");
    }
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {"resourceType": "Patient"}, "request": {"method": "POST", "url": "Patient"}}]});
    let (status, _) = call(&app, &globex, Method::POST, "acme", Some(&bundle)).await;
    assert_eq!(status, 404);
    let (status, _) = call(&app, &globex, Method::GET, "globex/Patient", None).await;
    assert_eq!(status, 200);
    // Each refusal is audited as a failure, with the caller.
    crate::audit::rows_where(&app, "'globex-client' = ANY(agents) AND outcome = 4", 6).await;
}

#[tokio::test]
async fn integrators_see_and_change_only_their_own_submissions() {
    let provider = OidcProvider::start().await;
    let app = secured_app_with_tenants(&provider, &["acme"]).await;
    let a = provider.token("integrator-a").await;
    let b = provider.token("integrator-b").await;
    let admin = provider.token("admin-client").await;

    let patient = json!({"resourceType": "Patient", "id": "pa", "name": [{"family": "Otieno"}]});
    let (status, created) = call(&app, &a, Method::PUT, "acme/Patient/pa", Some(&patient)).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(
        created["meta"]["source"],
        "urn:baraza:integrator:integrator-a"
    );
    let tag =
        json!({"system": "https://baraza.dev/fhir/CodeSystem/integrator", "code": "integrator-a"});
    assert!(created["meta"]["tag"].as_array().unwrap().contains(&tag));
    // b's observation points at a's patient.
    let observation = json!({"resourceType": "Observation", "id": "ob", "status": "final",
        "code": {"text": "x"}, "subject": {"reference": "Patient/pa"}});
    let (status, _) = call(
        &app,
        &b,
        Method::PUT,
        "acme/Observation/ob",
        Some(&observation),
    )
    .await;
    assert_eq!(status, 201);

    // b cannot see, change or delete a's patient on any path.
    for (method, path, body, expected) in [
        (Method::GET, "acme/Patient/pa", None, 404),
        (Method::GET, "acme/Patient/pa/_history/1", None, 404),
        (Method::GET, "acme/Patient/pa/_history", None, 404),
        (Method::PUT, "acme/Patient/pa", Some(&patient), 403),
        (Method::DELETE, "acme/Patient/pa", None, 403),
    ] {
        let (status, outcome) = call(&app, &b, method.clone(), path, body).await;
        assert_eq!(status, expected, "{method} {path}: {outcome}");
    }
    for query in [
        "acme/Patient",
        "acme/Patient?family=otieno",
        "acme/Observation?_include=Observation:subject",
        "acme/Patient/_history",
        "acme/_history",
    ] {
        let (status, bundle) = call(&app, &b, Method::GET, query, None).await;
        assert_eq!(status, 200, "{query}: {bundle}");
        assert!(
            !ids(&bundle).contains(&"pa".to_owned()),
            "{query}: {bundle}"
        );
    }
    let transaction = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {"resourceType": "Patient", "id": "pa"}, "request": {"method": "PUT", "url": "Patient/pa"}},
        {"resource": {"resourceType": "Patient"}, "request": {"method": "POST", "url": "Patient"}}]});
    let (status, _) = call(&app, &b, Method::POST, "acme", Some(&transaction)).await;
    assert_eq!(status, 403);
    let batch = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": "Patient/pa"}},
        {"request": {"method": "GET", "url": "Observation/ob"}}]});
    let (status, answer) = call(&app, &b, Method::POST, "acme", Some(&batch)).await;
    assert_eq!(status, 200);
    let status_of = |i: usize| {
        answer["entry"][i]["response"]["status"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert!(status_of(0).starts_with("404"), "{answer}");
    assert!(status_of(1).starts_with("200"), "{answer}");

    // Every refused attempt of b is audited as a failure: the read, the
    // vread, the instance history, the update, the delete, the
    // transaction, and the batch entry.
    crate::audit::rows_where(&app, "'integrator-b' = ANY(agents) AND outcome = 4", 7).await;

    // a still owns it: reads, corrects and deletes it.
    let (status, found) = call(&app, &a, Method::GET, "acme/Patient?family=otieno", None).await;
    assert_eq!((status, ids(&found)), (200, vec!["pa".to_owned()]));
    let (status, _) = call(&app, &a, Method::PUT, "acme/Patient/pa", Some(&patient)).await;
    assert_eq!(status, 200);
    // A client cannot claim another integrator's tag.
    let forged = json!({"resourceType": "Patient", "id": "pb", "meta": {"tag": [
        {"system": "https://baraza.dev/fhir/CodeSystem/integrator", "code": "integrator-b"}]}});
    let (status, stored) = call(&app, &a, Method::PUT, "acme/Patient/pb", Some(&forged)).await;
    assert_eq!(status, 201);
    assert_eq!(stored["meta"]["tag"], json!([tag]));
    let (status, _) = call(&app, &b, Method::GET, "acme/Patient/pb", None).await;
    assert_eq!(status, 404);
    // Someone who is not an integrator sees everyone's submissions.
    let (status, all) = call(&app, &admin, Method::GET, "acme/Patient?_sort=_id", None).await;
    assert_eq!(
        (status, ids(&all)),
        (200, vec!["pa".to_owned(), "pb".to_owned()])
    );
    let (status, _) = call(&app, &a, Method::DELETE, "acme/Patient/pa", None).await;
    assert_eq!(status, 204);
}
