//! The audit trail: one AuditEvent per request (reads, searches, writes,
//! failures, refusals, batch entries) with the expected who, action,
//! entities, patients and outcome, and AuditEvent search. The chain's
//! verification and retention are in `audit_chain`.

use crate::harness::{TestApp, cluster, spawn_app, spawn_app_with, status_json};
use crate::oidc::OidcProvider;
use base64::Engine;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// One row of audit_events, as the tests look at it.
#[derive(Debug)]
pub struct AuditRow {
    pub seq: i64,
    pub tenant: String,
    pub action: String,
    pub subtype: String,
    pub outcome: i16,
    pub agents: Vec<String>,
    pub patients: Vec<String>,
    pub entities: Vec<String>,
    pub event: Value,
}

/// A connection to the test's database as the owner, seeing every
/// tenant's audit rows.
pub async fn owner_db(app_db: &str) -> tokio_postgres::Client {
    let db = baraza::db::connect(&cluster().config(app_db))
        .await
        .unwrap();
    db.execute("SELECT set_config('baraza.audit_scope', 'all', false)", &[])
        .await
        .unwrap();
    db
}

/// Waits (the writer is asynchronous) until `n` rows match `filter`, a
/// condition on audit_events, and returns them in sequence order.
pub async fn rows_where(app: &TestApp, filter: &str, n: usize) -> Vec<AuditRow> {
    let db = owner_db(&app.dbname).await;
    let sql = format!(
        "SELECT seq, tenant, action, subtype, outcome, agents, patients, entities, event::text \
         FROM audit_events WHERE {filter} ORDER BY seq"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let rows = db.query(&sql, &[]).await.unwrap();
        if rows.len() >= n || Instant::now() > deadline {
            assert_eq!(rows.len(), n, "audit rows where {filter}");
            return rows
                .iter()
                .map(|r| AuditRow {
                    seq: r.get(0),
                    tenant: r.get(1),
                    action: r.get(2),
                    subtype: r.get(3),
                    outcome: r.get(4),
                    agents: r.get(5),
                    patients: r.get(6),
                    entities: r.get(7),
                    event: serde_json::from_str(r.get::<_, &str>(8)).unwrap(),
                })
                .collect();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The one row matching `filter`.
async fn row_where(app: &TestApp, filter: &str) -> AuditRow {
    rows_where(app, filter, 1).await.remove(0)
}

/// (action, subtype, outcome, entities, patients) of a row.
fn summary(row: &AuditRow) -> (&str, &str, i16, Vec<&str>, Vec<&str>) {
    (
        row.action.as_str(),
        row.subtype.as_str(),
        row.outcome,
        row.entities.iter().map(String::as_str).collect(),
        row.patients.iter().map(String::as_str).collect(),
    )
}

fn observation(id: &str, patient: &str) -> Value {
    json!({
        "resourceType": "Observation", "id": id, "status": "final",
        "code": {"text": "weight"}, "subject": {"reference": format!("Patient/{patient}")},
        "valueQuantity": {"value": 71.5, "unit": "kg"},
    })
}

#[tokio::test]
async fn audit_read_search_and_write_each_record_their_event() {
    let app = spawn_app().await;
    let patient = json!({"resourceType": "Patient", "id": "p1", "name": [{"family": "Wanjiku"}]});
    assert_eq!(app.put("Patient/p1", &patient).await.status(), 201);
    let created = app.create(&observation("ignored", "p1")).await;
    let obs = created["id"].as_str().unwrap().to_owned();
    assert_eq!(app.get(&format!("Observation/{obs}")).await.status(), 200);
    let (status, bundle) = status_json(
        app.get("Observation?subject=Patient/p1&_include=Observation:subject")
            .await,
    )
    .await;
    assert_eq!(status, 200, "{bundle}");

    // PUT to a new id creates: audited as a creation. A Patient that is
    // among the patients is indexed there, not among the entities too.
    let put = row_where(&app, "subtype = 'update'").await;
    assert_eq!(summary(&put), ("C", "update", 0, vec![], vec!["p1"]));
    let post = row_where(&app, "subtype = 'create'").await;
    let obs_ref = format!("Observation/{obs}");
    assert_eq!(
        summary(&post),
        ("C", "create", 0, vec![obs_ref.as_str()], vec!["p1"])
    );
    let read = row_where(&app, "subtype = 'read'").await;
    assert_eq!(
        summary(&read),
        ("R", "read", 0, vec![obs_ref.as_str()], vec!["p1"])
    );
    let search = row_where(&app, "subtype = 'search-type'").await;
    assert_eq!(
        summary(&search),
        ("E", "search-type", 0, vec![obs_ref.as_str()], vec!["p1"])
    );
    for row in [&put, &post, &read, &search] {
        assert_eq!(row.tenant, "default");
        // Authentication is off: no agent to index.
        assert!(row.agents.is_empty(), "{:?}", row.agents);
    }

    // The AuditEvent itself, BALP style.
    let event = &read.event;
    assert_eq!(event["resourceType"], "AuditEvent");
    assert_eq!(event["id"], read.seq.to_string());
    assert_eq!(event["type"]["code"], "rest");
    assert_eq!(event["subtype"][0]["code"], "read");
    assert_eq!(event["action"], "R");
    assert_eq!(event["outcome"], "0");
    assert_eq!(event["source"]["site"], "default");
    assert_eq!(event["agent"][0]["network"]["address"], "127.0.0.1");
    assert_eq!(event["agent"][0]["requestor"], true);
    let references: Vec<&str> = event["entity"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["what"]["reference"].as_str())
        .collect();
    let versioned = format!("{obs_ref}/_history/1");
    assert_eq!(references, ["Patient/p1", versioned.as_str()]);
    assert!(event["recorded"].as_str().is_some() && event["period"]["start"].is_string());
    // A search records its query (base64, as BALP does).
    let query = search.event["entity"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["role"]["code"] == "24")
        .and_then(|e| e["query"].as_str())
        .unwrap();
    let query = base64::engine::general_purpose::STANDARD
        .decode(query)
        .unwrap();
    assert_eq!(
        String::from_utf8(query).unwrap(),
        "subject=Patient%2Fp1&_include=Observation%3Asubject"
    );
    // No body reaches the audit trail.
    for row in [&put, &post, &read, &search] {
        let text = row.event.to_string();
        assert!(
            !text.contains("Wanjiku") && !text.contains("71.5"),
            "{text}"
        );
    }
}

#[tokio::test]
async fn audit_failed_requests_record_a_failure_outcome() {
    let app = spawn_app().await;
    assert_eq!(app.get("Patient/missing").await.status(), 404);
    let strict = app.get_strict("Patient?birthdate=not-a-date").await;
    assert_eq!(strict.status(), 400);
    let write = app
        .put("AuditEvent/1", &json!({"resourceType": "AuditEvent"}))
        .await;
    assert_eq!(write.status(), 405);
    assert_eq!(app.get("Unknowntype/1").await.status(), 404);

    let missing = row_where(&app, "subtype = 'read' AND 'missing' = ANY(patients)").await;
    assert_eq!(summary(&missing), ("R", "read", 4, vec![], vec!["missing"]));
    assert_eq!(missing.event["outcome"], "4");
    assert_eq!(missing.event["outcomeDesc"], "HTTP 404");
    let invalid = row_where(&app, "subtype = 'search-type'").await;
    assert_eq!(summary(&invalid), ("E", "search-type", 4, vec![], vec![]));
    let refused = row_where(&app, "subtype = 'update'").await;
    assert_eq!(summary(&refused), ("U", "update", 4, vec![], vec![]));
    let unknown = row_where(&app, "subtype = 'read' AND patients = '{}'").await;
    assert_eq!(unknown.outcome, 4);
    // The CapabilityStatement is public and not audited.
    assert_eq!(app.get("metadata").await.status(), 200);
    assert_eq!(app.get("Patient/missing").await.status(), 404);
    rows_where(&app, "true", 5).await;
}

#[tokio::test]
async fn audit_batch_entries_are_audited_one_by_one() {
    let app = spawn_app().await;
    app.load(&[json!({"resourceType": "Patient", "id": "p1"})])
        .await;
    let batch = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": "Patient/p1"}},
        {"request": {"method": "GET", "url": "Patient/nobody"}},
    ]});
    let (status, body) = status_json(app.post("", &batch).await).await;
    assert_eq!(status, 200, "{body}");
    let transaction = row_where(&app, "subtype = 'transaction'").await;
    assert_eq!(
        summary(&transaction),
        ("E", "transaction", 0, vec![], vec!["p1"])
    );
    let container = row_where(&app, "subtype = 'batch'").await;
    assert_eq!(summary(&container), ("E", "batch", 0, vec![], vec![]));
    let reads = rows_where(&app, "subtype = 'read'", 2).await;
    assert_eq!(summary(&reads[0]), ("R", "read", 0, vec![], vec!["p1"]));
    assert_eq!(summary(&reads[1]), ("R", "read", 4, vec![], vec!["nobody"]));
}

/// The `Type/id` of each AuditEvent entry's entities, per entry.
async fn audit_search(app: &TestApp, query: &str) -> (Value, Vec<Value>) {
    let (status, bundle) = status_json(app.get_strict(&format!("AuditEvent?{query}")).await).await;
    assert_eq!(status, 200, "{query}: {bundle}");
    let events = bundle["entry"]
        .as_array()
        .map(|entries| entries.iter().map(|e| e["resource"].clone()).collect())
        .unwrap_or_default();
    (bundle, events)
}

fn subtypes(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["subtype"][0]["code"].as_str().unwrap_or("").to_owned())
        .collect()
}

#[tokio::test]
async fn audit_events_are_searched_by_patient_entity_date_and_action() {
    let app = spawn_app().await;
    for id in ["a", "b"] {
        let patient = json!({"resourceType": "Patient", "id": id});
        assert_eq!(
            app.put(&format!("Patient/{id}"), &patient).await.status(),
            201
        );
    }
    for path in ["Patient/a", "Patient/a", "Patient/b"] {
        assert_eq!(app.get(path).await.status(), 200);
    }
    let rows = rows_where(&app, "true", 5).await;

    // Who touched patient a: its creation and two reads, newest first.
    let (_, events) = audit_search(&app, "patient=Patient/a").await;
    assert_eq!(subtypes(&events), ["read", "read", "update"]);
    let (_, events) = audit_search(&app, "patient=a&action=R").await;
    assert_eq!(events.len(), 2);
    let (_, events) = audit_search(&app, "entity=Patient/b").await;
    assert_eq!(subtypes(&events), ["read", "update"]);
    // A Patient is also an entity (role Patient) of what was read about it.
    let created = app.create(&observation("ignored", "b")).await;
    let obs = created["id"].as_str().unwrap().to_owned();
    assert_eq!(app.get(&format!("Observation/{obs}")).await.status(), 200);
    row_where(
        &app,
        &format!("subtype = 'read' AND entities = '{{Observation/{obs}}}'"),
    )
    .await;
    let (_, events) = audit_search(&app, "entity=Patient/b").await;
    assert_eq!(subtypes(&events), ["read", "create", "read", "update"]);
    let (_, events) = audit_search(&app, &format!("entity=Observation/{obs}")).await;
    assert_eq!(subtypes(&events), ["read", "create"]);
    let (_, events) = audit_search(&app, &format!("entity=Observation/{obs},Patient/a")).await;
    assert_eq!(
        subtypes(&events),
        ["read", "create", "read", "read", "update"]
    );
    let (_, events) = audit_search(&app, "patient=b,a&action=C").await;
    assert_eq!(events.len(), 3);
    let (_, events) = audit_search(&app, "outcome=4").await;
    assert!(events.is_empty());
    let (_, events) = audit_search(&app, "agent=alice").await;
    assert!(events.is_empty());

    // Dates, with prefixes, on the recorded instant.
    let recorded = rows[0].event["recorded"].as_str().unwrap().to_owned();
    let day = &recorded[..10];
    let (_, events) = audit_search(&app, &format!("date={day}&patient=a")).await;
    assert_eq!(events.len(), 3);
    let (_, events) = audit_search(&app, &format!("date=ge{day}&date=lt2999&patient=a")).await;
    assert_eq!(events.len(), 3);
    let (_, events) = audit_search(&app, "date=lt2000-01-01").await;
    assert!(events.is_empty());
    let (_, events) = audit_search(&app, &format!("date=gt{day}")).await;
    assert!(events.is_empty());
    let (_, events) = audit_search(&app, &format!("date=ap{recorded}&patient=a")).await;
    assert!(!events.is_empty());

    // Paging: two per page, then the rest through the next link.
    let (bundle, first) = audit_search(&app, "patient=a&_count=2").await;
    assert_eq!(first.len(), 2);
    let next = bundle["link"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["relation"] == "next")
        .and_then(|l| l["url"].as_str())
        .expect("next link")
        .to_owned();
    let (status, page) = status_json(app.client.get(&next).send().await.unwrap()).await;
    assert_eq!(status, 200, "{page}");
    let rest: Vec<&Value> = page["entry"].as_array().unwrap().iter().collect();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0]["resource"]["subtype"][0]["code"], "update");

    // Read by id; writes are refused.
    let id = rows[0].seq;
    let (status, event) = status_json(app.get(&format!("AuditEvent/{id}")).await).await;
    assert_eq!((status, &event["id"]), (200, &json!(id.to_string())));
    assert_eq!(app.get("AuditEvent/999999").await.status(), 404);
    let create = app
        .post("AuditEvent", &json!({"resourceType": "AuditEvent"}))
        .await;
    assert_eq!(create.status(), 405);
    app.assert_rejected("AuditEvent?date=yesterday", "date")
        .await;
    app.assert_rejected("AuditEvent?patient=Observation/1", "patient")
        .await;
}

#[tokio::test]
async fn audit_records_the_caller_of_allowed_and_refused_requests() {
    let provider = OidcProvider::start().await;
    let settings = provider.settings();
    let app = spawn_app_with(move |s| s.oidc = Some(settings)).await;
    let admin = provider.token("admin-client").await;
    let alice = provider.password_token("alice", "alice-password").await;
    let clinician = provider.token("clinician-client").await;
    let send = |method: reqwest::Method, path: &str, token: Option<&str>| {
        let mut request = app.request(method, path);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request
    };
    let patient = json!({"resourceType": "Patient", "id": "p1"}).to_string();
    let created = send(reqwest::Method::PUT, "Patient/p1", Some(&admin))
        .header("content-type", "application/fhir+json")
        .body(patient)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let read = send(reqwest::Method::GET, "Patient/p1", Some(&alice));
    assert_eq!(read.send().await.unwrap().status(), 200);
    // The clinician may read patients but not delete them.
    let delete = send(reqwest::Method::DELETE, "Patient/p1", Some(&clinician));
    assert_eq!(delete.send().await.unwrap().status(), 403);
    let anonymous = send(reqwest::Method::GET, "Patient/p1", None);
    assert_eq!(anonymous.send().await.unwrap().status(), 401);

    let put = row_where(&app, "subtype = 'update'").await;
    assert_eq!(
        (put.agents.as_slice(), put.outcome),
        (&["admin-client".to_owned()][..], 0)
    );
    let reads = rows_where(&app, "subtype = 'read'", 2).await;
    assert_eq!(summary(&reads[0]), ("R", "read", 0, vec![], vec!["p1"]));
    assert_eq!(reads[0].agents, ["alice", "baraza-login"]);
    // The user is the requestor; the client carries the network address.
    let agents = reads[0].event["agent"].as_array().unwrap();
    assert_eq!(agents[0]["who"]["identifier"]["value"], "alice");
    assert_eq!(agents[0]["requestor"], true);
    assert_eq!(agents[1]["who"]["identifier"]["value"], "baraza-login");
    assert_eq!(agents[1]["network"]["address"], "127.0.0.1");
    // Refused without a token: no one to name, and the failure outcome.
    assert_eq!(summary(&reads[1]), ("R", "read", 4, vec![], vec!["p1"]));
    assert!(reads[1].agents.is_empty());
    let refused = row_where(&app, "subtype = 'delete'").await;
    assert_eq!(summary(&refused), ("D", "delete", 4, vec![], vec!["p1"]));
    assert_eq!(refused.agents, ["clinician-client"]);
    // A failed login names the user it tried, never the password.
    let login = app
        .client
        .post(app.base.replace("/fhir", "/auth/login"))
        .form(&[("username", "alice"), ("password", "not-alices-password")])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 401);
    let attempt = row_where(&app, "subtype = 'login'").await;
    assert_eq!((attempt.action.as_str(), attempt.outcome), ("E", 4));
    assert_eq!(attempt.agents, ["alice"]);
    assert_eq!(attempt.event["type"]["code"], "110114");
    assert!(!attempt.event.to_string().contains("not-alices-password"));
    // Tokens never reach the audit trail.
    let db = owner_db(&app.dbname).await;
    for token in [&admin, &alice, &clinician] {
        let signature = token.rsplit('.').next().unwrap();
        let found: i64 = db
            .query_one(
                "SELECT count(*) FROM audit_events WHERE strpos(event::text, $1) > 0",
                &[&signature],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(found, 0);
    }
}

#[tokio::test]
async fn audit_events_and_resource_versions_are_compressed_with_lz4() {
    let app = spawn_app().await;
    // A Patient of about 6 kB: stored out of line, compressed.
    let note = "Mgonjwa alipokelewa na homa kali na kikohozi cha siku tatu. ".repeat(100);
    let patient = json!({
        "resourceType": "Patient", "id": "big", "name": [{"family": "Otieno"}],
        "text": {"status": "generated", "div": format!("<div xmlns=\"http://www.w3.org/1999/xhtml\">{note}</div>")},
    });
    assert_eq!(app.put("Patient/big", &patient).await.status(), 201);
    // A search returning 40 Patients of long ids: its AuditEvent lists
    // them all, in its JSON and in the `patients` array (each over 2 kB,
    // so both are compressed too).
    let long = "x".repeat(48);
    let entries: Vec<Value> = (0..40)
        .map(|i| {
            json!({
                "resource": {"resourceType": "Patient", "id": format!("p{i}-{long}"), "name": [{"family": "Achieng"}]},
                "request": {"method": "PUT", "url": format!("Patient/p{i}-{long}")},
            })
        })
        .collect();
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": entries});
    assert_eq!(app.post("", &bundle).await.status(), 200);
    assert_eq!(app.get("Patient?name=achieng").await.status(), 200);

    let search = row_where(&app, "subtype = 'search-type'").await;
    assert_eq!(search.patients.len(), 40);
    assert!(search.entities.is_empty(), "{:?}", search.entities);
    let db = owner_db(&app.dbname).await;
    let row = db
        .query_one(
            "SELECT pg_column_compression(event), pg_column_compression(patients) \
             FROM audit_events WHERE seq = $1",
            &[&search.seq],
        )
        .await
        .unwrap();
    let (event, patients): (Option<String>, Option<String>) = (row.get(0), row.get(1));
    assert_eq!(event.as_deref(), Some("lz4"));
    assert_eq!(patients.as_deref(), Some("lz4"));
    db.execute("SELECT set_config('baraza.tenant', 'default', false)", &[])
        .await
        .unwrap();
    let method: Option<String> = db
        .query_one(
            "SELECT pg_column_compression(content) FROM resource_history \
             WHERE res_type = 'Patient' AND id = 'big'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(method.as_deref(), Some("lz4"));
    // Audit partitions created later (one per month, on demand) inherit it.
    db.batch_execute(
        "CREATE TABLE audit_events_2099_01 PARTITION OF audit_events \
         FOR VALUES FROM ('2099-01-01') TO ('2099-02-01')",
    )
    .await
    .unwrap();
    let compression: String = db
        .query_one(
            "SELECT attcompression::text FROM pg_attribute \
             WHERE attrelid = 'audit_events_2099_01'::regclass AND attname = 'event'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(compression, "l");
    let compression: String = db
        .query_one(
            "SELECT string_agg(attcompression::text, '' ORDER BY attname) FROM pg_attribute \
             WHERE attrelid = 'audit_events_2099_01'::regclass \
             AND attname IN ('agents', 'entities', 'patients')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(compression, "lll");
}
