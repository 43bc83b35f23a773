//! `$expunge` and retention policies (issue 8): hard deletion leaves no
//! trace in any table (the test reads every column of every table the
//! information schema lists), the audit trail keeps that it happened but
//! not what was deleted, and only the `$expunge` permission may do it.

use crate::harness::{TestApp, spawn_app, spawn_app_with, status_json};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Where `needle` occurs in the test database: `table.column` of every
/// text-like column of every table (the audit trail aside), in every
/// schema but the system ones.
async fn occurrences(app: &TestApp, needle: &str) -> Vec<String> {
    let db = app.db().await;
    let columns = db
        .query(
            "SELECT c.table_schema, c.table_name, c.column_name, c.data_type FROM information_schema.columns c \
             JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name \
             WHERE t.table_type = 'BASE TABLE' \
             AND c.table_schema NOT IN ('pg_catalog', 'information_schema') \
             AND c.table_name NOT LIKE 'audit\\_events%' \
             AND c.data_type IN ('text', 'json', 'jsonb', 'bytea', 'ARRAY', 'character varying')",
            &[],
        )
        .await
        .unwrap();
    assert!(columns.len() > 50, "the scan reads every table");
    let mut found = Vec::new();
    for column in columns {
        let (schema, table, name, data_type): (String, String, String, String) =
            (column.get(0), column.get(1), column.get(2), column.get(3));
        let test = if data_type == "bytea" {
            format!("position(convert_to($1, 'UTF8') IN \"{name}\") > 0")
        } else {
            format!("\"{name}\"::text LIKE '%' || $1 || '%'")
        };
        let sql = format!("SELECT count(*) FROM \"{schema}\".\"{table}\" WHERE {test}");
        let n: i64 = db.query_one(&sql, &[&needle]).await.unwrap().get(0);
        if n > 0 {
            found.push(format!("{schema}.{table}.{name}"));
        }
    }
    found
}

async fn post(app: &TestApp, path: &str) -> (u16, Value) {
    status_json(app.request(Method::POST, path).send().await.unwrap()).await
}

const MARKER: &str = "Zebrafinch-4d1e";

#[tokio::test]
async fn expunging_a_patients_compartment_leaves_no_trace_in_any_table() {
    let app = spawn_app().await;
    let patient = json!({"resourceType": "Patient", "id": "erase-me-4d1e",
        "name": [{"family": MARKER}], "identifier": [{"system": "urn:x", "value": "mrn-4d1e"}]});
    app.load(&[
        patient.clone(),
        json!({"resourceType": "Observation", "id": "erase-obs-4d1e-a", "status": "final",
               "code": {"text": "x"}, "subject": {"reference": "Patient/erase-me-4d1e"}}),
        json!({"resourceType": "Observation", "id": "erase-obs-4d1e-b", "status": "final",
               "code": {"text": "x"}, "subject": {"reference": "Patient/erase-me-4d1e"}}),
        json!({"resourceType": "Patient", "id": "keep-me"}),
        json!({"resourceType": "Observation", "id": "keep-obs", "status": "final",
               "code": {"text": "x"}, "subject": {"reference": "Patient/keep-me"}}),
    ])
    .await;
    // A second version, and a deleted compartment member (no index rows).
    app.put("Patient/erase-me-4d1e", &patient).await;
    assert!(
        app.delete("Observation/erase-obs-4d1e-b")
            .await
            .status()
            .is_success()
    );
    // MPI rows of the patient, as the MPI keeps them.
    let owner = app.db().await;
    owner
        .batch_execute(
            "INSERT INTO mpi_records (tenant, patient_id, source, patient, keys) \
               VALUES ('default', 'erase-me-4d1e', 'test', '{\"name\": \"Zebrafinch-4d1e\"}', '{k1}'); \
             INSERT INTO mpi_block_keys VALUES ('default', 'k1', 'erase-me-4d1e'); \
             INSERT INTO mpi_goldens (tenant, golden_id, founder, generation) VALUES ('default', 'golden-1', 'erase-me-4d1e', 0); \
             INSERT INTO mpi_links (tenant, patient_id, golden_id, kind, rule, decided_by) \
               VALUES ('default', 'erase-me-4d1e', 'golden-1', 'auto', 'r', 'test'); \
             INSERT INTO mpi_link_log (tenant, patient_id, golden_after, action, rule, actor) \
               VALUES ('default', 'erase-me-4d1e', 'golden-1', 'link', 'r', 'test'); \
             INSERT INTO mpi_review (tenant, a, b, score, comparison, reason) \
               VALUES ('default', 'erase-me-4d1e', 'keep-me', 1, '{}', 'test')",
        )
        .await
        .unwrap();
    // An export holding the patient, and a materialised view of Patients.
    let url = crate::bulk_export::kick_off(
        &app,
        None,
        Method::GET,
        "$export?_type=Patient,Observation",
        None,
    )
    .await;
    crate::bulk_export::manifest(&app, None, &url).await;
    crate::views::store_and_materialize_patients(&app).await;
    for needle in ["erase-me-4d1e", "erase-obs-4d1e", MARKER] {
        assert!(
            !occurrences(&app, needle).await.is_empty(),
            "{needle} is stored before"
        );
    }

    let (status, body) = post(&app, "Patient/erase-me-4d1e/$expunge?compartment=true").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["parameter"][0],
        json!({"name": "total", "valueInteger": 3}),
        "{body}"
    );

    for needle in ["erase-me-4d1e", "erase-obs-4d1e", "mrn-4d1e", MARKER] {
        assert_eq!(
            occurrences(&app, needle).await,
            Vec::<String>::new(),
            "{needle} remains"
        );
    }
    assert_eq!(
        app.get("Patient/erase-me-4d1e").await.status(),
        404,
        "not even a deletion"
    );
    assert_eq!(
        app.get("Patient/erase-me-4d1e/_history").await.status(),
        404
    );
    assert_eq!(app.get("Patient/keep-me").await.status(), 200);
    assert_eq!(app.get("Observation/keep-obs").await.status(), 200);
    // The audit trail says that it happened, and nothing of the content.
    let rows = crate::audit::rows_where(
        &app,
        "subtype = 'operation' AND event::text LIKE '%$expunge%' AND 'erase-me-4d1e' = ANY(patients)",
        1,
    )
    .await;
    assert_eq!(rows[0].outcome, 0);
    let audit = app.db().await;
    let n: i64 = audit
        .query_one(
            "SELECT count(*) FROM audit_events WHERE event::text LIKE '%' || $1 || '%'",
            &[&MARKER],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0, "the audit holds no deleted content");
}

#[tokio::test]
async fn expunge_removes_one_resource_or_everything_older_than_a_date() {
    let app = spawn_app().await;
    app.load(&[
        json!({"resourceType": "Observation", "id": "one", "status": "final", "code": {"text": "x"}}),
        json!({"resourceType": "Observation", "id": "two", "status": "final", "code": {"text": "x"}}),
        json!({"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/x"}}),
        json!({"resourceType": "CodeSystem", "id": "cs-4d1e", "url": "http://example.org/cs-4d1e",
               "status": "active", "content": "complete", "concept": [{"code": "a-4d1e"}]}),
    ])
    .await;
    let (status, body) = post(&app, "Observation/one/$expunge").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(app.get("Observation/one").await.status(), 404);
    let db = app.db().await;
    for table in ["resource_history", "resources"] {
        let n: i64 = db
            .query_one(
                &format!("SELECT count(*) FROM {table} WHERE id = 'one'"),
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, 0, "{table}");
    }
    let n: i64 = db
        .query_one(
            "SELECT count(*) FROM search_token WHERE res_id = 'one'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0, "index rows");
    let (status, _) = post(&app, "Observation/one/$expunge").await;
    assert_eq!(status, 404, "nothing left to expunge");
    let (status, body) = post(&app, "CodeSystem/cs-4d1e/$expunge").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        occurrences(&app, "cs-4d1e").await,
        Vec::<String>::new(),
        "terminology rows too"
    );

    let (status, _) = post(&app, "Observation/$expunge").await;
    assert_eq!(status, 400, "a type-level expunge needs before");
    let (status, body) = post(&app, "Observation/$expunge?before=2000-01-01").await;
    assert_eq!(status, 200);
    assert_eq!(body["parameter"][0]["valueInteger"], 0, "nothing that old");
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1))
        .format("%Y-%m-%d")
        .to_string();
    let (status, body) = post(
        &app,
        &format!("$expunge?before={tomorrow}&_type=Observation,Condition"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["parameter"][0]["valueInteger"], 2, "{body}");
    assert_eq!(app.count_rows("resources").await, 0);
}

/// Makes every resource of `resource_type` look `days` old.
async fn age(app: &TestApp, resource_type: &str, days: i32) {
    app.db()
        .await
        .execute(
            "UPDATE resources SET last_updated = now() - make_interval(days => $2) WHERE res_type = $1",
            &[&resource_type, &days],
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn retention_policies_expunge_what_is_older_and_report_it() {
    let app = spawn_app_with(|s| s.retention_interval_secs = 1).await;
    app.load(&[
        json!({"resourceType": "Observation", "id": "old", "status": "final", "code": {"text": "x"}}),
        json!({"resourceType": "Observation", "id": "new", "status": "final", "code": {"text": "x"}}),
        json!({"resourceType": "Encounter", "id": "enc", "status": "finished", "class": {"code": "AMB"}}),
    ])
    .await;
    age(&app, "Observation", 0).await;
    app.db()
        .await
        .execute(
            "UPDATE resources SET last_updated = now() - interval '40 days' WHERE id = 'old'",
            &[],
        )
        .await
        .unwrap();
    age(&app, "Encounter", 400).await;
    let policies = json!({"resourceType": "Parameters", "parameter": [
        {"name": "policy", "part": [{"name": "type", "valueCode": "Observation"}, {"name": "days", "valueInteger": 30}]}]});
    let (status, body) = status_json(app.post("$retention", &policies).await).await;
    assert_eq!(status, 200, "{body}");
    // The scheduled job runs it within a few seconds.
    let deadline = Instant::now() + Duration::from_secs(15);
    while app.get("Observation/old").await.status() != 404 {
        assert!(Instant::now() < deadline, "the retention job did not run");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(app.get("Observation/new").await.status(), 200);
    assert_eq!(
        app.get("Encounter/enc").await.status(),
        200,
        "no policy for Encounter"
    );
    let (status, report) = status_json(app.get("$retention").await).await;
    assert_eq!(status, 200);
    let runs: Vec<&Value> = report["parameter"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"] == "run")
        .collect();
    assert!(
        runs.iter().any(|run| run["part"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == &json!({"name": "Observation", "valueInteger": 1}))),
        "a run reports what it removed: {report}"
    );
    // run=true runs the policies at once.
    let policies = json!({"resourceType": "Parameters", "parameter": [
        {"name": "policy", "part": [{"name": "type", "valueCode": "Encounter"}, {"name": "days", "valueInteger": 365}]},
        {"name": "run", "valueBoolean": true}]});
    let (status, body) = status_json(app.post("$retention", &policies).await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(app.get("Encounter/enc").await.status(), 404);
    assert_eq!(
        app.get("Observation/new").await.status(),
        200,
        "the new policies replaced the old"
    );
}

#[tokio::test]
async fn expunge_needs_its_permission() {
    let provider = crate::oidc::OidcProvider::start().await;
    let settings = provider.settings();
    let app = spawn_app_with(move |s| s.oidc = Some(settings)).await;
    let admin = provider.token("admin-client").await;
    let response = app
        .request(Method::PUT, "Patient/p1")
        .bearer_auth(&admin)
        .header("content-type", "application/fhir+json")
        .body(json!({"resourceType": "Patient", "id": "p1"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    for client in ["readonly-client", "clinician-client"] {
        let token = provider.token(client).await;
        let response = app
            .request(Method::POST, "Patient/p1/$expunge")
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{client}");
    }
    let response = app
        .request(Method::POST, "Patient/p1/$expunge")
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "tenant-admin has every purpose");
}
