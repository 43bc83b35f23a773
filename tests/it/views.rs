//! SQL-on-FHIR ViewDefinitions over HTTP (issue 8): stored views, `$run`
//! in CSV, NDJSON and JSON (inline or stored), and materialisation into
//! the tenant's analytics schema, refreshed on demand and after each
//! write, read by its read-only role, which cannot read the base tables.

use crate::harness::{TestApp, cluster, spawn_app, status_json};
use reqwest::Method;
use serde_json::{Value, json};

fn patient_view() -> Value {
    json!({"resourceType": "ViewDefinition", "name": "patient_demo", "status": "active",
           "resource": "Patient",
           "select": [{"column": [
               {"name": "id", "path": "getResourceKey()", "type": "id"},
               {"name": "gender", "path": "gender", "type": "code"},
               {"name": "birth_date", "path": "birthDate", "type": "date"},
               {"name": "active", "path": "active", "type": "boolean"}]},
             {"forEachOrNull": "name", "column": [{"name": "family", "path": "family", "type": "string"}]}]})
}

async fn patients(app: &TestApp) {
    app.load(&[
        json!({"resourceType": "Patient", "id": "a", "gender": "female", "birthDate": "1980-04-02",
               "active": true, "name": [{"family": "Otieno, \"Jr\""}]}),
        json!({"resourceType": "Patient", "id": "b", "gender": "male"}),
    ])
    .await;
}

/// Stores the Patient view as `ViewDefinition/patients` and materialises
/// it (for other tests' data too).
pub async fn store_and_materialize_patients(app: &TestApp) -> Value {
    let (status, body) =
        status_json(app.put("ViewDefinition/patients", &patient_view()).await).await;
    assert!(status == 201 || status == 200, "{body}");
    let (status, body) = status_json(
        app.request(Method::POST, "ViewDefinition/patients/$materialize")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn run(app: &TestApp, path: &str, body: Option<&Value>) -> (u16, String, String) {
    let request = match body {
        Some(body) => app
            .request(Method::POST, path)
            .header("content-type", "application/fhir+json")
            .body(body.to_string()),
        None => app.request(Method::GET, path),
    };
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, content_type, response.text().await.unwrap())
}

#[tokio::test]
async fn views_are_stored_and_run_as_csv_ndjson_and_json() {
    let app = spawn_app().await;
    patients(&app).await;
    let (status, stored) =
        status_json(app.put("ViewDefinition/patients", &patient_view()).await).await;
    assert_eq!(status, 201, "{stored}");
    assert_eq!(stored["id"], "patients");
    let (status, listed) = status_json(app.get("ViewDefinition").await).await;
    assert_eq!((status, listed["total"].clone()), (200, json!(1)));

    let (status, content_type, csv) =
        run(&app, "ViewDefinition/patients/$run?_format=csv", None).await;
    assert_eq!(status, 200, "{csv}");
    assert!(content_type.starts_with("text/csv"), "{content_type}");
    assert_eq!(
        csv,
        "id,gender,birth_date,active,family\n\
         a,female,1980-04-02,true,\"Otieno, \"\"Jr\"\"\"\n\
         b,male,,,\n"
    );
    let (_, _, ndjson) = run(&app, "ViewDefinition/patients/$run?_format=ndjson", None).await;
    let rows: Vec<Value> = ndjson
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        rows[1],
        json!({"id": "b", "gender": "male", "birth_date": null, "active": null, "family": null})
    );
    let (_, content_type, text) = run(
        &app,
        "ViewDefinition/patients/$run?_format=json&_limit=1",
        None,
    )
    .await;
    assert_eq!(content_type, "application/json");
    let rows: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 1, "_limit");

    // Inline, with inline resources too.
    let inline = json!({"resourceType": "Parameters", "parameter": [
        {"name": "viewResource", "resource": patient_view()},
        {"name": "_format", "valueCode": "csv"},
        {"name": "header", "valueBoolean": false}]});
    let (status, _, csv) = run(&app, "ViewDefinition/$run", Some(&inline)).await;
    assert_eq!(status, 200, "{csv}");
    assert_eq!(csv.lines().count(), 2);
    let mut with_data = inline.clone();
    with_data["parameter"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "resource",
        "resource": {"resourceType": "Patient", "id": "z", "gender": "other"}}));
    let (_, _, csv) = run(&app, "ViewDefinition/$run", Some(&with_data)).await;
    assert_eq!(csv, "z,other,,,\n");

    // A bad view is a 400 naming the element.
    let mut bad = patient_view();
    bad["select"][0]["column"][1]["path"] = json!("gender.(");
    let body = json!({"resourceType": "Parameters", "parameter": [{"name": "viewResource", "resource": bad}]});
    let (status, _, outcome) = run(&app, "ViewDefinition/$run", Some(&body)).await;
    assert_eq!(status, 400, "{outcome}");
    assert!(outcome.contains("select[0].column[1].path"), "{outcome}");
    let mut unnamed = patient_view();
    unnamed["name"] = json!("Not A Table");
    let (status, _) = status_json(app.put("ViewDefinition/other", &unnamed).await).await;
    assert_eq!(status, 400);
    assert_eq!(app.delete("ViewDefinition/patients").await.status(), 204);
    assert_eq!(app.get("ViewDefinition/patients").await.status(), 404);
}

#[tokio::test]
async fn materialised_views_are_tables_the_reader_role_reads_and_nothing_else() {
    let app = spawn_app().await;
    patients(&app).await;
    let report = store_and_materialize_patients(&app).await;
    assert_eq!(
        report["parameter"][0]["valueString"],
        "analytics_default.patient_demo"
    );
    assert_eq!(report["parameter"][1]["valueInteger"], 2);
    let reader = report["parameter"][2]["valueString"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(reader, "analytics_reader_default");

    // An analyst's login, member of the reader role.
    let login = format!("analyst_{}", uuid::Uuid::new_v4().simple());
    let owner = app.db().await;
    owner
        .batch_execute(&format!("CREATE ROLE {login} LOGIN IN ROLE {reader}"))
        .await
        .unwrap();
    let mut config = cluster().config(&app.dbname);
    config.user(&login);
    let analyst = baraza::db::connect(&config).await.unwrap();
    let rows = analyst
        .query("SELECT id, gender, birth_date, active, family FROM analytics_default.patient_demo ORDER BY id", &[])
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].get::<_, Option<bool>>(3), Some(true));
    assert_eq!(
        rows[0].get::<_, Option<String>>(4).as_deref(),
        Some("Otieno, \"Jr\"")
    );
    for forbidden in [
        "SELECT count(*) FROM resources",
        "SELECT count(*) FROM resource_history",
        "SELECT count(*) FROM public.search_token",
        "SELECT count(*) FROM export_chunks",
        "DELETE FROM analytics_default.patient_demo",
        "CREATE TABLE analytics_default.mine (x int)",
    ] {
        let refused = analyst.batch_execute(forbidden).await.unwrap_err();
        assert!(
            refused.to_string().contains("permission denied")
                || refused
                    .as_db_error()
                    .is_some_and(|e| e.code().code() == "42501"),
            "{forbidden}: {refused}"
        );
    }
    // Refreshed on demand: a new patient appears after $materialize.
    app.load(&[json!({"resourceType": "Patient", "id": "c", "gender": "unknown"})])
        .await;
    store_and_materialize_patients(&app).await;
    let n: i64 = analyst
        .query_one("SELECT count(*) FROM analytics_default.patient_demo", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 3);
    // Kept current after writes, in the writes' transactions.
    app.load(&[
        json!({"resourceType": "Patient", "id": "d", "gender": "female"}),
        json!({"resourceType": "Patient", "id": "a", "gender": "other", "name": [{"family": "X"}, {"family": "Y"}]}),
    ])
    .await;
    assert!(app.delete("Patient/b").await.status().is_success());
    let rows: Vec<(String, Option<String>, Option<String>)> = analyst
        .query(
            "SELECT id, gender, family FROM analytics_default.patient_demo ORDER BY id, family",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let expected: Vec<(String, Option<String>, Option<String>)> = [
        ("a", Some("other"), Some("X")),
        ("a", Some("other"), Some("Y")),
        ("c", Some("unknown"), None),
        ("d", Some("female"), None),
    ]
    .iter()
    .map(|(id, g, f)| ((*id).to_owned(), g.map(str::to_owned), f.map(str::to_owned)))
    .collect();
    assert_eq!(rows, expected);
    owner
        .batch_execute(&format!("DROP OWNED BY {login}; DROP ROLE {login}"))
        .await
        .ok();
}

/// Two applications in one process serve different databases with the
/// same tenant names: a view materialised in one must not make the other's
/// writes refresh a table its database does not have (this was a 500).
#[tokio::test]
async fn a_view_materialised_in_one_database_leaves_another_alone() {
    let first = spawn_app().await;
    patients(&first).await;
    let second = spawn_app().await;
    store_and_materialize_patients(&first).await;
    // A write to the first reads its materialised views.
    let (status, body) = status_json(
        first
            .put(
                "Patient/c",
                &json!({"resourceType": "Patient", "id": "c", "gender": "other"}),
            )
            .await,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = status_json(
        second
            .put(
                "Patient/c",
                &json!({"resourceType": "Patient", "id": "c", "gender": "other"}),
            )
            .await,
    )
    .await;
    assert_eq!(status, 201, "{body}");
}
