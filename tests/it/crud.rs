//! create, read, vread, update, delete and patch (http.html).

use crate::harness::{assert_outcome_names, spawn_app, status_json};
use reqwest::Method;
use serde_json::{Value, json};

fn patient(family: &str) -> Value {
    json!({"resourceType": "Patient", "name": [{"family": family, "given": ["Amina"]}], "gender": "female", "birthDate": "1980-05-17"})
}

#[tokio::test]
async fn create_returns_201_with_location_etag_and_server_meta() {
    let app = spawn_app().await;
    let mut body = patient("Wanjiru");
    body["id"] = json!("client-chosen");
    body["meta"] = json!({"versionId": "77", "lastUpdated": "2001-01-01T00:00:00Z", "tag": [{"system": "urn:t", "code": "x"}]});
    let response = app.post("Patient", &body).await;
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let etag = response.headers()["etag"].to_str().unwrap().to_owned();
    assert!(response.headers().contains_key("last-modified"));
    let created: Value = response.json().await.unwrap();
    let id = created["id"].as_str().unwrap();
    assert_ne!(id, "client-chosen", "the server assigns ids on create");
    assert_eq!(location, app.url(&format!("Patient/{id}/_history/1")));
    assert_eq!(etag, "W/\"1\"");
    assert_eq!(created["meta"]["versionId"], "1");
    assert_ne!(created["meta"]["lastUpdated"], "2001-01-01T00:00:00Z");
    assert_eq!(
        created["meta"]["tag"][0]["code"], "x",
        "client meta other than versionId/lastUpdated is kept"
    );
    assert_eq!(created["name"][0]["family"], "Wanjiru");
}

#[tokio::test]
async fn read_returns_the_current_version_with_headers() {
    let app = spawn_app().await;
    let created = app.create(&patient("Otieno")).await;
    let id = created["id"].as_str().unwrap();
    let response = app.get(&format!("Patient/{id}")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["etag"], "W/\"1\"");
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/fhir+json")
    );
    let read: Value = response.json().await.unwrap();
    assert_eq!(read, created);
}

#[tokio::test]
async fn read_of_unknown_resource_is_404_operation_outcome() {
    let app = spawn_app().await;
    let (status, body) = status_json(app.get("Patient/nope").await).await;
    assert_eq!(status, 404);
    assert_eq!(body["resourceType"], "OperationOutcome");
    assert_eq!(body["issue"][0]["code"], "not-found");
}

#[tokio::test]
async fn update_creates_new_versions_and_vread_returns_old_ones() {
    let app = spawn_app().await;
    let mut resource = app.create(&patient("Kamau")).await;
    let id = resource["id"].as_str().unwrap().to_owned();
    resource["gender"] = json!("male");
    let response = app.put(&format!("Patient/{id}"), &resource).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["etag"], "W/\"2\"");
    let (status, v1) = status_json(app.get(&format!("Patient/{id}/_history/1")).await).await;
    assert_eq!(status, 200);
    assert_eq!(v1["gender"], "female");
    let (_, v2) = status_json(app.get(&format!("Patient/{id}/_history/2")).await).await;
    assert_eq!(v2["gender"], "male");
    assert_eq!(v2["meta"]["versionId"], "2");
    let (status, _) = status_json(app.get(&format!("Patient/{id}/_history/3")).await).await;
    assert_eq!(status, 404);
    let (status, _) = status_json(app.get(&format!("Patient/{id}/_history/x")).await).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn update_as_create_uses_the_client_id() {
    let app = spawn_app().await;
    let mut resource = patient("Achieng");
    resource["id"] = json!("chosen-1");
    let response = app.put("Patient/chosen-1", &resource).await;
    assert_eq!(response.status(), 201);
    let (status, read) = status_json(app.get("Patient/chosen-1").await).await;
    assert_eq!(status, 200);
    assert_eq!(read["meta"]["versionId"], "1");
}

#[tokio::test]
async fn update_with_wrong_or_missing_id_is_400_naming_the_path() {
    let app = spawn_app().await;
    let mut resource = patient("Njeri");
    resource["id"] = json!("other");
    let (status, body) = status_json(app.put("Patient/abc", &resource).await).await;
    assert_eq!(status, 400);
    assert_outcome_names(&body, "Patient.id");
    resource.as_object_mut().unwrap().remove("id");
    let (status, body) = status_json(app.put("Patient/abc", &resource).await).await;
    assert_eq!(status, 400);
    assert_outcome_names(&body, "Patient.id");
}

#[tokio::test]
async fn wrong_resource_type_is_400_naming_resource_type() {
    let app = spawn_app().await;
    let (status, body) = status_json(app.post("Observation", &patient("Mutua")).await).await;
    assert_eq!(status, 400);
    assert_outcome_names(&body, "resourceType");
    assert_eq!(app.count_rows("resource_history").await, 0);
}

#[tokio::test]
async fn delete_keeps_history_and_read_is_410() {
    let app = spawn_app().await;
    let created = app.create(&patient("Chebet")).await;
    let id = created["id"].as_str().unwrap();
    let response = app.delete(&format!("Patient/{id}")).await;
    assert_eq!(response.status(), 204);
    assert_eq!(response.headers()["etag"], "W/\"2\"");
    let (status, body) = status_json(app.get(&format!("Patient/{id}")).await).await;
    assert_eq!(status, 410);
    assert_eq!(body["issue"][0]["code"], "deleted");
    let (status, _) = status_json(app.get(&format!("Patient/{id}/_history/1")).await).await;
    assert_eq!(status, 200, "older versions stay readable");
    let (status, _) = status_json(app.get(&format!("Patient/{id}/_history/2")).await).await;
    assert_eq!(status, 410, "the deletion version reads as gone");
    let (_, history) = status_json(app.get(&format!("Patient/{id}/_history")).await).await;
    assert_eq!(history["entry"].as_array().unwrap().len(), 2);
    assert_eq!(history["entry"][0]["request"]["method"], "DELETE");
    // Deleting again, or deleting what never existed, is not an error.
    assert_eq!(app.delete(&format!("Patient/{id}")).await.status(), 204);
    assert_eq!(app.delete("Patient/never-was").await.status(), 204);
    assert_eq!(app.count_rows("resource_history").await, 2);
    // An update brings it back as a new version.
    let mut again = created.clone();
    again["gender"] = json!("other");
    let response = app.put(&format!("Patient/{id}"), &again).await;
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["etag"], "W/\"3\"");
}

#[tokio::test]
async fn deleted_resources_leave_the_token_index() {
    let app = spawn_app().await;
    let mut resource = patient("Index");
    resource["identifier"] = json!([{"system": "urn:test", "value": "del-1"}]);
    let created = app.create(&resource).await;
    let id = created["id"].as_str().unwrap();
    app.delete(&format!("Patient/{id}")).await;
    let (_, bundle) = status_json(app.get("Patient?identifier=urn:test|del-1").await).await;
    assert!(bundle.get("entry").is_none(), "{bundle}");
    assert_eq!(app.count_rows("search_token").await, 0);
    assert_eq!(app.count_rows("search_reference").await, 0);
}

#[tokio::test]
async fn json_patch_updates_the_resource() {
    let app = spawn_app().await;
    let created = app.create(&patient("Patch")).await;
    let id = created["id"].as_str().unwrap();
    let patch = json!([{"op": "replace", "path": "/gender", "value": "male"}, {"op": "add", "path": "/active", "value": true}]);
    let response = app
        .request(Method::PATCH, &format!("Patient/{id}"))
        .header("content-type", "application/json-patch+json")
        .header("if-match", "W/\"1\"")
        .body(patch.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let (_, body) = status_json(response).await;
    assert_eq!(body["gender"], "male");
    assert_eq!(body["active"], true);
    assert_eq!(body["meta"]["versionId"], "2");
    let (_, history) = status_json(app.get(&format!("Patient/{id}/_history")).await).await;
    assert_eq!(history["entry"][0]["request"]["method"], "PATCH");
}

#[tokio::test]
async fn bad_patches_are_rejected_without_writing() {
    let app = spawn_app().await;
    let created = app.create(&patient("Patch")).await;
    let id = created["id"].as_str().unwrap();
    let send = |body: String, content_type: &'static str| {
        app.request(Method::PATCH, &format!("Patient/{id}"))
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    // A test that fails to apply (the path is missing).
    let failing = json!([{"op": "test", "path": "/gender", "value": "male"}]);
    assert_eq!(
        send(failing.to_string(), "application/json-patch+json")
            .await
            .unwrap()
            .status(),
        422
    );
    // A patch that would change the id.
    let id_change = json!([{"op": "replace", "path": "/id", "value": "other"}]);
    let (status, body) = status_json(
        send(id_change.to_string(), "application/json-patch+json")
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    // A patch producing an invalid resource.
    let invalid = json!([{"op": "add", "path": "/birthDate", "value": "1980-13-45"}]);
    let (status, body) = status_json(
        send(invalid.to_string(), "application/json-patch+json")
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_outcome_names(&body, "Patient.birthDate");
    // Not a JSON Patch document.
    assert_eq!(
        send("{\"op\":1}".into(), "application/json-patch+json")
            .await
            .unwrap()
            .status(),
        400
    );
    // FHIRPath Patch and other formats.
    assert_eq!(
        send(patient("x").to_string(), "application/fhir+json")
            .await
            .unwrap()
            .status(),
        415
    );
    assert_eq!(app.count_rows("resource_history").await, 1);
}

#[tokio::test]
async fn stale_if_match_is_412_and_current_one_succeeds() {
    let app = spawn_app().await;
    let mut resource = app.create(&patient("Match")).await;
    let id = resource["id"].as_str().unwrap().to_owned();
    resource["gender"] = json!("male");
    let put = |etag: &'static str, body: Value| {
        let url = format!("Patient/{id}");
        let app = &app;
        async move {
            app.request(Method::PUT, &url)
                .header("content-type", "application/fhir+json")
                .header("if-match", etag)
                .body(body.to_string())
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(put("W/\"1\"", resource.clone()).await.status(), 200);
    let (status, body) = status_json(put("W/\"1\"", resource.clone()).await).await;
    assert_eq!(status, 412);
    assert_eq!(body["resourceType"], "OperationOutcome");
    assert_eq!(put("bogus", resource.clone()).await.status(), 400);
}

#[tokio::test]
async fn conditional_reads_answer_304() {
    let app = spawn_app().await;
    let created = app.create(&patient("Cache")).await;
    let id = created["id"].as_str().unwrap();
    let url = format!("Patient/{id}");
    let response = app
        .request(Method::GET, &url)
        .header("if-none-match", "W/\"1\"")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 304);
    let response = app
        .request(Method::GET, &url)
        .header("if-none-match", "W/\"0\"")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let last_modified = app.get(&url).await.headers()["last-modified"]
        .to_str()
        .unwrap()
        .to_owned();
    let response = app
        .request(Method::GET, &url)
        .header("if-modified-since", &last_modified)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 304);
    let response = app
        .request(Method::GET, &url)
        .header("if-modified-since", "Mon, 01 Jan 2001 00:00:00 GMT")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn prefer_return_shapes_write_responses() {
    let app = spawn_app().await;
    let send = |prefer: &'static str| {
        app.request(Method::POST, "Patient")
            .header("content-type", "application/fhir+json")
            .header("prefer", prefer)
            .body(patient("Prefer").to_string())
            .send()
    };
    let minimal = send("return=minimal").await.unwrap();
    assert_eq!(minimal.status(), 201);
    assert!(minimal.headers().contains_key("location"));
    assert_eq!(minimal.text().await.unwrap(), "");
    let (status, outcome) = status_json(send("return=OperationOutcome").await.unwrap()).await;
    assert_eq!(status, 201);
    assert_eq!(outcome["resourceType"], "OperationOutcome");
    let (_, representation) = status_json(send("return=representation").await.unwrap()).await;
    assert_eq!(representation["resourceType"], "Patient");
}

#[tokio::test]
async fn routing_errors_have_fhir_statuses() {
    let app = spawn_app().await;
    let (status, body) = status_json(app.get("Patientt/1").await).await;
    assert_eq!(status, 404);
    assert_eq!(body["resourceType"], "OperationOutcome");
    let (status, _) = status_json(app.get("Patient/bad%20id").await).await;
    assert_eq!(status, 400);
    let (status, body) = status_json(app.post("Patient/1", &patient("x")).await).await;
    assert_eq!(status, 405);
    assert_eq!(body["resourceType"], "OperationOutcome");
    let (status, _) = status_json(app.get("Patient/1/$everything").await).await;
    assert_eq!(status, 404);
    let (status, body) = status_json(app.delete("Patient").await).await;
    assert_eq!(
        status, 400,
        "a type-level delete without criteria must not delete anything: {body}"
    );
    let (status, _) = status_json(
        app.client
            .get(app.url("").replace("/fhir", "/nothing"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn head_answers_like_get_without_a_body() {
    let app = spawn_app().await;
    let created = app.create(&patient("Head")).await;
    let id = created["id"].as_str().unwrap();
    let response = app
        .request(Method::HEAD, &format!("Patient/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["etag"], "W/\"1\"");
    assert_eq!(response.text().await.unwrap(), "");
    let response = app
        .request(Method::HEAD, "Patient/absent")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
}
