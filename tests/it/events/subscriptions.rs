//! R4 Subscriptions over rest-hook: criteria through the search layer,
//! payloads, headers, order, retries with `status` error and recovery,
//! tenants, the subscriber's rights, and `$status`.

use super::receiver::Receiver;
use super::{fast, rest_hook, subscribe, wait_subscription};
use crate::harness::{cluster, fresh_database, spawn_app_on, spawn_app_with, status_json};
use serde_json::{Value, json};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(15);

#[tokio::test]
async fn a_rest_hook_without_payload_is_a_post_per_matching_change() {
    let receiver = Receiver::start().await;
    let app = spawn_app_with(fast).await;
    let id = subscribe(
        &app,
        &rest_hook("Patient?gender=female", &receiver.url, None),
    )
    .await;
    // The server accepts it: requested → active.
    wait_subscription(&app, &id, LIMIT, |s| s["status"] == "active").await;
    app.create(&json!({"resourceType": "Patient", "gender": "male"}))
        .await;
    app.create(&json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"}}))
        .await;
    let female = app
        .create(&json!({"resourceType": "Patient", "gender": "female"}))
        .await;
    let received = receiver.wait_for(LIMIT, |r| !r.is_empty()).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let received = if receiver.received().len() > received.len() {
        receiver.received()
    } else {
        received
    };
    assert_eq!(
        received.len(),
        1,
        "only the female patient matches: {received:?}"
    );
    let hook = &received[0];
    assert_eq!(hook.method, "POST");
    assert_eq!(hook.path, "/hook");
    assert_eq!(hook.body, "");
    assert_eq!(hook.header("x-hook-secret"), Some("s3cret"));
    assert!(female["id"].is_string());
    // A subscription is a resource like any other; its criteria must be a
    // search the server can run.
    for (criteria, named) in [
        ("Patient?nonsense=1", "Subscription.criteria"),
        ("Nothing?x=1", "Subscription.criteria"),
        ("Patient?_sort=name", "Subscription.criteria"),
    ] {
        let (status, outcome) = status_json(
            app.post("Subscription", &rest_hook(criteria, &receiver.url, None))
                .await,
        )
        .await;
        assert_eq!(status, 400, "{criteria}: {outcome}");
        crate::harness::assert_outcome_names(&outcome, named);
    }
    let mut email = rest_hook("Patient", &receiver.url, None);
    email["channel"]["type"] = json!("email");
    let (status, _) = status_json(app.post("Subscription", &email).await).await;
    assert_eq!(status, 422);
}

#[tokio::test]
async fn full_resource_payloads_arrive_in_commit_order_per_resource() {
    let receiver = Receiver::start().await;
    let app = spawn_app_with(fast).await;
    let id = subscribe(
        &app,
        &rest_hook("Patient", &receiver.url, Some("application/fhir+json")),
    )
    .await;
    wait_subscription(&app, &id, LIMIT, |s| s["status"] == "active").await;
    for version in 1..=6 {
        for pid in ["a", "b", "c"] {
            let p = json!({"resourceType": "Patient", "id": pid,
                           "name": [{"family": format!("v{version}")}]});
            assert!(
                app.put(&format!("Patient/{pid}"), &p)
                    .await
                    .status()
                    .is_success()
            );
        }
    }
    assert_eq!(app.delete("Patient/c").await.status(), 204);
    let received = receiver.wait_for(LIMIT, |r| r.len() >= 19).await;
    for pid in ["a", "b"] {
        let versions: Vec<String> = received
            .iter()
            .filter(|r| r.path == format!("/hook/Patient/{pid}"))
            .map(|r| {
                assert_eq!(r.method, "PUT");
                assert_eq!(r.header("content-type"), Some("application/fhir+json"));
                r.json()["meta"]["versionId"].as_str().unwrap().to_owned()
            })
            .collect();
        assert_eq!(versions, ["1", "2", "3", "4", "5", "6"], "{pid}");
    }
    let c: Vec<&str> = received
        .iter()
        .filter(|r| r.path == "/hook/Patient/c")
        .map(|r| r.method.as_str())
        .collect();
    assert_eq!(c, ["PUT", "PUT", "PUT", "PUT", "PUT", "PUT", "DELETE"]);
}

#[tokio::test]
async fn id_only_notifications_are_bundles_with_an_event_count() {
    let receiver = Receiver::start().await;
    let app = spawn_app_with(fast).await;
    let mut subscription = rest_hook(
        "Observation?status=final",
        &receiver.url,
        Some("application/fhir+json"),
    );
    subscription["channel"]["_payload"] = json!({"extension": [{
        "url": "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-payload-content",
        "valueCode": "id-only"}]});
    let id = subscribe(&app, &subscription).await;
    wait_subscription(&app, &id, LIMIT, |s| s["status"] == "active").await;
    for _ in 0..3 {
        app.create(
            &json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"}}),
        )
        .await;
    }
    let received = receiver.wait_for(LIMIT, |r| r.len() >= 3).await;
    let numbers: Vec<String> = received
        .iter()
        .map(|r| {
            assert_eq!(r.method, "POST");
            let bundle = r.json();
            assert_eq!(bundle["resourceType"], "Bundle");
            assert_eq!(bundle["type"], "history");
            let status = &bundle["entry"][0]["resource"];
            assert_eq!(status["resourceType"], "Parameters");
            let event = status["parameter"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == "notification-event")
                .unwrap();
            let part = |name: &str| {
                event["part"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|p| p["name"] == name)
                    .unwrap()
                    .clone()
            };
            let focus = part("focus")["valueReference"]["reference"]
                .as_str()
                .unwrap()
                .to_owned();
            assert!(focus.contains("/Observation/"), "{focus}");
            part("event-number")["valueString"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(numbers, ["1", "2", "3"]);
    // $status counts the events sent.
    let (status, bundle) = status_json(app.get(&format!("Subscription/{id}/$status")).await).await;
    assert_eq!(status, 200, "{bundle}");
    let parameters = &bundle["entry"][0]["resource"]["parameter"];
    let count = parameters
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "events-since-subscription-start")
        .unwrap();
    assert_eq!(count["valueString"], "3");
}

/// The endpoint fails: deliveries are retried with back-off, the status
/// becomes `error` with the reason, and when the endpoint is back the
/// waiting events arrive and the status is `active` again.
#[tokio::test]
async fn failing_endpoints_are_retried_then_error_then_recover() {
    let receiver = Receiver::start().await;
    let app = spawn_app_with(fast).await;
    let id = subscribe(&app, &rest_hook("Patient", &receiver.url, None)).await;
    wait_subscription(&app, &id, LIMIT, |s| s["status"] == "active").await;
    receiver.set_failing(true);
    for i in 0..3 {
        app.create(&json!({"resourceType": "Patient", "id": format!("r{i}")}))
            .await;
    }
    let errored = wait_subscription(&app, &id, LIMIT, |s| s["status"] == "error").await;
    let reason = errored["error"].as_str().unwrap();
    assert!(reason.contains("503"), "{reason}");
    assert!(receiver.refused() >= 3);
    // Still retried while in error.
    let refused = receiver.refused();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(receiver.refused() > refused, "retries go on in error");
    assert!(receiver.received().is_empty());
    receiver.set_failing(false);
    let recovered = wait_subscription(&app, &id, LIMIT, |s| s["status"] == "active").await;
    assert!(recovered.get("error").is_none(), "{recovered}");
    // Nothing was lost while the endpoint was down.
    receiver.wait_for(LIMIT, |r| r.len() >= 3).await;
}

/// A subscription sees its own tenant's changes only.
#[tokio::test]
async fn subscriptions_see_their_own_tenant_only() {
    let dbname = fresh_database().await;
    let owner = baraza::db::connect(&cluster().config(&dbname))
        .await
        .unwrap();
    for tenant in ["acme", "globex"] {
        baraza::store::tenants::create(&owner, tenant, "")
            .await
            .unwrap();
    }
    let app = spawn_app_on(dbname, fast).await;
    let acme = Receiver::start().await;
    let globex = Receiver::start().await;
    let a = app
        .create_in(
            "acme",
            &rest_hook("Patient", &acme.url, Some("application/fhir+json")),
        )
        .await;
    let g = app
        .create_in(
            "globex",
            &rest_hook("Patient", &globex.url, Some("application/fhir+json")),
        )
        .await;
    for (tenant, sid) in [("acme", &a), ("globex", &g)] {
        let path = format!("{tenant}/Subscription/{sid}");
        for _ in 0..200 {
            let (_, s) = status_json(app.get(&path).await).await;
            if s["status"] == "active" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    for i in 0..3 {
        for (tenant, prefix) in [("acme/", "a"), ("globex/", "g"), ("", "d")] {
            let id = format!("{prefix}{i}");
            let r = app
                .put(
                    &format!("{tenant}Patient/{id}"),
                    &json!({"resourceType": "Patient", "id": id}),
                )
                .await;
            assert_eq!(r.status(), 201);
        }
    }
    let acme_got = acme.wait_for(LIMIT, |r| r.len() >= 3).await;
    let globex_got = globex.wait_for(LIMIT, |r| r.len() >= 3).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let paths = |r: &[super::receiver::Received]| -> Vec<String> {
        r.iter().map(|x| x.path.clone()).collect()
    };
    assert!(acme_got.len() == 3 && acme.received().len() == 3);
    assert!(
        paths(&acme.received())
            .iter()
            .all(|p| p.starts_with("/hook/Patient/a"))
    );
    assert!(globex_got.len() == 3 && globex.received().len() == 3);
    assert!(
        paths(&globex.received())
            .iter()
            .all(|p| p.starts_with("/hook/Patient/g"))
    );
}

/// Deliveries run with the rights of the subscription's owner: an
/// integrator's subscription hears only of its own submissions.
#[tokio::test]
async fn deliveries_respect_the_owners_rights() {
    let provider = crate::oidc::OidcProvider::start().await;
    let dbname = fresh_database().await;
    let owner = baraza::db::connect(&cluster().config(&dbname))
        .await
        .unwrap();
    baraza::store::tenants::create(&owner, "acme", "")
        .await
        .unwrap();
    let settings = provider.settings();
    let app = spawn_app_on(dbname, move |s| {
        fast(s);
        s.oidc = Some(settings);
    })
    .await;
    let a = provider.token("integrator-a").await;
    let b = provider.token("integrator-b").await;
    let receiver = Receiver::start().await;
    let send = |token: &str, path: &str, body: &Value| {
        app.request(reqwest::Method::POST, path)
            .bearer_auth(token)
            .header("content-type", "application/fhir+json")
            .body(body.to_string())
            .send()
    };
    let created = send(
        &a,
        "acme/Subscription",
        &rest_hook("Patient", &receiver.url, Some("application/fhir+json")),
    )
    .await
    .unwrap();
    assert_eq!(created.status(), 201, "{}", created.text().await.unwrap());
    for (token, family) in [(&a, "mine"), (&b, "theirs"), (&a, "mine too")] {
        let r = send(
            token,
            "acme/Patient",
            &json!({"resourceType": "Patient", "name": [{"family": family}]}),
        )
        .await
        .unwrap();
        assert_eq!(r.status(), 201);
    }
    receiver.wait_for(LIMIT, |r| r.len() >= 2).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let families: Vec<String> = receiver
        .received()
        .iter()
        .map(|r| r.json()["name"][0]["family"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(families, ["mine", "mine too"]);
}

/// The websocket channel: bind with a token from `$get-ws-binding-token`
/// or with R4's `bind {id}`, then a `ping {id}` per notification.
#[tokio::test]
async fn websocket_clients_bind_and_hear_pings() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let app = spawn_app_with(fast).await;
    let subscription = json!({"resourceType": "Subscription", "status": "requested",
        "reason": "test", "criteria": "Patient?gender=female",
        "channel": {"type": "websocket"}});
    let id = subscribe(&app, &subscription).await;
    wait_subscription(&app, &id, LIMIT, |s| s["status"] == "active").await;
    let (status, token) = status_json(
        app.get(&format!("Subscription/{id}/$get-ws-binding-token"))
            .await,
    )
    .await;
    assert_eq!(status, 200, "{token}");
    let param = |name: &str| {
        token["parameter"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap()
            .clone()
    };
    let url = param("websocket-url")["valueUrl"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        url.starts_with("ws://") && url.ends_with("/fhir/$websocket"),
        "{url}"
    );
    let token = param("token")["valueString"].as_str().unwrap().to_owned();

    let (mut with_token, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .unwrap();
    let (mut with_id, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .unwrap();
    async fn text<S>(socket: &mut S) -> String
    where
        S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>>
            + Unpin,
    {
        loop {
            let message = tokio::time::timeout(Duration::from_secs(10), socket.next())
                .await
                .expect("a message in time")
                .expect("open")
                .expect("no error");
            if let Message::Text(text) = message {
                return text.to_string();
            }
        }
    }
    with_token
        .send(Message::text(format!("bind-with-token {token}")))
        .await
        .unwrap();
    assert_eq!(text(&mut with_token).await, format!("bound {id}"));
    with_id
        .send(Message::text(format!("bind {id}")))
        .await
        .unwrap();
    assert_eq!(text(&mut with_id).await, format!("bound {id}"));
    app.create(&json!({"resourceType": "Patient", "gender": "male"}))
        .await;
    app.create(&json!({"resourceType": "Patient", "gender": "female"}))
        .await;
    assert_eq!(text(&mut with_token).await, format!("ping {id}"));
    assert_eq!(text(&mut with_id).await, format!("ping {id}"));
    // A made-up token binds nothing.
    let (mut stranger, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .unwrap();
    stranger
        .send(Message::text("bind-with-token nope"))
        .await
        .unwrap();
    assert!(text(&mut stranger).await.starts_with("error "));
}

/// Backport IG topic-based subscriptions: a topic (an R4 Basic) for the
/// creation of Patients, a subscription narrowed by a filter, the
/// handshake, then notification Bundles with the event count and the
/// resource.
#[tokio::test]
async fn topic_based_subscriptions_send_handshakes_and_notification_bundles() {
    let receiver = Receiver::start().await;
    let app = spawn_app_with(fast).await;
    let xver = "http://hl7.org/fhir/5.0/StructureDefinition/extension-SubscriptionTopic";
    let topic_url = "http://example.org/fhir/SubscriptionTopic/new-patient";
    app.create(&json!({"resourceType": "Basic",
        "code": {"coding": [{"system": "http://hl7.org/fhir/fhir-types", "code": "SubscriptionTopic"}]},
        "extension": [
            {"url": format!("{xver}.url"), "valueUri": topic_url},
            {"url": format!("{xver}.resourceTrigger"), "extension": [
                {"url": "resource", "valueUri": "http://hl7.org/fhir/StructureDefinition/Patient"},
                {"url": "supportedInteraction", "valueCode": "create"}]}]}))
        .await;
    let subscription = json!({"resourceType": "Subscription",
        "meta": {"profile": ["http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-subscription"]},
        "status": "requested", "reason": "new female patients",
        "criteria": topic_url,
        "_criteria": {"extension": [{
            "url": "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-filter-criteria",
            "valueString": "Patient?gender=female"}]},
        "channel": {"type": "rest-hook", "endpoint": receiver.url, "payload": "application/fhir+json",
            "_payload": {"extension": [{
                "url": "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-payload-content",
                "valueCode": "full-resource"}]}}});
    let id = subscribe(&app, &subscription).await;
    wait_subscription(&app, &id, LIMIT, |s| s["status"] == "active").await;
    let handshake = receiver.wait_for(LIMIT, |r| !r.is_empty()).await;
    let kind = |bundle: &Value| {
        bundle["entry"][0]["resource"]["parameter"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "type")
            .unwrap()["valueCode"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(kind(&handshake[0].json()), "handshake");
    let female = app
        .create(&json!({"resourceType": "Patient", "gender": "female"}))
        .await;
    let fid = female["id"].as_str().unwrap();
    // An update is not one of the topic's triggers; a male patient does not
    // pass the filter.
    let mut updated = female.clone();
    updated["active"] = json!(true);
    assert_eq!(
        app.put(&format!("Patient/{fid}"), &updated).await.status(),
        200
    );
    app.create(&json!({"resourceType": "Patient", "gender": "male"}))
        .await;
    let received = receiver.wait_for(LIMIT, |r| r.len() >= 2).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.received().len(), 2);
    let bundle = received[1].json();
    assert_eq!(bundle["type"], "history");
    assert_eq!(kind(&bundle), "event-notification");
    let status = &bundle["entry"][0]["resource"]["parameter"];
    let count = status
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "events-since-subscription-start")
        .unwrap();
    assert_eq!(count["valueString"], "1");
    assert_eq!(bundle["entry"][1]["resource"]["id"], fid);
    assert_eq!(bundle["entry"][1]["resource"]["gender"], "female");
    // A subscription to a topic the server does not have is refused.
    let mut unknown = subscription.clone();
    unknown["criteria"] = json!("http://example.org/fhir/SubscriptionTopic/nothing");
    let (status, _) = status_json(app.post("Subscription", &unknown).await).await;
    assert_eq!(status, 422);
}

/// Endpoints outside BARAZA_SUBSCRIPTION_ENDPOINTS are never called (the
/// tests allow http://127.0.0.1: only): the subscription goes to error.
#[tokio::test]
async fn endpoints_outside_the_allowed_prefixes_are_never_called() {
    let app = spawn_app_with(fast).await;
    let id = subscribe(&app, &rest_hook("Patient", "http://localhost:9/hook", None)).await;
    app.create(&json!({"resourceType": "Patient"})).await;
    let errored = wait_subscription(&app, &id, LIMIT, |s| s["status"] == "error").await;
    let reason = errored["error"].as_str().unwrap();
    assert!(reason.contains("BARAZA_SUBSCRIPTION_ENDPOINTS"), "{reason}");
}
