//! Tenants (issue 4): `/fhir/{tenant}` bases that share nothing, the same
//! 404 for unknown and disabled tenants, row-level security behind the
//! tenant filter, and `baraza tenant create|list|disable|enable`.

use crate::harness::{TestApp, cluster, fresh_database, spawn_app_on, status_json};
use crate::processes::{Server, baraza, free_port, wait_ready};
use serde_json::{Value, json};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// A fresh database with `ids` created as tenants, and Baraza on it.
async fn spawn_with_tenants(ids: &[&str]) -> TestApp {
    let dbname = fresh_database().await;
    let owner = baraza::db::connect(&cluster().config(&dbname))
        .await
        .unwrap();
    for id in ids {
        baraza::store::tenants::create(&owner, id, "")
            .await
            .unwrap();
    }
    spawn_app_on(dbname, |_| {}).await
}

fn patient(family: &str, identifier: &str) -> Value {
    json!({"resourceType": "Patient", "id": "same",
           "identifier": [{"system": "urn:test:nid", "value": identifier}],
           "name": [{"family": family}]})
}

/// The family name of `path`'s resource, or the status when it is not 200.
async fn family(app: &TestApp, path: &str) -> Result<String, u16> {
    let (status, body) = status_json(app.get(path).await).await;
    match status {
        200 => Ok(body["name"][0]["family"].as_str().unwrap().to_owned()),
        other => Err(other),
    }
}

/// The resource ids of a search or history Bundle's entries, and their
/// fullUrls.
async fn bundle_entries(app: &TestApp, path: &str) -> (Value, Vec<String>) {
    let (status, bundle) = status_json(app.get(path).await).await;
    assert_eq!(status, 200, "{path}: {bundle}");
    let urls = bundle["entry"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .map(|e| e["fullUrl"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default();
    (bundle, urls)
}

#[tokio::test]
async fn the_same_id_in_two_tenants_stays_separate() {
    let app = spawn_with_tenants(&["a", "b"]).await;
    let base = app.base.clone();
    let response = app.put("a/Patient/same", &patient("Alpha", "1")).await;
    assert_eq!(response.status(), 201);
    assert_eq!(
        response.headers()["location"],
        format!("{base}/a/Patient/same/_history/1").as_str()
    );
    let response = app.put("b/Patient/same", &patient("Beta", "2")).await;
    assert_eq!(response.status(), 201, "a is not b: the id is new in b");
    assert_eq!(
        response.headers()["location"],
        format!("{base}/b/Patient/same/_history/1").as_str()
    );
    let response = app.put("a/Patient/same", &patient("Alpha", "1")).await;
    assert_eq!(response.headers()["etag"], "W/\"2\"");

    // read and vread
    assert_eq!(family(&app, "a/Patient/same").await, Ok("Alpha".into()));
    assert_eq!(family(&app, "b/Patient/same").await, Ok("Beta".into()));
    assert_eq!(family(&app, "Patient/same").await, Err(404), "default");
    assert_eq!(
        family(&app, "a/Patient/same/_history/2").await,
        Ok("Alpha".into())
    );
    assert_eq!(family(&app, "b/Patient/same/_history/2").await, Err(404));

    // search, with fullUrls and links under the tenant's base
    let (bundle, urls) = bundle_entries(&app, "a/Patient?identifier=urn:test:nid|1").await;
    assert_eq!(urls, [format!("{base}/a/Patient/same")]);
    let self_link = bundle["link"][0]["url"].as_str().unwrap();
    assert!(
        self_link.starts_with(&format!("{base}/a/Patient?")),
        "{self_link}"
    );
    let (_, urls) = bundle_entries(&app, "b/Patient?identifier=urn:test:nid|1").await;
    assert!(urls.is_empty(), "{urls:?}");
    let (_, urls) = bundle_entries(&app, "b/Patient").await;
    assert_eq!(urls, [format!("{base}/b/Patient/same")]);
    let (_, urls) = bundle_entries(&app, "Patient").await;
    assert!(urls.is_empty(), "the default tenant has no patients");

    // history at instance, type and system level
    let (bundle, urls) = bundle_entries(&app, "a/Patient/same/_history").await;
    assert_eq!(urls.len(), 2);
    assert!(urls.iter().all(|u| *u == format!("{base}/a/Patient/same")));
    let self_link = bundle["link"][0]["url"].as_str().unwrap();
    assert!(self_link.starts_with(&format!("{base}/a/Patient/same/_history?")));
    let (_, urls) = bundle_entries(&app, "b/_history").await;
    assert_eq!(urls, [format!("{base}/b/Patient/same")]);
    let (_, urls) = bundle_entries(&app, "_history").await;
    assert!(urls.is_empty());
}

#[tokio::test]
async fn conditional_update_matches_only_in_its_own_tenant() {
    let app = spawn_with_tenants(&["a", "b"]).await;
    app.put("a/Patient/same", &patient("Alpha", "1")).await;
    // b has no patient with identifier 1: a new one is created in b, and
    // a's is left alone.
    let mut body = patient("Beta", "1");
    body.as_object_mut().unwrap().remove("id");
    let response = app.put("b/Patient?identifier=urn:test:nid|1", &body).await;
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with(&format!("{}/b/Patient/", app.base)),
        "{location}"
    );
    let (_, a) = status_json(app.get("a/Patient/same").await).await;
    assert_eq!(a["meta"]["versionId"], "1");
    assert_eq!(a["name"][0]["family"], "Alpha");
    // In a, the same criteria update a's patient.
    let response = app
        .put(
            "a/Patient?identifier=urn:test:nid|1",
            &patient("Alpha2", "1"),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(family(&app, "a/Patient/same").await, Ok("Alpha2".into()));
}

#[tokio::test]
async fn transaction_bundles_write_and_read_only_their_tenant() {
    let app = spawn_with_tenants(&["a", "b"]).await;
    app.put("b/Patient/same", &patient("Beta", "2")).await;
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:8f4a2d38-34c1-4c1e-9a43-8c1e5e0f0a01",
         "resource": patient("Alpha", "1"),
         "request": {"method": "PUT", "url": "Patient/same"}},
        {"fullUrl": "urn:uuid:8f4a2d38-34c1-4c1e-9a43-8c1e5e0f0a02",
         "resource": {"resourceType": "Observation", "status": "final",
                      "code": {"text": "weight"}, "subject": {"reference": "Patient/same"}},
         "request": {"method": "POST", "url": "Observation"}},
        {"request": {"method": "GET", "url": "Patient?identifier=urn:test:nid|2"}}
    ]});
    let (status, out) = status_json(app.post("a", &bundle).await).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["entry"][0]["response"]["status"], "201 Created");
    assert_eq!(
        out["entry"][2]["resource"]["total"], 0,
        "b's patient is not found from a: {out}"
    );
    assert_eq!(family(&app, "b/Patient/same").await, Ok("Beta".into()));
    let (_, urls) = bundle_entries(&app, "b/Observation").await;
    assert!(urls.is_empty());
    let (_, urls) = bundle_entries(&app, "a/Observation?subject=Patient/same").await;
    assert_eq!(urls.len(), 1);
    // A batch entry cannot reach another tenant through an absolute URL.
    let batch = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": format!("{}/b/Patient/same", app.base)}},
        {"request": {"method": "GET", "url": format!("{}/a/Patient/same", app.base)}}
    ]});
    let (status, out) = status_json(app.post("a", &batch).await).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["entry"][0]["response"]["status"], "400 Bad Request");
    assert_eq!(out["entry"][1]["resource"]["name"][0]["family"], "Alpha");
}

#[tokio::test]
async fn unknown_and_disabled_tenants_answer_the_same_404() {
    let app = spawn_with_tenants(&["a"]).await;
    app.put("a/Patient/same", &patient("Alpha", "1")).await;
    let (status, unknown) = status_json(app.get("nope/Patient/same").await).await;
    assert_eq!(status, 404);
    assert_eq!(unknown["resourceType"], "OperationOutcome");
    let (status, _) = status_json(app.post("nope/Patient", &patient("X", "9")).await).await;
    assert_eq!(status, 404);
    let (status, _) = status_json(app.get("nope/metadata").await).await;
    assert_eq!(status, 404);
    let (status, _) = status_json(app.get("a/metadata").await).await;
    assert_eq!(status, 200);

    let owner = app.db().await;
    baraza::store::tenants::disable(&owner, "a").await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let disabled = loop {
        let (status, body) = status_json(app.get("a/Patient/same").await).await;
        if status == 404 {
            break body;
        }
        assert!(Instant::now() < deadline, "a is still served");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        disabled, unknown,
        "disabled and unknown cannot be told apart"
    );
    let (status, _) = status_json(app.get("Patient").await).await;
    assert_eq!(status, 200, "the default tenant is still served");
}

/// The second wall: on a connection of the request role, a query with no
/// tenant filter at all still sees and writes only the tenant that
/// `baraza.tenant` names, and nothing when it names none.
#[tokio::test]
async fn row_level_security_hides_other_tenants_from_a_query_without_tenant_filter() {
    let app = spawn_with_tenants(&["a", "b"]).await;
    app.put("a/Patient/same", &patient("Alpha", "1")).await;
    app.put("a/Patient/same", &patient("Alpha", "1")).await;
    app.put("b/Patient/same", &patient("Beta", "2")).await;
    let db = app.request_db().await;
    let count = |sql: &'static str| {
        let db = &db;
        async move { db.query_one(sql, &[]).await.unwrap().get::<_, i64>(0) }
    };
    // No tenant set: nothing.
    assert_eq!(count("SELECT count(*) FROM resources").await, 0);
    assert_eq!(count("SELECT count(*) FROM resource_history").await, 0);
    assert_eq!(count("SELECT count(*) FROM search_token").await, 0);

    db.batch_execute("BEGIN; SELECT set_config('baraza.tenant', 'a', true)")
        .await
        .unwrap();
    assert_eq!(count("SELECT count(*) FROM resources").await, 1);
    assert_eq!(count("SELECT count(*) FROM resource_history").await, 2);
    let tenants: Vec<String> = db
        .query("SELECT DISTINCT tenant FROM search_token", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(tenants, ["a"]);
    assert_eq!(
        db.execute("UPDATE resources SET deleted = deleted", &[])
            .await
            .unwrap(),
        1,
        "an update without a tenant filter touches a's row only"
    );
    let refused = db
        .execute(
            "INSERT INTO resources (tenant, res_type, id, version_id, last_updated, deleted) \
             VALUES ('b', 'Patient', 'sneaked', 1, now(), false)",
            &[],
        )
        .await
        .unwrap_err();
    let refused = refused.as_db_error().unwrap().message().to_owned();
    assert!(refused.contains("row-level security"), "{refused}");
    db.batch_execute("ROLLBACK").await.unwrap();

    // After the transaction the setting is gone again.
    assert_eq!(count("SELECT count(*) FROM resources").await, 0);
    // The request role cannot switch the wall off.
    let privileges = db
        .query_one(
            "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user",
            &[],
        )
        .await
        .unwrap();
    assert_eq!((privileges.get(0), privileges.get(1)), (false, false));
    let error = db
        .batch_execute("ALTER TABLE resources NO FORCE ROW LEVEL SECURITY")
        .await
        .unwrap_err();
    let error = error.as_db_error().unwrap().message().to_owned();
    assert!(error.contains("must be owner"), "{error}");
}

#[tokio::test]
async fn tenant_tables_the_request_role_reaches_force_row_level_security() {
    let owner = baraza::db::connect(&cluster().config(&fresh_database().await))
        .await
        .unwrap();
    // Tables with a tenant column that the request role can reach at all
    // (partitions are reached through their parent).
    let rows = owner
        .query(
            "SELECT c.relname::text FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid \
             WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') \
             AND NOT c.relispartition AND a.attname = 'tenant' \
             AND has_table_privilege($1, c.oid, 'SELECT, INSERT, UPDATE, DELETE') \
             AND NOT (c.relrowsecurity AND c.relforcerowsecurity)",
            &[&baraza::db::REQUEST_ROLE],
        )
        .await
        .unwrap();
    let unprotected: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    assert!(unprotected.is_empty(), "{unprotected:?}");
    let forced: Vec<String> = owner
        .query(
            "SELECT relname::text FROM pg_class WHERE relforcerowsecurity ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    for table in [
        "reindex_jobs",
        "resource_history",
        "resources",
        "search_date",
        "search_number",
        "search_param_sets",
        "search_position",
        "search_quantity",
        "search_reference",
        "search_string",
        "search_token",
        "search_uri",
    ] {
        assert!(forced.iter().any(|f| f == table), "{table}: {forced:?}");
    }
    // Number and quantity searches may scan their indexes under the policy
    // only with leakproof comparisons, which a superuser owner sets up
    // (docs/tenants.md).
    let leaky: i64 = owner
        .query_one(
            "SELECT count(*) FROM pg_proc WHERE proname IN \
             ('numeric_eq', 'numeric_ne', 'numeric_lt', 'numeric_le', 'numeric_gt', 'numeric_ge') \
             AND NOT proleakproof AND (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(leaky, 0);
}

#[tokio::test]
async fn a_pool_that_bypasses_row_level_security_is_refused() {
    let dbname = fresh_database().await;
    let settings = baraza::config::Settings {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..Default::default()
    };
    let superuser_pool = baraza::db::pool(cluster().config(&dbname), 2).unwrap();
    let error = baraza::app::Application::build(&settings, superuser_pool)
        .await
        .unwrap_err();
    assert!(
        format!("{error:#}").contains("row-level security"),
        "{error:#}"
    );
}

fn tenant_command(args: &[&str], url: &str) -> (bool, String, String) {
    let mut all = vec!["tenant"];
    all.extend_from_slice(args);
    let out = baraza(&all, &[("BARAZA_DATABASE_URL", url)])
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[tokio::test]
async fn tenant_commands_create_list_disable_and_enable() {
    let dbname = fresh_database().await;
    let url = cluster().url(&dbname);
    let (ok, stdout, _) = tenant_command(&["create", "county-7", "--name", "County 7"], &url);
    assert!(ok);
    assert_eq!(
        stdout,
        "created tenant county-7, served at /fhir/county-7\n"
    );
    for (id, why) in [
        ("county-7", "already exists"),
        ("County", "is not a tenant id"),
        ("metadata", "reserved"),
    ] {
        let (ok, _, stderr) = tenant_command(&["create", id], &url);
        assert!(!ok, "{id}");
        assert!(stderr.contains(why), "{id}: {stderr}");
    }
    let app = spawn_app_on(dbname, |_| {}).await;
    let (status, _) = status_json(app.put("county-7/Patient/same", &patient("C", "7")).await).await;
    assert_eq!(status, 201);

    let (ok, stdout, _) = tenant_command(&["list"], &url);
    assert!(ok);
    let rows: Vec<Vec<&str>> = stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0], ["ID", "STATUS", "CREATED", "NAME"]);
    assert_eq!(
        (rows[1][0], rows[1][1], &rows[1][3..]),
        ("county-7", "active", &["County", "7"][..])
    );
    assert_eq!((rows[2][0], rows[2][1]), ("default", "active"));
    assert_eq!(rows.len(), 3);

    let (ok, _, _) = tenant_command(&["disable", "county-7"], &url);
    assert!(ok);
    for (id, why) in [
        ("default", "cannot be disabled"),
        ("nope", "no tenant nope"),
    ] {
        let (ok, _, stderr) = tenant_command(&["disable", id], &url);
        assert!(!ok, "{id}");
        assert!(stderr.contains(why), "{id}: {stderr}");
    }
    let (_, stdout, _) = tenant_command(&["list"], &url);
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("county-7") && l.contains("disabled")),
        "{stdout}"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while app.get("county-7/Patient/same").await.status() != 404 {
        assert!(Instant::now() < deadline, "county-7 is still served");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Enabled again, it serves the data it kept.
    let (ok, stdout, _) = tenant_command(&["enable", "county-7"], &url);
    assert!(ok);
    assert!(stdout.starts_with("enabled tenant county-7"), "{stdout}");
    let (ok, _, stderr) = tenant_command(&["enable", "nope"], &url);
    assert!(!ok);
    assert!(stderr.contains("no tenant nope"), "{stderr}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while app.get("county-7/Patient/same").await.status() != 200 {
        assert!(Instant::now() < deadline, "county-7 is not served again");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// With the embedded cluster, `baraza tenant create` reaches the cluster
/// of the running server, which then serves the tenant through its request
/// role.
#[tokio::test]
async fn a_tenant_created_beside_a_running_embedded_server_is_served() {
    let dir =
        std::env::temp_dir().join(format!("baraza-tenants-{}", uuid::Uuid::new_v4().simple()));
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let env = [
        ("BARAZA_DATA_DIR", dir.to_str().unwrap()),
        ("BARAZA_LISTEN", listen.as_str()),
    ];
    let child = baraza(&["serve"], &env)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut server = Server(child);
    wait_ready(port, &mut server.0).await;
    let out = baraza(&["tenant", "create", "clinic"], &env[..1])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let client = reqwest::Client::new();
    let put = || {
        client
            .put(format!("http://{listen}/fhir/clinic/Patient/same"))
            .header("content-type", "application/fhir+json")
            .body(patient("Clinic", "3").to_string())
            .send()
    };
    // The server re-reads the tenants for an unknown one at most every
    // 250 ms.
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut response = put().await.unwrap();
    while response.status() == 404 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        response = put().await.unwrap();
    }
    assert_eq!(response.status(), 201);
    let response = client
        .get(format!("http://{listen}/fhir/Patient/same"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404, "not in the default tenant");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
