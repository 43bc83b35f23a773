//! `baraza dhis2 sync` against a DHIS2 stand-in (issue 7). DHIS2 itself
//! cannot run here, so the test serves the adapters' org-unit fixture
//! (written from the DHIS2 Web API documentation) from a real HTTP server
//! on loopback that implements what the sync relies on: the personal
//! access token header, `paging`/`page`/`pageSize` with a `pager`,
//! `order=level:asc,id:asc` and `filter=lastUpdated:ge:…`. It can fail
//! pages with 503, once (retried) or until told otherwise (the sync stops
//! and a second run resumes at that page). It also serves tracked
//! entities (2.40 API, basic authentication) and a data value set
//! (`dataValueSets.json` with `lastUpdated`), whose values the incremental
//! sync fetches again only when they change.

use crate::dhis2::{fixture, t1d_config};
use crate::harness::{cluster, fresh_database};
use crate::processes::baraza;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct Fake {
    units: Vec<Value>,
    /// The data value set `/api/dataValueSets.json` answers with (its
    /// values filtered by `lastUpdated`).
    values: Value,
    /// Page → how many more requests of it answer 503.
    failures: HashMap<u64, u32>,
    /// The query string of every request.
    log: Vec<String>,
}

type Shared = Arc<Mutex<Fake>>;

/// The request's query parameters, or DHIS2's 401 when it does not carry
/// the `Authorization` header `expected`.
fn authorized_query(
    req: &HttpRequest,
    expected: &str,
) -> Result<HashMap<String, String>, Box<HttpResponse>> {
    if req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        != Some(expected)
    {
        return Err(Box::new(
            HttpResponse::Unauthorized().json(json!({"httpStatusCode": 401})),
        ));
    }
    Ok(
        reqwest::Url::parse(&format!("http://dhis2/?{}", req.query_string()))
            .unwrap()
            .query_pairs()
            .into_owned()
            .collect(),
    )
}

async fn org_units(req: HttpRequest, fake: web::Data<Shared>) -> HttpResponse {
    let query = match authorized_query(&req, "ApiToken d2pat_secret") {
        Ok(query) => query,
        Err(refused) => return *refused,
    };
    let mut fake = fake.lock().unwrap();
    fake.log.push(req.query_string().to_owned());
    let page: u64 = query.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
    let size: u64 = query
        .get("pageSize")
        .and_then(|p| p.parse().ok())
        .unwrap_or(50);
    if let Some(left) = fake.failures.get_mut(&page) {
        if *left > 0 {
            *left -= 1;
            return HttpResponse::ServiceUnavailable().finish();
        }
    }
    let since = query
        .get("filter")
        .and_then(|f| f.strip_prefix("lastUpdated:ge:"))
        .map(str::to_owned);
    let mut units: Vec<Value> = fake
        .units
        .iter()
        .filter(|u| {
            since
                .as_deref()
                .is_none_or(|s| u["lastUpdated"].as_str().unwrap() >= s)
        })
        .cloned()
        .collect();
    units.sort_by_key(|u| (u["level"].as_u64(), u["id"].as_str().unwrap().to_owned()));
    let total = units.len() as u64;
    let page_count = total.div_ceil(size).max(1);
    let slice: Vec<Value> = units
        .into_iter()
        .skip(((page - 1) * size) as usize)
        .take(size as usize)
        .collect();
    HttpResponse::Ok().json(json!({
        "pager": {"page": page, "pageCount": page_count, "total": total, "pageSize": size},
        "organisationUnits": slice,
    }))
}

/// The 2.40 tracker API: `page`/`pageSize`, `totalPages=true` giving a
/// top-level `pageCount`, `updatedAfter` on `updatedAt`, and HTTP basic
/// authentication.
async fn tracked_entities(req: HttpRequest, fake: web::Data<Shared>) -> HttpResponse {
    let basic = format!(
        "Basic {}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, "admin:district")
    );
    let query = match authorized_query(&req, &basic) {
        Ok(query) => query,
        Err(refused) => return *refused,
    };
    let mut fake = fake.lock().unwrap();
    fake.log.push(req.query_string().to_owned());
    assert_eq!(
        query.get("program").map(String::as_str),
        Some("u8jzPde0Igx")
    );
    let page: u64 = query.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
    let size: u64 = query
        .get("pageSize")
        .and_then(|p| p.parse().ok())
        .unwrap_or(50);
    let since = query.get("updatedAfter").cloned();
    let entities: Vec<Value> = fake
        .units
        .iter()
        .filter(|t| {
            since
                .as_deref()
                .is_none_or(|s| t["updatedAt"].as_str().unwrap() >= s)
        })
        .cloned()
        .collect();
    let total = entities.len() as u64;
    let slice: Vec<Value> = entities
        .into_iter()
        .skip(((page - 1) * size) as usize)
        .take(size as usize)
        .collect();
    HttpResponse::Ok().json(json!({
        "page": page, "pageSize": size, "total": total, "pageCount": total.div_ceil(size),
        "trackedEntities": slice,
    }))
}

/// `/api/dataValueSets.json`: `dataSet`, `orgUnit` with `children=true`,
/// and `lastUpdated` (values changed since), in one answer; the token.
async fn data_values(req: HttpRequest, fake: web::Data<Shared>) -> HttpResponse {
    let query = match authorized_query(&req, "ApiToken d2pat_secret") {
        Ok(query) => query,
        Err(refused) => return *refused,
    };
    let mut fake = fake.lock().unwrap();
    fake.log.push(req.query_string().to_owned());
    assert_eq!(
        query.get("dataSet").map(String::as_str),
        Some("VvVqE1SkHbn")
    );
    assert_eq!(query.get("children").map(String::as_str), Some("true"));
    let since = query.get("lastUpdated").cloned().unwrap_or_default();
    let mut set = fake.values.clone();
    let kept: Vec<Value> = set["dataValues"]
        .as_array()
        .unwrap()
        .iter()
        // Values of the fixture without a time were last updated with it.
        .filter(|v| {
            v["lastUpdated"]
                .as_str()
                .unwrap_or("2024-02-03T10:00:00.000+0000")
                >= since.as_str()
        })
        .cloned()
        .collect();
    set["dataValues"] = Value::Array(kept);
    HttpResponse::Ok().json(set)
}

async fn start_fake(fake: Shared) -> String {
    let data = web::Data::new(fake);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .route("/api/organisationUnits.json", web::get().to(org_units))
            .route(
                "/api/tracker/trackedEntities",
                web::get().to(tracked_entities),
            )
            .route("/api/dataValueSets.json", web::get().to(data_values))
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let addr = server.addrs()[0];
    tokio::spawn(server.run());
    format!("http://{addr}")
}

fn sync(base: &str, db_url: &str) -> std::process::Output {
    sync_kind(base, db_url, &["--kind", "metadata", "--page-size", "2"])
}

fn sync_kind(base: &str, db_url: &str, kind: &[&str]) -> std::process::Output {
    let config = t1d_config();
    let mut args = vec![
        "dhis2",
        "sync",
        "--base-url",
        base,
        "--token",
        "d2pat_secret",
        "--config",
        config.to_str().unwrap(),
        "--retries",
        "2",
        "--backoff-ms",
        "10",
    ];
    args.extend_from_slice(kind);
    baraza(&args, &[("BARAZA_DATABASE_URL", db_url)])
        .output()
        .unwrap()
}

#[tokio::test]
async fn dhis2_sync_pages_retries_resumes_from_its_cursor_and_is_incremental() {
    let mut units: Vec<Value> = serde_json::from_str::<Value>(&fixture("organisation-units.json"))
        .unwrap()["organisationUnits"]
        .as_array()
        .unwrap()
        .clone();
    for (i, unit) in units.iter_mut().enumerate() {
        unit["lastUpdated"] = json!(format!("2024-01-0{}T08:00:00.000", i + 1));
    }
    let fake: Shared = Arc::new(Mutex::new(Fake {
        units,
        // Page 2 fails once (retried); page 4 until the test says so.
        failures: HashMap::from([(2, 1), (4, u32::MAX)]),
        ..Fake::default()
    }));
    let base = start_fake(fake.clone()).await;
    let dbname = fresh_database().await;
    let url = cluster().request_url(&dbname);
    let db = baraza::db::connect(&cluster().config(&dbname))
        .await
        .unwrap();
    let count = |sql: &'static str| {
        let db = &db;
        async move { db.query_one(sql, &[]).await.unwrap().get::<_, i64>(0) }
    };

    let out = tokio::task::spawn_blocking({
        let (base, url) = (base.clone(), url.clone());
        move || sync(&base, &url)
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "page 4 keeps failing");
    assert!(
        stderr.contains("page 4") && stderr.contains("resume"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("d2pat_secret"),
        "the token is never printed"
    );
    let next_page: i32 = db
        .query_one("SELECT next_page FROM dhis2_sync_cursors", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(next_page, 4);
    assert_eq!(count("SELECT count(*) FROM ingest_records").await, 6);
    assert_eq!(
        count("SELECT count(*) FROM resources").await,
        0,
        "nothing is written before the last page"
    );

    fake.lock().unwrap().failures.clear();
    let requests_before = fake.lock().unwrap().log.len();
    let out = tokio::task::spawn_blocking({
        let (base, url) = (base.clone(), url.clone());
        move || sync(&base, &url)
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let resumed: Vec<String> = fake.lock().unwrap().log[requests_before..].to_vec();
    assert_eq!(resumed.len(), 2, "pages 4 and 5 only: {resumed:?}");
    assert!(resumed[0].contains("page=4"), "{resumed:?}");
    assert_eq!(count("SELECT count(*) FROM ingest_records").await, 9);
    assert_eq!(
        count("SELECT count(*) FROM resources WHERE res_type = 'Location'").await,
        9
    );
    assert_eq!(
        count("SELECT count(*) FROM resources WHERE res_type = 'Organization'").await,
        9
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("completed") && stdout.contains("\"created\":9"),
        "{stdout}"
    );

    // Incremental: only what changed since the last run is fetched.
    {
        let mut fake = fake.lock().unwrap();
        let hospital = fake
            .units
            .iter_mut()
            .find(|u| u["id"] == "wCZ7Uw9xfog")
            .unwrap();
        hospital["name"] = json!("Lake District Referral Hospital");
        hospital["lastUpdated"] = json!("2099-01-01T00:00:00.000");
    }
    let requests_before = fake.lock().unwrap().log.len();
    let out = tokio::task::spawn_blocking(move || sync(&base, &url))
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let third: Vec<String> = fake.lock().unwrap().log[requests_before..].to_vec();
    assert_eq!(third.len(), 1, "{third:?}");
    assert!(third[0].contains("filter=lastUpdated%3Age%3A"), "{third:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("\"updated\":1") && stdout.contains("\"received\":1"),
        "{stdout}"
    );
    let name: String = db
        .query_one(
            "SELECT h.content->>'name' FROM resources r JOIN resource_history h ON h.tenant = r.tenant \
             AND h.res_type = r.res_type AND h.id = r.id AND h.version_id = r.version_id \
             WHERE r.res_type = 'Location' AND r.id = 't1d-wCZ7Uw9xfog'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(name, "Lake District Referral Hospital");
}

#[tokio::test]
async fn dhis2_sync_of_tracked_entities_pages_with_basic_auth_and_updated_after() {
    let mut entities: Vec<Value> = serde_json::from_str::<Value>(&fixture(
        "tracked-entities-2.40.json",
    ))
    .unwrap()["trackedEntities"]
        .as_array()
        .unwrap()
        .clone();
    for entity in &mut entities {
        entity["updatedAt"] = json!("2024-03-01T10:00:00.000");
    }
    let fake: Shared = Arc::new(Mutex::new(Fake {
        units: entities,
        ..Fake::default()
    }));
    let base = start_fake(fake.clone()).await;
    let dbname = fresh_database().await;
    let url = cluster().request_url(&dbname);
    let db = baraza::db::connect(&cluster().config(&dbname))
        .await
        .unwrap();
    let run = {
        let (base, url) = (base.clone(), url.clone());
        move || {
            let config = t1d_config();
            baraza(
                &[
                    "dhis2",
                    "sync",
                    "--base-url",
                    &base,
                    "--username",
                    "admin",
                    "--config",
                    config.to_str().unwrap(),
                    "--kind",
                    "tracker",
                    "--program",
                    "u8jzPde0Igx",
                    "--org-unit",
                    "HxjSI6bWHtP",
                    "--page-size",
                    "1",
                ],
                &[
                    ("BARAZA_DATABASE_URL", url.as_str()),
                    ("DHIS2_PASSWORD", "district"),
                ],
            )
            .output()
            .unwrap()
        }
    };
    let out = tokio::task::spawn_blocking(run.clone()).await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = fake.lock().unwrap().log.clone();
    assert_eq!(log.len(), 2, "one tracked entity per page: {log:?}");
    assert!(
        !log[0].contains("updatedAfter"),
        "the first run takes everything"
    );
    let patients: i64 = db
        .query_one(
            "SELECT count(*) FROM resources WHERE res_type = 'Patient' AND id NOT LIKE 'golden-%'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(patients, 2);
    // Nothing changed since: one empty page, asked with updatedAfter.
    let out = tokio::task::spawn_blocking(run).await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = fake.lock().unwrap().log.clone();
    assert_eq!(log.len(), 3, "{log:?}");
    assert!(log[2].contains("updatedAfter="), "{log:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"received\":0"));
}

#[tokio::test]
async fn dhis2_sync_of_data_values_is_incremental_and_keeps_bad_values_apart() {
    let units: Vec<Value> = serde_json::from_str::<Value>(&fixture("organisation-units.json"))
        .unwrap()["organisationUnits"]
        .as_array()
        .unwrap()
        .clone();
    let values =
        serde_json::from_str::<Value>(&fixture("data-value-sets.json")).unwrap()["dataValueSets"]
            [0]
        .clone();
    let fake: Shared = Arc::new(Mutex::new(Fake {
        units,
        values,
        ..Fake::default()
    }));
    let base = start_fake(fake.clone()).await;
    let dbname = fresh_database().await;
    let url = cluster().request_url(&dbname);
    let db = baraza::db::connect(&cluster().config(&dbname))
        .await
        .unwrap();
    let run = |kind: &'static [&'static str]| {
        let (base, url) = (base.clone(), url.clone());
        tokio::task::spawn_blocking(move || sync_kind(&base, &url, kind))
    };
    let values_run: &'static [&'static str] = &[
        "--kind",
        "datavalues",
        "--data-set",
        "VvVqE1SkHbn",
        "--org-unit",
        "HxjSI6bWHtP",
    ];
    // The org units first (the values name them), then every value.
    let out = run(&["--kind", "metadata", "--page-size", "50"])
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(values_run).await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // 14 values in 11 records (a report's values are one record): the four
    // bad values fail alone, the rest is written.
    assert!(
        stdout.contains("\"received\":11,\"created\":7,\"updated\":0,\"unchanged\":0,\"failed\":4"),
        "{stdout}"
    );
    let row = measure_reports(&db).await;
    assert_eq!(row.get::<_, i64>(0), 6);
    assert_eq!(row.get::<_, Option<i64>>(1), Some(1));
    let log = fake.lock().unwrap().log.clone();
    assert!(
        log.last().unwrap().contains("lastUpdated=1970-01-01"),
        "{log:?}"
    );

    // Nothing changed: the next run asks only for values changed since the
    // last run started, and writes nothing.
    let out = run(values_run).await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("\"received\":0"), "{stdout}");
    let log = fake.lock().unwrap().log.clone();
    assert!(!log.last().unwrap().contains("lastUpdated=1970"), "{log:?}");

    // One value corrected in DHIS2: only it comes again, and its report
    // gets a new version.
    {
        let mut fake = fake.lock().unwrap();
        let first = &mut fake.values["dataValues"][0];
        first["value"] = json!("5");
        first["lastUpdated"] = json!("2099-01-01T00:00:00.000+0000");
    }
    let out = run(values_run).await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("\"received\":1,\"created\":0,\"updated\":1"),
        "{stdout}"
    );
    let row = measure_reports(&db).await;
    assert_eq!(row.get::<_, i64>(0), 6, "no duplicate report");
    assert_eq!(
        row.get::<_, Option<i64>>(1),
        Some(2),
        "the corrected report"
    );
}

/// The count of MeasureReports and their highest version.
async fn measure_reports(db: &tokio_postgres::Client) -> tokio_postgres::Row {
    db.query_one(
        "SELECT count(*), max(version_id) FROM resources WHERE res_type = 'MeasureReport'",
        &[],
    )
    .await
    .unwrap()
}
