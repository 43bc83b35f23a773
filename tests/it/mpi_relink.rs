//! `Patient/$mpi-relink` (issue 6): the whole index re-scored as a
//! server background job with progress; the job runs on the one instance
//! holding its lease and moves to another when its holder dies; only
//! tenant administrators start it.

use crate::harness::{TestApp, cluster, fresh_database, spawn_app_on, status_json};
use crate::mpi_http::{call, golden_of, secured_app};
use crate::oidc::OidcProvider;
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

fn patient(id: &str, family: &str) -> Value {
    json!({"resourceType": "Patient", "id": id,
        "name": [{"family": family, "given": ["Achieng"]}], "gender": "female",
        "birthDate": "1987-03-14", "address": [{"city": "Kisumu"}],
        "telecom": [{"system": "phone", "value": "+254 722 555 019"}]})
}

/// A Parameters' primitive value by name (Null when absent).
fn value(parameters: &Value, name: &str) -> Value {
    parameters["parameter"]
        .as_array()
        .and_then(|all| all.iter().find(|p| p["name"] == name))
        .and_then(|p| {
            ["valueString", "valueCode", "valueInteger"]
                .iter()
                .find_map(|k| p.get(*k))
        })
        .cloned()
        .unwrap_or(Value::Null)
}

async fn golden(app: &TestApp, id: &str) -> Option<String> {
    let (status, body) = status_json(app.get(&format!("Patient/{id}")).await).await;
    assert_eq!(status, 200, "{body}");
    golden_of(&body)
}

/// Polls a job until it is no longer running.
async fn finished(app: &TestApp, job: &str) -> Value {
    for _ in 0..300 {
        let (status, progress) =
            status_json(app.get(&format!("Patient/$mpi-relink?job={job}")).await).await;
        assert_eq!(status, 200, "{progress}");
        if value(&progress, "status") != "running" {
            return progress;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the relink job {job} did not finish");
}

/// A stricter configuration, under which the two Achieng records are
/// two people.
fn strict_config() -> std::path::PathBuf {
    let mut config = mpi::Config::default();
    config.thresholds.auto_link = 60.0;
    config.thresholds.certain = 80.0;
    let path = std::env::temp_dir().join(format!("baraza-relink-{}.toml", uuid::Uuid::new_v4()));
    std::fs::write(&path, config.to_toml_string()).unwrap();
    path
}

#[tokio::test]
async fn relink_runs_as_a_background_job_with_progress() {
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
    assert_eq!(golden(&app, "r1").await, golden(&app, "r2").await);

    // The configuration changes: a server with the new one relinks.
    let strict = strict_config();
    let path = strict.clone();
    let strict_app = spawn_app_on(dbname, move |s| {
        s.mpi = true;
        s.mpi_config = Some(path);
    })
    .await;
    let start =
        json!({"resourceType": "Parameters", "parameter": [{"name": "batch", "valueInteger": 1}]});
    let response = strict_app.post("Patient/$mpi-relink", &start).await;
    let location = response
        .headers()
        .get("content-location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let (status, started) = status_json(response).await;
    assert_eq!(status, 202, "{started}");
    let job = value(&started, "job").as_str().unwrap().to_owned();
    assert!(
        location.ends_with(&format!("Patient/$mpi-relink?job={job}")),
        "{location}"
    );
    assert_eq!(value(&started, "total"), 2);
    let done = finished(&strict_app, &job).await;
    assert_eq!(value(&done, "status"), "done", "{done}");
    assert_eq!(value(&done, "processed"), 2);
    assert!(value(&done, "changed").as_i64().unwrap() >= 1, "{done}");
    assert_ne!(
        golden(&strict_app, "r1").await,
        golden(&strict_app, "r2").await
    );

    // Without `job`: the latest job. Again: nothing changes.
    let (status, latest) = status_json(strict_app.get("Patient/$mpi-relink").await).await;
    assert_eq!(status, 200);
    assert_eq!(value(&latest, "job"), job.as_str());
    let (status, again) = status_json(
        strict_app
            .post(
                "Patient/$mpi-relink",
                &json!({"resourceType": "Parameters"}),
            )
            .await,
    )
    .await;
    assert_eq!(status, 202, "{again}");
    let again_job = value(&again, "job").as_str().unwrap().to_owned();
    let again = finished(&strict_app, &again_job).await;
    assert_eq!(value(&again, "changed"), 0, "{again}");

    // Client mistakes are OperationOutcomes naming the parameter.
    let zero =
        json!({"resourceType": "Parameters", "parameter": [{"name": "batch", "valueInteger": 0}]});
    let (status, outcome) = status_json(strict_app.post("Patient/$mpi-relink", &zero).await).await;
    assert_eq!(status, 400, "{outcome}");
    assert_eq!(outcome["issue"][0]["expression"][0], "batch");
    let (status, outcome) =
        status_json(strict_app.get("Patient/$mpi-relink?job=no-such-job").await).await;
    assert_eq!(status, 404, "{outcome}");
    std::fs::remove_file(strict).ok();
}

/// Runs SQL as the database owner in the default tenant.
async fn as_owner(dbname: &str, sql: &str) {
    let mut owner = baraza::db::connect(&cluster().config(dbname))
        .await
        .unwrap();
    let tx = owner.transaction().await.unwrap();
    tx.execute("SELECT set_config('baraza.tenant', 'default', true)", &[])
        .await
        .unwrap();
    tx.batch_execute(sql).await.unwrap();
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn a_relink_job_runs_on_one_instance_and_moves_when_its_holder_dies() {
    let dbname = fresh_database().await;
    let app = spawn_app_on(dbname.clone(), |s| {
        s.mpi = true;
        s.events.lease = Duration::from_millis(400);
    })
    .await;
    for (id, family) in [("r1", "Odhiambo"), ("r2", "Odhiambu"), ("r3", "Otieno")] {
        let (status, _) = status_json(
            app.put(&format!("Patient/{id}"), &patient(id, family))
                .await,
        )
        .await;
        assert_eq!(status, 201);
    }
    // A job another, live instance holds: this one leaves it alone.
    as_owner(
        &dbname,
        "INSERT INTO mpi_jobs (tenant, id, kind, status, total, batch, leased_by, lease_until) \
         VALUES ('default', 'relink-elsewhere', 'relink', 'running', 3, 1, 'other-instance', \
                 now() + interval '1 hour')",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (_, progress) =
        status_json(app.get("Patient/$mpi-relink?job=relink-elsewhere").await).await;
    assert_eq!(value(&progress, "status"), "running", "{progress}");
    assert_eq!(value(&progress, "processed"), 0, "{progress}");
    assert_eq!(value(&progress, "instance"), "other-instance");
    // One relink at a time.
    let (status, outcome) = status_json(
        app.post(
            "Patient/$mpi-relink",
            &json!({"resourceType": "Parameters"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 409, "{outcome}");

    // Its holder dies: the lease runs out and this instance adopts the
    // job, resuming from its cursor.
    as_owner(
        &dbname,
        "UPDATE mpi_jobs SET lease_until = now() - interval '1 second', cursor = 'r1', processed = 1 \
         WHERE id = 'relink-elsewhere'",
    )
    .await;
    let done = finished(&app, "relink-elsewhere").await;
    assert_eq!(value(&done, "status"), "done", "{done}");
    assert_eq!(value(&done, "processed"), 3, "{done}");
    assert_eq!(value(&done, "instance"), Value::Null);
}

#[tokio::test]
async fn only_tenant_administrators_start_a_relink() {
    let provider = OidcProvider::start().await;
    let app = secured_app(&provider).await;
    let integrator = provider.token("integrator-a").await;
    let admin = provider.token("admin-client").await;
    let body = json!({"resourceType": "Parameters"});
    let (status, outcome) = call(
        &app,
        Some(&integrator),
        Method::POST,
        "acme/Patient/$mpi-relink",
        Some(&body),
    )
    .await;
    assert_eq!(status, 403, "{outcome}");
    let (status, started) = call(
        &app,
        Some(&admin),
        Method::POST,
        "acme/Patient/$mpi-relink",
        Some(&body),
    )
    .await;
    assert_eq!(status, 202, "{started}");
}
