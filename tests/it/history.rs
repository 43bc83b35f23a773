//! history at instance, type and system level (http.html#history).

use crate::harness::{spawn_app, status_json};
use serde_json::{Value, json};

fn ids_of(bundle: &Value) -> Vec<String> {
    bundle["entry"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .map(|e| {
                    e["fullUrl"]
                        .as_str()
                        .unwrap()
                        .rsplit('/')
                        .next()
                        .unwrap()
                        .to_owned()
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn instance_history_is_newest_first() {
    let app = spawn_app().await;
    let mut p = app
        .create(&json!({"resourceType": "Patient", "active": true}))
        .await;
    let id = p["id"].as_str().unwrap().to_owned();
    p["active"] = json!(false);
    app.put(&format!("Patient/{id}"), &p).await;
    let (status, bundle) = status_json(app.get(&format!("Patient/{id}/_history")).await).await;
    assert_eq!(status, 200);
    assert_eq!(bundle["type"], "history");
    let versions: Vec<&str> = bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"]["meta"]["versionId"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["2", "1"]);
    assert_eq!(bundle["entry"][0]["request"]["method"], "PUT");
    assert_eq!(bundle["entry"][1]["request"]["method"], "POST");
    assert_eq!(bundle["entry"][1]["response"]["status"], "201 Created");
    let (status, _) = status_json(app.get("Patient/unknown/_history").await).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn type_and_system_history_page_stably_while_writes_happen() {
    let app = spawn_app().await;
    for i in 0..5 {
        app.create(&json!({"resourceType": "Patient", "id": format!("x{i}"), "active": true}))
            .await;
        app.create(&json!({"resourceType": "Organization", "name": format!("Org {i}")}))
            .await;
    }
    let (_, page1) = status_json(app.get("Patient/_history?_count=2").await).await;
    assert_eq!(page1["entry"].as_array().unwrap().len(), 2);
    let next = page1["link"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["relation"] == "next")
        .unwrap()["url"]
        .as_str()
        .unwrap()
        .to_owned();
    // A write between pages must not shift the next page.
    app.create(&json!({"resourceType": "Patient", "active": false}))
        .await;
    let page2: Value = app
        .client
        .get(&next)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let first_two = ids_of(&page1);
    let next_two = ids_of(&page2);
    assert_eq!(next_two.len(), 2);
    assert!(
        first_two.iter().all(|id| !next_two.contains(id)),
        "{first_two:?} {next_two:?}"
    );
    let (_, system) = status_json(app.get("_history?_count=100").await).await;
    assert_eq!(system["entry"].as_array().unwrap().len(), 11);
    assert!(
        system["link"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["relation"] != "next")
    );
}

#[tokio::test]
async fn since_and_at_select_versions_by_time() {
    let app = spawn_app().await;
    let mut p = app
        .create(&json!({"resourceType": "Patient", "active": true}))
        .await;
    let id = p["id"].as_str().unwrap().to_owned();
    let v1_time = p["meta"]["lastUpdated"].as_str().unwrap().to_owned();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    p["active"] = json!(false);
    let v2: Value = app
        .put(&format!("Patient/{id}"), &p)
        .await
        .json()
        .await
        .unwrap();
    let v2_time = v2["meta"]["lastUpdated"].as_str().unwrap().to_owned();
    let encoded = |t: &str| t.replace('+', "%2B");
    let (_, since) = status_json(
        app.get(&format!(
            "Patient/{id}/_history?_since={}",
            encoded(&v2_time)
        ))
        .await,
    )
    .await;
    assert_eq!(since["entry"].as_array().unwrap().len(), 1);
    assert_eq!(since["entry"][0]["resource"]["meta"]["versionId"], "2");
    let (_, at) = status_json(
        app.get(&format!("Patient/{id}/_history?_at={}", encoded(&v1_time)))
            .await,
    )
    .await;
    let versions: Vec<&str> = at["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"]["meta"]["versionId"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["1"], "at v1's instant only v1 was current");
    let (status, body) = status_json(app.get("_history?_since=not-a-date").await).await;
    assert_eq!(status, 400);
    assert_eq!(body["issue"][0]["expression"][0], "_since");
}
