//! `$export` jobs with two instances on one database (issue 9): a job runs
//! under a lease on one instance at a time; when that instance is killed,
//! the other adopts the job once the lease runs out and finishes it from
//! its cursor, every resource exactly once.

use crate::bulk_export::{download_all, keys, kick_off, load_many, manifest};
use crate::harness::{TestApp, cluster, fresh_database};
use crate::processes::{baraza, free_port, terminate, wait_exit, wait_ready};
use reqwest::Method;
use std::collections::BTreeSet;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

async fn start(dbname: &str) -> (Child, String) {
    let url = cluster().request_url(dbname);
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut child = baraza(
        &["serve"],
        &[
            ("BARAZA_DATABASE_URL", url.as_str()),
            ("BARAZA_LISTEN", listen.as_str()),
            // One resource per page: the job runs long enough to be killed.
            ("BARAZA_EXPORT_PAGE_SIZE", "1"),
            ("BARAZA_AUDIT", "off"),
            ("BARAZA_MPI", "off"),
            ("BARAZA_LEASE_SECS", "2"),
            ("BARAZA_LOG", "warn"),
        ],
    )
    .stderr(Stdio::null())
    .stdout(Stdio::null())
    .spawn()
    .unwrap();
    wait_ready(port, &mut child).await;
    (child, format!("http://{listen}/fhir"))
}

/// The pid in a lease holder's id (`host:pid:random`).
fn pid_of(holder: &str) -> u32 {
    holder.split(':').nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn an_export_moves_to_another_instance_when_its_own_dies() {
    let dbname = fresh_database().await;
    let (mut a, base_a) = start(&dbname).await;
    let (b, base_b) = start(&dbname).await;
    let app_a = TestApp::external(&base_a, &dbname);
    let app_b = TestApp::external(&base_b, &dbname);
    load_many(&app_a, 1500).await;
    let status_a = kick_off(&app_a, None, Method::GET, "$export?_type=Observation", None).await;

    // The instance that took the kick-off holds the job and writes pages.
    let db = app_a.db().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let row = db
            .query_one("SELECT processed, leased_by FROM export_jobs", &[])
            .await
            .unwrap();
        let holder: Option<String> = row.get(1);
        assert_eq!(
            holder.as_deref().map(pid_of),
            Some(a.id()),
            "leased to the instance that took the kick-off"
        );
        if row.get::<_, i64>(0) >= 20 {
            break;
        }
        assert!(Instant::now() < deadline, "the job did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(a.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    wait_exit(&mut a, Duration::from_secs(10));
    let processed: i64 = db
        .query_one("SELECT processed FROM export_jobs", &[])
        .await
        .unwrap()
        .get(0);
    assert!(processed < 1500, "killed mid-job ({processed})");

    // The survivor adopts it once the lease has run out and finishes it.
    let status_b = status_a.replace(&base_a, &base_b);
    let manifest = manifest(&app_b, None, &status_b).await;
    let holder: String = db
        .query_one("SELECT leased_by FROM export_jobs", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(pid_of(&holder), b.id(), "finished by the survivor");
    let resources = download_all(&app_b, None, &manifest).await;
    let ids = keys(&resources);
    let unique: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(ids.len(), 1500, "every resource");
    assert_eq!(unique.len(), 1500, "exactly once");
    terminate(&b);
}
