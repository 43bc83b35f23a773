//! `$export` with authentication (issue 8): `patient/` scopes export one
//! patient's record, exports stay in their tenant, the `$export`
//! permission is needed, and a job's status and files are served to the
//! caller who started it only.

use crate::bulk_export::{download_all, keys, kick_off, manifest, poll, try_kick_off};
use crate::harness::{TestApp, cluster, fresh_database, spawn_app_on, status_json};
use crate::oidc::OidcProvider;
use reqwest::Method;
use serde_json::{Value, json};

async fn secured_app(provider: &OidcProvider, tenants: &[&str]) -> TestApp {
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

async fn load(app: &TestApp, token: &str, tenant: &str, resources: &[Value]) {
    let entries: Vec<Value> = resources
        .iter()
        .map(|r| {
            let url = format!(
                "{}/{}",
                r["resourceType"].as_str().unwrap(),
                r["id"].as_str().unwrap()
            );
            json!({"resource": r, "request": {"method": "PUT", "url": url}})
        })
        .collect();
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": entries});
    let response = app
        .request(Method::POST, tenant)
        .bearer_auth(token)
        .header("content-type", "application/fhir+json")
        .body(bundle.to_string())
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(response).await;
    assert_eq!(status, 200, "{body}");
}

fn record(prefix: &str) -> Vec<Value> {
    let mut resources = Vec::new();
    for p in ["p1", "p2"] {
        resources.push(json!({"resourceType": "Patient", "id": format!("{prefix}{p}")}));
        for n in 1..=2 {
            resources.push(
                json!({"resourceType": "Observation", "id": format!("{prefix}{p}o{n}"),
                "status": "final", "code": {"text": "x"},
                "subject": {"reference": format!("Patient/{prefix}{p}")}}),
            );
        }
    }
    resources.push(json!({"resourceType": "Medication", "id": format!("{prefix}m1")}));
    resources
}

#[tokio::test]
async fn exports_under_patient_scopes_hold_only_that_patients_record() {
    let provider = OidcProvider::start().await;
    let app = secured_app(&provider, &[]).await;
    let admin = provider.token("admin-client").await;
    load(&app, &admin, "", &record("")).await;
    // patient-export-client: patient/*.rs for p1, and the analyst group.
    let patient = provider.token("patient-export-client").await;
    for path in ["Patient/$export", "$export?_type=Patient,Observation"] {
        let url = kick_off(&app, Some(&patient), Method::GET, path, None).await;
        let resources = download_all(
            &app,
            Some(&patient),
            &manifest(&app, Some(&patient), &url).await,
        )
        .await;
        assert_eq!(
            keys(&resources),
            ["Observation/p1o1", "Observation/p1o2", "Patient/p1"],
            "{path}"
        );
    }
    // Shared resources are not anybody's record: patient/ scopes reach them.
    let url = kick_off(
        &app,
        Some(&patient),
        Method::GET,
        "$export?_type=Medication",
        None,
    )
    .await;
    let resources = download_all(
        &app,
        Some(&patient),
        &manifest(&app, Some(&patient), &url).await,
    )
    .await;
    assert_eq!(keys(&resources), ["Medication/m1"]);
    // Asking for another patient gives nothing.
    let body = json!({"resourceType": "Parameters", "parameter": [
        {"name": "patient", "valueReference": {"reference": "Patient/p2"}}]});
    let url = kick_off(
        &app,
        Some(&patient),
        Method::POST,
        "Patient/$export",
        Some(&body),
    )
    .await;
    let manifest = manifest(&app, Some(&patient), &url).await;
    assert_eq!(manifest["output"], json!([]), "{manifest}");
    // The kick-off is audited with the patient it exported.
    crate::audit::rows_where(
        &app,
        "subtype = 'operation' AND 'patient-export-client' = ANY(agents) AND 'p1' = ANY(patients) \
         AND event::text LIKE '%\"code\":\"$export\"%' AND outcome = 0",
        2,
    )
    .await;
}

#[tokio::test]
async fn a_jobs_status_and_files_are_its_owners_only() {
    let provider = OidcProvider::start().await;
    let app = secured_app(&provider, &[]).await;
    let admin = provider.token("admin-client").await;
    load(&app, &admin, "", &record("")).await;
    let analyst = provider.token("readonly-client").await;
    let url = kick_off(
        &app,
        Some(&analyst),
        Method::GET,
        "$export?_type=Patient",
        None,
    )
    .await;
    let manifest = manifest(&app, Some(&analyst), &url).await;
    let file = manifest["output"][0]["url"].as_str().unwrap().to_owned();
    assert_eq!(download_all(&app, Some(&analyst), &manifest).await.len(), 2);
    for other in ["admin-client", "patient-export-client"] {
        let token = provider.token(other).await;
        let (status, _, _) = poll(&app, Some(&token), &url).await;
        assert_eq!(status, 404, "{other} polls another's job");
        let response = app
            .client
            .get(&file)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{other} downloads another's file");
        let response = app
            .client
            .delete(&url)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{other} cancels another's job");
    }
    let response = app.client.get(&file).send().await.unwrap();
    assert_eq!(response.status(), 401, "files need the access token");
    // The clinician group has no $export permission.
    let clinician = provider.token("clinician-client").await;
    let (status, _, body) = try_kick_off(
        &app,
        Some(&clinician),
        Method::GET,
        "$export?_type=Patient",
        None,
    )
    .await;
    assert_eq!(status, 403, "{body}");
    let (status, _, _) = poll(&app, Some(&clinician), &url).await;
    assert_eq!(status, 403, "polling needs the $export permission too");
    // Downloads are audited.
    crate::audit::rows_where(
        &app,
        "'readonly-client' = ANY(agents) AND event::text LIKE '%$export-file%' AND outcome = 0",
        1,
    )
    .await;
}

#[tokio::test]
async fn exports_do_not_cross_tenants() {
    let provider = OidcProvider::start().await;
    let app = secured_app(&provider, &["acme", "globex"]).await;
    let admin = provider.token("admin-client").await;
    load(&app, &admin, "acme", &record("a")).await;
    load(&app, &admin, "globex", &record("g")).await;
    load(&app, &admin, "", &record("d")).await;
    let url = kick_off(&app, Some(&admin), Method::GET, "acme/$export", None).await;
    assert!(
        url.starts_with(&format!("{}/acme/$export-status/", app.base)),
        "{url}"
    );
    let manifest = manifest(&app, Some(&admin), &url).await;
    let resources = download_all(&app, Some(&admin), &manifest).await;
    assert!(!resources.is_empty());
    assert!(
        resources
            .iter()
            .all(|(_, r)| r["id"].as_str().unwrap().starts_with('a')),
        "only acme's resources: {:?}",
        keys(&resources)
    );
    for url in manifest["output"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["url"].as_str().unwrap())
    {
        assert!(
            url.starts_with(&format!("{}/acme/$export-file/", app.base)),
            "{url}"
        );
    }
    // The same job id under another tenant's base does not exist.
    let job = url.rsplit('/').next().unwrap();
    for other in ["globex", ""] {
        let path = format!("{other}/$export-status/{job}");
        let response = app
            .request(Method::GET, path.trim_start_matches('/'))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{path}");
    }
    // A token without globex cannot start one there.
    let analyst = provider.token("readonly-client").await;
    let (status, _, _) =
        try_kick_off(&app, Some(&analyst), Method::GET, "globex/$export", None).await;
    assert_eq!(status, 404);
}
