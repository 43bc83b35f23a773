//! Permission groups over HTTP (issue 4): rights are the union of the
//! token's groups, tenant admins manage their own groups through the admin
//! API, and system groups cannot be changed.

use crate::harness::{TestApp, spawn_app_with, status_json};
use crate::oidc::OidcProvider;
use reqwest::Method;
use serde_json::{Value, json};

async fn call(
    app: &TestApp,
    token: &str,
    method: Method,
    url: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let mut request = app.client.request(method, url).bearer_auth(token);
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

#[tokio::test]
async fn groups_grant_the_union_of_their_permissions_and_admins_manage_them() {
    let provider = OidcProvider::start().await;
    let settings = provider.settings();
    let app = spawn_app_with(move |s| s.oidc = Some(settings)).await;
    let admin = provider.token("admin-client").await;
    let nurse = provider.token("nurse-client").await;
    let fhir = |path: &str| app.url(path);
    let admin_api = |path: &str| format!("{}/admin/{path}", app.base.trim_end_matches("/fhir"));
    let patient = json!({"resourceType": "Patient", "id": "p1"});
    let (status, _) = call(
        &app,
        &admin,
        Method::PUT,
        &fhir("Patient/p1"),
        Some(&patient),
    )
    .await;
    assert_eq!(status, 201);

    // The nurse's token names ward-nurses, which does not exist yet, and
    // auditor, which reads only AuditEvent.
    let (status, body) = call(&app, &nurse, Method::GET, &fhir("Patient/p1"), None).await;
    assert_eq!(status, 403, "{body}");

    let ward = json!({"description": "ward nurses",
        "permissions": {"Observation": ["create", "read", "search"], "Patient": ["read"]}});
    let (status, body) = call(
        &app,
        &nurse,
        Method::PUT,
        &admin_api("groups/ward-nurses"),
        Some(&ward),
    )
    .await;
    assert_eq!(status, 403, "only tenant-admin manages groups: {body}");
    let (status, body) = call(
        &app,
        &admin,
        Method::PUT,
        &admin_api("groups/ward-nurses"),
        Some(&ward),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["permissions"]["Patient"], json!(["read"]));

    let observation = json!({"resourceType": "Observation", "status": "final",
        "code": {"text": "pulse"}, "subject": {"reference": "Patient/p1"}});
    let (status, created) = call(
        &app,
        &nurse,
        Method::POST,
        &fhir("Observation"),
        Some(&observation),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    for (method, path, expected) in [
        (Method::GET, format!("Observation/{id}"), 200),
        (
            Method::GET,
            "Observation?subject=Patient/p1".to_owned(),
            200,
        ),
        (Method::DELETE, format!("Observation/{id}"), 403),
        (Method::GET, "Patient/p1".to_owned(), 200),
        (Method::GET, "Patient?_id=p1".to_owned(), 403),
        (Method::GET, "Condition?subject=Patient/p1".to_owned(), 403),
    ] {
        let (status, body) = call(&app, &nurse, method.clone(), &fhir(&path), None).await;
        assert_eq!(status, expected, "{method} {path}: {body}");
    }

    // The admin API: listing, refusals naming the problem, deletion.
    let (status, list) = call(&app, &admin, Method::GET, &admin_api("groups"), None).await;
    assert_eq!(status, 200);
    let names: Vec<&str> = list["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"clinician") && names.contains(&"ward-nurses"),
        "{names:?}"
    );
    let bad = json!({"permissions": {"Observation": ["read", "write"]}});
    let (status, outcome) = call(
        &app,
        &admin,
        Method::PUT,
        &admin_api("groups/bad"),
        Some(&bad),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        outcome["issue"][0]["expression"][0],
        "permissions.Observation[1]"
    );
    let (status, _) = call(
        &app,
        &admin,
        Method::PUT,
        &admin_api("groups/clinician"),
        Some(&ward),
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = call(
        &app,
        &admin,
        Method::DELETE,
        &admin_api("groups/ward-nurses"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, _) = call(
        &app,
        &nurse,
        Method::GET,
        &fhir(&format!("Observation/{id}")),
        None,
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = call(
        &app,
        &admin,
        Method::GET,
        &admin_api("groups/ward-nurses"),
        None,
    )
    .await;
    assert_eq!(status, 404);

    // Every admin request is audited, refused or not: the nurse's PUT
    // (403), the admin's PUT (201), the list, the bad document (400), the
    // system group (403), the deletion (204) and the read of the deleted
    // group (404).
    let rows = crate::audit::rows_where(
        &app,
        "subtype = 'operation' AND event::text LIKE '%admin-groups%'",
        7,
    )
    .await;
    let actions: Vec<(&str, i16)> = rows
        .iter()
        .map(|r| (r.action.as_str(), r.outcome))
        .collect();
    assert_eq!(
        actions,
        [
            ("U", 4),
            ("U", 0),
            ("R", 0),
            ("U", 4),
            ("U", 4),
            ("D", 0),
            ("R", 4)
        ]
    );
}
