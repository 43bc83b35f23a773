//! `Patient/[id]/$everything` (issue 8): the patient and its compartment,
//! paged by `_count`, narrowed by `_type`, `_since` and `start`/`end`.

use crate::harness::{TestApp, spawn_app, status_json};
use serde_json::{Value, json};
use std::time::Duration;

fn observation(id: &str, subject: &str, when: &str) -> Value {
    json!({"resourceType": "Observation", "id": id, "status": "final", "code": {"text": "bp"},
           "subject": {"reference": format!("Patient/{subject}")}, "effectiveDateTime": when})
}

async fn record(app: &TestApp) {
    app.load(&[
        json!({"resourceType": "Patient", "id": "p1"}),
        json!({"resourceType": "Patient", "id": "p2"}),
        observation("o2019", "p1", "2019-05-01"),
        observation("o2020", "p1", "2020-06-01T10:00:00Z"),
        observation("o2021", "p1", "2021-02-01"),
        observation("other", "p2", "2020-06-01"),
        json!({"resourceType": "Encounter", "id": "e1", "status": "finished",
               "class": {"code": "AMB"}, "subject": {"reference": "Patient/p1"},
               "period": {"start": "2020-06-01", "end": "2020-06-02"}}),
        json!({"resourceType": "Practitioner", "id": "dr"}),
    ])
    .await;
}

/// `Type/id` of every entry of every page, following `next` links.
async fn everything(app: &TestApp, query: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut url = app.url(query);
    loop {
        let (status, bundle) = status_json(app.client.get(&url).send().await.unwrap()).await;
        assert_eq!(status, 200, "{url}: {bundle}");
        assert_eq!(bundle["type"], "searchset");
        for entry in bundle["entry"].as_array().into_iter().flatten() {
            let r = &entry["resource"];
            keys.push(format!(
                "{}/{}",
                r["resourceType"].as_str().unwrap(),
                r["id"].as_str().unwrap()
            ));
        }
        let next = bundle["link"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["relation"] == "next")
            .map(|l| l["url"].as_str().unwrap().to_owned());
        match next {
            Some(next) => url = next,
            None => break,
        }
    }
    keys.sort();
    keys
}

#[tokio::test]
async fn everything_is_the_patient_and_its_compartment_in_pages() {
    let app = spawn_app().await;
    record(&app).await;
    let all = [
        "Encounter/e1",
        "Observation/o2019",
        "Observation/o2020",
        "Observation/o2021",
        "Patient/p1",
    ];
    assert_eq!(everything(&app, "Patient/p1/$everything").await, all);
    assert_eq!(
        everything(&app, "Patient/p1/$everything?_count=2").await,
        all,
        "pages"
    );
    assert_eq!(
        everything(&app, "Patient/p1/$everything?_type=Observation,Patient").await,
        [
            "Observation/o2019",
            "Observation/o2020",
            "Observation/o2021",
            "Patient/p1"
        ]
    );
    assert_eq!(
        everything(
            &app,
            "Patient/p1/$everything?start=2020-01-01&end=2020-12-31"
        )
        .await,
        ["Encounter/e1", "Observation/o2020", "Patient/p1"],
        "care dates; the Patient has none and stays"
    );
    assert_eq!(
        everything(&app, "Patient/p1/$everything?start=2021-01-01").await,
        ["Observation/o2021", "Patient/p1"]
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
    let since = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    tokio::time::sleep(Duration::from_millis(20)).await;
    app.load(&[observation("o2019", "p1", "2019-05-02")]).await;
    assert_eq!(
        everything(&app, &format!("Patient/p1/$everything?_since={since}")).await,
        ["Observation/o2019"]
    );
    let (status, _) = status_json(app.get("Patient/nobody/$everything").await).await;
    assert_eq!(status, 404);
    let (status, body) = status_json(app.get("Patient/p1/$everything?bogus=1").await).await;
    assert_eq!(status, 400, "{body}");
    // Audited as a read of the patient's record.
    crate::audit::rows_where(
        &app,
        "subtype = 'operation' AND 'p1' = ANY(patients) AND event::text LIKE '%$everything%' AND outcome = 0",
        8,
    )
    .await;
}
