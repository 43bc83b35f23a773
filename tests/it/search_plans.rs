//! Searches whose plan Baraza chooses itself, checked against answers
//! worked out by hand: a conjunction of common values walked from the
//! searched resources, the walk's bound ending it before a page is full
//! (then searched again as semi-joins), and the last page of a walk. The
//! server runs as its own process, so that its `/metrics` counts only
//! these searches.

use crate::harness::{TestApp, fresh_database, status_json};
use crate::processes::{Server, serve, wait_ready};
use serde_json::json;

/// 1,500 Patients `p0000`…`p1499`: the even ones women born 1980–2019,
/// named Even and tagged `study` twice (in two systems), the odd ones men born 1940–1969 except the last fifteen (`p1471`,
/// `p1473`, … `p1499`), born 1990. So half are women and about half were
/// born since 1980, but the men born since 1980 are all at the end of
/// the id order.
fn population() -> Vec<serde_json::Value> {
    (0..1500)
        .map(|i| {
            let (gender, year) = if i % 2 == 0 {
                ("female", 1980 + (i / 2) % 40)
            } else if i >= 1470 {
                ("male", 1990)
            } else {
                ("male", 1940 + i % 30)
            };
            let mut patient = json!({"resourceType": "Patient", "id": format!("p{i:04}"),
                   "gender": gender, "birthDate": format!("{year}-06-15")});
            if i % 2 == 0 {
                // Two tags of one code: two rows that one `_tag=study` matches.
                patient["meta"] = json!({"tag": [
                    {"system": "urn:test:a", "code": "study"},
                    {"system": "urn:test:b", "code": "study"}]});
                patient["name"] = json!([{"family": "Even"}]);
            }
            patient
        })
        .collect()
}

/// The ids of every page of `query`, followed by `next` links.
pub async fn all_pages(app: &TestApp, query: &str) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut next = Some(query.to_owned());
    while let Some(url) = next.take() {
        let (status, bundle) = status_json(app.get(&url).await).await;
        assert_eq!(status, 200, "{url}: {bundle}");
        let ids = bundle["entry"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| e["resource"]["id"].as_str().unwrap().to_owned())
            .collect();
        pages.push(ids);
        next = bundle["link"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["relation"] == "next")
            .map(|l| {
                let url = l["url"].as_str().unwrap();
                url.strip_prefix(&app.url("")).unwrap_or(url).to_owned()
            });
    }
    pages
}

/// SQL that deletes a resource the way the write path does (a version
/// without content, `resources` marked) but leaves its index rows: the
/// stale state index-first pages must never serve.
fn deleted_behind_the_write_path(res_type: &str, id: &str) -> String {
    format!(
        "INSERT INTO resource_history (tenant, res_type, id, version_id, last_updated, method, content) \
         SELECT tenant, res_type, id, version_id + 1, now(), 'DELETE', NULL FROM resources \
         WHERE res_type = '{res_type}' AND id = '{id}'; \
         UPDATE resources SET deleted = true, version_id = version_id + 1 \
         WHERE res_type = '{res_type}' AND id = '{id}'"
    )
}

/// The value of `baraza_search_plans_total{plan="…"}` (0 when absent).
async fn plans(port: u16, plan: &str) -> u64 {
    let text = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let prefix = format!("baraza_search_plans_total{{plan=\"{plan}\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .map_or(0, |n| n.trim().parse().unwrap())
}

/// `baraza serve` on `dbname`, ready, and a client of it. Without the
/// master patient index, so that no golden Patient joins the population.
async fn start(dbname: &str) -> (Server, u16, TestApp) {
    let (mut child, port) = serve(dbname, &[("BARAZA_MPI", "off")]);
    wait_ready(port, &mut child).await;
    let app = TestApp::external(&format!("http://127.0.0.1:{port}/fhir"), dbname);
    (Server(child), port, app)
}

#[tokio::test]
async fn conjunctions_of_common_values_are_walked_and_page_exactly() {
    let dbname = fresh_database().await;
    let (server, port, app) = start(&dbname).await;
    for chunk in population().chunks(500) {
        app.load(chunk).await;
    }
    // As autovacuum does within a minute of a load: the walk is chosen
    // from the planner's estimates.
    app.analyze("resources, search_token, search_date, search_string")
        .await;

    // Every woman, in id order, 25 a page: 30 full pages, each filled by
    // a walk (every second Patient matches). The last page is short of a
    // full page plus one, and complete because the walk reached the end.
    let women: Vec<String> = (0..1500).step_by(2).map(|i| format!("p{i:04}")).collect();
    let pages = all_pages(
        &app,
        "Patient?gender=female&birthdate=ge1980-01-01&_count=25",
    )
    .await;
    assert_eq!(pages.len(), 30);
    assert!(pages.iter().all(|p| p.len() == 25));
    assert_eq!(pages.concat(), women);
    assert_eq!(plans(port, "walk").await, 30);
    assert_eq!(plans(port, "walk-fallback").await, 0);
    // Both clauses were merged with the walk rather than probed.
    assert_eq!(plans(port, "merge").await, 30);

    // The same women through `:not` (a negated clause in the walk).
    let pages = all_pages(
        &app,
        "Patient?gender:not=male&birthdate=ge1980-01-01&_count=25",
    )
    .await;
    assert_eq!(pages.concat(), women);
    assert_eq!(plans(port, "walk").await, 60);
    // The birth date merged, the negated gender probed per Patient.
    assert_eq!(plans(port, "merge").await, 60);

    // Men born since 1980: expected, like the women, every fourth
    // Patient or so; in fact only the last fifteen. The walk's bound ends
    // page 1 empty-handed after 1,000 Patients, and it is searched again
    // as semi-joins; page 2 starts after p1489, close to the end, and is
    // walked to completion.
    let men: Vec<String> = (1471..1500)
        .step_by(2)
        .map(|i| format!("p{i:04}"))
        .collect();
    let pages = all_pages(&app, "Patient?gender=male&birthdate=ge1980-01-01&_count=10").await;
    assert_eq!(pages, vec![men[..10].to_vec(), men[10..].to_vec()]);
    assert_eq!(plans(port, "walk-fallback").await, 1);
    assert_eq!(plans(port, "walk").await, 61);
    assert_eq!(plans(port, "merge").await, 62);

    // A rare value is not walked: the 19 women born in 1999.
    let born_1999: Vec<String> = (0..1500)
        .step_by(2)
        .filter(|i| 1980 + (i / 2) % 40 == 1999)
        .map(|i| format!("p{i:04}"))
        .collect();
    let found = all_pages(&app, "Patient?birthdate=1999&gender=female").await;
    assert_eq!(found.concat(), born_1999);
    assert_eq!(plans(port, "walk").await, 61);

    // Two rows of one Patient match the tag: each woman once, merged.
    let pages = all_pages(&app, "Patient?_tag=study&birthdate=ge1980-01-01&_count=25").await;
    assert_eq!(pages.len(), 30);
    assert_eq!(pages.concat(), women);
    assert_eq!(plans(port, "walk").await, 91);
    assert_eq!(plans(port, "merge").await, 92);

    // Nothing to merge (a string clause and a negated one): probed per
    // Patient, page after page.
    let pages = all_pages(&app, "Patient?family=even&gender:not=male&_count=25").await;
    assert_eq!(pages.len(), 30);
    assert_eq!(pages.concat(), women);
    assert_eq!(plans(port, "walk").await, 121);
    assert_eq!(plans(port, "merge").await, 92);
    drop(server);
}

/// 2,000 Observations `o0000`…`o1999`: every fifth (400) a glucose
/// measurement of 150 to 209 mg/dL (`150 + (i / 5) % 60`), the others
/// heart rates of 60 to 99 /min. So a tenth of all are glucose over 180:
/// too rare among the Observations for a walk, but half the glucose ones.
fn glucose_population() -> Vec<serde_json::Value> {
    (0..2000)
        .map(|i| {
            let (code, value, unit) = if i % 5 == 0 {
                ("2339-0", 150 + (i / 5) % 60, "mg/dL")
            } else {
                ("8867-4", 60 + i % 40, "/min")
            };
            json!({"resourceType": "Observation", "id": format!("o{i:04}"), "status": "final",
                   "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
                   "valueQuantity": {"value": value, "unit": unit,
                                     "system": "http://unitsofmeasure.org", "code": unit}})
        })
        .collect()
}

/// Glucose Observations whose value passes `keep`, in id order.
fn glucose(keep: impl Fn(usize) -> bool) -> Vec<String> {
    (0..2000)
        .step_by(5)
        .filter(|i| keep(150 + (i / 5) % 60))
        .map(|i| format!("o{i:04}"))
        .collect()
}

#[tokio::test]
async fn ordered_token_clauses_lead_conjunctions_that_are_not_walked() {
    let dbname = fresh_database().await;
    let (server, port, app) = start(&dbname).await;
    for chunk in glucose_population().chunks(500) {
        app.load(chunk).await;
    }
    app.analyze("resources, search_token, search_quantity")
        .await;

    // Glucose over 180: 29 of every 60 glucose Observations (183), 20 a
    // page.
    let over_180 = glucose(|v| v > 180);
    assert_eq!(over_180.len(), 183);
    // `code` with `value-quantity` is one clause on their composite
    // (`search::criteria::paired`), read in id order off
    // `search_quantity_param_id`.
    let query = "Observation?code=http://loinc.org|2339-0&value-quantity=gt180&_count=20";
    let pages = all_pages(&app, query).await;
    assert_eq!(pages.concat(), over_180);
    assert_eq!(pages.len(), 10);
    assert_eq!(plans(port, "index-first").await, 10);
    assert_eq!(plans(port, "index-first-ordered").await, 0);
    // `combo-value-quantity` (the Observation's value or a component's:
    // here the same rows) does not pair, and the code's ids lead.
    let query = "Observation?code=http://loinc.org|2339-0&combo-value-quantity=gt180&_count=20";
    let pages = all_pages(&app, query).await;
    assert_eq!(pages.concat(), over_180);
    assert_eq!(pages.len(), 10);
    assert_eq!(plans(port, "index-first-ordered").await, 10);
    // Glucose is a fifth of the Observations: the values are merged with
    // its ids rather than probed for each.
    assert_eq!(plans(port, "merge").await, 10);
    // With a third clause (the lead need not come first), and with a
    // negated one, 50 a page.
    let query = "Observation?status=final&combo-value-quantity=gt180&code=http://loinc.org|2339-0&_count=50";
    let pages = all_pages(&app, query).await;
    assert_eq!(pages.concat(), over_180);
    assert_eq!(pages.len(), 4);
    let query = "Observation?code=http://loinc.org|2339-0&status:not=cancelled\
                 &combo-value-quantity=le180&_count=50";
    let pages = all_pages(&app, query).await;
    assert_eq!(pages.concat(), glucose(|v| v <= 180));
    assert_eq!(pages.len(), 5);
    assert_eq!(plans(port, "index-first-ordered").await, 19);
    assert_eq!(plans(port, "merge").await, 19);
    // A rare value: 4 of every 60 glucose Observations, searched as one
    // statement.
    let query = "Observation?code=http://loinc.org|2339-0&combo-value-quantity=gt205";
    assert_eq!(all_pages(&app, query).await.concat(), glucose(|v| v > 205));
    assert_eq!(plans(port, "index-first-ordered").await, 19);
    assert_eq!(plans(port, "merge").await, 19);
    drop(server);
}

/// `_has` walked with the matching sources hashed once, and, when they
/// do not fit PostgreSQL's hash memory, probed source by source; by
/// `patient`, walked over the token rows keyed by Patient: the same
/// answers every way (`search_chains::assert_hba1c_searches`: 6 pages and
/// a combined search walked, a rare code joined).
#[tokio::test]
async fn has_walks_hash_the_sources_only_when_they_fit_in_memory() {
    let dbname = fresh_database().await;
    let (server, port, app) = start(&dbname).await;
    crate::search_chains::load_hba1c_population(&app).await;
    crate::search_chains::assert_hba1c_searches(&app, "subject").await;
    assert_eq!(plans(port, "has-walk-hashed").await, 7);
    assert_eq!(plans(port, "has-walk").await, 0);
    // By `patient`, the six pages of `system|code` are read off the token
    // rows keyed by Patient, and the walk with another criterion probes
    // them; the rare code, without a system, is joined.
    crate::search_chains::assert_hba1c_searches(&app, "patient").await;
    assert_eq!(plans(port, "has-keyed-first").await, 6);
    assert_eq!(plans(port, "has-walk-patient").await, 1);
    assert_eq!(plans(port, "has-walk-hashed").await, 7);
    drop(server);

    // 2,100 source ids (of 58 bytes) need about 190 kB of hash table.
    app.db()
        .await
        .batch_execute(&format!(
            "ALTER DATABASE \"{dbname}\" SET work_mem = '64kB'; \
             ALTER DATABASE \"{dbname}\" SET hash_mem_multiplier = 1"
        ))
        .await
        .unwrap();
    let (server, port, app) = start(&dbname).await;
    crate::search_chains::assert_hba1c_searches(&app, "subject").await;
    assert_eq!(plans(port, "has-walk").await, 7);
    assert_eq!(plans(port, "has-walk-hashed").await, 0);
    drop(server);
}

/// A search of one selective clause chooses its page from the clause's
/// index rows (`index-first`): the answers and the paging are those of
/// the general statement, a Patient with two matching names comes once,
/// and a page whose ids name a resource that is not current (the write
/// path never leaves such rows; here they are made by hand) is searched
/// again the general way.
#[tokio::test]
async fn one_clause_pages_are_chosen_from_the_index_rows() {
    let dbname = fresh_database().await;
    let (server, port, app) = start(&dbname).await;
    // 500 Patients; every 25th (p000, p025, … p475) is a Smith, and the
    // Smiths p000, p050, … also have the given name Smilla. Rare enough
    // that no walk is chosen (see `probe`).
    let patients: Vec<serde_json::Value> = (0..500)
        .map(|i| {
            let family = if i % 25 == 0 { "Smith" } else { "Otieno" };
            let given = if i % 50 == 0 { "Smilla" } else { "Akinyi" };
            json!({"resourceType": "Patient", "id": format!("p{i:03}"),
                   "name": [{"family": family, "given": [given]}]})
        })
        .collect();
    app.load(&patients).await;
    let observations: Vec<serde_json::Value> = (0..7)
        .map(|i| {
            json!({"resourceType": "Observation", "id": format!("o{i}"), "status": "final",
                   "code": {"text": "weight"}, "subject": {"reference": "Patient/p025"}})
        })
        .collect();
    app.load(&observations).await;
    app.analyze("resources, search_string, search_reference")
        .await;

    let smiths: Vec<String> = (0..500).step_by(25).map(|i| format!("p{i:03}")).collect();
    let pages = all_pages(&app, "Patient?name=smi&_count=6").await;
    assert_eq!(
        pages.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![6, 6, 6, 2]
    );
    assert_eq!(pages.concat(), smiths);
    assert_eq!(plans(port, "index-first").await, 4);
    assert_eq!(plans(port, "walk").await, 0);

    // A reference to one Patient: 7 Observations, in id order, 3 a page.
    let pages = all_pages(&app, "Observation?subject=Patient/p025&_count=3").await;
    let expected: Vec<String> = (0..7).map(|i| format!("o{i}")).collect();
    assert_eq!(pages.concat(), expected);
    assert_eq!(pages.len(), 3);
    assert_eq!(plans(port, "index-first").await, 7);

    // A Patient deleted through the API leaves with its index rows.
    assert_eq!(app.delete("Patient/p050").await.status(), 204);
    let without_p050: Vec<String> = smiths.iter().filter(|id| *id != "p050").cloned().collect();
    assert_eq!(
        all_pages(&app, "Patient?name=smi&_count=6").await.concat(),
        without_p050
    );
    assert_eq!(plans(port, "index-first-fallback").await, 0);

    // p075 marked deleted behind the write path's back, its index rows
    // left: the first page is searched again as a semi-join, which skips
    // it, and the paging still reaches every other Smith.
    let db = app.db().await;
    db.batch_execute(&format!(
        "SELECT set_config('baraza.tenant', 'default', false); \
         {}",
        deleted_behind_the_write_path("Patient", "p075")
    ))
    .await
    .unwrap();
    let rest: Vec<String> = without_p050
        .iter()
        .filter(|id| *id != "p075")
        .cloned()
        .collect();
    let pages = all_pages(&app, "Patient?name=smi&_count=6").await;
    assert_eq!(pages.concat(), rest);
    assert_eq!(pages[0].len(), 6);
    assert_eq!(plans(port, "index-first-fallback").await, 1);
    drop(server);
}

/// A search that names one resource among other criteria
/// (`Observation?patient=…&code=…&date=…`) leads from that resource's
/// index rows and tests the other criteria per id before any resource is
/// read (`index-first`); `_has` by `patient` of one `system|code` reads
/// its Patients off the token rows keyed by Patient, skipping a Patient
/// that is gone (`has-keyed-first`). Answers and paging are those worked
/// out by hand.
#[tokio::test]
async fn pinpointed_searches_lead_from_the_named_resource() {
    let dbname = fresh_database().await;
    let (server, port, app) = start(&dbname).await;
    let patients: Vec<serde_json::Value> = (1..=3)
        .map(|i| {
            json!({"resourceType": "Patient", "id": format!("p{i}"),
                   "identifier": [{"system": "urn:test:nid", "value": format!("N{i}")}]})
        })
        .collect();
    app.load(&patients).await;
    // 30 Observations each: heart rate (even) or weight (odd), one year
    // apart in threes from 2008 (o00-o02 in 2008, … o27-o29 in 2017).
    let observation = |p: usize, i: usize| {
        let code = if i % 2 == 0 { "8867-4" } else { "29463-7" };
        json!({"resourceType": "Observation", "id": format!("p{p}o{i:02}"), "status": "final",
               "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
               "subject": {"reference": format!("Patient/p{p}")},
               "effectiveDateTime": format!("{}-06-01", 2008 + i / 3)})
    };
    let observations: Vec<serde_json::Value> = (1..=3)
        .flat_map(|p| (0..30).map(move |i| (p, i)))
        .map(|(p, i)| observation(p, i))
        .collect();
    app.load(&observations).await;
    app.analyze("resources, search_token, search_date, search_reference")
        .await;

    // p2's heart rates since 2015: o22, o24, o26, o28 (2015-2017).
    let heart_rates: Vec<String> = (21..30)
        .filter(|i| i % 2 == 0)
        .map(|i| format!("p2o{i:02}"))
        .collect();
    let query = "Observation?patient=Patient/p2&code=http://loinc.org|8867-4&date=ge2015&_count=3";
    let pages = all_pages(&app, query).await;
    assert_eq!(pages.concat(), heart_rates);
    assert_eq!(pages.len(), 2);
    // Led by p2's heart-rate token rows, keyed by Patient.
    assert_eq!(plans(port, "index-first-keyed").await, 2);
    assert_eq!(plans(port, "index-first").await, 0);
    // A bare id names the Patient too; p3's heart rates since 2015.
    let query = "Observation?code=http://loinc.org|8867-4&patient=p3&date=ge2015";
    let p3: Vec<String> = heart_rates
        .iter()
        .map(|id| id.replace("p2", "p3"))
        .collect();
    assert_eq!(all_pages(&app, query).await.concat(), p3);
    assert_eq!(plans(port, "index-first-keyed").await, 3);
    // A code of another system, and a Patient without Observations.
    for query in [
        "Observation?patient=Patient/p2&code=http://snomed.info/sct|8867-4",
        "Observation?patient=Patient/p9&code=http://loinc.org|8867-4",
    ] {
        assert!(all_pages(&app, query).await.concat().is_empty(), "{query}");
    }
    assert_eq!(plans(port, "index-first-keyed").await, 5);
    // The keyed rows answer the `patient` criterion themselves (it is not
    // tested again per id): p1's 15 heart rates, and not the one of a
    // Group that has p1's id, whose Observation has no `patient`.
    app.load(&[
        json!({"resourceType": "Group", "id": "p1", "type": "person", "actual": true}),
        json!({"resourceType": "Observation", "id": "g1o", "status": "final",
               "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
               "subject": {"reference": "Group/p1"}, "effectiveDateTime": "2016-06-01"}),
    ])
    .await;
    let p1_heart_rates: Vec<String> = (0..30)
        .filter(|i| i % 2 == 0)
        .map(|i| format!("p1o{i:02}"))
        .collect();
    for query in [
        "Observation?patient=p1&code=http://loinc.org|8867-4&_count=10",
        "Observation?code=http://loinc.org|8867-4&patient=Patient/p1&_count=10",
    ] {
        assert_eq!(
            all_pages(&app, query).await.concat(),
            p1_heart_rates,
            "{query}"
        );
    }
    assert_eq!(plans(port, "index-first-keyed").await, 9);
    let query = "Observation?subject=Group/p1&code=http://loinc.org|8867-4";
    assert_eq!(all_pages(&app, query).await.concat(), ["g1o"]);
    assert_eq!(plans(port, "index-first").await, 1);
    // A negated criterion is tested per id as well: p2's weights since 2015.
    let weights: Vec<String> = (21..30)
        .filter(|i| i % 2 == 1)
        .map(|i| format!("p2o{i:02}"))
        .collect();
    let query = "Observation?subject=Patient/p2&code:not=http://loinc.org|8867-4&date=ge2015";
    assert_eq!(all_pages(&app, query).await.concat(), weights);
    assert_eq!(plans(port, "index-first").await, 2);

    // A chain to one identifier: p2's 30 Observations, led by the
    // reference rows to the Patient the identifier names, 12 a page.
    let all_p2: Vec<String> = (0..30).map(|i| format!("p2o{i:02}")).collect();
    let query = "Observation?patient.identifier=urn:test:nid|N2&_count=12";
    let pages = all_pages(&app, query).await;
    assert_eq!(pages.concat(), all_p2);
    assert_eq!(pages.len(), 3);
    assert_eq!(plans(port, "index-first-chained").await, 3);
    let query = "Observation?subject:Patient.identifier=urn:test:nid|N9";
    assert!(all_pages(&app, query).await.concat().is_empty());
    assert_eq!(plans(port, "index-first-chained").await, 4);
    // A chain with a common value is not led: everyone's weights.
    let query = "Observation?patient.identifier=urn:test:nid|&code=http://loinc.org|29463-7";
    assert_eq!(all_pages(&app, query).await.concat().len(), 45);
    assert_eq!(plans(port, "index-first-chained").await, 4);

    // An Observation marked deleted behind the write path's back, its
    // index rows left: the page is searched again the general way.
    let db = app.db().await;
    db.batch_execute(&format!(
        "SELECT set_config('baraza.tenant', 'default', false); \
         {}",
        deleted_behind_the_write_path("Observation", "p2o24")
    ))
    .await
    .unwrap();
    let query = "Observation?patient=Patient/p2&code=http://loinc.org|8867-4&date=ge2015";
    assert_eq!(
        all_pages(&app, query).await.concat(),
        ["p2o22", "p2o26", "p2o28"]
    );
    assert_eq!(plans(port, "index-first-fallback").await, 1);

    // Patients with a heart rate: all three, two a page; with p2 deleted
    // (its Observations stay), p1 and p3.
    let query = "Patient?_has:Observation:patient:code=http://loinc.org|8867-4&_count=2";
    assert_eq!(all_pages(&app, query).await, [vec!["p1", "p2"], vec!["p3"]]);
    assert_eq!(plans(port, "has-keyed-first").await, 2);
    assert_eq!(app.delete("Patient/p2").await.status(), 204);
    assert_eq!(all_pages(&app, query).await, [vec!["p1", "p3"]]);
    assert_eq!(plans(port, "has-keyed-first").await, 3);
    drop(server);
}
