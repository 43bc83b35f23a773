//! A real OpenID provider for the authentication tests: the oidc-provider
//! fixture in tests/fixtures/oidc, run with Node as a child process (one per
//! test), with helpers to get tokens over real HTTP and to rotate keys.

use baraza::config::{OidcSettings, Secret};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};

const READY_TIMEOUT: Duration = Duration::from_secs(60);

pub fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/oidc")
}

/// Runs `npm ci` in the fixture once per test run, if its node_modules is
/// missing. A file lock keeps concurrent test processes from installing at
/// the same time.
fn ensure_node_modules() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let dir = fixture_dir();
        let installed = || dir.join("node_modules/oidc-provider/package.json").exists();
        if installed() {
            return;
        }
        let lock_path = std::env::temp_dir().join("baraza-oidc-npm-ci.lock");
        let lock_file = std::fs::File::create(lock_path).expect("create the lock file");
        let _lock = nix::fcntl::Flock::lock(lock_file, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, errno)| errno)
            .expect("lock the OpenID fixture for npm ci");
        if installed() {
            return;
        }
        let status = crate::node::node()
            .npm()
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()
            .expect("run npm");
        assert!(status.success(), "npm ci in {} failed", dir.display());
    });
}

/// A running provider, killed when dropped (and, through `--exit-with-stdin`,
/// when the test process dies).
pub struct OidcProvider {
    pub issuer: String,
    /// The provider's stderr, removed with the provider.
    log: PathBuf,
    http: reqwest::Client,
    _child: Child,
    _stdout: BufReader<ChildStdout>,
}

impl OidcProvider {
    /// A provider issuing tokens for the audience `baraza`.
    pub async fn start() -> OidcProvider {
        OidcProvider::start_for("baraza").await
    }

    pub async fn start_for(audience: &str) -> OidcProvider {
        ensure_node_modules();
        let log = std::env::temp_dir().join(format!(
            "baraza-oidc-{}-{}.log",
            std::process::id(),
            uuid::Uuid::new_v4()
        ));
        let mut child = Command::new(crate::node::node().node())
            .arg("provider.mjs")
            .args(["--audience", audience, "--exit-with-stdin"])
            .current_dir(fixture_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("create the provider log"))
            .kill_on_drop(true)
            .spawn()
            .expect("start node");
        let mut stdout = BufReader::new(child.stdout.take().expect("provider stdout"));
        let mut line = String::new();
        let read = tokio::time::timeout(READY_TIMEOUT, stdout.read_line(&mut line)).await;
        let ready: Value = match read {
            Ok(Ok(n)) if n > 0 => serde_json::from_str(&line).expect("the ready line is JSON"),
            _ => panic!(
                "the OpenID provider did not start; its log: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            ),
        };
        OidcProvider {
            issuer: ready["issuer"].as_str().expect("issuer").to_owned(),
            log,
            http: reqwest::Client::new(),
            _child: child,
            _stdout: stdout,
        }
    }

    /// Settings for Baraza's verifier: this issuer, the audience `baraza`
    /// and the default claim names and skew.
    pub fn settings(&self) -> OidcSettings {
        OidcSettings {
            issuer: self.issuer.clone(),
            audience: "baraza".into(),
            groups_claim: "groups".into(),
            tenants_claim: "tenants".into(),
            clock_skew_secs: 60,
            login_client: Some(("baraza-login".into(), Secret::new("baraza-login-secret"))),
        }
    }

    async fn token_request(&self, client_id: &str, form: &[(&str, &str)]) -> String {
        let response = self
            .http
            .post(format!("{}/token", self.issuer))
            .basic_auth(client_id, Some(client_secret(client_id)))
            .form(form)
            .send()
            .await
            .expect("token request");
        let status = response.status();
        let body: Value = response.json().await.expect("token response is JSON");
        assert_eq!(status, 200, "token request for {client_id}: {body}");
        body["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    }

    /// An access token for a client of clients.json (client credentials).
    pub async fn token(&self, client_id: &str) -> String {
        self.token_request(client_id, &[("grant_type", "client_credentials")])
            .await
    }

    /// An access token for a user of users.json, through the `baraza-login`
    /// client (the password grant a future POST /auth/login forwards to).
    pub async fn password_token(&self, username: &str, password: &str) -> String {
        let form = [
            ("grant_type", "password"),
            ("username", username),
            ("password", password),
        ];
        self.token_request("baraza-login", &form).await
    }

    async fn test_endpoint(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Value {
        let mut request = self.http.request(method, format!("{}{path}", self.issuer));
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.expect("test endpoint request");
        assert_eq!(response.status(), 200, "{path}");
        response.json().await.expect("test endpoint answers JSON")
    }

    /// A new signing key with a new `kid`; the key set publishes it and every
    /// earlier one. Returns the new `kid`.
    pub async fn rotate(&self) -> String {
        let answer = self
            .test_endpoint(reqwest::Method::POST, "/test/rotate", None)
            .await;
        answer["kid"].as_str().expect("kid").to_owned()
    }

    /// Any claim set, signed (RS256) with the current key.
    pub async fn mint(&self, claims: &Value) -> String {
        let answer = self
            .test_endpoint(reqwest::Method::POST, "/test/mint", Some(claims))
            .await;
        answer["token"].as_str().expect("token").to_owned()
    }

    /// The current signing key's public key, PEM.
    pub async fn public_key_pem(&self) -> String {
        let answer = self
            .test_endpoint(reqwest::Method::GET, "/test/signing-key", None)
            .await;
        answer["public_key_pem"].as_str().expect("pem").to_owned()
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.log);
    }
}

/// The secret of a client of clients.json.
pub fn client_secret(client_id: &str) -> String {
    static CLIENTS: OnceLock<Value> = OnceLock::new();
    let clients = CLIENTS.get_or_init(|| {
        let text =
            std::fs::read_to_string(fixture_dir().join("clients.json")).expect("clients.json");
        serde_json::from_str(&text).expect("clients.json is JSON")
    });
    let entry = clients["clients"]
        .as_array()
        .expect("clients")
        .iter()
        .find(|c| c["client_id"] == client_id)
        .unwrap_or_else(|| panic!("no client {client_id} in clients.json"));
    entry["client_secret"]
        .as_str()
        .expect("client_secret")
        .to_owned()
}
