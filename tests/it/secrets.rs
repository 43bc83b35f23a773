//! No secret and no PHI in the logs (issue 4): a real Baraza process logging
//! at the most verbose level serves a session with tokens, a password
//! login, a client secret, and patient data; then its whole output is
//! searched for each of them.

use crate::harness::{cluster, fresh_database};
use crate::oidc::OidcProvider;
use crate::processes::{baraza, free_port, terminate, wait_exit, wait_ready};
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn logs_of_a_full_session_hold_no_secret_and_no_patient_data() {
    let provider = OidcProvider::start().await;
    let dbname = fresh_database().await;
    let url = cluster().request_url(&dbname);
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let login_secret = crate::oidc::client_secret("baraza-login");
    let log_dir = tempfile_dir();
    let log_path = log_dir.join("baraza.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = baraza(
        &["serve"],
        &[
            ("BARAZA_DATABASE_URL", url.as_str()),
            ("BARAZA_LISTEN", listen.as_str()),
            ("BARAZA_LOG", "trace"),
            ("BARAZA_LOG_FORMAT", "json"),
            ("BARAZA_OIDC_ISSUER", provider.issuer.as_str()),
            ("BARAZA_OIDC_AUDIENCE", "baraza"),
            ("BARAZA_OIDC_LOGIN_CLIENT_ID", "baraza-login"),
            ("BARAZA_OIDC_LOGIN_CLIENT_SECRET", login_secret.as_str()),
        ],
    )
    .stdout(log.try_clone().unwrap())
    .stderr(log)
    .spawn()
    .unwrap();
    wait_ready(port, &mut child).await;

    let http = reqwest::Client::new();
    let base = format!("http://{listen}");
    let password = "alice-password";
    let login = http
        .post(format!("{base}/auth/login"))
        .form(&[("username", "alice"), ("password", password)])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let user_token = login.json::<serde_json::Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let admin_token = provider.token("admin-client").await;
    let family = "Wamalwa-Nyokabi";
    let phone = "+254-700-555-0199";
    let patient = json!({"resourceType": "Patient", "id": "p1",
        "name": [{"family": family}], "telecom": [{"system": "phone", "value": phone}]});
    for token in [&admin_token, &user_token] {
        let put = http
            .put(format!("{base}/fhir/Patient/p1"))
            .bearer_auth(token)
            .header("content-type", "application/fhir+json")
            .body(patient.to_string())
            .send()
            .await
            .unwrap();
        assert!(put.status().is_success(), "{}", put.status());
        let search = http
            .get(format!("{base}/fhir/Patient?family={family}"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(search.status(), 200);
    }
    // Refused credentials are logged as refusals, without the credential.
    let forged = format!("{admin_token}x");
    let refused = http
        .get(format!("{base}/fhir/Patient/p1"))
        .bearer_auth(&forged)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let wrong = http
        .post(format!("{base}/auth/login"))
        .form(&[("username", "alice"), ("password", "a-wrong-password-77")])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);

    terminate(&child);
    wait_exit(&mut child, Duration::from_secs(30));
    let logs = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        logs.contains("Baraza is serving"),
        "the log was captured: {logs}"
    );
    let admin_secret = crate::oidc::client_secret("admin-client");
    for (what, secret) in [
        ("the admin access token", admin_token.as_str()),
        (
            "the admin token's signature",
            admin_token.rsplit('.').next().unwrap(),
        ),
        ("the user's access token", user_token.as_str()),
        ("the forged token", forged.as_str()),
        ("the user's password", password),
        ("the wrong password", "a-wrong-password-77"),
        ("the login client's secret", login_secret.as_str()),
        ("the admin client's secret", admin_secret.as_str()),
        ("the patient's family name", family),
        ("the patient's phone number", phone),
    ] {
        assert!(!logs.contains(secret), "{what} appears in the logs");
    }
    let _ = std::fs::remove_dir_all(&log_dir);
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("baraza-secrets-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
