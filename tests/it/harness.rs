//! The test harness: one private PostgreSQL cluster per test run (or the
//! server at BARAZA_TEST_DATABASE_URL), a migrated template database, and a
//! fresh database plus a real Baraza on a random port for every test. As in
//! production, the tables belong to the administrative (owner) role and
//! Baraza's pool logs in as the request role `baraza_app`, which row-level
//! security holds.

use baraza::app::Application;
use baraza::config::Settings;
use baraza::embedded_pg::EmbeddedPostgres;
use reqwest::{Method, Response};
use serde_json::Value;
use std::path::PathBuf;
use std::sync::OnceLock;

const TEMPLATE: &str = "baraza_template";

/// Where test databases live.
pub struct Cluster {
    /// Connection settings for administrative work (CREATE DATABASE).
    admin: tokio_postgres::Config,
    /// Connection string for a dbname and a role (None: the owner).
    url_for: Box<UrlFor>,
    /// How the request role logs in.
    request_login: Login,
}

/// Builds a connection string from a dbname and a role (None: the owner).
type UrlFor = dyn Fn(&str, Option<&Login>) -> String + Send + Sync;

/// A role other than the cluster's administrative one.
pub struct Login {
    user: String,
    /// Needed over TCP; the private cluster trusts its unix socket.
    password: Option<String>,
}

impl Cluster {
    /// The owner's settings: migrations, inspection, administration.
    pub fn config(&self, dbname: &str) -> tokio_postgres::Config {
        (self.url_for)(dbname, None)
            .parse()
            .expect("test database URL")
    }

    /// The owner's connection string (key=value form) for a child process.
    pub fn url(&self, dbname: &str) -> String {
        (self.url_for)(dbname, None)
    }

    /// The request role's settings, as Baraza's pool uses them.
    pub fn request_config(&self, dbname: &str) -> tokio_postgres::Config {
        self.request_url(dbname).parse().expect("test database URL")
    }

    /// The request role's connection string, for `baraza serve`.
    pub fn request_url(&self, dbname: &str) -> String {
        (self.url_for)(dbname, Some(&self.request_login))
    }
}

pub fn cluster() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        let cluster = match std::env::var("BARAZA_TEST_DATABASE_URL") {
            Ok(url) => external_cluster(url),
            Err(_) => private_cluster(),
        };
        create_template(&cluster);
        cluster
    })
}

fn external_cluster(url: String) -> Cluster {
    let admin: tokio_postgres::Config = url
        .parse()
        .expect("BARAZA_TEST_DATABASE_URL is not a PostgreSQL URL");
    Cluster {
        admin: admin.clone(),
        // TCP needs a password; a new one each run.
        request_login: Login {
            user: baraza::db::REQUEST_ROLE.to_owned(),
            password: Some(uuid::Uuid::new_v4().simple().to_string()),
        },
        url_for: Box::new(move |dbname, login| {
            // Rebuild as key=value so that the dbname can be swapped.
            let mut parts = Vec::new();
            for host in admin.get_hosts() {
                match host {
                    tokio_postgres::config::Host::Tcp(h) => parts.push(format!("host={h}")),
                    tokio_postgres::config::Host::Unix(p) => {
                        parts.push(format!("host={}", p.display()))
                    }
                }
            }
            if let Some(port) = admin.get_ports().first() {
                parts.push(format!("port={port}"));
            }
            let (user, password) = match login {
                Some(login) => (Some(login.user.clone()), login.password.clone()),
                None => (
                    admin.get_user().map(str::to_owned),
                    admin
                        .get_password()
                        .map(|pw| String::from_utf8_lossy(pw).into_owned()),
                ),
            };
            if let Some(user) = user {
                parts.push(format!("user={user}"));
            }
            if let Some(pw) = password {
                parts.push(format!("password='{}'", pw.replace('\'', "\\'")));
            }
            parts.push(format!("dbname={dbname}"));
            parts.join(" ")
        }),
    }
}

/// Starts a cluster in a temporary directory from a thread that never
/// exits, so the cluster's parent-death signal fires only when this test
/// process ends.
fn private_cluster() -> Cluster {
    let dir = std::env::temp_dir().join(format!("baraza-it-{}", std::process::id()));
    remove_stale_clusters();
    let (tx, rx) = std::sync::mpsc::channel();
    let dir_for_thread = dir.clone();
    std::thread::Builder::new()
        .name("test-postgres".into())
        .spawn(move || {
            let pg = EmbeddedPostgres::start(&dir_for_thread);
            match pg {
                Ok(pg) => {
                    let socket = pg.socket_dir().to_path_buf();
                    tx.send(Ok(socket)).ok();
                    // Keep `pg` (and this thread) alive for the whole run.
                    loop {
                        std::thread::park();
                        let _ = &pg;
                    }
                }
                Err(e) => {
                    tx.send(Err(format!("{e:#}"))).ok();
                }
            }
        })
        .expect("spawn postgres thread");
    let socket: PathBuf = rx
        .recv()
        .expect("postgres thread")
        .unwrap_or_else(|e| panic!("cannot start the test cluster: {e}"));
    let admin: tokio_postgres::Config = format!(
        "host={} port=5432 user=baraza dbname=postgres",
        socket.display()
    )
    .parse()
    .expect("admin config");
    Cluster {
        admin,
        request_login: Login {
            user: baraza::db::REQUEST_ROLE.to_owned(),
            password: None,
        },
        url_for: Box::new(move |dbname, login| {
            let user = login.map_or("baraza", |l| l.user.as_str());
            format!(
                "host={} port=5432 user={user} dbname={dbname}",
                socket.display()
            )
        }),
    }
}

/// Removes the directories of earlier runs whose process is gone and
/// whose cluster no longer answers. The socket is asked too because a
/// run in another PID namespace sharing this temporary directory (another
/// container, a CI sandbox) has a process id this one cannot see.
fn remove_stale_clusters() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("baraza-it-")
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        let alive = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
            || std::os::unix::net::UnixStream::connect(entry.path().join("run/.s.PGSQL.5432"))
                .is_ok();
        if !alive {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Creates and migrates the template. Runs on its own thread because the
/// first caller is inside a test's async runtime.
fn create_template(cluster: &Cluster) {
    let admin_cfg = cluster.admin.clone();
    let template_cfg = cluster.config(TEMPLATE);
    let password = cluster.request_login.password.clone();
    std::thread::spawn(move || create_template_blocking(admin_cfg, template_cfg, password))
        .join()
        .expect("template creation");
}

fn create_template_blocking(
    admin_cfg: tokio_postgres::Config,
    template_cfg: tokio_postgres::Config,
    request_password: Option<String>,
) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let admin = baraza::db::connect(&admin_cfg)
            .await
            .expect("connect to the test cluster");
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {TEMPLATE}"))
            .await
            .expect("drop old template");
        admin
            .batch_execute(&format!("CREATE DATABASE {TEMPLATE}"))
            .await
            .expect("create template");
        let mut client = baraza::db::connect(&template_cfg)
            .await
            .expect("connect template");
        baraza::db::migrate(&mut client)
            .await
            .expect("migrate template");
        // Grants are copied with the template; the role is the cluster's.
        baraza::db::prepare_request_role(&client, request_password.as_deref())
            .await
            .expect("request role");
    });
}

/// A fresh database cloned from the migrated template.
pub async fn fresh_database() -> String {
    let cluster = cluster();
    let name = format!("test_{}", uuid::Uuid::new_v4().simple());
    let admin = baraza::db::connect(&cluster.admin)
        .await
        .expect("connect admin");
    admin
        .batch_execute(&format!("CREATE DATABASE {name} TEMPLATE {TEMPLATE}"))
        .await
        .expect("create test database");
    name
}

/// A running Baraza on its own database.
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub dbname: String,
    /// `None` for a server in another process ([`TestApp::external`]).
    handle: Option<actix_web::dev::ServerHandle>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts Baraza with settings adjusted by `adjust`.
pub async fn spawn_app_with(adjust: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_on(fresh_database().await, adjust).await
}

/// Starts Baraza on an existing test database (to test a restart).
pub async fn spawn_app_on(dbname: String, adjust: impl FnOnce(&mut Settings)) -> TestApp {
    let mut settings = Settings {
        listen: "127.0.0.1:0".parse().expect("addr"),
        // The master patient index writes golden Patients next to every
        // Patient written, which searches and histories then show: tests
        // that count Patients are about something else and run without it.
        // The MPI's tests (mpi_http) turn it on, as production has it.
        mpi: false,
        ..Settings::default()
    };
    // Subscriptions notify loopback receivers only: the official examples
    // name real endpoints, which a test must never call.
    settings.events.allowed_endpoints = vec!["http://127.0.0.1:".into()];
    adjust(&mut settings);
    let pool =
        baraza::db::pool(cluster().request_config(&dbname), settings.db_pool_size).expect("pool");
    let listen = cluster().request_config(&dbname);
    let app = Application::build_shared(&settings, pool, Some(listen))
        .await
        .expect("build app");
    let base = app.base_url().to_owned();
    let handle = app.handle();
    tokio::spawn(app.run());
    TestApp {
        base,
        // Shorter than the server's keep-alive, so a pooled connection is
        // never reused just as the server closes it.
        client: reqwest::Client::builder()
            .pool_idle_timeout(std::time::Duration::from_secs(30))
            .build()
            .expect("http client"),
        dbname,
        handle: Some(handle),
    }
}

impl TestApp {
    /// A client of a Baraza running in another process at `base` on the
    /// test database `dbname`.
    pub fn external(base: &str, dbname: &str) -> TestApp {
        TestApp {
            base: base.to_owned(),
            client: reqwest::Client::new(),
            dbname: dbname.to_owned(),
            handle: None,
        }
    }

    pub fn url(&self, path: &str) -> String {
        if path.is_empty() {
            self.base.clone()
        } else {
            format!("{}/{}", self.base, path.trim_start_matches('/'))
        }
    }

    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, self.url(path))
    }

    pub async fn get(&self, path: &str) -> Response {
        self.request(Method::GET, path).send().await.expect("GET")
    }

    pub async fn post(&self, path: &str, body: &Value) -> Response {
        self.send_json(Method::POST, path, body).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Response {
        self.send_json(Method::PUT, path, body).await
    }

    pub async fn delete(&self, path: &str) -> Response {
        self.request(Method::DELETE, path)
            .send()
            .await
            .expect("DELETE")
    }

    pub async fn send_json(&self, method: Method, path: &str, body: &Value) -> Response {
        self.request(method, path)
            .header("content-type", "application/fhir+json")
            .body(body.to_string())
            .send()
            .await
            .expect("request")
    }

    /// Creates a resource and returns it as stored.
    pub async fn create(&self, resource: &Value) -> Value {
        let t = resource["resourceType"].as_str().expect("resourceType");
        let response = self.post(t, resource).await;
        let status = response.status().as_u16();
        let body: Value = response.json().await.expect("json");
        assert_eq!(status, 201, "create failed: {body}");
        body
    }

    /// A connection to this test's database as the request role, the role
    /// Baraza's pool uses (row-level security applies).
    pub async fn request_db(&self) -> tokio_postgres::Client {
        baraza::db::connect(&cluster().request_config(&self.dbname))
            .await
            .expect("connect test db as the request role")
    }

    /// A direct connection to this test's database, as the owner (a
    /// superuser on the private cluster: it sees every tenant's rows).
    pub async fn db(&self) -> tokio_postgres::Client {
        baraza::db::connect(&cluster().config(&self.dbname))
            .await
            .expect("connect test db")
    }

    pub async fn count_rows(&self, table: &str) -> i64 {
        self.db()
            .await
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await
            .expect("count")
            .get(0)
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Stop the server without waiting; the database is left for post
        // mortems and removed with the cluster.
        if let Some(handle) = &self.handle {
            drop(handle.stop(false));
        }
    }
}

/// Status and JSON body of a response.
pub async fn status_json(response: Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, body)
}

/// Asserts an OperationOutcome whose issues name `expression`.
pub fn assert_outcome_names(body: &Value, expression: &str) {
    assert_eq!(body["resourceType"], "OperationOutcome", "{body}");
    let named = body["issue"]
        .as_array()
        .expect("issues")
        .iter()
        .any(|issue| {
            issue["expression"].as_array().is_some_and(|e| {
                e.iter()
                    .any(|x| x.as_str().is_some_and(|x| x.starts_with(expression)))
            })
        });
    assert!(named, "no issue names {expression}: {body}");
}

impl TestApp {
    /// Stores resources (each with an id) in one transaction of PUTs.
    pub async fn load(&self, resources: &[Value]) {
        let entries: Vec<Value> = resources
            .iter()
            .map(|r| {
                let url = format!(
                    "{}/{}",
                    r["resourceType"].as_str().expect("resourceType"),
                    r["id"].as_str().expect("id")
                );
                serde_json::json!({"resource": r, "request": {"method": "PUT", "url": url}})
            })
            .collect();
        let bundle =
            serde_json::json!({"resourceType": "Bundle", "type": "transaction", "entry": entries});
        let (status, body) = status_json(self.post("", &bundle).await).await;
        assert_eq!(status, 200, "load failed: {body}");
    }

    /// `(search mode, Type/id)` of every entry of a search, in order.
    pub async fn search_entries(&self, query: &str) -> (Value, Vec<(String, String)>) {
        let (status, bundle) = status_json(self.get(query).await).await;
        assert_eq!(status, 200, "{query}: {bundle}");
        let entries = bundle["entry"]
            .as_array()
            .map(|entries| {
                entries
                    .iter()
                    .filter(|e| e["search"]["mode"] != "outcome")
                    .map(|e| {
                        let r = &e["resource"];
                        (
                            e["search"]["mode"].as_str().unwrap_or_default().to_owned(),
                            format!(
                                "{}/{}",
                                r["resourceType"].as_str().unwrap_or_default(),
                                r["id"].as_str().unwrap_or_default()
                            ),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        (bundle, entries)
    }
}

impl TestApp {
    /// GET with `Prefer: handling=strict`.
    pub async fn get_strict(&self, path: &str) -> Response {
        self.request(Method::GET, path)
            .header("prefer", "handling=strict")
            .send()
            .await
            .expect("GET")
    }

    /// `Type/id` of a search's matches, sorted.
    pub async fn match_keys(&self, query: &str) -> Vec<String> {
        let (_, entries) = self.search_entries(query).await;
        keys_in_mode(&entries, "match")
    }

    /// The ids of a search's matches, sorted.
    pub async fn match_ids(&self, query: &str) -> Vec<String> {
        let keys = self.match_keys(query).await;
        let mut ids: Vec<String> = keys
            .iter()
            .map(|k| {
                k.split_once('/')
                    .map_or(k.as_str(), |(_, id)| id)
                    .to_owned()
            })
            .collect();
        ids.sort();
        ids
    }

    /// `ANALYZE` of `tables` (every table when empty), as autovacuum does
    /// soon after a load: plan choices then rest on real statistics.
    pub async fn analyze(&self, tables: &str) {
        self.db()
            .await
            .batch_execute(&format!("ANALYZE {tables}"))
            .await
            .unwrap();
    }

    /// Asserts that `query` is a 400 whose OperationOutcome names `name`.
    pub async fn assert_rejected(&self, query: &str, name: &str) {
        let (status, body) = status_json(self.get(query).await).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_outcome_names(&body, name);
    }
}

/// The sorted `Type/id` keys of the entries in `mode` (see
/// [`TestApp::search_entries`]).
pub fn keys_in_mode(entries: &[(String, String)], mode: &str) -> Vec<String> {
    let mut keys: Vec<String> = entries
        .iter()
        .filter(|(m, _)| m == mode)
        .map(|(_, k)| k.clone())
        .collect();
    keys.sort();
    keys
}

impl TestApp {
    /// Creates a resource in `tenant` and returns its id.
    pub async fn create_in(&self, tenant: &str, resource: &Value) -> String {
        let t = resource["resourceType"].as_str().expect("resourceType");
        let response = self.post(&format!("{tenant}/{t}"), resource).await;
        let status = response.status().as_u16();
        let body: Value = response.json().await.expect("json");
        assert_eq!(status, 201, "create failed: {body}");
        body["id"].as_str().expect("id").to_owned()
    }
}
