//! Bulk Data `$export` (issue 8): kick-off, polling with X-Progress, the
//! manifest, NDJSON files, `_type`, `_since`, `_typeFilter`, Patient and
//! Group level, cancel, expiry, and a job that survives a restart.

use crate::harness::{TestApp, cluster, fresh_database, spawn_app, spawn_app_with, status_json};
use crate::processes::{baraza, free_port, wait_exit, wait_ready};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Kicks off an export at `path` (relative to the base) and returns the
/// status URL.
pub async fn kick_off(
    app: &TestApp,
    token: Option<&str>,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> String {
    let (status, location, body) = try_kick_off(app, token, method, path, body).await;
    assert_eq!(status, 202, "{path}: {body}");
    location.expect("Content-Location")
}

/// A kick-off's status, Content-Location and body.
pub async fn try_kick_off(
    app: &TestApp,
    token: Option<&str>,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> (u16, Option<String>, Value) {
    let mut request = app
        .request(method, path)
        .header("accept", "application/fhir+json")
        .header("prefer", "respond-async");
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request
            .header("content-type", "application/fhir+json")
            .body(body.to_string());
    }
    let response = request.send().await.unwrap();
    let location = response
        .headers()
        .get("content-location")
        .map(|v| v.to_str().unwrap().to_owned());
    let (status, body) = status_json(response).await;
    (status, location, body)
}

/// Polls `status_url` until the manifest is ready (200); panics on any
/// answer other than 202 with X-Progress, or after a minute.
pub async fn manifest(app: &TestApp, token: Option<&str>, status_url: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, headers, body) = poll(app, token, status_url).await;
        match status {
            200 => {
                assert!(headers.get("expires").is_some(), "the manifest has Expires");
                return body;
            }
            202 => {
                assert!(
                    headers.get("x-progress").is_some(),
                    "202 carries X-Progress"
                );
                assert!(
                    headers.get("retry-after").is_some(),
                    "202 carries Retry-After"
                );
            }
            other => panic!("status {other}: {body}"),
        }
        assert!(Instant::now() < deadline, "the export did not finish");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn poll(
    app: &TestApp,
    token: Option<&str>,
    url: &str,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut request = app.client.get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let headers = response.headers().clone();
    let (status, body) = status_json(response).await;
    (status, headers, body)
}

/// Every line of every output file, as JSON, with the files' types.
pub async fn download_all(
    app: &TestApp,
    token: Option<&str>,
    manifest: &Value,
) -> Vec<(String, Value)> {
    let mut resources = Vec::new();
    for output in manifest["output"].as_array().unwrap() {
        let text = download(app, token, output["url"].as_str().unwrap()).await;
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines.len() as i64,
            output["count"].as_i64().unwrap(),
            "{output}"
        );
        for line in lines {
            let resource: Value = serde_json::from_str(line).unwrap();
            assert_eq!(resource["resourceType"], output["type"]);
            resources.push((output["type"].as_str().unwrap().to_owned(), resource));
        }
    }
    resources
}

pub async fn download(app: &TestApp, token: Option<&str>, url: &str) -> String {
    let mut request = app
        .client
        .get(url)
        .header("accept", "application/fhir+ndjson");
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200, "{url}");
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "application/fhir+ndjson"
    );
    response.text().await.unwrap()
}

/// `Type/id` of each exported resource, sorted.
pub fn keys(resources: &[(String, Value)]) -> Vec<String> {
    let mut keys: Vec<String> = resources
        .iter()
        .map(|(t, r)| format!("{t}/{}", r["id"].as_str().unwrap()))
        .collect();
    keys.sort();
    keys
}

fn patient(id: &str) -> Value {
    json!({"resourceType": "Patient", "id": id, "name": [{"family": format!("Family-{id}")}], "gender": "female"})
}

fn observation(id: &str, subject: &str, code: &str) -> Value {
    json!({"resourceType": "Observation", "id": id, "status": "final",
           "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
           "subject": {"reference": format!("Patient/{subject}")}})
}

async fn small_record(app: &TestApp) {
    app.load(&[
        patient("p1"),
        patient("p2"),
        patient("p3"),
        observation("o1", "p1", "1-1"),
        observation("o2", "p1", "2-2"),
        observation("o3", "p2", "1-1"),
        observation("o4", "p3", "1-1"),
        json!({"resourceType": "Practitioner", "id": "dr1", "name": [{"family": "Who"}]}),
        json!({"resourceType": "Group", "id": "g1", "type": "person", "actual": true,
               "member": [{"entity": {"reference": "Patient/p1"}}, {"entity": {"reference": "Patient/p3"}}]}),
    ])
    .await;
}

#[tokio::test]
async fn export_kick_off_polls_to_a_manifest_whose_files_hold_every_resource() {
    let app = spawn_app().await;
    small_record(&app).await;
    let status_url = kick_off(
        &app,
        None,
        Method::GET,
        "$export?_type=Patient,Observation,Practitioner",
        None,
    )
    .await;
    assert!(
        status_url.starts_with(&format!("{}/$export-status/", app.base)),
        "{status_url}"
    );
    let manifest = manifest(&app, None, &status_url).await;
    assert!(
        manifest["transactionTime"].as_str().unwrap().ends_with('Z'),
        "{manifest}"
    );
    assert_eq!(
        manifest["request"],
        format!(
            "{}/$export?_type=Patient%2CObservation%2CPractitioner",
            app.base
        )
    );
    assert_eq!(manifest["requiresAccessToken"], true);
    assert_eq!(manifest["error"], json!([]));
    let resources = download_all(&app, None, &manifest).await;
    assert_eq!(
        keys(&resources),
        [
            "Observation/o1",
            "Observation/o2",
            "Observation/o3",
            "Observation/o4",
            "Patient/p1",
            "Patient/p2",
            "Patient/p3",
            "Practitioner/dr1"
        ]
    );
    // The stored JSON is served as it is, one line each.
    let p1 = resources.iter().find(|(_, r)| r["id"] == "p1").unwrap();
    assert_eq!(p1.1["meta"]["versionId"], "1");
    // Without _type: every type the caller may read (here: all).
    let all = kick_off(&app, None, Method::GET, "$export", None).await;
    let types: BTreeSet<String> =
        manifest_types(&crate::bulk_export::manifest(&app, None, &all).await);
    assert_eq!(
        types,
        ["Group", "Observation", "Patient", "Practitioner"]
            .map(String::from)
            .into()
    );
    // Audited: the kick-off with its parameters.
    crate::audit::rows_where(
        &app,
        "subtype = 'operation' AND event::text LIKE '%\"code\":\"$export\"%' AND outcome = 0",
        2,
    )
    .await;
}

fn manifest_types(manifest: &Value) -> BTreeSet<String> {
    manifest["output"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["type"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn export_kick_offs_need_respond_async_and_ndjson() {
    let app = spawn_app().await;
    let response = app
        .request(Method::GET, "$export")
        .header("accept", "application/fhir+json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400, "no Prefer: respond-async");
    for (query, parameter) in [
        ("$export?_outputFormat=text/csv", "_outputFormat"),
        ("$export?_type=Nonsense", "_type"),
        ("$export?_since=yesterday", "_since"),
        (
            "$export?_typeFilter=Observation%3Fnosuch%3D1",
            "_typeFilter",
        ),
        (
            "$export?_type=Patient&_typeFilter=Observation%3Fcode%3D1",
            "_typeFilter",
        ),
        (
            "$export?includeAssociatedData=LatestProvenanceResources",
            "includeAssociatedData",
        ),
        ("Patient/$export?_type=Practitioner", "_type"),
    ] {
        let (status, _, body) = try_kick_off(&app, None, Method::GET, query, None).await;
        assert_eq!(status, 400, "{query}: {body}");
        crate::harness::assert_outcome_names(&body, parameter);
    }
    for format in ["application/fhir%2Bndjson", "application/ndjson", "ndjson"] {
        let (status, _, body) = try_kick_off(
            &app,
            None,
            Method::GET,
            &format!("$export?_outputFormat={format}"),
            None,
        )
        .await;
        assert_eq!(status, 202, "{format}: {body}");
    }
    let (status, _, _) = try_kick_off(&app, None, Method::GET, "Group/nope/$export", None).await;
    assert_eq!(status, 404);
    let (status, _) = status_json(app.get("$export-status/no-such-job").await).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn patient_and_group_exports_hold_their_patients_compartments() {
    let app = spawn_app().await;
    small_record(&app).await;
    let all_patients = kick_off(&app, None, Method::GET, "Patient/$export", None).await;
    let resources = download_all(&app, None, &manifest(&app, None, &all_patients).await).await;
    assert_eq!(
        keys(&resources),
        [
            "Group/g1",
            "Observation/o1",
            "Observation/o2",
            "Observation/o3",
            "Observation/o4",
            "Patient/p1",
            "Patient/p2",
            "Patient/p3"
        ],
        "the compartment's types only (a Group is in its members' compartments; a Practitioner is not)"
    );
    let group = kick_off(
        &app,
        None,
        Method::GET,
        "Group/g1/$export?_type=Patient,Observation",
        None,
    )
    .await;
    let resources = download_all(&app, None, &manifest(&app, None, &group).await).await;
    assert_eq!(
        keys(&resources),
        [
            "Observation/o1",
            "Observation/o2",
            "Observation/o4",
            "Patient/p1",
            "Patient/p3"
        ]
    );
    let body = json!({"resourceType": "Parameters", "parameter": [
        {"name": "patient", "valueReference": {"reference": "Patient/p1"}},
        {"name": "patient", "valueReference": {"reference": "Patient/p2"}},
        {"name": "_type", "valueString": "Patient,Observation"}]});
    let listed = kick_off(&app, None, Method::POST, "Group/g1/$export", Some(&body)).await;
    let resources = download_all(&app, None, &manifest(&app, None, &listed).await).await;
    assert_eq!(
        keys(&resources),
        ["Observation/o1", "Observation/o2", "Patient/p1"],
        "the patient parameter narrows the Group's members"
    );
    let (status, _, _) = try_kick_off(&app, None, Method::POST, "$export", Some(&body)).await;
    assert_eq!(status, 400, "patient is for Patient and Group level");
}

#[tokio::test]
async fn since_and_type_filters_narrow_the_export() {
    let app = spawn_app().await;
    small_record(&app).await;
    let filter = "$export?_type=Observation&_typeFilter=Observation%3Fcode%3D2-2,Observation%3Fsubject%3DPatient%2Fp3";
    let url = kick_off(&app, None, Method::GET, filter, None).await;
    let resources = download_all(&app, None, &manifest(&app, None, &url).await).await;
    assert_eq!(
        keys(&resources),
        ["Observation/o2", "Observation/o4"],
        "filters are ORed"
    );

    tokio::time::sleep(Duration::from_millis(20)).await;
    let since = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    tokio::time::sleep(Duration::from_millis(20)).await;
    app.load(&[
        observation("o1", "p1", "9-9"),
        observation("o5", "p2", "1-1"),
    ])
    .await;
    let url = kick_off(
        &app,
        None,
        Method::GET,
        &format!("$export?_since={}", since.replace('+', "%2B")),
        None,
    )
    .await;
    let resources = download_all(&app, None, &manifest(&app, None, &url).await).await;
    assert_eq!(keys(&resources), ["Observation/o1", "Observation/o5"]);
}

pub async fn load_many(app: &TestApp, n: usize) {
    let observations: Vec<Value> = (0..n)
        .map(|i| observation(&format!("o{i:05}"), "p1", "1-1"))
        .collect();
    for chunk in observations.chunks(1000) {
        app.load(chunk).await;
    }
}

async fn export_rows(app: &TestApp) -> i64 {
    let db = app.db().await;
    let mut total = 0;
    for table in ["export_jobs", "export_files", "export_chunks"] {
        let n: i64 = db
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await
            .unwrap()
            .get(0);
        total += n;
    }
    total
}

#[tokio::test]
async fn a_cancelled_export_stops_and_leaves_no_files() {
    let app = spawn_app_with(|s| s.export_page_size = 1).await;
    load_many(&app, 1500).await;
    let url = kick_off(&app, None, Method::GET, "$export?_type=Observation", None).await;
    let (status, headers, _) = poll(&app, None, &url).await;
    assert_eq!(status, 202, "still running");
    assert!(
        headers["x-progress"]
            .to_str()
            .unwrap()
            .contains("resources")
    );
    let response = app.client.delete(&url).send().await.unwrap();
    assert_eq!(response.status(), 202);
    let (status, _, _) = poll(&app, None, &url).await;
    assert_eq!(status, 404, "a cancelled job is gone");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(export_rows(&app).await, 0, "the job stopped writing");
}

#[tokio::test]
async fn finished_exports_expire_with_their_files() {
    let app = spawn_app_with(|s| s.export_retention_secs = 1).await;
    small_record(&app).await;
    let url = kick_off(&app, None, Method::GET, "$export?_type=Patient", None).await;
    let manifest = manifest(&app, None, &url).await;
    let file = manifest["output"][0]["url"].as_str().unwrap().to_owned();
    download(&app, None, &file).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (status, _, _) = poll(&app, None, &url).await;
    assert_eq!(status, 404, "expired");
    let response = app.client.get(&file).send().await.unwrap();
    assert_eq!(response.status(), 404, "its files too");
    let deadline = Instant::now() + Duration::from_secs(10);
    while export_rows(&app).await > 0 {
        assert!(Instant::now() < deadline, "the cleanup removed the rows");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A job interrupted by kill -9 resumes when the server starts again, and
/// its files hold every resource exactly once.
#[tokio::test]
async fn an_export_resumes_after_a_restart() {
    let dbname = fresh_database().await;
    let url = cluster().request_url(&dbname);
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let env = [
        ("BARAZA_DATABASE_URL", url.as_str()),
        ("BARAZA_LISTEN", listen.as_str()),
        ("BARAZA_EXPORT_PAGE_SIZE", "1"),
        ("BARAZA_AUDIT", "off"),
        // The killed process's lease runs out quickly for its successor.
        ("BARAZA_LEASE_SECS", "2"),
    ];
    let start = || {
        baraza(&["serve"], &env)
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut child = start();
    wait_ready(port, &mut child).await;
    let app = crate::harness::TestApp::external(&format!("http://{listen}/fhir"), &dbname);
    load_many(&app, 2000).await;
    let status_url = kick_off(&app, None, Method::GET, "$export?_type=Observation", None).await;
    // Let it write a few pages, then kill it mid-job.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let processed: i64 = app
            .db()
            .await
            .query_one("SELECT processed FROM export_jobs", &[])
            .await
            .unwrap()
            .get(0);
        if processed >= 20 {
            break;
        }
        assert!(Instant::now() < deadline, "the job did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    wait_exit(&mut child, Duration::from_secs(10));
    let row = app
        .db()
        .await
        .query_one("SELECT status, processed FROM export_jobs", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "running", "killed mid-job");
    assert!(row.get::<_, i64>(1) < 2000, "killed before the end");

    let mut child = start();
    wait_ready(port, &mut child).await;
    let manifest = manifest(&app, None, &status_url).await;
    let resources = download_all(&app, None, &manifest).await;
    let ids: Vec<String> = keys(&resources);
    let unique: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(ids.len(), 2000, "every resource");
    assert_eq!(unique.len(), 2000, "exactly once");
    crate::processes::terminate(&child);
    wait_exit(&mut child, Duration::from_secs(30));
}
