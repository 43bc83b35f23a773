//! Running Baraza (issue 10): Prometheus metrics and who may read them,
//! readiness that checks the schema, the configuration file with secrets
//! redacted from the start-up log, and the log filter changed at run time
//! by SIGHUP.

use crate::harness::{cluster, fresh_database, spawn_app, spawn_app_on, spawn_app_with};
use crate::processes::{baraza, free_port, terminate, wait_exit, wait_ready};
use baraza::config::Secret;
use serde_json::json;
use std::time::{Duration, Instant};

async fn metrics_text(app: &crate::harness::TestApp, token: Option<&str>) -> (u16, String) {
    let mut request = app.client.get(app.base.replace("/fhir", "/metrics"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("GET /metrics");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

/// The value of the sample whose line starts with `series` (name and labels).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series))
        .and_then(|rest| rest.trim().parse().ok())
}

#[tokio::test]
async fn metrics_count_requests_writes_and_state() {
    let app = spawn_app().await;
    let patient = json!({"resourceType": "Patient", "name": [{"family": "Wanjiru"}]});
    for _ in 0..3 {
        assert_eq!(app.post("Patient", &patient).await.status(), 201);
    }
    let bad = json!({"resourceType": "Patient", "gender": 7});
    assert_eq!(app.post("Patient", &bad).await.status(), 400);
    assert_eq!(app.get("Patient/nope").await.status(), 404);

    let (status, text) = metrics_text(&app, None).await;
    assert_eq!(status, 200, "{text}");
    let requests = |labels: &str| sample(&text, &format!("baraza_http_requests_total{{{labels}}}"));
    assert_eq!(
        requests("interaction=\"create\",operation=\"\",status=\"201\""),
        Some(3.0)
    );
    assert_eq!(
        requests("interaction=\"create\",operation=\"\",status=\"400\""),
        Some(1.0)
    );
    assert_eq!(
        requests("interaction=\"read\",operation=\"\",status=\"404\""),
        Some(1.0)
    );
    let ingest = |outcome: &str| {
        sample(
            &text,
            &format!(
                "baraza_ingest_entries_total{{tenant=\"default\",integrator=\"anonymous\",outcome=\"{outcome}\"}}"
            ),
        )
    };
    assert_eq!(ingest("accepted"), Some(3.0));
    assert_eq!(ingest("rejected"), Some(1.0));
    assert_eq!(
        sample(
            &text,
            "baraza_http_request_duration_seconds_count{interaction=\"create\",operation=\"\"}"
        ),
        Some(4.0)
    );
    assert!(sample(&text, "baraza_database_size_bytes").is_some_and(|b| b > 1e6));
    assert!(sample(&text, "baraza_db_pool_connections{state=\"max\"}").is_some_and(|n| n >= 1.0));
    assert!(sample(&text, "baraza_audit_queue_depth").is_some());
    assert!(
        sample(
            &text,
            "baraza_integrator_last_success_timestamp_seconds{tenant=\"default\",integrator=\"anonymous\"}"
        )
        .is_some_and(|t| t > 1.7e9)
    );
    // Nothing a request carried is in a label.
    assert!(!text.contains("Wanjiru") && !text.contains("nope"));
}

#[tokio::test]
async fn metrics_need_the_configured_token() {
    let token = "a-metrics-token-of-some-length";
    let app = spawn_app_with(|s| s.metrics_token = Some(Secret::new(token))).await;
    assert_eq!(metrics_text(&app, None).await.0, 403);
    assert_eq!(
        metrics_text(&app, Some("a-metrics-token-of-some-lengtX"))
            .await
            .0,
        403
    );
    let (status, text) = metrics_text(&app, Some(token)).await;
    assert_eq!(status, 200);
    assert!(text.contains("baraza_http_requests_total") || text.contains("# TYPE"));
}

#[tokio::test]
async fn ready_needs_every_migration() {
    let dbname = fresh_database().await;
    let app = spawn_app_on(dbname.clone(), |_| {}).await;
    let ready = app.base.replace("/fhir", "/ready");
    assert_eq!(app.client.get(&ready).send().await.unwrap().status(), 200);
    // An older schema: the newest migration's record is gone.
    let owner = app.db().await;
    owner
        .execute(
            "DELETE FROM refinery_schema_history \
             WHERE version = (SELECT max(version) FROM refinery_schema_history)",
            &[],
        )
        .await
        .unwrap();
    let response = app.client.get(&ready).send().await.unwrap();
    assert_eq!(response.status(), 503);
    let body: serde_json::Value = response.json().await.unwrap();
    let text = body["issue"][0]["diagnostics"].as_str().unwrap_or_default();
    assert!(text.contains("baraza migrate"), "{body}");
}

/// The process's stderr so far.
fn log_of(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

async fn get_ok(client: &reqwest::Client, url: &str) {
    assert_eq!(client.get(url).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn configuration_file_is_logged_redacted_and_sighup_changes_the_log_filter() {
    let dbname = fresh_database().await;
    let dir = std::env::temp_dir().join(format!("baraza-ops-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("baraza.toml");
    let port = free_port();
    let write_config = |log: &str| {
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:{port}\"\nlog = \"{log}\"\nmetrics_token = \"never-log-this-token-0123\"\n"
            ),
        )
        .unwrap();
    };
    write_config("info");
    let stderr_path = dir.join("stderr.log");
    let url = cluster().request_url(&dbname);
    let config_path = config.to_str().unwrap().to_owned();
    let mut child = baraza(
        &["serve"],
        &[
            ("BARAZA_CONFIG", config_path.as_str()),
            ("BARAZA_DATABASE_URL", url.as_str()),
        ],
    )
    .stderr(std::fs::File::create(&stderr_path).unwrap())
    .spawn()
    .unwrap();
    wait_ready(port, &mut child).await;
    let client = reqwest::Client::new();
    let metadata = format!("http://127.0.0.1:{port}/fhir/metadata");
    get_ok(&client, &metadata).await;

    let log = log_of(&stderr_path);
    assert!(log.contains("BARAZA_LISTEN=127.0.0.1:"), "{log}");
    assert!(log.contains("BARAZA_METRICS_TOKEN=<redacted>"), "{log}");
    assert!(!log.contains("never-log-this-token"), "{log}");
    let requests = |log: &str| log.matches("/fhir/metadata").count();
    assert!(requests(&log) >= 1, "{log}");

    let hangup = || {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGHUP,
        )
        .unwrap()
    };
    // Quieter: request lines (info) stop.
    write_config("warn");
    hangup();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = requests(&log_of(&stderr_path));
    for _ in 0..3 {
        get_ok(&client, &metadata).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(requests(&log_of(&stderr_path)), before);

    // Louder again: the change is logged, and so are requests.
    write_config("info");
    hangup();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !log_of(&stderr_path).contains("SIGHUP: log filter changed") {
        assert!(Instant::now() < deadline, "no SIGHUP reload logged");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    get_ok(&client, &metadata).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(requests(&log_of(&stderr_path)) > before);

    terminate(&child);
    assert!(wait_exit(&mut child, Duration::from_secs(60)).success());
    std::fs::remove_dir_all(dir).unwrap();
}
