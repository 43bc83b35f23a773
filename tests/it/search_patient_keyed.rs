//! `_has` on the `patient` parameter answered from token rows keyed by
//! their resource's Patient (`server/src/search/patient_keyed.rs`): the
//! answers agree with the reference rows in every case where the key
//! could go wrong (a Group with a Patient's id, a moved or deleted
//! Observation, a Provenance about two Patients, an absolute URL, `:not`),
//! and rows written before the column existed are keyed by the migration.

use crate::harness::{TestApp, spawn_app};
use serde_json::{Value, json};

fn observation(id: &str, subject: &str, code: &str) -> Value {
    json!({"resourceType": "Observation", "id": id, "status": "final",
           "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
           "subject": {"reference": subject}})
}

async fn has(app: &TestApp, query: &str) -> Vec<String> {
    app.match_ids(&format!("Patient?{query}")).await
}

#[tokio::test]
async fn has_on_patient_follows_the_patient_of_every_source() {
    let app = spawn_app().await;
    let mut resources: Vec<Value> = ["p1", "p2", "p3", "p4", "g1"]
        .iter()
        .map(|id| json!({"resourceType": "Patient", "id": id}))
        .collect();
    resources.push(json!({"resourceType": "Group", "id": "g1", "type": "person", "actual": true}));
    resources.extend([
        observation("o1", "Patient/p1", "4548-4"),
        observation("o2", "Patient/p2", "4548-4"),
        observation("o3", "Patient/p2", "8867-4"),
        // A Group with a Patient's id: not that Patient's Observation.
        observation("o4", "Group/g1", "4548-4"),
        // This server's own absolute URL is a local reference.
        observation("o5", &app.url("/Patient/p3"), "2339-0"),
        // Another server's Patient is nobody here.
        observation("o6", "http://elsewhere.example/fhir/Patient/p4", "2339-0"),
    ]);
    resources.push(json!({"resourceType": "Provenance", "id": "v1",
        "recorded": "2026-11-30T08:00:00Z",
        "target": [{"reference": "Patient/p3"}, {"reference": "Patient/p4"}],
        "agent": [{"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type", "code": "author"}]},
                   "who": {"reference": "Patient/p1"}}]}));
    app.load(&resources).await;

    let hba1c = "_has:Observation:patient:code=http://loinc.org|4548-4";
    assert_eq!(has(&app, hba1c).await, ["p1", "p2"]);
    assert_eq!(
        has(&app, "_has:Observation:patient:code=2339-0").await,
        ["p3"]
    );
    assert_eq!(
        has(&app, "_has:Observation:patient:code=4548-4,8867-4").await,
        ["p1", "p2"]
    );
    assert_eq!(
        has(&app, "_has:Observation:patient:code=http://loinc.org|").await,
        ["p1", "p2", "p3"]
    );
    // `:not` is about each source, not keyed: an Observation of another code.
    assert_eq!(
        has(&app, "_has:Observation:patient:code:not=4548-4").await,
        ["p2", "p3"]
    );
    // Provenance refers to two Patients by `patient`: both are found.
    assert_eq!(
        has(&app, "_has:Provenance:patient:agent-type=author").await,
        ["p3", "p4"]
    );
    // Combined with another `_has` and with a criterion on the Patient.
    assert_eq!(
        has(
            &app,
            &format!("{hba1c}&_has:Observation:patient:code=8867-4")
        )
        .await,
        ["p2"]
    );
    assert_eq!(has(&app, &format!("{hba1c}&_id=p2,p3")).await, ["p2"]);
    // Nested: Patients with an HbA1c whose Observations have a Provenance.
    assert_eq!(
        has(&app, "_has:Observation:patient:code=8867-4&_has:Observation:patient:_has:Provenance:target:agent-type=author").await,
        Vec::<String>::new()
    );

    // The Observation moves to another Patient, then is deleted.
    app.load(&[observation("o1", "Patient/p4", "4548-4")]).await;
    assert_eq!(has(&app, hba1c).await, ["p2", "p4"]);
    assert!(app.delete("Observation/o2").await.status().is_success());
    assert_eq!(has(&app, hba1c).await, ["p4"]);
    // A subject that is no longer a Patient.
    app.load(&[observation("o1", "Group/g1", "4548-4")]).await;
    assert_eq!(has(&app, hba1c).await, Vec::<String>::new());

    // Only the one-Patient types' rows are keyed.
    let db = app.db().await;
    let keyed = |sql: &str| {
        let db = &db;
        let sql = sql.to_owned();
        async move { db.query_one(&sql, &[]).await.unwrap().get::<_, i64>(0) }
    };
    assert_eq!(
        keyed("SELECT count(*) FROM search_token WHERE res_type = 'Provenance' AND patient IS NOT NULL").await,
        0
    );
    assert!(
        keyed("SELECT count(*) FROM search_token WHERE res_id = 'o3' AND patient = 'p2'").await > 0
    );
    assert_eq!(
        keyed(
            "SELECT count(*) FROM search_token WHERE res_id IN ('o1', 'o6') AND patient IS NOT NULL"
        )
        .await,
        0
    );
}

/// Rows written before the column existed have it empty; the migration
/// keys them (run again here, as it is idempotent), and searches agree.
#[tokio::test]
async fn the_migration_keys_rows_written_before_it() {
    let app = spawn_app().await;
    let mut resources: Vec<Value> = (0..6)
        .map(|i| json!({"resourceType": "Patient", "id": format!("p{i}")}))
        .collect();
    for i in 0..6 {
        let code = if i % 2 == 0 { "4548-4" } else { "8867-4" };
        resources.push(observation(
            &format!("o{i}"),
            &format!("Patient/p{i}"),
            code,
        ));
        resources.push(json!({"resourceType": "Encounter", "id": format!("e{i}"),
            "status": "finished", "class": {"code": "AMB"},
            "subject": {"reference": format!("Patient/p{i}")}}));
    }
    app.load(&resources).await;
    let keyed_rows = "SELECT count(*) FROM search_token WHERE patient IS NOT NULL";
    let db = app.db().await;
    let before: i64 = db.query_one(keyed_rows, &[]).await.unwrap().get(0);
    assert!(before >= 12, "{before}");
    db.batch_execute(
        "BEGIN; SELECT set_config('baraza.tenant', 'default', true); \
         UPDATE search_token SET patient = NULL; COMMIT",
    )
    .await
    .unwrap();
    assert_eq!(
        has(&app, "_has:Observation:patient:code=4548-4").await,
        Vec::<String>::new()
    );

    let migration = include_str!("../../migrations/V38__search_token_patient.sql");
    db.batch_execute(&format!("BEGIN; {migration} COMMIT;"))
        .await
        .unwrap();
    let after: i64 = db.query_one(keyed_rows, &[]).await.unwrap().get(0);
    assert_eq!(after, before);
    assert_eq!(
        has(&app, "_has:Observation:patient:code=4548-4").await,
        ["p0", "p2", "p4"]
    );
    assert_eq!(
        has(&app, "_has:Encounter:patient:class=AMB").await,
        ["p0", "p1", "p2", "p3", "p4", "p5"]
    );
}
