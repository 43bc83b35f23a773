//! The operator console (issue 11): its files as served (types, ETag,
//! Content-Security-Policy), and the console end to end in headless
//! Chromium: the script tests/fixtures/console/console.mjs (playwright-core
//! driving Debian's chromium) signs in through the real OpenID provider's
//! login form, visits every view, takes screenshots into
//! target/tmp/console-screenshots, and checks that a user of one tenant
//! sees nothing of another and that API errors show their text.

use crate::harness::{TestApp, cluster, fresh_database, spawn_app, spawn_app_on, status_json};
use crate::oidc::OidcProvider;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

const CHROMIUM: &str = "/usr/bin/chromium";

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/console")
}

pub fn root(app: &TestApp) -> String {
    app.base.trim_end_matches("/fhir").to_owned()
}

/// `npm ci` in the console fixture once per run when playwright-core is
/// missing, under a file lock (test processes may race).
fn ensure_node_modules() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let dir = fixture_dir();
        let installed = || {
            dir.join("node_modules/playwright-core/package.json")
                .exists()
        };
        if installed() {
            return;
        }
        let lock_path = std::env::temp_dir().join("baraza-console-npm-ci.lock");
        let lock_file = std::fs::File::create(lock_path).expect("create the lock file");
        let _lock = nix::fcntl::Flock::lock(lock_file, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, errno)| errno)
            .expect("lock the console fixture for npm ci");
        if installed() {
            return;
        }
        let status = crate::node::node()
            .npm()
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()
            .expect("run npm");
        assert!(status.success(), "npm ci in {} failed", dir.display());
    });
}

/// Sends `body` with `token` and returns the status and JSON answer.
pub async fn call(
    app: &TestApp,
    token: &str,
    method: reqwest::Method,
    url: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let mut request = app.client.request(method, url).bearer_auth(token);
    if let Some(body) = body {
        request = request
            .header("content-type", "application/fhir+json")
            .body(body.to_string());
    }
    status_json(request.send().await.expect("request")).await
}

/// A server with authentication and the console client, tenants acme and
/// globex, and in each: facilities (with positions), a patient, and in
/// acme a code system with a hierarchy, a tenant group and writes by an
/// integrator.
pub async fn seeded_server() -> (OidcProvider, TestApp) {
    let provider = OidcProvider::start().await;
    let dbname = fresh_database().await;
    let owner = baraza::db::connect(&cluster().config(&dbname))
        .await
        .expect("connect as owner");
    for id in ["acme", "globex"] {
        baraza::store::tenants::create(&owner, id, "")
            .await
            .expect("create tenant");
    }
    let settings = provider.settings();
    let app = spawn_app_on(dbname, move |s| {
        s.oidc = Some(settings);
        s.console_client_id = Some("baraza-console".into());
        s.mpi = true;
    })
    .await;
    let admin = provider.token("admin-client").await;
    let put = |tenant: &str, resource: Value| {
        let url = format!(
            "{}/fhir/{tenant}/{}/{}",
            root(&app),
            resource["resourceType"].as_str().unwrap_or_default(),
            resource["id"].as_str().unwrap_or_default()
        );
        (url, resource)
    };
    let acme = [
        json!({"resourceType": "Organization", "id": "acme-health", "name": "Acme Health"}),
        json!({"resourceType": "Location", "id": "acme-hospital", "name": "Acme District Hospital",
               "managingOrganization": {"reference": "Organization/acme-health"},
               "position": {"latitude": -1.2921, "longitude": 36.8219}}),
        json!({"resourceType": "Location", "id": "acme-clinic", "name": "Acme Clinic North",
               "partOf": {"reference": "Location/acme-hospital"},
               "position": {"latitude": -1.05, "longitude": 37.08}}),
        json!({"resourceType": "Patient", "id": "acme-patient", "name": [{"family": "Wanjiru"}]}),
        json!({"resourceType": "CodeSystem", "id": "facility-type", "status": "active",
               "url": "http://example.org/fhir/CodeSystem/facility-type", "name": "FacilityType",
               "content": "complete", "hierarchyMeaning": "is-a",
               "concept": [
                   {"code": "hospital", "display": "Hospital", "concept": [
                       {"code": "district-hospital", "display": "District hospital"},
                       {"code": "referral-hospital", "display": "Referral hospital"}]},
                   {"code": "clinic", "display": "Clinic"}]}),
    ];
    let globex = [
        json!({"resourceType": "Organization", "id": "globex-net", "name": "Globex Secret Network"}),
        json!({"resourceType": "Location", "id": "globex-clinic", "name": "Globex Hidden Clinic",
               "managingOrganization": {"reference": "Organization/globex-net"},
               "position": {"latitude": 0.5, "longitude": 35.2}}),
        json!({"resourceType": "Patient", "id": "globex-patient", "name": [{"family": "Hidden"}]}),
    ];
    for (tenant, resources) in [("acme", &acme[..]), ("globex", &globex[..])] {
        for resource in resources {
            let (url, body) = put(tenant, resource.clone());
            let (status, answer) =
                call(&app, &admin, reqwest::Method::PUT, &url, Some(&body)).await;
            assert!(status == 200 || status == 201, "{url}: {status} {answer}");
        }
    }
    // Reads of the patient for the audit trail, an integrator's write for
    // the overview, and a refused read for its error rate.
    let fhir = |path: &str| format!("{}/fhir/acme/{path}", root(&app));
    let (status, _) = call(
        &app,
        &admin,
        reqwest::Method::GET,
        &fhir("Patient/acme-patient"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let integrator = provider.token("integrator-a").await;
    let observation = json!({"resourceType": "Observation", "status": "final",
        "code": {"text": "weight"}, "subject": {"reference": "Patient/acme-patient"}});
    let (status, answer) = call(
        &app,
        &integrator,
        reqwest::Method::POST,
        &fhir("Observation"),
        Some(&observation),
    )
    .await;
    assert_eq!(status, 201, "{answer}");
    let (status, _) = call(
        &app,
        &admin,
        reqwest::Method::GET,
        &fhir("Patient/missing"),
        None,
    )
    .await;
    assert_eq!(status, 404);
    let group = json!({"description": "ward clerks",
        "permissions": {"Encounter": ["create", "read"], "Patient": ["read", "search"]}});
    let (status, answer) = call(
        &app,
        &admin,
        reqwest::Method::PUT,
        &format!("{}/admin/acme/groups/ward-clerks", root(&app)),
        Some(&group),
    )
    .await;
    assert_eq!(status, 201, "{answer}");
    seed_review_and_batch(&app, &admin).await;
    // The audit trail is written behind the requests, in order: once the
    // last one is there, the overview sees every one.
    crate::audit::rows_where(
        &app,
        "tenant = 'acme' AND event::text LIKE '%group/ward-clerks%'",
        1,
    )
    .await;
    (provider, app)
}

/// For the MPI review and batches views: a pair of records between the
/// review and auto-link thresholds (Grace Mwangi, once without a birth
/// date) and a finished batch with one good and one failed record.
async fn seed_review_and_batch(app: &TestApp, admin: &str) {
    for (id, born) in [("g1", true), ("g2", false)] {
        let mut patient = json!({"resourceType": "Patient", "id": id,
            "name": [{"family": "Mwangi", "given": ["Grace"]}], "gender": "female",
            "address": [{"city": "Nakuru"}]});
        if born {
            patient["birthDate"] = json!("1975-11-02");
        }
        let url = format!("{}/fhir/acme/Patient/{id}", root(app));
        let (status, answer) = call(app, admin, reqwest::Method::PUT, &url, Some(&patient)).await;
        assert_eq!(status, 201, "{answer}");
    }
    let batches = format!("{}/ingest/acme/batches", root(app));
    let (status, batch) = call(
        app,
        admin,
        reqwest::Method::POST,
        &batches,
        Some(&json!({"name": "console-batch", "dataType": "ndjson"})),
    )
    .await;
    assert_eq!(status, 201, "{batch}");
    let id = batch["id"].as_str().unwrap().to_owned();
    let lines = format!(
        "{}\n{}\n",
        json!({"resourceType": "Location", "id": "batch-ok", "name": "Batch Clinic"}),
        json!({"resourceType": "Patient", "id": "batch-bad", "gender": "man"})
    );
    let response = app
        .client
        .post(format!("{batches}/{id}/records"))
        .bearer_auth(admin)
        .body(lines)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let (status, _) = call(
        app,
        admin,
        reqwest::Method::PUT,
        &format!("{batches}/{id}/action/sendComplete"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let (_, batch) = call(
            app,
            admin,
            reqwest::Method::GET,
            &format!("{batches}/{id}"),
            None,
        )
        .await;
        if batch["status"] == "completed" {
            assert_eq!(batch["counts"]["failed"], 1, "{batch}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{batch}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// The first issue's diagnostics of an OperationOutcome.
fn diagnostics(outcome: &Value) -> String {
    outcome["issue"][0]["diagnostics"]
        .as_str()
        .unwrap_or_else(|| panic!("no diagnostics in {outcome}"))
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn console_signs_in_shows_every_view_and_keeps_tenants_apart_in_chromium() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: apt-get install chromium (.ci/run installs it)"
    );
    ensure_node_modules();
    let (provider, app) = seeded_server().await;
    // What the server says to the requests the script makes fail, so that
    // the script can check the console shows exactly that.
    let carol = provider.password_token("carol", "carol-password").await;
    let (status, outcome) = call(
        &app,
        &carol,
        reqwest::Method::GET,
        &format!("{}/fhir/acme/AuditEvent?date=gebad", root(&app)),
        None,
    )
    .await;
    assert_eq!(status, 400, "{outcome}");
    let bad_date = diagnostics(&outcome);
    let alice = provider.password_token("alice", "alice-password").await;
    let (status, outcome) = call(
        &app,
        &alice,
        reqwest::Method::GET,
        &format!("{}/fhir/globex/Location", root(&app)),
        None,
    )
    .await;
    assert_eq!(status, 404, "{outcome}");
    let other_tenant = diagnostics(&outcome);
    let (status, outcome) = call(
        &app,
        &carol,
        reqwest::Method::PUT,
        &format!("{}/admin/acme/groups/bad-group", root(&app)),
        Some(&json!({"permissions": {"Spaceship": ["read"]}})),
    )
    .await;
    assert_eq!(status, 400, "{outcome}");
    let bad_group = diagnostics(&outcome);

    let screenshots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    let output = tokio::process::Command::new(crate::node::node().node())
        .arg("console.mjs")
        .current_dir(fixture_dir())
        .env("CONSOLE_URL", format!("{}/console/", root(&app)))
        .env("SCREENSHOT_DIR", &screenshots)
        .env("CHROMIUM", CHROMIUM)
        .env("ADMIN_USER", "carol")
        .env("ADMIN_PASSWORD", "carol-password")
        .env("OTHER_USER", "alice")
        .env("OTHER_PASSWORD", "alice-password")
        .env("HIDDEN_TEXT", "Globex Hidden Clinic")
        .env("BAD_DATE_TEXT", &bad_date)
        .env("OTHER_TENANT_TEXT", &other_tenant)
        .env("BAD_GROUP_TEXT", &bad_group)
        .kill_on_drop(true)
        .output()
        .await
        .expect("run node console.mjs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the console checks failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    assert!(stdout.contains("console checks passed"), "{stdout}");
    for view in [
        "sign-in",
        "overview",
        "audit",
        "audit-error",
        "terminology",
        "terminology-expand",
        "facilities",
        "admin",
        "admin-group-refused",
        "overview-tablet",
        "other-tenant-refused",
    ] {
        let file = screenshots.join(format!("{view}.png"));
        let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
        assert!(size > 1000, "no screenshot {}", file.display());
    }
}

#[tokio::test]
async fn console_files_are_served_with_types_etags_and_a_strict_policy() {
    let (provider, app) = seeded_server().await;
    let root = root(&app);
    let response = app
        .client
        .get(format!("{root}/console/"))
        .send()
        .await
        .expect("GET /console/");
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(header("content-type"), "text/html; charset=utf-8");
    let policy = header("content-security-policy");
    assert!(policy.starts_with("default-src 'self'"), "{policy}");
    assert!(policy.contains(&provider_origin(&provider)), "{policy}");
    assert_eq!(header("x-content-type-options"), "nosniff");
    assert_eq!(header("cache-control"), "no-cache");
    let etag = header("etag");
    assert!(etag.starts_with('"') && etag.len() > 10, "{etag}");
    let html = response.text().await.expect("body");
    assert!(html.contains("<script type=\"module\" src=\"js/main.js\">"));
    assert!(!html.contains("http"), "no address of another host");

    let again = app
        .client
        .get(format!("{root}/console/index.html"))
        .header("if-none-match", &etag)
        .send()
        .await
        .expect("conditional GET");
    assert_eq!(again.status(), 304);

    for (path, expected) in [
        ("js/main.js", "text/javascript; charset=utf-8"),
        ("js/views/overview.js", "text/javascript; charset=utf-8"),
        ("style.css", "text/css; charset=utf-8"),
        ("favicon.svg", "image/svg+xml"),
    ] {
        let response = app
            .client
            .get(format!("{root}/console/{path}"))
            .send()
            .await
            .expect("asset");
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(response.headers()["content-type"], expected, "{path}");
    }

    let (status, outcome) = status_json(
        app.client
            .get(format!("{root}/console/nope.js"))
            .send()
            .await
            .expect("GET"),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(outcome["resourceType"], "OperationOutcome");

    let redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .get(format!("{root}/console"))
        .send()
        .await
        .expect("GET /console");
    assert_eq!(redirect.status(), 308);
    assert_eq!(redirect.headers()["location"], "/console/");

    let config: Value = app
        .client
        .get(format!("{root}/console/config.json"))
        .send()
        .await
        .expect("config")
        .json()
        .await
        .expect("config is JSON");
    assert_eq!(config["auth"], "oidc");
    assert_eq!(config["client_id"], "baraza-console");
    assert!(
        config["authorization_endpoint"]
            .as_str()
            .is_some_and(|a| a.starts_with(&provider_origin(&provider))),
        "{config}"
    );
}

/// The fixture's issuer is an origin (`http://127.0.0.1:PORT`).
fn provider_origin(provider: &OidcProvider) -> String {
    provider.issuer.trim_end_matches('/').to_owned()
}

/// With authentication off (loopback), the console signs no one in and the
/// admin API it reads answers without a token.
#[tokio::test]
async fn console_needs_no_sign_in_with_authentication_off() {
    let app = spawn_app().await;
    let root = root(&app);
    let get = |path: &str| {
        let request = app.client.get(format!("{root}{path}"));
        async move { status_json(request.send().await.expect("GET")).await }
    };
    let (status, config) = get("/console/config.json").await;
    assert_eq!(status, 200);
    assert_eq!(config, json!({"auth": "off"}));
    let (status, whoami) = get("/admin/whoami").await;
    assert_eq!(status, 200, "{whoami}");
    assert_eq!(whoami["authenticated"], false);
    assert_eq!(whoami["tenants"], json!(["default"]));
    let (status, me) = get("/admin/me").await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["tenant"], "default");
    assert!(me["rights"]["permissions"]["*"].is_array(), "{me}");
    let (status, overview) = get("/admin/overview").await;
    assert_eq!(status, 200, "{overview}");
    assert_eq!(overview["tenant"], "default");
}
