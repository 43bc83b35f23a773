//! The MPI store (mpi/src/store) on the real PostgreSQL, through the
//! request role and a transaction with `baraza.tenant` set, as the server
//! runs it: linking across sources, the review queue, re-evaluation of a
//! changed record, merge and unmerge, PIXm cross references, the tenant
//! boundary, resumable relinking and the national-id rule.

use crate::harness::{cluster, fresh_database};
use mpi::store::{
    self, GoldenChange, LinkAction, LinkKind, LinkOutcome, Linker, Pair, ReviewDecision,
    ReviewStatus,
};
use serde_json::{Value, json};

const NID: &str = "http://baraza.health/sid/national-id";

/// A fresh database and a pool of request-role connections.
async fn pool() -> deadpool_postgres::Pool {
    let db = fresh_database().await;
    baraza::db::pool(cluster().request_config(&db), 4).unwrap()
}

fn linker() -> Linker {
    Linker::new(mpi::Config::default()).unwrap()
}

/// A transaction for `tenant`, as `store::begin` opens it.
async fn begin<'a>(
    client: &'a mut deadpool_postgres::Client,
    tenant: &str,
) -> deadpool_postgres::Transaction<'a> {
    let tx = client.transaction().await.unwrap();
    tx.execute("SELECT set_config('baraza.tenant', $1, true)", &[&tenant])
        .await
        .unwrap();
    tx
}

struct Person<'a> {
    given: &'a str,
    family: &'a str,
    birth: &'a str,
    gender: &'a str,
    nid: Option<&'a str>,
    phone: Option<&'a str>,
}

const JOHN: Person<'static> = Person {
    given: "John",
    family: "Kamau",
    birth: "1980-05-17",
    gender: "male",
    nid: Some("12345678"),
    phone: Some("0712345678"),
};

const MARY: Person<'static> = Person {
    given: "Mary",
    family: "Wanjiru",
    birth: "1975-03-02",
    gender: "female",
    nid: None,
    phone: None,
};

/// A Patient as facility `source` sends it, with its record number.
fn patient(id: &str, source: &str, p: &Person<'_>) -> Value {
    let mut identifiers =
        vec![json!({"system": format!("urn:test:{source}:mrn"), "value": format!("MRN-{id}")})];
    if let Some(nid) = p.nid {
        identifiers.push(json!({"system": NID, "value": nid}));
    }
    let mut patient = json!({
        "resourceType": "Patient", "id": id,
        "identifier": identifiers,
        "name": [{"family": p.family, "given": [p.given]}],
        "gender": p.gender, "birthDate": p.birth,
    });
    if let Some(phone) = p.phone {
        patient["telecom"] = json!([{"system": "phone", "value": phone}]);
    }
    patient
}

async fn index(
    tx: &deadpool_postgres::Transaction<'_>,
    tenant: &str,
    id: &str,
    source: &str,
    p: &Person<'_>,
) -> LinkOutcome {
    store::index_patient(tx, &linker(), tenant, id, &patient(id, source, p), source)
        .await
        .unwrap()
}

/// The golden id each record links to now.
async fn golden_of(tx: &deadpool_postgres::Transaction<'_>, id: &str) -> Option<String> {
    tx.query(
        "SELECT golden_id FROM mpi_links WHERE patient_id = $1",
        &[&id],
    )
    .await
    .unwrap()
    .first()
    .map(|r| r.get(0))
}

fn link_types(outcome: &LinkOutcome, id: &str) -> Vec<(String, &'static str)> {
    outcome
        .links_of(id)
        .unwrap_or_default()
        .iter()
        .map(|l| (l.other.clone(), l.link_type.code()))
        .collect()
}

#[tokio::test]
async fn duplicates_from_two_sources_link_to_one_golden() {
    let pool = pool().await;
    let mut client = pool.get().await.unwrap();
    let tx = begin(&mut client, "default").await;
    let first = index(&tx, "default", "a1", "clinic-a", &JOHN).await;
    assert_eq!(first.changes.len(), 1);
    assert_eq!(first.changes[0].action, LinkAction::Separate);
    let golden = first.golden_id.clone();
    assert_eq!(
        golden,
        store::golden_id("default", "a1", 1),
        "deterministic"
    );
    assert_eq!(link_types(&first, "a1"), [(golden.clone(), "refer")]);
    assert!(
        first.golden(&golden).is_some(),
        "a new golden Patient to write"
    );

    let typo = Person {
        given: "Jon",
        phone: None,
        ..JOHN
    };
    let second = index(&tx, "default", "b1", "clinic-b", &typo).await;
    assert_eq!(second.golden_id, golden);
    let change = &second.changes[0];
    assert_eq!(change.action, LinkAction::Link);
    assert_eq!(change.kind, Some(LinkKind::Auto));
    assert!(change.score.unwrap() >= 20.0, "{change:?}");
    assert!(change.rule.contains("Patient/a1"), "{}", change.rule);
    assert_eq!(link_types(&second, "b1"), [(golden.clone(), "refer")]);
    let content = second.golden(&golden).expect("the golden record changed");
    let systems: Vec<&str> = content["identifier"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["system"].as_str().unwrap())
        .collect();
    assert_eq!(
        systems,
        ["urn:test:clinic-a:mrn", NID, "urn:test:clinic-b:mrn"]
    );
    assert_eq!(content["meta"]["tag"][0]["code"], "golden");
    let seealso: Vec<&str> = content["link"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["other"]["reference"].as_str().unwrap())
        .collect();
    assert_eq!(seealso, ["Patient/a1", "Patient/b1"]);

    // Indexing the same content again changes nothing and writes nothing.
    let again = index(&tx, "default", "b1", "clinic-b", &typo).await;
    assert!(
        again.changes.is_empty() && again.goldens.is_empty(),
        "{again:?}"
    );
    let log: i64 = tx
        .query_one("SELECT count(*) FROM mpi_link_log", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(log, 2);

    // $match finds both records, best first, graded.
    let probe = patient("probe", "x", &JOHN);
    let matches = store::match_patient(&tx, &linker(), "default", &probe, 10, false)
        .await
        .unwrap();
    let ids: Vec<&str> = matches.iter().map(|m| m.patient_id.as_str()).collect();
    assert_eq!(ids, ["a1", "b1"]);
    assert_eq!(matches[0].grade, mpi::MatchGrade::Certain);
    assert!(matches[0].search_score > 0.99 && matches[0].search_score <= 1.0);
    assert_eq!(matches[0].golden_id.as_deref(), Some(golden.as_str()));
    assert!(!matches[0].comparison.fields.is_empty());
    let one = store::match_patient(&tx, &linker(), "default", &probe, 1, true)
        .await
        .unwrap();
    assert_eq!(one.len(), 1);
}

/// Mary Wanjiru and Margaret Wanjiru, same birth date: between the review
/// and auto-link thresholds (16.98 with the default configuration).
fn margaret() -> Person<'static> {
    Person {
        given: "Margaret",
        ..MARY
    }
}

#[tokio::test]
async fn borderline_pair_is_reviewed_then_accepted_deferred_or_rejected() {
    let pool = pool().await;
    let mut client = pool.get().await.unwrap();
    let tx = begin(&mut client, "default").await;
    let linker = linker();
    index(&tx, "default", "m1", "clinic-a", &MARY).await;
    let queued = index(&tx, "default", "m2", "clinic-b", &margaret()).await;
    assert_eq!(queued.changes[0].action, LinkAction::Separate);
    assert_eq!(queued.reviews.len(), 1, "{queued:?}");
    let pair = Pair::new("m1", "m2");
    assert_eq!(queued.reviews[0].pair, pair);
    assert!((8.0..20.0).contains(&queued.reviews[0].score));
    assert_ne!(golden_of(&tx, "m1").await, golden_of(&tx, "m2").await);

    let page = store::list_review(&tx, "default", ReviewStatus::Pending, 10, None)
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    assert!(page.next.is_none());
    let item = &page.items[0];
    assert_eq!(item.pair, pair);
    assert_eq!(item.comparison["fields"][0]["field"], "given");
    assert_ne!(item.golden_a, item.golden_b);

    // Defer: kept for later, nothing linked.
    let deferred = store::decide(
        &tx,
        &linker,
        "default",
        &pair,
        ReviewDecision::Defer,
        "rita",
    )
    .await
    .unwrap();
    assert!(deferred.changes.is_empty());
    let page = store::list_review(&tx, "default", ReviewStatus::Deferred, 10, None)
        .await
        .unwrap();
    assert_eq!(page.items[0].decided_by.as_deref(), Some("rita"));
    assert!(
        store::list_review(&tx, "default", ReviewStatus::Pending, 10, None)
            .await
            .unwrap()
            .items
            .is_empty()
    );

    // Accept: one cluster, manual links, the other golden record retired.
    let golden_m2 = golden_of(&tx, "m2").await.unwrap();
    let accepted = store::decide(
        &tx,
        &linker,
        "default",
        &pair,
        ReviewDecision::Accept,
        "rita",
    )
    .await
    .unwrap();
    let golden = golden_of(&tx, "m1").await.unwrap();
    assert_eq!(golden_of(&tx, "m2").await.unwrap(), golden);
    assert_eq!(accepted.golden_id, golden);
    assert!(
        accepted
            .changes
            .iter()
            .all(|c| c.kind == Some(LinkKind::Manual) && c.actor == "rita")
    );
    assert!(
        accepted
            .goldens
            .contains(&GoldenChange::Retire { id: golden_m2 })
    );
    assert_eq!(link_types(&accepted, "m2"), [(golden.clone(), "refer")]);

    // A manual link stands when the record changes (a person decided it).
    let moved = Person {
        birth: "1990-01-01",
        phone: Some("0799999999"),
        ..margaret()
    };
    let reindexed = index(&tx, "default", "m2", "clinic-b", &moved).await;
    assert!(reindexed.changes.is_empty());
    assert_eq!(golden_of(&tx, "m2").await.unwrap(), golden);
    let content = reindexed.golden(&golden).expect("its content changed");
    assert_eq!(content["telecom"][0]["value"], "0799999999");

    // Reject: a pair in one cluster is separated.
    let rejected = store::decide(
        &tx,
        &linker,
        "default",
        &pair,
        ReviewDecision::Reject,
        "sam",
    )
    .await
    .unwrap();
    assert_eq!(rejected.changes[0].action, LinkAction::Unlink);
    assert_eq!(rejected.changes[0].patient_id, "m2");
    assert_ne!(golden_of(&tx, "m1").await, golden_of(&tx, "m2").await);
    assert!(
        store::decide(
            &tx,
            &linker,
            "default",
            &Pair::new("m1", "zz"),
            ReviewDecision::Accept,
            "sam"
        )
        .await
        .is_err(),
        "no such pair"
    );
}

#[tokio::test]
async fn rejected_pairs_stay_apart_on_reindex() {
    let pool = pool().await;
    let mut client = pool.get().await.unwrap();
    let tx = begin(&mut client, "default").await;
    let linker = linker();
    index(&tx, "default", "m1", "clinic-a", &MARY).await;
    index(&tx, "default", "m2", "clinic-b", &margaret()).await;
    let pair = Pair::new("m1", "m2");
    store::decide(
        &tx,
        &linker,
        "default",
        &pair,
        ReviewDecision::Reject,
        "rita",
    )
    .await
    .unwrap();
    // m2 now scores far above auto_link with m1: still apart, not queued.
    let same = index(&tx, "default", "m2", "clinic-b", &MARY).await;
    assert!(same.changes.is_empty(), "{same:?}");
    assert!(same.reviews.is_empty());
    assert_ne!(golden_of(&tx, "m1").await, golden_of(&tx, "m2").await);
    // Nor does a third record bridge them: it joins one cluster only.
    index(&tx, "default", "m3", "clinic-c", &MARY).await;
    let g3 = golden_of(&tx, "m3").await;
    assert!(g3 == golden_of(&tx, "m1").await || g3 == golden_of(&tx, "m2").await);
    assert_ne!(golden_of(&tx, "m1").await, golden_of(&tx, "m2").await);
    let status: String = tx
        .query_one(
            "SELECT status FROM mpi_review WHERE a = 'm1' AND b = 'm2'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(status, "rejected");
}

#[tokio::test]
async fn a_changed_record_that_no_longer_matches_is_unlinked() {
    let pool = pool().await;
    let mut client = pool.get().await.unwrap();
    let tx = begin(&mut client, "default").await;
    index(&tx, "default", "a1", "clinic-a", &JOHN).await;
    index(&tx, "default", "b1", "clinic-b", &JOHN).await;
    let golden = golden_of(&tx, "a1").await.unwrap();
    assert_eq!(golden_of(&tx, "b1").await.unwrap(), golden);

    let someone_else = Person {
        given: "Peter",
        family: "Otieno",
        birth: "1990-11-12",
        nid: None,
        phone: None,
        ..JOHN
    };
    let out = index(&tx, "default", "b1", "clinic-b", &someone_else).await;
    let change = &out.changes[0];
    assert_eq!(change.action, LinkAction::Unlink);
    assert_eq!(change.golden_before.as_deref(), Some(golden.as_str()));
    assert!(change.rule.contains("no longer matches"), "{}", change.rule);
    assert_ne!(out.golden_id, golden);
    let left = out
        .golden(&golden)
        .expect("the old golden record is rewritten");
    assert_eq!(left["link"].as_array().unwrap().len(), 1);
    assert_eq!(link_types(&out, "b1"), [(out.golden_id.clone(), "refer")]);
    // The key table holds exactly the record's new keys.
    let row = tx
        .query_one(
            "SELECT r.keys, array(SELECT key FROM mpi_block_keys k \
               WHERE k.patient_id = r.patient_id ORDER BY key COLLATE \"C\") \
             FROM mpi_records r WHERE r.patient_id = 'b1'",
            &[],
        )
        .await
        .unwrap();
    let (keys, in_table): (Vec<String>, Vec<String>) = (row.get(0), row.get(1));
    assert_eq!(keys, in_table);
    assert!(keys.iter().all(|k| !k.contains("KM")), "{keys:?}");
    let actions: Vec<String> = tx
        .query(
            "SELECT action FROM mpi_link_log WHERE patient_id = 'b1' ORDER BY seq",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(actions, ["link", "unlink"]);
    // The log is append-only, even for the request role.
    assert!(tx.execute("DELETE FROM mpi_link_log", &[]).await.is_err());
}

mod batch;
mod cluster_operations;
