//! `baraza mpi relink` and `baraza mpi train` (issue 6): a relink after a
//! configuration change re-scores the index and rewrites links and golden
//! records, resuming an interrupted job where it stopped; training writes
//! a configuration the server accepts.

use crate::harness::{TestApp, cluster, fresh_database, spawn_app_on, status_json};
use crate::processes::baraza;
use serde_json::{Value, json};

fn patient(id: &str, family: &str) -> Value {
    json!({"resourceType": "Patient", "id": id,
        "name": [{"family": family, "given": ["Achieng"]}], "gender": "female",
        "birthDate": "1987-03-14", "address": [{"city": "Kisumu"}],
        "telecom": [{"system": "phone", "value": "+254 722 555 019"}]})
}

async fn golden(app: &TestApp, id: &str) -> String {
    let (status, body) = status_json(app.get(&format!("Patient/{id}")).await).await;
    assert_eq!(status, 200, "{body}");
    body["link"]
        .as_array()
        .and_then(|links| links.iter().find(|l| l["type"] == "refer"))
        .and_then(|l| l["other"]["reference"].as_str())
        .unwrap_or_default()
        .to_owned()
}

fn run(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let out = baraza(args, env).output().unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[tokio::test]
async fn relink_applies_a_new_configuration_and_resumes_an_interrupted_job() {
    let dbname = fresh_database().await;
    let app = spawn_app_on(dbname.clone(), |s| s.mpi = true).await;
    for (id, family) in [("r1", "Odhiambo"), ("r2", "Odhiambu")] {
        let (status, body) = status_json(
            app.put(&format!("Patient/{id}"), &patient(id, family))
                .await,
        )
        .await;
        assert_eq!(status, 201, "{body}");
    }
    let linked = golden(&app, "r1").await;
    assert_eq!(golden(&app, "r2").await, linked);

    // A stricter configuration: the pair no longer reaches auto_link.
    let mut config = mpi::Config::default();
    config.thresholds.auto_link = 60.0;
    config.thresholds.certain = 80.0;
    let dir = std::env::temp_dir().join(format!("baraza-mpi-cli-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let strict = dir.join("strict.toml");
    std::fs::write(&strict, config.to_toml_string()).unwrap();

    // A job interrupted after r1: running, its cursor at r1.
    let mut owner = baraza::db::connect(&cluster().config(&dbname))
        .await
        .unwrap();
    let tx = owner.transaction().await.unwrap();
    tx.execute("SELECT set_config('baraza.tenant', 'default', true)", &[])
        .await
        .unwrap();
    tx.execute(
        "INSERT INTO mpi_jobs (tenant, id, kind, status, cursor, processed, total) \
         VALUES ('default', 'relink-interrupted', 'relink', 'running', 'r1', 1, 2)",
        &[],
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let db_url = cluster().url(&dbname);
    let strict_path = strict.to_string_lossy().into_owned();
    let env = [
        ("BARAZA_DATABASE_URL", db_url.as_str()),
        ("BARAZA_MPI_CONFIG", strict_path.as_str()),
    ];
    let (ok, stdout, stderr) = run(&["mpi", "relink", "--batch", "1"], &env);
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("resuming relink job relink-interrupted"),
        "{stderr}"
    );
    assert!(stdout.contains("relinked 2 records"), "{stdout}");
    assert_ne!(golden(&app, "r1").await, golden(&app, "r2").await);

    // Run again: a new job over the whole index, which changes nothing.
    let (ok, stdout, stderr) = run(&["mpi", "relink"], &env);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("relinked 2 records") && stdout.contains("0 links changed"),
        "{stdout}"
    );

    // A configuration that does not validate is refused with its problem.
    let broken = dir.join("broken.toml");
    std::fs::write(&broken, "[thresholds]\nauto_link = \"high\"\n").unwrap();
    let broken_path = broken.to_string_lossy().into_owned();
    let (ok, _, stderr) = run(
        &["mpi", "relink"],
        &[
            ("BARAZA_DATABASE_URL", db_url.as_str()),
            ("BARAZA_MPI_CONFIG", broken_path.as_str()),
        ],
    );
    assert!(!ok);
    assert!(stderr.contains("broken.toml"), "{stderr}");

    // Training writes a configuration that loads.
    let trained = dir.join("trained.toml");
    let trained_path = trained.to_string_lossy().into_owned();
    let (ok, _, stderr) = run(
        &["mpi", "train", "--sample", "10", "--out", &trained_path],
        &[("BARAZA_DATABASE_URL", db_url.as_str())],
    );
    assert!(ok, "{stderr}");
    assert!(stderr.contains("iterations"), "{stderr}");
    let text = std::fs::read_to_string(&trained).unwrap();
    mpi::Config::from_toml_str(&text).unwrap();
    std::fs::remove_dir_all(&dir).ok();
}
