//! Several `baraza serve` processes on one database: each event is
//! delivered once per subscription, kill -9 of the delivering instance
//! loses nothing, caches are invalidated across instances, and a job
//! moves to another instance when its own dies.

use super::receiver::{Received, Receiver};
use super::rest_hook;
use crate::harness::{cluster, fresh_database, status_json};
use crate::processes::{serve, wait_exit, wait_ready};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::process::Child;
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(30);

/// One `baraza serve` process.
struct Instance {
    child: Child,
    base: String,
    client: reqwest::Client,
}

impl Instance {
    async fn start(dbname: &str, extra: &[(&str, &str)]) -> Instance {
        let mut env = vec![
            ("BARAZA_EVENTS_POLL_MS", "50"),
            ("BARAZA_SUBSCRIPTION_RETRY_MAX_SECS", "1"),
            ("BARAZA_SUBSCRIPTION_ENDPOINTS", "http://127.0.0.1:"),
            // Exact counts of Patient versions: no golden records.
            ("BARAZA_MPI", "off"),
        ];
        env.extend_from_slice(extra);
        let (mut child, port) = serve(dbname, &env);
        wait_ready(port, &mut child).await;
        Instance {
            child,
            base: format!("http://127.0.0.1:{port}/fhir"),
            client: reqwest::Client::new(),
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let mut request = self.client.request(method, format!("{}/{path}", self.base));
        if let Some(body) = body {
            request = request
                .header("content-type", "application/fhir+json")
                .body(body.to_string());
        }
        status_json(request.send().await.unwrap()).await
    }

    async fn put(&self, path: &str, body: &Value) {
        let (status, body) = self.send(reqwest::Method::PUT, path, Some(body)).await;
        assert!(status == 200 || status == 201, "{path}: {body}");
    }

    fn kill_nine(&mut self) {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        wait_exit(&mut self.child, Duration::from_secs(10));
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn owner(dbname: &str) -> tokio_postgres::Client {
    baraza::db::connect(&cluster().config(dbname))
        .await
        .unwrap()
}

/// Waits until the subscription's consumer is leased and returns the pid
/// of the instance holding it.
async fn lease_holder(db: &tokio_postgres::Client, consumer: &str) -> u32 {
    let deadline = Instant::now() + LIMIT;
    loop {
        let row = db
            .query_opt(
                "SELECT leased_by FROM event_consumers WHERE consumer = $1 AND lease_until > now()",
                &[&consumer],
            )
            .await
            .unwrap();
        if let Some(holder) = row.and_then(|r| r.get::<_, Option<String>>(0)) {
            // host:pid:random
            return holder.split(':').nth(1).unwrap().parse().unwrap();
        }
        assert!(Instant::now() < deadline, "nobody took the lease");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_active(instance: &Instance, id: &str) {
    let deadline = Instant::now() + LIMIT;
    loop {
        let (_, s) = instance
            .send(reqwest::Method::GET, &format!("Subscription/{id}"), None)
            .await;
        if s["status"] == "active" {
            return;
        }
        assert!(Instant::now() < deadline, "not activated: {s}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn subscribe(instance: &Instance, receiver: &Receiver) -> String {
    let (status, created) = instance
        .send(
            reqwest::Method::POST,
            "Subscription",
            Some(&rest_hook(
                "Patient",
                &receiver.url,
                Some("application/fhir+json"),
            )),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    wait_active(instance, &id).await;
    id
}

/// `(id, version)` of each full-resource notification, in arrival order.
fn versions(received: &[Received]) -> Vec<(String, i64)> {
    received
        .iter()
        .map(|r| {
            let body = r.json();
            (
                body["id"].as_str().unwrap().to_owned(),
                body["meta"]["versionId"].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn two_instances_deliver_each_event_once() {
    let dbname = fresh_database().await;
    let a = Instance::start(&dbname, &[]).await;
    let b = Instance::start(&dbname, &[]).await;
    let receiver = Receiver::start().await;
    subscribe(&a, &receiver).await;
    for i in 0..40 {
        let via = if i % 2 == 0 { &a } else { &b };
        via.put(
            &format!("Patient/p{i}"),
            &json!({"resourceType": "Patient", "id": format!("p{i}")}),
        )
        .await;
    }
    receiver.wait_for(LIMIT, |r| r.len() >= 40).await;
    // Both instances poll every 50 ms: give a duplicate time to show.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let got = versions(&receiver.received());
    let mut counts: HashMap<String, usize> = HashMap::new();
    for (id, _) in &got {
        *counts.entry(id.clone()).or_default() += 1;
    }
    assert_eq!(counts.len(), 40);
    assert!(counts.values().all(|n| *n == 1), "duplicates: {counts:?}");
}

#[tokio::test]
async fn kill_nine_of_the_delivering_instance_loses_nothing() {
    let dbname = fresh_database().await;
    let mut first = Instance::start(&dbname, &[]).await;
    let mut second = Instance::start(&dbname, &[]).await;
    let receiver = Receiver::start().await;
    receiver.set_delay(Duration::from_millis(20));
    let id = subscribe(&first, &receiver).await;
    let db = owner(&dbname).await;
    let holder = lease_holder(&db, &format!("Subscription/{id}")).await;
    let (delivering, survivor) = if holder == first.pid() {
        (&mut first, &mut second)
    } else {
        assert_eq!(holder, second.pid());
        (&mut second, &mut first)
    };
    // Two versions of 60 patients, written through the survivor.
    for version in 0..2 {
        for i in 0..60 {
            survivor
                .put(
                    &format!("Patient/k{i}"),
                    &json!({"resourceType": "Patient", "id": format!("k{i}"),
                            "name": [{"family": format!("v{version}")}]}),
                )
                .await;
        }
    }
    receiver.wait_for(LIMIT, |r| r.len() >= 30).await;
    delivering.kill_nine();
    let received = receiver
        .wait_for(Duration::from_secs(60), |r| {
            let distinct: std::collections::HashSet<(String, i64)> =
                versions(r).into_iter().collect();
            distinct.len() >= 120
        })
        .await;
    // At least once: every version arrived; a duplicate is possible only
    // for what was in flight when the instance died.
    let got = versions(&received);
    assert!(got.len() <= 120 + 40, "too many duplicates: {}", got.len());
    // Per resource, versions first arrive in commit order.
    let mut first_seen: HashMap<String, Vec<i64>> = HashMap::new();
    for (id, version) in got {
        let seen = first_seen.entry(id).or_default();
        if !seen.contains(&version) {
            seen.push(version);
        }
    }
    for (id, seen) in first_seen {
        assert_eq!(seen, [1, 2], "{id}");
    }
}

const ETHNICITY: &str = "http://example.org/fhir/StructureDefinition/ethnicity";

fn patient(id: &str, ethnicity: &str) -> Value {
    json!({"resourceType": "Patient", "id": id,
           "extension": [{"url": ETHNICITY, "valueCode": ethnicity}]})
}

fn search_parameter() -> Value {
    json!({"resourceType": "SearchParameter", "id": "ethnicity",
           "url": "http://example.org/fhir/SearchParameter/patient-ethnicity",
           "name": "ethnicity", "status": "active", "description": "Ethnicity",
           "code": "ethnicity", "base": ["Patient"], "type": "token",
           "expression": format!("Patient.extension('{ETHNICITY}').value")})
}

async fn load(instance: &Instance, resources: Vec<Value>) {
    let entries: Vec<Value> = resources
        .into_iter()
        .map(|r| {
            let url = format!(
                "{}/{}",
                r["resourceType"].as_str().unwrap(),
                r["id"].as_str().unwrap()
            );
            json!({"resource": r, "request": {"method": "PUT", "url": url}})
        })
        .collect();
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": entries});
    let (status, body) = instance
        .send(reqwest::Method::POST, "", Some(&bundle))
        .await;
    assert_eq!(status, 200, "{body}");
}

/// Starts `$reindex` on `instance` and returns the job's id.
async fn start_reindex(instance: &Instance) -> String {
    let response = instance
        .client
        .post(format!("{}/Patient/$reindex", instance.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let location = response.headers()["content-location"]
        .to_str()
        .unwrap()
        .to_owned();
    location.rsplit('/').next().unwrap().to_owned()
}

async fn job_state(instance: &Instance, job: &str) -> (String, i64) {
    let (status, body) = instance
        .send(reqwest::Method::GET, &format!("$reindex/{job}"), None)
        .await;
    assert_eq!(status, 200, "{body}");
    let find = |name: &str| {
        body["parameter"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .cloned()
            .unwrap()
    };
    (
        find("status")["valueCode"].as_str().unwrap().to_owned(),
        find("processed")["valueInteger"].as_i64().unwrap(),
    )
}

async fn wait_done(instance: &Instance, job: &str, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let (status, _) = job_state(instance, job).await;
        if status == "done" {
            return;
        }
        assert_eq!(status, "running");
        assert!(Instant::now() < deadline, "the job did not finish");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A `$reindex` finished on one instance makes the new parameter
/// searchable on the other at once: its registry cache is reloaded
/// through LISTEN/NOTIFY, without a restart.
#[tokio::test]
async fn custom_search_parameters_reach_every_instance() {
    let dbname = fresh_database().await;
    let a = Instance::start(&dbname, &[]).await;
    let b = Instance::start(&dbname, &[]).await;
    let mut resources: Vec<Value> = (0..30)
        .map(|i| patient(&format!("e{i}"), if i % 3 == 0 { "x" } else { "y" }))
        .collect();
    resources.push(search_parameter());
    load(&a, resources).await;
    let strict = |instance: &Instance, query: &'static str| {
        let request = instance
            .client
            .get(format!("{}/{query}", instance.base))
            .header("prefer", "handling=strict")
            .send();
        async move { status_json(request.await.unwrap()).await }
    };
    let (status, _) = strict(&b, "Patient?ethnicity=x").await;
    assert_eq!(status, 400, "not searchable before $reindex");
    let job = start_reindex(&a).await;
    wait_done(&a, &job, LIMIT).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (status, bundle) = strict(&b, "Patient?ethnicity=x&_count=100").await;
        if status == 200 {
            assert_eq!(bundle["entry"].as_array().unwrap().len(), 10);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the other instance never learnt the parameter: {bundle}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // And b indexes its own writes with it.
    b.put("Patient/new", &patient("new", "x")).await;
    let (_, bundle) = strict(&a, "Patient?ethnicity=x&_count=100").await;
    assert_eq!(bundle["entry"].as_array().unwrap().len(), 11);
}

/// kill -9 of the instance running a job: another adopts it when the
/// lease runs out and finishes it from its cursor.
#[tokio::test]
async fn a_job_moves_to_another_instance_when_its_own_dies() {
    let dbname = fresh_database().await;
    let mut a = Instance::start(&dbname, &[("BARAZA_JOB_THROTTLE_MS", "300")]).await;
    let b = Instance::start(&dbname, &[]).await;
    let mut resources: Vec<Value> = (0..2000)
        .map(|i| patient(&format!("j{i:04}"), if i % 2 == 0 { "x" } else { "y" }))
        .collect();
    resources.push(search_parameter());
    load(&a, resources).await;
    let job = start_reindex(&a).await;
    let deadline = Instant::now() + LIMIT;
    loop {
        let (status, processed) = job_state(&b, &job).await;
        assert_eq!(status, "running");
        if processed >= 400 {
            break;
        }
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    a.kill_nine();
    wait_done(&b, &job, Duration::from_secs(60)).await;
    let db = owner(&dbname).await;
    let holder: String = db
        .query_one("SELECT leased_by FROM reindex_jobs WHERE id = $1", &[&job])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        holder.split(':').nth(1).unwrap(),
        b.pid().to_string(),
        "finished by the survivor"
    );
    let (_, processed) = job_state(&b, &job).await;
    assert!(processed >= 2000, "{processed}");
    let response = b
        .client
        .get(format!("{}/Patient?ethnicity=x&_summary=count", b.base))
        .header("prefer", "handling=strict")
        .send()
        .await
        .unwrap();
    let (status, bundle) = status_json(response).await;
    assert_eq!(status, 200, "{bundle}");
    assert_eq!(bundle["total"], 1000);
}

/// `baraza tenant disable` announces itself: every instance stops serving
/// the tenant at once, not when its copy of the tenants table expires.
#[tokio::test]
async fn a_disabled_tenant_stops_being_served_on_every_instance_at_once() {
    let dbname = fresh_database().await;
    let owner = owner(&dbname).await;
    let a = crate::harness::spawn_app_on(dbname.clone(), |_| {}).await;
    let b = crate::harness::spawn_app_on(dbname, |_| {}).await;
    baraza::store::tenants::create(&owner, "county-9", "")
        .await
        .unwrap();
    // Each instance has just read the tenants: without a message it would
    // serve county-9 for 2 more seconds.
    for app in [&a, &b] {
        loop {
            if app.get("county-9/Patient").await.status() == 200 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let disabled = Instant::now();
    baraza::store::tenants::disable(&owner, "county-9")
        .await
        .unwrap();
    for app in [&a, &b] {
        loop {
            if app.get("county-9/Patient").await.status() == 404 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    assert!(
        disabled.elapsed() < Duration::from_millis(1500),
        "{:?}",
        disabled.elapsed()
    );
}
