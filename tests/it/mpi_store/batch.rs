//! `index_batch`: a batch links exactly as its records would one by one,
//! in a handful of statements; re-indexing drops the pending review pairs
//! that no longer qualify.

use super::{MARY, begin, index, linker, margaret, patient, pool};
use mpi::store::{self, GoldenChange, Incoming, LinkType, ReviewDecision};
use std::collections::BTreeSet;

/// Every (record, golden record) link and every queued pair of a tenant.
async fn state(tx: &deadpool_postgres::Transaction<'_>) -> (Vec<(String, String)>, Vec<String>) {
    let links = tx
        .query(
            "SELECT patient_id, golden_id FROM mpi_links ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let pairs = tx
        .query(
            "SELECT a || ' ' || b || ' ' || status || ' ' || round(score::numeric, 6) \
             FROM mpi_review ORDER BY a, b",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    (links, pairs)
}

#[tokio::test]
async fn a_batch_links_exactly_as_its_records_would_one_by_one() {
    let dataset = mpi::generator::generate(&mpi::generator::Setting {
        people: 120,
        ..mpi::generator::Setting::small()
    });
    let records: Vec<(String, &serde_json::Value, &str)> = dataset
        .records
        .iter()
        .map(|r| {
            let id = r.patient["id"].as_str().unwrap().to_owned();
            (id, &r.patient, r.source.as_str())
        })
        .collect();
    let linker = linker();

    // One by one, a transaction each, in one database…
    let one_by_one = pool().await;
    let mut client = one_by_one.get().await.unwrap();
    for (id, patient, source) in &records {
        let tx = begin(&mut client, "default").await;
        store::index_patient(&tx, &linker, "default", id, patient, source)
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
    let tx = begin(&mut client, "default").await;
    let expected = state(&tx).await;
    drop(tx);

    // …and as one batch in another.
    let batched = pool().await;
    let mut client = batched.get().await.unwrap();
    let tx = begin(&mut client, "default").await;
    let incoming: Vec<Incoming<'_>> = records
        .iter()
        .map(|(id, patient, source)| Incoming {
            patient_id: id,
            patient,
            source,
        })
        .collect();
    let outcome = store::index_batch(&tx, &linker, "default", &incoming)
        .await
        .unwrap();
    let got = state(&tx).await;
    assert_eq!(got.0, expected.0, "the links differ");
    assert_eq!(got.1, expected.1, "the review queues differ");
    let clusters: BTreeSet<&String> = got.0.iter().map(|(_, g)| g).collect();
    assert!(clusters.len() < records.len(), "nothing was linked");

    // The outcome: a refer link per record, a golden Patient per cluster,
    // a log entry per record.
    assert_eq!(outcome.source_links.len(), records.len());
    for links in &outcome.source_links {
        let golden = &got
            .0
            .iter()
            .find(|(id, _)| *id == links.patient_id)
            .unwrap()
            .1;
        assert_eq!(links.links.len(), 1);
        assert_eq!(links.links[0].link_type, LinkType::Refer);
        assert_eq!(&links.links[0].other, golden);
    }
    let written: BTreeSet<&str> = outcome
        .goldens
        .iter()
        .filter_map(|g| match g {
            GoldenChange::Write { id, .. } => Some(id.as_str()),
            GoldenChange::Retire { .. } => None,
        })
        .collect();
    assert_eq!(written, clusters.iter().map(|g| g.as_str()).collect());
    assert_eq!(outcome.changes.len(), records.len());
    let logged: i64 = tx
        .query_one("SELECT count(*) FROM mpi_link_log", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(logged as usize, records.len());

    tx.commit().await.unwrap();

    // Re-indexed (as a relink does), one by one and as a batch: the same
    // again.
    let mut client = one_by_one.get().await.unwrap();
    for (id, patient, source) in &records {
        let tx = begin(&mut client, "default").await;
        store::index_patient(&tx, &linker, "default", id, patient, source)
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
    let tx = begin(&mut client, "default").await;
    let expected = state(&tx).await;
    drop(tx);
    let mut client = batched.get().await.unwrap();
    let tx = begin(&mut client, "default").await;
    store::index_batch(&tx, &linker, "default", &incoming)
        .await
        .unwrap();
    assert_eq!(state(&tx).await, expected);
}

#[tokio::test]
async fn reindexing_drops_pending_pairs_that_no_longer_qualify() {
    let pool = pool().await;
    let mut client = pool.get().await.unwrap();
    let tx = begin(&mut client, "default").await;
    let linker = linker();
    index(&tx, "default", "m1", "clinic-a", &MARY).await;
    let queued = index(&tx, "default", "m2", "clinic-b", &margaret()).await;
    assert_eq!(queued.reviews.len(), 1, "{queued:?}");
    let pending = || async {
        tx.query_one(
            "SELECT count(*) FROM mpi_review WHERE status = 'pending'",
            &[],
        )
        .await
        .unwrap()
        .get::<_, i64>(0)
    };
    assert_eq!(pending().await, 1);

    // Unchanged, the pair stays queued.
    index(&tx, "default", "m2", "clinic-b", &margaret()).await;
    assert_eq!(pending().await, 1);

    // m2 becomes someone else: the pair leaves the queue.
    let other = super::Person {
        given: "Zawadi",
        family: "Otieno",
        birth: "1999-12-30",
        ..MARY
    };
    let changed = index(&tx, "default", "m2", "clinic-b", &other).await;
    assert!(changed.reviews.is_empty(), "{changed:?}");
    assert_eq!(pending().await, 0);

    // A pair a person deferred stays, whatever the scores.
    index(&tx, "default", "m2", "clinic-b", &margaret()).await;
    assert_eq!(pending().await, 1);
    let pair = store::Pair::new("m1", "m2");
    store::decide(
        &tx,
        &linker,
        "default",
        &pair,
        ReviewDecision::Defer,
        "rita",
    )
    .await
    .unwrap();
    store::index_patient(
        &tx,
        &linker,
        "default",
        "m2",
        &patient("m2", "clinic-b", &other),
        "clinic-b",
    )
    .await
    .unwrap();
    let deferred: i64 = tx
        .query_one(
            "SELECT count(*) FROM mpi_review WHERE status = 'deferred'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(deferred, 1);
}
