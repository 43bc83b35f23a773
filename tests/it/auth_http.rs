//! Authentication and SMART scopes over HTTP (issue 4): a real Baraza
//! configured with a real OpenID provider on loopback.

use crate::harness::{TestApp, spawn_app_with, status_json};
use crate::oidc::OidcProvider;
use reqwest::Method;
use serde_json::{Value, json};

async fn secured_app(provider: &OidcProvider) -> TestApp {
    let settings = provider.settings();
    spawn_app_with(move |s| s.oidc = Some(settings)).await
}

/// The server's root URL (the FHIR base without `/fhir`).
fn root(app: &TestApp) -> String {
    app.base.trim_end_matches("/fhir").to_owned()
}

/// Sends `method path` with `token` (and `body`), returning status and JSON.
async fn call(
    app: &TestApp,
    token: Option<&str>,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> (u16, Value, Option<String>) {
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
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    let (status, json) = status_json(response).await;
    (status, json, challenge)
}

#[tokio::test]
async fn auth_requests_need_a_valid_bearer_token_except_public_paths() {
    let provider = OidcProvider::start().await;
    let app = secured_app(&provider).await;

    let (status, body, challenge) = call(&app, None, Method::GET, "Patient", None).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["resourceType"], "OperationOutcome");
    assert_eq!(challenge.as_deref(), Some("Bearer"));

    let (status, _, challenge) =
        call(&app, Some("abc.def.ghi"), Method::GET, "Patient", None).await;
    assert_eq!(status, 401);
    assert!(challenge.unwrap().contains("error=\"invalid_token\""));

    let (status, body, _) = call(&app, None, Method::GET, "metadata", None).await;
    assert_eq!(status, 200);
    assert_eq!(body["resourceType"], "CapabilityStatement");
    let health = app
        .client
        .get(format!("{}/health", root(&app)))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);

    let smart = app
        .client
        .get(format!("{}/.well-known/smart-configuration", root(&app)))
        .send()
        .await
        .unwrap();
    assert_eq!(smart.status(), 200);
    let smart: Value = smart.json().await.unwrap();
    assert_eq!(smart["issuer"], provider.issuer.as_str());
    assert_eq!(
        smart["token_endpoint"].as_str().unwrap(),
        format!("{}/token", provider.issuer)
    );
    assert!(
        smart["capabilities"]
            .as_array()
            .unwrap()
            .contains(&json!("permission-v2"))
    );

    let token = provider.token("admin-client").await;
    let patient = json!({"resourceType": "Patient", "id": "p1"});
    let (status, body, _) = call(
        &app,
        Some(&token),
        Method::PUT,
        "Patient/p1",
        Some(&patient),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, _, _) = call(&app, Some(&token), Method::GET, "Patient/p1", None).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn auth_login_forwards_the_password_grant() {
    let provider = OidcProvider::start().await;
    let app = secured_app(&provider).await;
    let login = |username: &str, password: &str| {
        app.client
            .post(format!("{}/auth/login", root(&app)))
            .form(&[("username", username), ("password", password)])
            .send()
    };
    let accepted = login("alice", "alice-password").await.unwrap();
    assert_eq!(accepted.status(), 200);
    let tokens: Value = accepted.json().await.unwrap();
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let (status, _, _) = call(&app, Some(&access), Method::GET, "Patient", None).await;
    assert_eq!(status, 200);

    let refused = login("alice", "wrong").await.unwrap();
    assert_eq!(refused.status(), 401);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["resourceType"], "OperationOutcome");
}

/// Each interaction needs its own permission: `system/*.read` reads and
/// searches but cannot create, update or delete; `system/Patient.rs` with
/// `Observation.cruds` cannot touch Conditions.
#[tokio::test]
async fn auth_scopes_are_enforced_per_interaction() {
    let provider = OidcProvider::start().await;
    let app = secured_app(&provider).await;
    let admin = provider.token("admin-client").await;
    let patient = json!({"resourceType": "Patient", "id": "p1"});
    let condition = json!({"resourceType": "Condition", "id": "c1",
        "subject": {"reference": "Patient/p1"}});
    for (path, body) in [("Patient/p1", &patient), ("Condition/c1", &condition)] {
        let (status, _, _) = call(&app, Some(&admin), Method::PUT, path, Some(body)).await;
        assert_eq!(status, 201);
    }

    let readonly = provider.token("readonly-client").await;
    let clinician = provider.token("clinician-client").await;
    let new_patient = json!({"resourceType": "Patient"});
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {"resourceType": "Patient"}, "request": {"method": "POST", "url": "Patient"}}]});
    for (token, method, path, body, expected) in [
        (&readonly, Method::GET, "Patient/p1", None, 200),
        (&readonly, Method::GET, "Patient?_id=p1", None, 200),
        (&readonly, Method::GET, "Patient/p1/_history", None, 200),
        (&readonly, Method::POST, "Patient", Some(&new_patient), 403),
        (&readonly, Method::PUT, "Patient/p1", Some(&patient), 403),
        (&readonly, Method::DELETE, "Patient/p1", None, 403),
        (&readonly, Method::POST, "", Some(&bundle), 403),
        (&readonly, Method::POST, "$reindex", None, 403),
        (&clinician, Method::GET, "Patient/p1", None, 200),
        (&clinician, Method::PUT, "Patient/p1", Some(&patient), 403),
        (&clinician, Method::GET, "Condition/c1", None, 403),
        (
            &clinician,
            Method::GET,
            "Condition?subject=Patient/p1",
            None,
            403,
        ),
        (
            &clinician,
            Method::GET,
            "?_type=Patient,Condition",
            None,
            403,
        ),
        (&clinician, Method::GET, "?_type=Patient", None, 200),
    ] {
        let (status, outcome, _) = call(&app, Some(token), method.clone(), path, body).await;
        assert_eq!(status, expected, "{method} {path}: {outcome}");
        if expected == 403 {
            assert_eq!(outcome["resourceType"], "OperationOutcome");
        }
    }
    // Included resources the token may not read are left out.
    let (status, bundle, _) = call(
        &app,
        Some(&clinician),
        Method::GET,
        "Patient?_id=p1&_revinclude=Condition:subject",
        None,
    )
    .await;
    assert_eq!(status, 200);
    let types: Vec<&str> = bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"]["resourceType"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["Patient"]);
}

/// `patient/` scopes reach the patient in context and their compartment
/// only: other patients' records answer 404 or are not found by search.
#[tokio::test]
async fn auth_patient_scopes_stay_in_the_patients_compartment() {
    let provider = OidcProvider::start().await;
    let app = secured_app(&provider).await;
    let admin = provider.token("admin-client").await;
    let observation = |id: &str, patient: &str| {
        json!({"resourceType": "Observation", "id": id, "status": "final",
            "code": {"text": "x"}, "subject": {"reference": format!("Patient/{patient}")}})
    };
    for resource in [
        json!({"resourceType": "Patient", "id": "example-patient"}),
        json!({"resourceType": "Patient", "id": "other"}),
        observation("mine", "example-patient"),
        observation("theirs", "other"),
        json!({"resourceType": "Medication", "id": "m1"}),
    ] {
        let path = format!(
            "{}/{}",
            resource["resourceType"].as_str().unwrap(),
            resource["id"].as_str().unwrap()
        );
        let (status, _, _) = call(&app, Some(&admin), Method::PUT, &path, Some(&resource)).await;
        assert_eq!(status, 201);
    }
    let token = provider.token("patient-client").await;
    for (path, expected) in [
        ("Patient/example-patient", 200),
        ("Patient/other", 404),
        ("Observation/mine", 200),
        ("Observation/theirs", 404),
        ("Medication/m1", 200),
        ("_history", 403),
    ] {
        let (status, body, _) = call(&app, Some(&token), Method::GET, path, None).await;
        assert_eq!(status, expected, "{path}: {body}");
    }
    for (query, expected) in [
        ("Observation", vec!["mine"]),
        ("Observation?code:text=x", vec!["mine"]),
        ("Patient", vec!["example-patient"]),
        ("Patient?_id=other", vec![]),
    ] {
        let (status, bundle, _) = call(&app, Some(&token), Method::GET, query, None).await;
        assert_eq!(status, 200, "{query}: {bundle}");
        let ids: Vec<&str> = bundle["entry"]
            .as_array()
            .map(|entries| {
                entries
                    .iter()
                    .map(|e| e["resource"]["id"].as_str().unwrap())
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(ids, expected, "{query}");
    }
    let (status, _, _) = call(
        &app,
        Some(&token),
        Method::PUT,
        "Observation/mine",
        Some(&observation("mine", "example-patient")),
    )
    .await;
    assert_eq!(status, 403);
}
