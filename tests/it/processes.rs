//! Baraza as a separate process: start-up with the embedded database,
//! graceful stop, settings errors, the schema guard, and kill -9 in the
//! middle of a transaction.

use crate::harness::{cluster, fresh_database};
use bench::synthetic;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_baraza-under-test");

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn baraza(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(BIN);
    command.args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("BARAZA_") {
            command.env_remove(k);
        }
    }
    command.envs(env.iter().copied());
    command
}

/// `baraza serve` on the test database `dbname` and a free loopback port,
/// quiet, with short event polls and leases; `env` adds settings or
/// overrides these. Returns the process and its port.
pub fn serve(dbname: &str, env: &[(&str, &str)]) -> (Child, u16) {
    let url = cluster().request_url(dbname);
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut all = vec![
        ("BARAZA_DATABASE_URL", url.as_str()),
        ("BARAZA_LISTEN", listen.as_str()),
        ("BARAZA_EVENTS_POLL_MS", "20"),
        ("BARAZA_LEASE_SECS", "2"),
        ("BARAZA_LOG", "warn"),
    ];
    all.extend_from_slice(env);
    let child = baraza(&["serve"], &all)
        .stderr(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    (child, port)
}

/// PUTs `body` to `/fhir/{path}` of the process on `port`; whether it
/// was answered with a success (false once the process is gone).
pub async fn put_ok(
    client: &reqwest::Client,
    port: u16,
    path: &str,
    body: &serde_json::Value,
) -> bool {
    let sent = client
        .put(format!("http://127.0.0.1:{port}/fhir/{path}"))
        .header("content-type", "application/fhir+json")
        .body(body.to_string())
        .send()
        .await;
    matches!(sent, Ok(r) if r.status().is_success())
}

/// A `baraza serve` process, stopped when dropped (even by a failing test).
pub struct Server(pub Child);

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            terminate(&self.0);
            wait_exit(&mut self.0, Duration::from_secs(60));
        }
    }
}

pub async fn wait_ready(port: u16, child: &mut Child) {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("baraza exited during start-up: {status}");
        }
        if let Ok(r) = client
            .get(format!("http://127.0.0.1:{port}/ready"))
            .send()
            .await
        {
            if r.status() == 200 {
                return;
            }
        }
        assert!(Instant::now() < deadline, "baraza did not become ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "baraza did not exit");
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn terminate(child: &Child) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
}

#[tokio::test]
async fn embedded_database_starts_persists_and_stops_cleanly() {
    let dir =
        std::env::temp_dir().join(format!("baraza-embedded-{}", uuid::Uuid::new_v4().simple()));
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let env = [
        ("BARAZA_DATA_DIR", dir.to_str().unwrap()),
        ("BARAZA_LISTEN", listen.as_str()),
    ];
    let mut child = baraza(&["serve"], &env)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_ready(port, &mut child).await;
    let client = reqwest::Client::new();
    let response = client
        .put(format!("http://{listen}/fhir/Patient/kept"))
        .header("content-type", "application/fhir+json")
        .body(r#"{"resourceType":"Patient","id":"kept","active":true}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    terminate(&child);
    let status = wait_exit(&mut child, Duration::from_secs(60));
    assert!(status.success(), "{status}");
    let stderr = std::io::read_to_string(child.stderr.take().unwrap()).unwrap();
    assert!(
        stderr.contains("UNAUTHENTICATED"),
        "the loopback warning is printed: {stderr}"
    );
    assert!(
        !dir.join("pgdata/postmaster.pid").exists(),
        "the embedded PostgreSQL was stopped"
    );
    // A second start finds the data again.
    let mut child = baraza(&["serve"], &env)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_ready(port, &mut child).await;
    let response = client
        .get(format!("http://{listen}/fhir/Patient/kept"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    terminate(&child);
    assert!(wait_exit(&mut child, Duration::from_secs(60)).success());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_settings_stop_start_up_with_one_line() {
    for (name, value) in [
        ("BARAZA_LISTEN", "nonsense"),
        ("BARAZA_LISTN", "127.0.0.1:1"),
        ("BARAZA_MAX_BUNDLE_ENTRIES", "many"),
    ] {
        let out = baraza(&["serve"], &[(name, value)]).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{name}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(name), "{stderr}");
    }
    let out = baraza(&["serve"], &[("BARAZA_LISTEN", "0.0.0.0:0")])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8(out.stderr).unwrap().contains("loopback"));
    let help = baraza(&["--help"], &[]).output().unwrap();
    let text = String::from_utf8(help.stdout).unwrap();
    for (name, _) in baraza::config::VARIABLES {
        assert!(text.contains(name), "--help documents {name}");
    }
}

#[tokio::test]
async fn a_newer_schema_is_refused() {
    let dbname = fresh_database().await;
    let db = baraza::db::connect(&cluster().config(&dbname))
        .await
        .unwrap();
    db.batch_execute("INSERT INTO refinery_schema_history (version, name, applied_on, checksum) VALUES (9999, 'future', '2030-01-01', '0')")
        .await
        .unwrap();
    let url = cluster().url(&dbname);
    let out = baraza(&["migrate"], &[("BARAZA_DATABASE_URL", url.as_str())])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("newer"), "{stderr}");
    // Migrating a current schema again is a no-op.
    let fresh = fresh_database().await;
    let url = cluster().url(&fresh);
    let out = baraza(&["migrate"], &[("BARAZA_DATABASE_URL", url.as_str())])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// kill -9 at several moments of a 3,000-entry transaction: after each,
/// the database holds all of it or none of it.
#[tokio::test]
async fn kill_nine_during_a_transaction_leaves_all_or_nothing() {
    let dbname = fresh_database().await;
    let url = cluster().request_url(&dbname);
    let db = baraza::db::connect(&cluster().config(&dbname))
        .await
        .unwrap();
    let bundle = synthetic::observation_bundle(11, 3000, "Patient/p1").to_string();
    let mut expected_total = 0i64;
    let mut n_interrupted = 0;
    for delay_ms in [50u64, 250, 600, 1200, 2500] {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let mut child = baraza(
            &["serve"],
            &[
                ("BARAZA_DATABASE_URL", url.as_str()),
                ("BARAZA_LISTEN", listen.as_str()),
            ],
        )
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
        wait_ready(port, &mut child).await;
        let request = reqwest::Client::new()
            .post(format!("http://{listen}/fhir"))
            .header("content-type", "application/fhir+json")
            .body(bundle.clone())
            .send();
        let pid = child.id() as i32;
        let killer = async move {
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            )
            .unwrap();
        };
        let (result, ()) = tokio::join!(request, killer);
        let committed = matches!(&result, Ok(r) if r.status() == 200);
        if !committed {
            n_interrupted += 1;
        }
        wait_exit(&mut child, Duration::from_secs(10));
        // Let PostgreSQL notice the dead connection and roll back.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let count: i64 = db
            .query_one("SELECT count(*) FROM resources", &[])
            .await
            .unwrap()
            .get(0);
        let history: i64 = db
            .query_one("SELECT count(*) FROM resource_history", &[])
            .await
            .unwrap()
            .get(0);
        assert!(
            count == expected_total || count == expected_total + 3000,
            "partial write: {count} rows after kill at {delay_ms} ms"
        );
        assert_eq!(count, history, "history and current rows agree");
        expected_total = count;
    }
    assert!(
        n_interrupted > 0,
        "at least one kill landed during the transaction"
    );
}
