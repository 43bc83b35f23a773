//! The MPI's review queue and merges over HTTP (issue 6): a borderline
//! pair waits for review, accept links and reject separates for good, only
//! data stewards decide; `$merge` (with preview) and `$unmerge` round-trip
//! with history kept.

use crate::harness::TestApp;
use crate::mpi_http::{call, golden_of, parameter, part, person, secured_app};
use crate::oidc::OidcProvider;
use reqwest::Method;
use serde_json::{Value, json};

/// Grace Mwangi, and the same name without a birth date: a pair between
/// the review and auto-link thresholds.
fn borderline(id: &str, family: &str, with_birth_date: bool) -> Value {
    let mut patient = json!({"resourceType": "Patient", "id": id,
        "name": [{"family": family, "given": ["Grace"]}], "gender": "female",
        "address": [{"city": "Nakuru"}]});
    if with_birth_date {
        patient["birthDate"] = json!("1975-11-02");
    }
    patient
}

async fn review_queue(app: &TestApp, token: &str, status: &str) -> Value {
    let (code, page) = call(
        app,
        Some(token),
        Method::GET,
        &format!("acme/Patient/$mpi-review?status={status}"),
        None,
    )
    .await;
    assert_eq!(code, 200, "{page}");
    page
}

async fn decide(app: &TestApp, token: &str, a: &str, b: &str, decision: &str) -> (u16, Value) {
    let body = json!({"resourceType": "Parameters", "parameter": [
        {"name": "a", "valueReference": {"reference": format!("Patient/{a}")}},
        {"name": "b", "valueReference": {"reference": format!("Patient/{b}")}},
        {"name": "decision", "valueCode": decision}]});
    call(
        app,
        Some(token),
        Method::POST,
        "acme/Patient/$mpi-decide",
        Some(&body),
    )
    .await
}

#[tokio::test]
async fn borderline_pairs_wait_for_review_then_accept_links_and_reject_separates() {
    let provider = OidcProvider::start().await;
    let app = secured_app(&provider).await;
    let admin = provider.token("admin-client").await;
    for (id, family, born) in [
        ("g1", "Mwangi", true),
        ("g2", "Mwangi", false),
        ("h1", "Njeri", true),
        ("h2", "Njeri", false),
    ] {
        let (status, stored) = call(
            &app,
            Some(&admin),
            Method::PUT,
            &format!("acme/Patient/{id}"),
            Some(&borderline(id, family, born)),
        )
        .await;
        assert_eq!(status, 201, "{stored}");
    }
    let golden = |id: &'static str| {
        let app = &app;
        let admin = &admin;
        async move {
            let (_, p) = call(
                app,
                Some(admin),
                Method::GET,
                &format!("acme/Patient/{id}"),
                None,
            )
            .await;
            golden_of(&p).unwrap()
        }
    };
    assert_ne!(golden("g1").await, golden("g2").await);

    let page = review_queue(&app, &admin, "pending").await;
    let pairs = parameter(&page, "pair");
    // g1–g2 and h1–h2, and g1–h1: the same given name and birth date with
    // another family name (a change at marriage, or two people).
    assert_eq!(pairs.len(), 3, "{page}");
    let first = pairs[0];
    assert_eq!(
        part(first, "a").unwrap()["valueReference"]["reference"],
        "Patient/g1"
    );
    assert_eq!(
        part(first, "b").unwrap()["valueReference"]["reference"],
        "Patient/g2"
    );
    let score = part(first, "score").unwrap()["valueDecimal"]
        .as_f64()
        .unwrap();
    assert!((8.0..20.0).contains(&score), "{score}");
    assert!(
        part(first, "field").is_some(),
        "field-by-field comparison: {first}"
    );
    assert_eq!(part(first, "patientA").unwrap()["resource"]["id"], "g1");

    // Only data stewards review: a clinician is refused.
    let clinician = provider.token("clinician-client").await;
    let (status, _) = call(
        &app,
        Some(&clinician),
        Method::GET,
        "acme/Patient/$mpi-review",
        None,
    )
    .await;
    assert_eq!(status, 403);

    let (status, accepted) = decide(&app, &admin, "g2", "g1", "accept").await;
    assert_eq!(status, 200, "{accepted}");
    assert_eq!(golden("g1").await, golden("g2").await);
    let (status, rejected) = decide(&app, &admin, "h1", "h2", "reject").await;
    assert_eq!(status, 200, "{rejected}");
    assert_ne!(golden("h1").await, golden("h2").await);
    let (status, again) = decide(&app, &admin, "h1", "h2", "maybe").await;
    assert_eq!(status, 400, "{again}");
    crate::harness::assert_outcome_names(&again, "Parameters.parameter[2]");

    // A rejected pair is not linked again when one of them changes.
    let mut h2 = borderline("h2", "Njeri", true);
    h2["telecom"] = json!([{"system": "phone", "value": "+254 700 000 001"}]);
    let (status, _) = call(
        &app,
        Some(&admin),
        Method::PUT,
        "acme/Patient/h2",
        Some(&h2),
    )
    .await;
    assert_eq!(status, 200);
    assert_ne!(golden("h1").await, golden("h2").await);

    // Decided pairs leave the queue; the Grace Mwangi–Grace Njeri pairs
    // (another family name) still wait.
    let pending = review_queue(&app, &admin, "pending").await;
    let pending: Vec<String> = parameter(&pending, "pair")
        .iter()
        .map(|p| {
            let id = |n| part(p, n).unwrap()["valueReference"]["reference"].to_string();
            format!("{}-{}", id("a"), id("b"))
        })
        .collect();
    assert!(!pending.is_empty());
    assert!(
        pending
            .iter()
            .all(|p| p.contains("Patient/g") && p.contains("Patient/h")),
        "{pending:?}"
    );
    assert_eq!(
        parameter(&review_queue(&app, &admin, "accepted").await, "pair").len(),
        1
    );
    // Each decision is audited with both patients.
    crate::audit::rows_where(
        &app,
        "subtype = 'operation' AND 'h1' = ANY(patients) AND event::text LIKE '%mpi-decide%'",
        1,
    )
    .await;
}

#[tokio::test]
async fn merge_and_unmerge_round_trip() {
    let provider = OidcProvider::start().await;
    let app = secured_app(&provider).await;
    let admin = provider.token("admin-client").await;
    let source = person(
        "m-src",
        "Otieno",
        "Ochieng",
        "1960-01-01",
        ("urn:facility:a", "S"),
    );
    let target = person(
        "m-tgt",
        "Peter",
        "Kariuki",
        "1999-12-31",
        ("urn:facility:b", "T"),
    );
    for (id, body) in [("m-src", &source), ("m-tgt", &target)] {
        let (status, _) = call(
            &app,
            Some(&admin),
            Method::PUT,
            &format!("acme/Patient/{id}"),
            Some(body),
        )
        .await;
        assert_eq!(status, 201);
    }
    let merge = json!({"resourceType": "Parameters", "parameter": [
        {"name": "source-patient", "valueReference": {"reference": "Patient/m-src"}},
        {"name": "target-patient-identifier", "valueIdentifier": {"system": "urn:facility:b", "value": "T"}}]});
    let mut preview = merge.clone();
    preview["parameter"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "preview", "valueBoolean": true}));
    let (status, previewed) = call(
        &app,
        Some(&admin),
        Method::POST,
        "acme/Patient/$merge",
        Some(&preview),
    )
    .await;
    assert_eq!(status, 200, "{previewed}");
    let (_, unchanged) = call(&app, Some(&admin), Method::GET, "acme/Patient/m-src", None).await;
    assert_eq!(
        unchanged["meta"]["versionId"], "1",
        "a preview changes nothing: {unchanged}"
    );

    let (status, merged) = call(
        &app,
        Some(&admin),
        Method::POST,
        "acme/Patient/$merge",
        Some(&merge),
    )
    .await;
    assert_eq!(status, 200, "{merged}");
    assert_eq!(parameter(&merged, "result")[0]["resource"]["id"], "m-tgt");
    let (_, src) = call(&app, Some(&admin), Method::GET, "acme/Patient/m-src", None).await;
    let (_, tgt) = call(&app, Some(&admin), Method::GET, "acme/Patient/m-tgt", None).await;
    assert_eq!(src["active"], false, "{src}");
    assert!(
        src["link"].to_string().contains(r#""type":"replaced-by""#),
        "{src}"
    );
    assert!(
        tgt["link"].to_string().contains(r#""type":"replaces""#),
        "{tgt}"
    );
    assert_eq!(golden_of(&src), golden_of(&tgt));
    // History keeps the version before the merge.
    let (_, history) = call(
        &app,
        Some(&admin),
        Method::GET,
        "acme/Patient/m-src/_history",
        None,
    )
    .await;
    assert_eq!(history["entry"].as_array().unwrap().len(), 2, "{history}");

    let (status, twice) = call(
        &app,
        Some(&admin),
        Method::POST,
        "acme/Patient/$merge",
        Some(&merge),
    )
    .await;
    assert_eq!(status, 409, "{twice}");

    let unmerge = json!({"resourceType": "Parameters", "parameter": [
        {"name": "source-patient", "valueReference": {"reference": "Patient/m-src"}}]});
    let (status, unmerged) = call(
        &app,
        Some(&admin),
        Method::POST,
        "acme/Patient/$unmerge",
        Some(&unmerge),
    )
    .await;
    assert_eq!(status, 200, "{unmerged}");
    let (_, src) = call(&app, Some(&admin), Method::GET, "acme/Patient/m-src", None).await;
    let (_, tgt) = call(&app, Some(&admin), Method::GET, "acme/Patient/m-tgt", None).await;
    assert_eq!(src["active"], true, "{src}");
    assert!(!src["link"].to_string().contains("replaced-by"), "{src}");
    assert!(!tgt["link"].to_string().contains("replaces"), "{tgt}");
    assert_ne!(golden_of(&src), golden_of(&tgt));

    // Merging needs mpi-review: an integrator may not.
    let integrator = provider.token("integrator-a").await;
    let (status, _) = call(
        &app,
        Some(&integrator),
        Method::POST,
        "acme/Patient/$merge",
        Some(&merge),
    )
    .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn merge_repoints_the_references_to_the_source_onto_the_target() {
    let provider = OidcProvider::start().await;
    let app = secured_app(&provider).await;
    let admin = provider.token("admin-client").await;
    let put = |path: String, body: Value| {
        let (app, admin) = (&app, &admin);
        async move {
            let (status, stored) = call(app, Some(admin), Method::PUT, &path, Some(&body)).await;
            assert!(status == 201 || status == 200, "{stored}");
            stored
        }
    };
    put(
        "acme/Patient/x-src".into(),
        person(
            "x-src",
            "Amina",
            "Hassan",
            "1970-02-02",
            ("urn:facility:a", "XS"),
        ),
    )
    .await;
    put(
        "acme/Patient/x-tgt".into(),
        person(
            "x-tgt",
            "Brian",
            "Mutai",
            "2001-07-07",
            ("urn:facility:b", "XT"),
        ),
    )
    .await;
    let observation = |id: &str, subject: &str| {
        json!({"resourceType": "Observation", "id": id, "status": "final",
               "code": {"text": "weight"}, "subject": {"reference": subject},
               "performer": [{"reference": "Patient/x-src"}]})
    };
    put(
        "acme/Observation/o-src".into(),
        observation("o-src", "Patient/x-src"),
    )
    .await;
    put(
        "acme/Observation/o-tgt".into(),
        json!({"resourceType": "Observation", "id": "o-tgt", "status": "final",
               "code": {"text": "height"}, "subject": {"reference": "Patient/x-tgt"}}),
    )
    .await;
    put(
        "acme/Encounter/e-src".into(),
        json!({"resourceType": "Encounter", "id": "e-src", "status": "finished",
               "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
               "subject": {"reference": "Patient/x-src"}}),
    )
    .await;
    let merge = json!({"resourceType": "Parameters", "parameter": [
        {"name": "source-patient", "valueReference": {"reference": "Patient/x-src"}},
        {"name": "target-patient", "valueReference": {"reference": "Patient/x-tgt"}}]});
    let mut preview = merge.clone();
    preview["parameter"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "preview", "valueBoolean": true}));
    let (status, previewed) = call(
        &app,
        Some(&admin),
        Method::POST,
        "acme/Patient/$merge",
        Some(&preview),
    )
    .await;
    assert_eq!(status, 200, "{previewed}");
    assert!(previewed.to_string().contains("2 resources"), "{previewed}");
    let (_, unchanged) = call(
        &app,
        Some(&admin),
        Method::GET,
        "acme/Observation/o-src",
        None,
    )
    .await;
    assert_eq!(unchanged["meta"]["versionId"], "1", "{unchanged}");

    let (status, merged) = call(
        &app,
        Some(&admin),
        Method::POST,
        "acme/Patient/$merge",
        Some(&merge),
    )
    .await;
    assert_eq!(status, 200, "{merged}");
    assert!(merged.to_string().contains("2 resources"), "{merged}");
    let (_, moved) = call(
        &app,
        Some(&admin),
        Method::GET,
        "acme/Observation/o-src",
        None,
    )
    .await;
    assert_eq!(moved["meta"]["versionId"], "2", "{moved}");
    assert_eq!(moved["subject"]["reference"], "Patient/x-tgt");
    assert_eq!(moved["performer"][0]["reference"], "Patient/x-tgt");
    let (_, encounter) = call(
        &app,
        Some(&admin),
        Method::GET,
        "acme/Encounter/e-src",
        None,
    )
    .await;
    assert_eq!(
        encounter["subject"]["reference"], "Patient/x-tgt",
        "{encounter}"
    );
    let (_, untouched) = call(
        &app,
        Some(&admin),
        Method::GET,
        "acme/Observation/o-tgt",
        None,
    )
    .await;
    assert_eq!(untouched["meta"]["versionId"], "1");
    // The index follows, and history keeps the version before the merge.
    let (_, found) = call(
        &app,
        Some(&admin),
        Method::GET,
        "acme/Observation?subject=Patient/x-tgt&_sort=_id",
        None,
    )
    .await;
    let ids: Vec<&str> = found["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["resource"]["id"].as_str())
        .collect();
    assert_eq!(ids, vec!["o-src", "o-tgt"], "{found}");
    let (_, old) = call(
        &app,
        Some(&admin),
        Method::GET,
        "acme/Observation/o-src/_history/1",
        None,
    )
    .await;
    assert_eq!(old["subject"]["reference"], "Patient/x-src");
}
