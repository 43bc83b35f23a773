//! Bulk Data `$import` (issue 8, docs/analytics.md): an uploaded NDJSON
//! body and URL inputs on the allow-list, read into ingest batches and
//! written by the worker; bad lines fail alone with their line numbers and
//! the good lines are kept; URLs off the allow-list are refused; and the
//! worker's fast path, which writes a chunk of records as one transaction,
//! halves a chunk around a record only the database refuses.

use crate::harness::{TestApp, assert_outcome_names, spawn_app, spawn_app_with, status_json};
use actix_web::{App, HttpResponse, HttpServer, web};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Kicks off `$import` at the base of `tenant` ("" for the default) with
/// an NDJSON or JSON body; returns the status, Content-Location and body.
pub async fn start_import(
    app: &TestApp,
    token: Option<&str>,
    tenant: &str,
    content_type: &str,
    body: String,
) -> (u16, Option<String>, Value) {
    let path = if tenant.is_empty() {
        "$import".to_owned()
    } else {
        format!("{tenant}/$import")
    };
    let mut request = app
        .request(Method::POST, &path)
        .header("prefer", "respond-async")
        .header("content-type", content_type)
        .body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let location = response
        .headers()
        .get("content-location")
        .map(|v| v.to_str().unwrap().to_owned());
    let (status, body) = status_json(response).await;
    (status, location, body)
}

/// A GET (or DELETE) of a Bulk Data URL with an optional token.
pub async fn call(app: &TestApp, token: Option<&str>, method: Method, url: &str) -> (u16, String) {
    let mut request = app.client.request(method, url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

/// Polls the status URL until it answers 200 (checking that every earlier
/// answer was 202 with X-Progress) and returns the final status.
pub async fn final_status(app: &TestApp, token: Option<&str>, status_url: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let mut request = app.client.get(status_url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let progress = response.headers().get("x-progress").cloned();
        let body = response.text().await.unwrap();
        if status == 200 {
            return serde_json::from_str(&body).unwrap();
        }
        assert_eq!(status, 202, "{body}");
        assert!(progress.is_some(), "202 without X-Progress");
        assert!(Instant::now() < deadline, "the import did not finish");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub fn lines(resources: &[Value]) -> String {
    resources.iter().map(|r| format!("{r}\n")).collect()
}

pub fn counts(status: &Value, input: usize) -> &Value {
    &status["output"][input]["extension"]["https://baraza.dev/fhir/StructureDefinition/import-counts"]
}

/// The error file's OperationOutcomes.
pub async fn error_lines(app: &TestApp, token: Option<&str>, url: &str) -> Vec<Value> {
    let (status, text) = call(app, token, Method::GET, url).await;
    assert_eq!(status, 200, "{text}");
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test]
async fn import_an_upload_keeps_good_lines_and_reports_bad_lines_by_number() {
    let app = spawn_app().await;
    let mut body = lines(&[
        json!({"resourceType": "Patient", "id": "imp-1", "gender": "female"}),
        json!({"resourceType": "Observation", "id": "imp-o1", "status": "final",
            "code": {"text": "weight"}, "subject": {"reference": "Patient/imp-1"}}),
    ]);
    body.push_str("this is not json\n\n");
    body.push_str(&lines(&[
        json!({"resourceType": "Patient", "id": "imp-2", "birthDate": "yesterday"}),
        json!({"resourceType": "Patient", "id": "imp-3", "active": true}),
        // The same resource again, changed: written after the first.
        json!({"resourceType": "Patient", "id": "imp-1", "gender": "male"}),
    ]));
    let (status, location, outcome) =
        start_import(&app, None, "", "application/fhir+ndjson", body).await;
    assert_eq!(status, 202, "{outcome}");
    let status_url = location.expect("Content-Location");
    assert!(status_url.contains("/$import-status/"), "{status_url}");
    let done = final_status(&app, None, &status_url).await;
    assert_eq!(done["requiresAccessToken"], true);
    assert_eq!(done["output"][0]["inputUrl"], "upload");
    let c = counts(&done, 0);
    assert_eq!(
        (
            c["received"].clone(),
            c["created"].clone(),
            c["updated"].clone(),
            c["failed"].clone()
        ),
        (json!(6), json!(3), json!(1), json!(2)),
        "{done}"
    );
    assert_eq!(done["output"][0]["count"], 4);
    // The good lines are kept; the later line of imp-1 is its version 2.
    let (status, patient) = status_json(app.get("Patient/imp-1").await).await;
    assert_eq!((status, patient["gender"].clone()), (200, json!("male")));
    assert_eq!(patient["meta"]["versionId"], "2");
    assert_eq!(app.get("Observation/imp-o1").await.status(), 200);
    assert_eq!(app.get("Patient/imp-3").await.status(), 200);
    assert_eq!(app.get("Patient/imp-2").await.status(), 404);
    // The errors file names each bad line, with the resource's own paths.
    assert_eq!(done["error"][0]["type"], "OperationOutcome");
    assert_eq!(done["error"][0]["count"], 2);
    let errors = error_lines(&app, None, done["error"][0]["url"].as_str().unwrap()).await;
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert_eq!(errors[0]["id"], "line-3");
    assert_eq!(errors[0]["issue"][0]["expression"][0], "line 3");
    assert_eq!(errors[1]["id"], "line-5");
    assert_outcome_names(&errors[1], "Patient.birthDate");
    assert!(
        errors[1]["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .starts_with("line 5: "),
        "{}",
        errors[1]
    );
    let line = errors[1]["extension"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["url"] == "https://baraza.dev/fhir/StructureDefinition/ingest-line")
        .unwrap();
    assert_eq!(line["valueInteger"], 5);

    // A kick-off without Prefer: respond-async, or with an empty body, or a
    // line type other than the declared one, is refused or fails alone.
    let (status, _) = status_json(
        app.request(Method::POST, "$import")
            .header("content-type", "application/fhir+ndjson")
            .body("{}\n")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _, body) =
        start_import(&app, None, "", "application/fhir+ndjson", " ".into()).await;
    assert_eq!(status, 400, "{body}");
    let (status, location, _) = start_import(
        &app,
        None,
        "",
        "application/fhir+ndjson",
        lines(&[json!({"resourceType": "Patient", "id": "imp-9"})]),
    )
    .await;
    assert_eq!(status, 202);
    let typed = app
        .request(Method::POST, "$import?type=Observation")
        .header("prefer", "respond-async")
        .header("content-type", "application/fhir+ndjson")
        .body(lines(&[json!({"resourceType": "Patient", "id": "imp-10"})]))
        .send()
        .await
        .unwrap();
    let typed_url = typed.headers()["content-location"]
        .to_str()
        .unwrap()
        .to_owned();
    let done = final_status(&app, None, &typed_url).await;
    assert_eq!(counts(&done, 0)["failed"], 1, "{done}");
    assert_eq!(done["output"][0]["type"], "Observation");
    final_status(&app, None, &location.unwrap()).await;
    assert_eq!(app.get("Patient/imp-9").await.status(), 200);
    assert_eq!(app.get("Patient/imp-10").await.status(), 404);
}

/// Serves `files` (path → body) on loopback; `/moved` redirects elsewhere.
async fn serve_files(files: Vec<(&'static str, String)>) -> String {
    let files = web::Data::new(files);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(files.clone())
            .route(
                "/moved",
                web::get().to(|| async {
                    HttpResponse::Found()
                        .insert_header(("location", "http://127.0.0.1:9/elsewhere.ndjson"))
                        .finish()
                }),
            )
            .default_service(web::to(
                |req: actix_web::HttpRequest, files: web::Data<Vec<(&'static str, String)>>| async move {
                    match files.iter().find(|(path, _)| *path == req.path()) {
                        Some((_, body)) => HttpResponse::Ok()
                            .content_type("application/fhir+ndjson")
                            .body(body.clone()),
                        None => HttpResponse::NotFound().finish(),
                    }
                },
            ))
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let addr = server.addrs()[0];
    tokio::spawn(server.run());
    format!("http://{addr}")
}

#[tokio::test]
async fn import_from_an_allowed_url_reads_it_in_the_background() {
    let patients: Vec<Value> = (0..40)
        .map(|i| json!({"resourceType": "Patient", "id": format!("url-{i}"), "active": true}))
        .collect();
    let mut observations = lines(&[json!({"resourceType": "Observation", "id": "url-o1",
        "status": "final", "code": {"text": "x"}})]);
    observations
        .push_str("{\"resourceType\": \"Observation\", \"status\": \"nonsense\", \"code\": {}}");
    let files = serve_files(vec![
        ("/data/patients.ndjson", lines(&patients)),
        ("/data/observations.ndjson", observations),
    ])
    .await;
    let prefix = format!("{files}/data/");
    let app = spawn_app_with(move |s| {
        s.import_allowed_urls = vec![prefix];
    })
    .await;
    let parameters = json!({"resourceType": "Parameters", "parameter": [
        {"name": "inputFormat", "valueCode": "application/fhir+ndjson"},
        {"name": "inputSource", "valueUri": files},
        {"name": "input", "part": [
            {"name": "type", "valueCode": "Patient"},
            {"name": "url", "valueUrl": format!("{files}/data/patients.ndjson")}]},
        {"name": "input", "part": [
            {"name": "type", "valueCode": "Observation"},
            {"name": "url", "valueUrl": format!("{files}/data/observations.ndjson")}]},
        {"name": "input", "part": [
            {"name": "url", "valueUrl": format!("{files}/data/missing.ndjson")}]}]});
    let (status, location, body) = start_import(
        &app,
        None,
        "",
        "application/fhir+json",
        parameters.to_string(),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let done = final_status(&app, None, &location.unwrap()).await;
    assert_eq!(done["output"].as_array().unwrap().len(), 3, "{done}");
    assert_eq!(done["output"][0]["type"], "Patient");
    assert_eq!(counts(&done, 0)["created"], 40, "{done}");
    assert_eq!(counts(&done, 1)["created"], 1);
    assert_eq!(counts(&done, 1)["failed"], 1);
    assert_eq!(counts(&done, 2)["status"], "failed");
    assert_eq!(app.get("Patient/url-39").await.status(), 200);
    // The errors: the Observation's second line, and the missing file.
    let errors = done["error"].as_array().unwrap();
    assert_eq!(errors.len(), 2, "{done}");
    let observation_errors = error_lines(&app, None, errors[0]["url"].as_str().unwrap()).await;
    assert_eq!(observation_errors[0]["id"], "line-2");
    assert_eq!(
        observation_errors[0]["extension"][0]["valueString"],
        format!("{files}/data/observations.ndjson")
    );
    let missing = error_lines(&app, None, errors[1]["url"].as_str().unwrap()).await;
    assert!(
        missing[0]["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("404"),
        "{missing:?}"
    );

    // The Bulk Data Import draft's JSON manifest works too; a job read again
    // with the same content counts its records unchanged.
    let manifest = json!({"inputFormat": "application/fhir+ndjson", "inputSource": files,
        "storageDetail": {"type": "https"},
        "input": [{"type": "Patient", "url": format!("{files}/data/patients.ndjson")}]});
    let (status, location, body) =
        start_import(&app, None, "", "application/json", manifest.to_string()).await;
    assert_eq!(status, 202, "{body}");
    let again = final_status(&app, None, &location.unwrap()).await;
    assert_eq!(counts(&again, 0)["unchanged"], 40, "{again}");
}

#[tokio::test]
async fn import_refuses_urls_off_the_allow_list() {
    let files = serve_files(vec![("/ok/p.ndjson", String::new())]).await;
    let allowed = format!("{files}/ok/");
    let app = spawn_app_with(move |s| s.import_allowed_urls = vec![allowed]).await;
    let kick_off = |url: String| {
        json!({"resourceType": "Parameters", "parameter": [
            {"name": "input", "part": [
                {"name": "type", "valueCode": "Patient"},
                {"name": "url", "valueUrl": url}]}]})
        .to_string()
    };
    for (url, expected) in [
        (format!("{files}/other/p.ndjson"), 403),
        (format!("{files}/ok/../secret"), 403),
        ("https://example.org/ok/p.ndjson".to_owned(), 403),
        ("file:///etc/passwd".to_owned(), 400),
        ("not a url".to_owned(), 400),
    ] {
        let (status, location, body) = start_import(
            &app,
            None,
            "",
            "application/fhir+json",
            kick_off(url.clone()),
        )
        .await;
        assert_eq!(status, expected, "{url}: {body}");
        assert!(location.is_none());
        assert_eq!(body["resourceType"], "OperationOutcome", "{body}");
        assert_outcome_names(&body, "Parameters.parameter[0].part[1]");
    }
    // A bad type and an unknown parameter name the element at fault.
    let (status, _, body) = start_import(
        &app,
        None,
        "",
        "application/fhir+json",
        json!({"input": [{"type": "Patients", "url": format!("{files}/ok/p.ndjson")}]}).to_string(),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_outcome_names(&body, "input[0].type");
    // A redirect is not followed, even to somewhere else on the list.
    let app_moved = spawn_app_with({
        let files = files.clone();
        move |s| s.import_allowed_urls = vec![files]
    })
    .await;
    let (status, location, body) = start_import(
        &app_moved,
        None,
        "",
        "application/fhir+json",
        json!({"input": [{"url": format!("{files}/moved")}]}).to_string(),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let done = final_status(&app_moved, None, &location.unwrap()).await;
    let errors = error_lines(&app_moved, None, done["error"][0]["url"].as_str().unwrap()).await;
    assert!(
        errors[0]["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("302"),
        "{errors:?}"
    );
    // Without an allow-list, no URL is read at all.
    let closed = spawn_app().await;
    let (status, _, body) = start_import(
        &closed,
        None,
        "",
        "application/fhir+json",
        kick_off(format!("{files}/ok/p.ndjson")),
    )
    .await;
    assert_eq!(status, 403, "{body}");
}

#[tokio::test]
async fn import_fast_path_halves_a_chunk_around_a_record_the_database_refuses() {
    let app = spawn_app().await;
    // Every line is valid on its own; line 17's code is outside the
    // required value set, which only the write's binding check (in the
    // database's terminology) sees, so the chunk's joined write fails and
    // is halved until that record is alone.
    let allergy = |i: usize, code: &str| {
        json!({"resourceType": "AllergyIntolerance", "id": format!("fast-{i}"),
            "patient": {"reference": "Patient/x"},
            "clinicalStatus": {"coding": [{"system":
                "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "code": code}]}})
    };
    let resources: Vec<Value> = (1..=40)
        .map(|i| allergy(i, if i == 17 { "bogus" } else { "active" }))
        .collect();
    let (status, location, body) =
        start_import(&app, None, "", "application/fhir+ndjson", lines(&resources)).await;
    assert_eq!(status, 202, "{body}");
    let done = final_status(&app, None, &location.unwrap()).await;
    let c = counts(&done, 0);
    assert_eq!(
        (c["created"].clone(), c["failed"].clone()),
        (json!(39), json!(1)),
        "{done}"
    );
    let errors = error_lines(&app, None, done["error"][0]["url"].as_str().unwrap()).await;
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["id"], "line-17");
    assert_outcome_names(&errors[0], "AllergyIntolerance.clinicalStatus");
    for i in [1, 16, 18, 40] {
        let path = format!("AllergyIntolerance/fast-{i}");
        assert_eq!(app.get(&path).await.status(), 200, "{path}");
    }
    assert_eq!(app.get("AllergyIntolerance/fast-17").await.status(), 404);
    // Nothing of the refused record is left behind: one history row and
    // one current row per written record, and change events for them only.
    assert_eq!(
        app.count_rows("resources WHERE res_type = 'AllergyIntolerance'")
            .await,
        39
    );
    assert_eq!(
        app.count_rows("resource_history WHERE res_type = 'AllergyIntolerance'")
            .await,
        39
    );
    assert_eq!(
        app.count_rows("events WHERE res_type = 'AllergyIntolerance'")
            .await,
        39
    );
}
