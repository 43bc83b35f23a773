//! The audit trail's tamper evidence and retention: `baraza audit verify`
//! on an intact chain and after rows are changed, deleted or inserted
//! directly in SQL; privileges and the append-only trigger; dropping an
//! expired partition keeps the chain verifiable.

use crate::audit::{owner_db, rows_where};
use crate::harness::{cluster, fresh_database, spawn_app, spawn_app_on};
use crate::processes::{baraza, free_port, terminate, wait_exit, wait_ready};
use serde_json::json;
use std::time::{Duration, Instant};

/// Runs `baraza audit verify` against the test's database as the request
/// role: (exit code, stdout).
fn verify_with_the_binary(dbname: &str) -> (Option<i32>, String) {
    let url = cluster().request_url(dbname);
    let out = baraza(&["audit", "verify"], &[("BARAZA_DATABASE_URL", &url)])
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    (out.status.code(), stdout)
}

#[tokio::test]
async fn audit_verify_names_the_row_changed_or_deleted_in_sql() {
    let app = spawn_app().await;
    app.load(&[json!({"resourceType": "Patient", "id": "p1"})])
        .await;
    for _ in 0..5 {
        assert_eq!(app.get("Patient/p1").await.status(), 200);
    }
    rows_where(&app, "true", 6).await;
    let (code, stdout) = verify_with_the_binary(&app.dbname);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(
        stdout.starts_with("audit chain OK: 6 rows, sequence 1 to 6"),
        "{stdout}"
    );

    // The request role may not change or delete rows, nor may the owner
    // past the trigger.
    let app_role = baraza::db::connect(&cluster().request_config(&app.dbname))
        .await
        .unwrap();
    for sql in [
        "UPDATE audit_events SET outcome = 4",
        "DELETE FROM audit_events",
        "TRUNCATE audit_events",
    ] {
        let e = app_role.batch_execute(sql).await.unwrap_err();
        assert!(
            format!("{e:?}").contains("permission denied"),
            "{sql}: {e:?}"
        );
    }
    let owner = owner_db(&app.dbname).await;
    let e = owner
        .batch_execute("UPDATE audit_events SET outcome = 4 WHERE seq = 3")
        .await
        .unwrap_err();
    assert!(format!("{e:?}").contains("append-only"), "{e:?}");

    // A superuser bypassing the trigger changes row 3: verify names it.
    owner
        .batch_execute(
            "SET session_replication_role = replica; \
             UPDATE audit_events SET outcome = 4 WHERE seq = 3",
        )
        .await
        .unwrap();
    let (code, stdout) = verify_with_the_binary(&app.dbname);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stdout.contains("BROKEN at sequence 3") && stdout.contains("changed"),
        "{stdout}"
    );
    // Put back, the chain verifies again; then row 5 is deleted.
    owner
        .batch_execute("UPDATE audit_events SET outcome = 0 WHERE seq = 3")
        .await
        .unwrap();
    assert_eq!(verify_with_the_binary(&app.dbname).0, Some(0));
    owner
        .batch_execute("DELETE FROM audit_events WHERE seq = 5")
        .await
        .unwrap();
    let (code, stdout) = verify_with_the_binary(&app.dbname);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stdout.contains("BROKEN at sequence 5") && stdout.contains("deleted"),
        "{stdout}"
    );
    // A copy of row 4 inserted is named before the gap.
    owner
        .batch_execute("INSERT INTO audit_events SELECT * FROM audit_events WHERE seq = 4")
        .await
        .unwrap();
    let (code, stdout) = verify_with_the_binary(&app.dbname);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stdout.contains("BROKEN at sequence 4") && stdout.contains("inserted"),
        "{stdout}"
    );
}

/// An event as if a request had been audited at some past time.
fn past_event(when: chrono::DateTime<chrono::Utc>) -> baraza::audit::Event {
    baraza::audit::Event {
        started: when,
        ended: when,
        tenant: "default".into(),
        caller: None,
        user: None,
        source: None,
        interaction: baraza::audit::Interaction {
            action: baraza::audit::Action::Read,
            subtype: "read",
            operation: None,
            target: None,
        },
        status: 200,
        query: None,
        entities: vec![baraza::audit::EntityRef {
            reference: "Patient/old".into(),
            version: Some(1),
        }],
        patients: vec!["old".into()],
    }
}

#[tokio::test]
async fn audit_dropping_an_expired_partition_keeps_the_chain_verifiable() {
    // Two events recorded in March 2016, as the server's role would write
    // them (the partition is created on demand).
    let dbname = fresh_database().await;
    let pool = baraza::db::pool(cluster().request_config(&dbname), 1).unwrap();
    let old: chrono::DateTime<chrono::Utc> = "2016-03-10T08:00:00Z".parse().unwrap();
    let mut client = pool.get().await.unwrap();
    baraza::audit::append(&mut client, &[past_event(old), past_event(old)], old)
        .await
        .unwrap();
    drop(client);
    let mut owner = owner_db(&dbname).await;
    let report = baraza::audit::verify::verify(&mut owner).await.unwrap();
    assert_eq!((report.rows, report.last_seq, report.broken), (2, 2, None));

    // The server's retention task (at start-up) drops the 2016 partition:
    // it ended more than the default seven years ago.
    let app = spawn_app_on(dbname, |_| {}).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while owner
        .query_one(
            "SELECT count(*) FROM audit_partitions WHERE name = 'audit_events_2016_03'",
            &[],
        )
        .await
        .unwrap()
        .get::<_, i64>(0)
        > 0
    {
        assert!(
            Instant::now() < deadline,
            "the 2016 partition was not dropped"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(app.get("Patient/new").await.status(), 404);
    let rows = rows_where(&app, "true", 1).await;
    assert_eq!(rows[0].seq, 3);
    let report = baraza::audit::verify::verify(&mut owner).await.unwrap();
    assert_eq!(
        (
            report.rows,
            report.first_seq,
            report.last_seq,
            report.broken
        ),
        (1, 3, 3, None),
        "{report}"
    );
    // Rows dropped one by one are still missed.
    owner
        .batch_execute(
            "SET session_replication_role = replica; DELETE FROM audit_events WHERE seq = 3",
        )
        .await
        .unwrap();
    let report = baraza::audit::verify::verify(&mut owner).await.unwrap();
    assert_eq!(
        report.broken,
        Some((3, baraza::audit::verify::Break::Deleted))
    );
}

#[tokio::test]
async fn audit_a_graceful_stop_writes_every_queued_event() {
    let dbname = fresh_database().await;
    let url = cluster().request_url(&dbname);
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let env = [
        ("BARAZA_DATABASE_URL", url.as_str()),
        ("BARAZA_LISTEN", listen.as_str()),
    ];
    let mut child = baraza(&["serve"], &env)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_ready(port, &mut child).await;
    let client = reqwest::Client::new();
    for i in 0..40 {
        let url = format!("http://{listen}/fhir/Patient/p{i}");
        assert_eq!(client.get(url).send().await.unwrap().status(), 404);
    }
    // SIGTERM right away: the last events are still queued.
    terminate(&child);
    assert!(wait_exit(&mut child, Duration::from_secs(60)).success());
    let db = owner_db(&dbname).await;
    let written: i64 = db
        .query_one("SELECT count(*) FROM audit_events", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(written, 40);
}
