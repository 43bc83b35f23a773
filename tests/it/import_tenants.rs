//! `$import` across callers and tenants (issue 8): an import job and what
//! it writes stay in the tenant it was started in; only its caller sees
//! its status and errors; callers that are neither integrators nor tenant
//! admins cannot import; an integrator's records carry its stamp.

use crate::harness::{cluster, fresh_database, spawn_app_on, status_json};
use crate::import::{call, final_status, start_import};
use crate::oidc::OidcProvider;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn import_keeps_tenants_and_callers_apart() {
    let provider = OidcProvider::start().await;
    let dbname = fresh_database().await;
    let owner = baraza::db::connect(&cluster().config(&dbname))
        .await
        .unwrap();
    for tenant in ["acme", "globex"] {
        baraza::store::tenants::create(&owner, tenant, "")
            .await
            .unwrap();
    }
    let settings = provider.settings();
    let app = spawn_app_on(dbname, move |s| s.oidc = Some(settings)).await;
    let a = provider.token("integrator-a").await;
    let b = provider.token("integrator-b").await;
    let admin = provider.token("admin-client").await;
    let clinician = provider.token("clinician-client").await;
    let globex = provider.token("globex-client").await;

    let body = format!(
        "{}\n{}\n",
        json!({"resourceType": "Patient", "id": "t-1", "active": true}),
        json!({"resourceType": "Patient", "id": "t-2", "birthDate": "never"})
    );
    let (status, location, outcome) = start_import(
        &app,
        Some(&a),
        "acme",
        "application/fhir+ndjson",
        body.clone(),
    )
    .await;
    assert_eq!(status, 202, "{outcome}");
    let status_url = location.unwrap();
    assert!(status_url.contains("/acme/$import-status/"), "{status_url}");
    let done = final_status(&app, Some(&a), &status_url).await;
    let errors_url = done["error"][0]["url"].as_str().unwrap().to_owned();

    // Another integrator, even a tenant admin who did not start it, and the
    // same job id under another tenant's base: 404, as if it did not exist.
    let job = status_url.rsplit('/').next().unwrap();
    for (token, url) in [
        (&b, status_url.clone()),
        (&admin, status_url.clone()),
        (&b, errors_url.clone()),
        (&admin, app.url(&format!("globex/$import-status/{job}"))),
        (&a, app.url(&format!("$import-status/{job}"))),
    ] {
        let (status, text) = call(&app, Some(token), Method::GET, &url).await;
        assert_eq!(status, 404, "{url}: {text}");
        assert!(text.contains("OperationOutcome"), "{text}");
    }
    let (status, _) = call(&app, Some(&b), Method::DELETE, &status_url).await;
    assert_eq!(status, 404);
    // A caller of another tenant is not admitted to acme at all.
    let (status, _) = call(&app, Some(&globex), Method::GET, &status_url).await;
    assert!(matches!(status, 403 | 404), "{status}");

    // What the job wrote is in acme only, stamped with the integrator.
    let (status, patient) = status_json(
        app.request(Method::GET, "acme/Patient/t-1")
            .bearer_auth(&a)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{patient}");
    assert!(patient.to_string().contains("integrator-a"), "{patient}");
    let (status, _) = status_json(
        app.request(Method::GET, "globex/Patient/t-1")
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 404);

    // Neither an integrator nor a tenant admin: no import.
    let (status, location, outcome) = start_import(
        &app,
        Some(&clinician),
        "acme",
        "application/fhir+ndjson",
        body.clone(),
    )
    .await;
    assert_eq!(status, 403, "{outcome}");
    assert!(location.is_none());
    // Without a token: 401.
    let (status, _, _) = start_import(&app, None, "acme", "application/fhir+ndjson", body).await;
    assert_eq!(status, 401);

    // The owner may cancel a finished job; its status is then gone, and
    // what it wrote stays.
    let (status, _) = call(&app, Some(&a), Method::DELETE, &status_url).await;
    assert_eq!(status, 202);
    let (status, _) = call(&app, Some(&a), Method::GET, &status_url).await;
    assert_eq!(status, 404);
    let (status, _) = status_json(
        app.request(Method::GET, "acme/Patient/t-1")
            .bearer_auth(&a)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
}
