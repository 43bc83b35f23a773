//! Queued linking (`BARAZA_MPI_LINKING=queued`, issue 6): a Patient write
//! commits without the index, and the outbox consumer `mpi` links it
//! just after: duplicates share a golden record, the MPI's own versions
//! do not loop back into linking, a write that drops the links gets them
//! back, a delete leaves the cluster, and Patients written while no
//! instance linked are linked by the next one that does.

use crate::harness::{TestApp, fresh_database, spawn_app_on, spawn_app_with};
use crate::mpi_http::{call, golden_of, person};
use reqwest::Method;
use serde_json::Value;
use std::time::{Duration, Instant};

async fn queued_app() -> TestApp {
    spawn_app_with(|s| {
        s.mpi = true;
        s.mpi_queued = true;
    })
    .await
}

/// Reads `Patient/{id}` until `done` holds for it (at most 30 s).
async fn read_until(app: &TestApp, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, patient) = call(app, None, Method::GET, &format!("Patient/{id}"), None).await;
        if status == 200 && done(&patient) {
            return patient;
        }
        assert!(
            Instant::now() < deadline,
            "Patient/{id} never got there: {status} {patient}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The golden record `Patient/{id}` is linked to, once it is.
async fn linked(app: &TestApp, id: &str) -> String {
    let patient = read_until(app, id, |p| golden_of(p).is_some()).await;
    golden_of(&patient).unwrap_or_default()
}

async fn versions(app: &TestApp, id: &str) -> usize {
    let (status, history) = call(
        app,
        None,
        Method::GET,
        &format!("Patient/{id}/_history"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{history}");
    history["entry"].as_array().map_or(0, Vec::len)
}

fn sources_of(golden: &Value) -> Vec<String> {
    let mut out: Vec<String> = golden["link"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|l| l["type"] == "seealso")
        .filter_map(|l| l["other"]["reference"].as_str())
        .map(str::to_owned)
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn queued_linking_links_each_write_after_it_commits() {
    let app = queued_app().await;
    let first = person(
        "q1",
        "Achieng",
        "Odhiambo",
        "1987-03-14",
        ("urn:facility:a", "A-100"),
    );
    let (status, stored) = call(&app, None, Method::PUT, "Patient/q1", Some(&first)).await;
    assert_eq!(status, 201, "{stored}");
    // The write itself is stored as sent: linking comes after the commit.
    assert_eq!(golden_of(&stored), None, "{stored}");
    let golden = linked(&app, "q1").await;
    assert!(golden.starts_with("golden-"), "{golden}");

    // A duplicate from another facility joins the same golden record.
    let second = person(
        "q2",
        "Achieng",
        "Odhiambu",
        "1987-03-14",
        ("urn:facility:b", "B-7"),
    );
    let (status, _) = call(&app, None, Method::PUT, "Patient/q2", Some(&second)).await;
    assert_eq!(status, 201);
    assert_eq!(linked(&app, "q2").await, golden);
    let record = read_until(&app, &golden, |g| sources_of(g).len() == 2).await;
    assert_eq!(
        sources_of(&record),
        ["Patient/q1", "Patient/q2"],
        "{record}"
    );
    assert!(
        record["meta"]["tag"].to_string().contains("golden"),
        "{record}"
    );

    // The links are one more version each, and the MPI's own versions are
    // not linked again: after the queue is idle, nothing more is written.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(versions(&app, "q1").await, 2);
    assert_eq!(versions(&app, "q2").await, 2);

    // A client rewrite without the links (the content unchanged) gets them
    // back, to the same golden record.
    let (status, rewritten) = call(&app, None, Method::PUT, "Patient/q1", Some(&first)).await;
    assert_eq!(status, 200, "{rewritten}");
    assert_eq!(golden_of(&rewritten), None, "{rewritten}");
    assert_eq!(linked(&app, "q1").await, golden);
    assert_eq!(versions(&app, "q1").await, 4);

    // Golden records stay the MPI's.
    let (status, outcome) = call(
        &app,
        None,
        Method::PUT,
        &format!("Patient/{golden}"),
        Some(&record),
    )
    .await;
    assert_eq!(status, 409, "{outcome}");
    crate::harness::assert_outcome_names(&outcome, "Patient.id");

    // A deleted source leaves its cluster.
    let (status, _) = call(&app, None, Method::DELETE, "Patient/q2", None).await;
    assert_eq!(status, 204);
    let record = read_until(&app, &golden, |g| sources_of(g).len() == 1).await;
    assert_eq!(sources_of(&record), ["Patient/q1"], "{record}");
}

#[tokio::test]
async fn patients_written_before_queued_linking_started_are_linked() {
    let dbname = fresh_database().await;
    let unlinked = spawn_app_on(dbname.clone(), |s| s.mpi = false).await;
    for (id, facility) in [
        ("w1", "urn:facility:a"),
        ("w2", "urn:facility:b"),
        ("w3", "urn:facility:c"),
    ] {
        let mut patient = person(id, "Wanjiru", "Kamau", "1990-06-01", (facility, id));
        if id == "w3" {
            patient["birthDate"] = "1961-11-30".into();
            patient["name"][0]["given"][0] = "Baraka".into();
            patient["name"][0]["family"] = "Otieno".into();
            patient["gender"] = "male".into();
        }
        let (status, body) = call(
            &unlinked,
            None,
            Method::PUT,
            &format!("Patient/{id}"),
            Some(&patient),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(golden_of(&body), None);
    }
    drop(unlinked);
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The next instance links from its consumer's start: the outbox.
    let app = spawn_app_on(dbname, |s| {
        s.mpi = true;
        s.mpi_queued = true;
    })
    .await;
    let one = linked(&app, "w1").await;
    let two = linked(&app, "w2").await;
    let three = linked(&app, "w3").await;
    assert_eq!(one, two, "the same person from two facilities");
    assert_ne!(one, three, "a different person");
}

/// `baraza serve` on `dbname` with queued linking, polling often.
fn start_queued(dbname: &str) -> (std::process::Child, u16) {
    crate::processes::serve(
        dbname,
        &[("BARAZA_MPI", "on"), ("BARAZA_MPI_LINKING", "queued")],
    )
}

/// Creates the same person twice (`d{k}-a`, `d{k}-b`, from two facilities)
/// for k = 0, 1, … until a request fails; returns how many were answered.
async fn duplicate_loop(port: u16) -> usize {
    let client = reqwest::Client::new();
    let families = ["Mwangi", "Chebet", "Okonkwo", "Nakato", "Banda", "Tesfaye"];
    let mut answered = 0;
    for k in 0..100_000usize {
        for side in ["a", "b"] {
            let id = format!("d{k}-{side}");
            let mut patient = person(
                &id,
                ["Amani", "Zawadi", "Baraka", "Imani"][k % 4],
                families[(k / 4) % families.len()],
                &format!("19{:02}-{:02}-{:02}", 40 + k % 60, 1 + k % 12, 1 + k % 28),
                (&format!("urn:facility:{side}"), &id),
            );
            patient["telecom"][0]["value"] = format!("+254 7{k:08}").into();
            if !crate::processes::put_ok(&client, port, &format!("Patient/{id}"), &patient).await {
                return answered;
            }
            answered += 1;
        }
    }
    answered
}

#[tokio::test]
async fn queued_linking_survives_kill_9_without_half_a_round() {
    let dbname = fresh_database().await;
    let (mut first, port) = start_queued(&dbname);
    crate::processes::wait_ready(port, &mut first).await;
    let writer = tokio::spawn(duplicate_loop(port));
    tokio::time::sleep(Duration::from_millis(2500)).await;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(first.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let _ = first.wait();
    let written = writer.await.unwrap();
    assert!(written > 20, "writes before the kill: {written}");

    let (mut second, port) = start_queued(&dbname);
    crate::processes::wait_ready(port, &mut second).await;
    let owner = baraza::db::connect(&crate::harness::cluster().config(&dbname))
        .await
        .unwrap();
    owner
        .batch_execute("SELECT set_config('baraza.tenant', 'default', false)")
        .await
        .unwrap();
    // The restarted instance links everything that committed.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let row = owner
            .query_one(
                "SELECT (SELECT count(*) FROM resources WHERE tenant = 'default' \
                   AND res_type = 'Patient' AND NOT deleted AND id NOT LIKE 'golden-%'), \
                 (SELECT count(*) FROM mpi_links WHERE tenant = 'default'), \
                 (SELECT last_seq FROM event_consumers WHERE tenant = 'default' AND consumer = 'mpi') \
                   >= (SELECT max(seq) FROM events WHERE tenant = 'default')",
                &[],
            )
            .await
            .unwrap();
        let (sources, links, caught_up): (i64, i64, Option<bool>) =
            (row.get(0), row.get(1), row.get(2));
        if sources > 0 && sources == links && caught_up == Some(true) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{sources} sources, {links} links, caught up: {caught_up:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Every source's current version refers to the golden record its link
    // names, and every golden record lists exactly its cluster.
    let rows = owner
        .query(
            "SELECT l.patient_id, l.golden_id, h.content::text FROM mpi_links l \
             JOIN resources r ON r.tenant = l.tenant AND r.res_type = 'Patient' AND r.id = l.patient_id \
             JOIN resource_history h ON h.tenant = r.tenant AND h.res_type = r.res_type \
               AND h.id = r.id AND h.version_id = r.version_id \
             WHERE l.tenant = 'default'",
            &[],
        )
        .await
        .unwrap();
    let mut clusters: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for row in &rows {
        let (id, golden, content): (String, String, String) = (row.get(0), row.get(1), row.get(2));
        let patient: Value = serde_json::from_str(&content).unwrap();
        assert_eq!(
            golden_of(&patient).as_deref(),
            Some(golden.as_str()),
            "{patient}"
        );
        clusters
            .entry(golden)
            .or_default()
            .push(format!("Patient/{id}"));
    }
    for (golden, mut members) in clusters {
        members.sort();
        let (status, record) = call(
            &crate::harness::TestApp::external(&format!("http://127.0.0.1:{port}/fhir"), &dbname),
            None,
            Method::GET,
            &format!("Patient/{golden}"),
            None,
        )
        .await;
        assert_eq!(status, 200, "{record}");
        assert_eq!(sources_of(&record), members, "{record}");
    }
    // Both records of each person who was written whole share one golden.
    let linked: std::collections::HashMap<String, String> = rows
        .iter()
        .map(|row| (row.get::<_, String>(0), row.get::<_, String>(1)))
        .collect();
    for k in 0..(written / 2) {
        let (a, b) = (format!("d{k}-a"), format!("d{k}-b"));
        assert_eq!(linked.get(&a), linked.get(&b), "{a} and {b}");
    }
    let _ = second.kill();
    let _ = second.wait();
}
