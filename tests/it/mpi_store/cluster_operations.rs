//! The MPI store's operations on whole clusters: merge and unmerge, PIXm
//! cross references, the tenant boundary, resumable relinking and the
//! national-id rule.

use super::*;

#[tokio::test]
async fn merge_and_unmerge_round_trip() {
    let pool = pool().await;
    let mut client = pool.get().await.unwrap();
    let tx = begin(&mut client, "default").await;
    let linker = linker();
    index(&tx, "default", "c1", "clinic-a", &MARY).await;
    let other = Person {
        given: "Grace",
        birth: "1975-03-20",
        ..MARY
    };
    index(&tx, "default", "d1", "clinic-b", &other).await;
    let golden_c = golden_of(&tx, "c1").await.unwrap();
    let golden_d = golden_of(&tx, "d1").await.unwrap();
    assert_ne!(golden_c, golden_d);

    let merged = store::merge(&tx, &linker, "default", "c1", "d1", "rita")
        .await
        .unwrap();
    assert_eq!(merged.golden_id, golden_d);
    assert_eq!(merged.changes[0].action, LinkAction::Merge);
    assert_eq!(merged.changes[0].kind, Some(LinkKind::Merged));
    assert!(merged.goldens.contains(&GoldenChange::Retire {
        id: golden_c.clone()
    }));
    assert_eq!(
        link_types(&merged, "c1"),
        [(golden_d.clone(), "refer"), ("d1".into(), "replaced-by")]
    );
    assert_eq!(
        link_types(&merged, "d1"),
        [(golden_d.clone(), "refer"), ("c1".into(), "replaces")]
    );
    let golden = merged.golden(&golden_d).unwrap();
    assert_eq!(golden["name"][0]["given"][0], "Grace", "the target's");
    assert_eq!(golden["identifier"].as_array().unwrap().len(), 2);
    // A merged record is nobody's candidate; its target is.
    let matches = store::match_patient(
        &tx,
        &linker,
        "default",
        &patient("p", "x", &MARY),
        10,
        false,
    )
    .await
    .unwrap();
    assert!(matches.iter().all(|m| m.patient_id != "c1"), "{matches:?}");
    assert!(
        store::merge(&tx, &linker, "default", "c1", "d1", "rita")
            .await
            .is_err(),
        "merged already"
    );

    let unmerged = store::unmerge(&tx, &linker, "default", "c1", "sam")
        .await
        .unwrap();
    assert_eq!(unmerged.changes[0].action, LinkAction::Unmerge);
    let golden_c2 = unmerged.golden_id.clone();
    assert!(golden_c2 != golden_d && golden_c2 != golden_c);
    assert_eq!(link_types(&unmerged, "c1"), [(golden_c2.clone(), "refer")]);
    assert_eq!(link_types(&unmerged, "d1"), [(golden_d.clone(), "refer")]);
    let golden = unmerged.golden(&golden_d).unwrap();
    assert_eq!(golden["identifier"].as_array().unwrap().len(), 1);
    // Matching does not merge them back: the pair is rejected.
    let again = index(&tx, "default", "c1", "clinic-a", &other).await;
    assert!(again.changes.is_empty(), "{again:?}");
    assert_ne!(golden_of(&tx, "c1").await, golden_of(&tx, "d1").await);
}

#[tokio::test]
async fn cross_references_cover_the_whole_cluster() {
    let pool = pool().await;
    let mut client = pool.get().await.unwrap();
    let tx = begin(&mut client, "default").await;
    let linker = linker();
    index(&tx, "default", "a1", "clinic-a", &JOHN).await;
    index(&tx, "default", "b1", "clinic-b", &JOHN).await;
    index(&tx, "default", "m1", "clinic-b", &MARY).await;
    // Lower case: values compare uppercased, as matching compares them.
    let refs = store::cross_references(&tx, &linker, "default", "urn:test:clinic-a:mrn", "mrn-a1")
        .await
        .unwrap();
    let ids: Vec<&str> = refs.iter().map(|r| r.patient_id.as_str()).collect();
    assert_eq!(ids, ["a1", "b1"]);
    assert_eq!(refs[0].golden_id, refs[1].golden_id);
    let values: Vec<&str> = refs[1]
        .identifiers
        .iter()
        .map(|i| i["value"].as_str().unwrap())
        .collect();
    assert_eq!(values, ["MRN-b1", "12345678"]);
    let by_nid = store::cross_references(&tx, &linker, "default", NID, "12345678")
        .await
        .unwrap();
    assert_eq!(by_nid.len(), 2);
    assert!(
        store::cross_references(&tx, &linker, "default", NID, "999")
            .await
            .unwrap()
            .is_empty()
    );
    // A deleted Patient leaves the index and its cluster's golden record.
    let golden = refs[0].golden_id.clone();
    let removed = store::remove_patient(&tx, &linker, "default", "b1", "rita")
        .await
        .unwrap();
    assert_eq!(removed.changes[0].action, LinkAction::Remove);
    assert_eq!(
        removed.golden(&golden).unwrap()["link"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let refs = store::cross_references(&tx, &linker, "default", NID, "12345678")
        .await
        .unwrap();
    assert_eq!(refs.len(), 1);
}

#[tokio::test]
async fn tenants_never_see_each_others_records() {
    let pool = pool().await;
    let linker = linker();
    let mut client = pool.get().await.unwrap();
    let tx = begin(&mut client, "a").await;
    index(&tx, "a", "a1", "clinic-a", &JOHN).await;
    tx.commit().await.unwrap();

    let tx = begin(&mut client, "b").await;
    let out = index(&tx, "b", "b1", "clinic-b", &JOHN).await;
    assert_eq!(
        out.changes[0].action,
        LinkAction::Separate,
        "no candidate in b"
    );
    assert!(
        out.changes[0].rule.contains("no candidate"),
        "{}",
        out.changes[0].rule
    );
    let probe = patient("p", "x", &JOHN);
    let matches = store::match_patient(&tx, &linker, "b", &probe, 10, false)
        .await
        .unwrap();
    assert_eq!(matches.len(), 1);
    assert_eq!(matches[0].patient_id, "b1");
    // Asking for tenant a inside b's transaction finds nothing: row-level
    // security holds even when the tenant argument is wrong.
    let forged = store::match_patient(&tx, &linker, "a", &probe, 10, false)
        .await
        .unwrap();
    assert!(forged.is_empty());
    let forged = store::cross_references(&tx, &linker, "a", NID, "12345678")
        .await
        .unwrap();
    assert!(forged.is_empty());
    for table in [
        "mpi_records",
        "mpi_block_keys",
        "mpi_links",
        "mpi_goldens",
        "mpi_link_log",
    ] {
        let tenants: Vec<String> = tx
            .query(&format!("SELECT DISTINCT tenant FROM {table}"), &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(tenants, ["b"], "{table}");
    }
    let refused = tx
        .execute(
            "INSERT INTO mpi_block_keys (tenant, key, patient_id) VALUES ('a', 'k', 'x')",
            &[],
        )
        .await;
    assert!(
        refused.is_err(),
        "row-level security refuses tenant a's rows"
    );
}

#[tokio::test]
async fn relink_resumes_after_an_interruption() {
    let pool = pool().await;
    let linker = linker();
    let mut client = pool.get().await.unwrap();
    let dataset = mpi::generator::generate(&mpi::generator::Setting {
        people: 40,
        ..mpi::generator::Setting::small()
    });
    let tx = begin(&mut client, "default").await;
    for record in &dataset.records {
        let id = record.patient["id"].as_str().unwrap();
        store::index_patient(&tx, &linker, "default", id, &record.patient, &record.source)
            .await
            .unwrap();
    }
    // A first relink with the name frequencies of the loaded records.
    store::start_relink(&tx, "default", "job-0").await.unwrap();
    loop {
        let (progress, _) = store::relink_step(&tx, &linker, "default", "job-0", 25)
            .await
            .unwrap();
        if progress.status == "done" {
            break;
        }
    }
    let before: Vec<(String, String)> = tx
        .query(
            "SELECT patient_id, golden_id FROM mpi_links ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let job = store::start_relink(&tx, "default", "job-1").await.unwrap();
    assert_eq!(job.total as usize, dataset.records.len());
    tx.commit().await.unwrap();

    let tx = begin(&mut client, "default").await;
    let (first, _) = store::relink_step(&tx, &linker, "default", "job-1", 10)
        .await
        .unwrap();
    assert_eq!(first.processed, 10);
    tx.commit().await.unwrap();
    // Interrupted: a step that never commits.
    let tx = begin(&mut client, "default").await;
    let (lost, _) = store::relink_step(&tx, &linker, "default", "job-1", 10)
        .await
        .unwrap();
    assert_eq!(lost.processed, 20);
    drop(tx);

    let mut steps = 0;
    let progress = loop {
        let tx = begin(&mut client, "default").await;
        let (progress, _) = store::relink_step(&tx, &linker, "default", "job-1", 10)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        steps += 1;
        if progress.status == "done" {
            break progress;
        }
        assert!(steps < 100);
    };
    assert_eq!(progress.processed as usize, dataset.records.len());
    assert_eq!(
        steps,
        (dataset.records.len() - 10) / 10 + 1,
        "resumed after the first committed step"
    );
    let tx = begin(&mut client, "default").await;
    let after: Vec<(String, String)> = tx
        .query(
            "SELECT patient_id, golden_id FROM mpi_links ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(before, after, "the same configuration links alike");
    let total: i64 = tx
        .query_one(
            "SELECT count FROM mpi_name_frequencies WHERE kind = 'total'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(total as usize, dataset.records.len());
    let sample = store::sample_pairs(&tx, &linker, "default", 40, 7)
        .await
        .unwrap();
    assert!(!sample.candidates.is_empty() && !sample.random.is_empty());
}

#[tokio::test]
async fn records_whose_national_ids_differ_never_link() {
    let pool = pool().await;
    let mut client = pool.get().await.unwrap();
    let tx = begin(&mut client, "default").await;
    index(&tx, "default", "a1", "clinic-a", &JOHN).await;
    let twin = Person {
        nid: Some("87654321"),
        ..JOHN
    };
    // Everything else agrees (a score far above auto_link).
    let out = index(&tx, "default", "t1", "clinic-b", &twin).await;
    assert_eq!(out.changes[0].action, LinkAction::Separate);
    assert!(out.reviews.is_empty(), "not even for review");
    assert_ne!(golden_of(&tx, "a1").await, golden_of(&tx, "t1").await);

    // A record without a national id links to one of them; the other
    // still cannot join that cluster through it, even when re-indexed.
    let no_nid = Person { nid: None, ..JOHN };
    index(&tx, "default", "n1", "clinic-c", &no_nid).await;
    let cluster_n = golden_of(&tx, "n1").await;
    let with_a = golden_of(&tx, "a1").await == cluster_n;
    let with_t = golden_of(&tx, "t1").await == cluster_n;
    assert!(with_a != with_t, "n1 joins exactly one of them");
    index(&tx, "default", "a1", "clinic-a", &JOHN).await;
    index(&tx, "default", "t1", "clinic-b", &twin).await;
    assert_ne!(golden_of(&tx, "a1").await, golden_of(&tx, "t1").await);
    let refused = store::merge(&tx, &linker(), "default", "t1", "a1", "rita").await;
    assert!(matches!(refused, Err(store::StoreError::Conflict(_))));
}
