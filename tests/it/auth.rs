//! Access-token verification against a real OpenID provider (issue 4):
//! tokens from real grants, tokens the provider's own key signs with bad
//! claims, forged tokens, and key rotation.

use crate::oidc::OidcProvider;
use baraza::auth::{AuthError, Context, Interaction, Principal, TokenRejection, Verifier};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::Mac;
use serde_json::{Value, json};

async fn verifier_of(provider: &OidcProvider) -> Verifier {
    Verifier::discover(&provider.settings()).await.unwrap()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A claim set the verifier accepts; the tests change one claim at a time.
fn valid_claims(provider: &OidcProvider) -> Value {
    json!({
        "iss": provider.issuer, "aud": "baraza", "sub": "minted", "client_id": "minted",
        "iat": now(), "exp": now() + 300, "scope": "system/*.rs", "tenants": ["acme"],
    })
}

async fn verified(provider: &OidcProvider, verifier: &Verifier, client_id: &str) -> Principal {
    verifier
        .verify(&provider.token(client_id).await)
        .await
        .unwrap()
}

fn refused(reason: TokenRejection) -> Result<(), AuthError> {
    Err(AuthError::InvalidToken(reason))
}

async fn outcome(verifier: &Verifier, token: &str) -> Result<(), AuthError> {
    verifier.verify(token).await.map(|_| ())
}

fn parts(token: &str) -> Vec<String> {
    token.split('.').map(str::to_owned).collect()
}

fn decode(part: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

fn encode(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

#[tokio::test]
async fn auth_client_credentials_tokens_carry_the_clients_claims() {
    let provider = OidcProvider::start().await;
    let verifier = verifier_of(&provider).await;
    let token = provider.token("integrator-a").await;
    let principal = verifier.verify(&token).await.unwrap();
    assert_eq!(principal.subject, "integrator-a");
    assert_eq!(principal.client_id.as_deref(), Some("integrator-a"));
    assert_eq!(principal.tenants, ["default", "acme"]);
    assert_eq!(principal.groups, ["registry-integrator"]);
    assert_eq!(principal.integrator.as_deref(), Some("integrator-a"));
    assert_eq!(principal.patient, None);
    let granted = principal
        .scopes
        .granted_by(Interaction::Create, "Observation");
    assert_eq!(granted, Some(Context::System));

    let check = |p: &Principal, tenants: &[&str], allowed: &[(Interaction, &str, bool)]| {
        assert_eq!(p.tenants, tenants, "{p:?}");
        for (interaction, resource_type, expected) in allowed {
            let actual = p.scopes.allows(*interaction, resource_type);
            assert_eq!(actual, *expected, "{p:?} {interaction:?} {resource_type}");
        }
    };
    let admin = verified(&provider, &verifier, "admin-client").await;
    check(
        &admin,
        &["default", "acme", "globex"],
        &[(Interaction::Delete, "Patient", true)],
    );
    assert_eq!(admin.groups, ["tenant-admin"]);
    let clinician = verified(&provider, &verifier, "clinician-client").await;
    let clinician_rules = [
        (Interaction::Read, "Patient", true),
        (Interaction::Update, "Patient", false),
        (Interaction::Create, "Observation", true),
        (Interaction::Read, "Condition", false),
    ];
    check(&clinician, &["default", "acme"], &clinician_rules);
    let readonly = verified(&provider, &verifier, "readonly-client").await;
    let readonly_rules = [
        (Interaction::Search, "Patient", true),
        (Interaction::Create, "Patient", false),
    ];
    check(&readonly, &["default", "acme"], &readonly_rules);
    let patient = verified(&provider, &verifier, "patient-client").await;
    assert_eq!(patient.patient.as_deref(), Some("example-patient"));
    let granted = patient.scopes.granted_by(Interaction::Read, "Observation");
    assert_eq!(granted, Some(Context::Patient));
}

#[tokio::test]
async fn auth_password_grant_tokens_name_the_user() {
    let provider = OidcProvider::start().await;
    let verifier = verifier_of(&provider).await;
    let token = provider.password_token("alice", "alice-password").await;
    let alice = verifier.verify(&token).await.unwrap();
    assert_eq!(alice.subject, "alice");
    assert_eq!(alice.client_id.as_deref(), Some("baraza-login"));
    assert_eq!(alice.groups, ["clinician"]);
    assert_eq!(alice.tenants, ["default", "acme"]);
    let granted = alice.scopes.granted_by(Interaction::Update, "Patient");
    assert_eq!(granted, Some(Context::User));
    let pat = verifier
        .verify(&provider.password_token("pat", "pat-password").await)
        .await
        .unwrap();
    assert_eq!(pat.patient.as_deref(), Some("example-patient"));
}

#[tokio::test]
async fn auth_authorization_header_goes_through_the_bearer_scheme() {
    let provider = OidcProvider::start().await;
    let verifier = verifier_of(&provider).await;
    let token = provider.token("admin-client").await;
    let header = format!("Bearer {token}");
    let principal = verifier
        .authenticate(Some(header.as_bytes()))
        .await
        .unwrap();
    assert_eq!(principal.subject, "admin-client");
    let missing = verifier.authenticate(None).await;
    assert_eq!(missing, Err(AuthError::MissingToken));
    let basic = verifier.authenticate(Some(b"Basic YTpi")).await;
    assert_eq!(basic, Err(AuthError::MissingToken));
}

#[tokio::test]
async fn auth_minted_tokens_with_valid_claims_verify() {
    // The refusals below change one claim of this set: it must pass as is.
    let provider = OidcProvider::start().await;
    let verifier = verifier_of(&provider).await;
    let token = provider.mint(&valid_claims(&provider)).await;
    assert_eq!(outcome(&verifier, &token).await, Ok(()));
}

#[tokio::test]
async fn auth_expired_and_not_yet_valid_tokens_are_refused() {
    let provider = OidcProvider::start().await;
    let verifier = verifier_of(&provider).await;
    let mut expired = valid_claims(&provider);
    expired["iat"] = json!(now() - 3600);
    expired["exp"] = json!(now() - 600);
    let token = provider.mint(&expired).await;
    assert_eq!(
        outcome(&verifier, &token).await,
        refused(TokenRejection::Expired)
    );

    let mut early = valid_claims(&provider);
    early["nbf"] = json!(now() + 600);
    let token = provider.mint(&early).await;
    assert_eq!(
        outcome(&verifier, &token).await,
        refused(TokenRejection::NotYetValid)
    );

    // Within the 60-second skew both are still accepted.
    let mut edges = valid_claims(&provider);
    edges["exp"] = json!(now() - 20);
    edges["nbf"] = json!(now() + 20);
    let token = provider.mint(&edges).await;
    assert_eq!(outcome(&verifier, &token).await, Ok(()));
}

#[tokio::test]
async fn auth_tokens_for_another_audience_are_refused() {
    let provider = OidcProvider::start().await;
    let verifier = verifier_of(&provider).await;
    let mut claims = valid_claims(&provider);
    claims["aud"] = json!(["account", "other-api"]);
    let token = provider.mint(&claims).await;
    assert_eq!(
        outcome(&verifier, &token).await,
        refused(TokenRejection::WrongAudience)
    );

    // A real token the provider issued for another resource server.
    let elsewhere = OidcProvider::start_for("other-api").await;
    let verifier = Verifier::discover(&elsewhere.settings()).await.unwrap();
    let token = elsewhere.token("admin-client").await;
    assert_eq!(
        outcome(&verifier, &token).await,
        refused(TokenRejection::WrongAudience)
    );
}

#[tokio::test]
async fn auth_tokens_from_another_issuer_are_refused() {
    let provider = OidcProvider::start().await;
    let verifier = verifier_of(&provider).await;
    let mut claims = valid_claims(&provider);
    claims["iss"] = json!(format!("{}/", provider.issuer));
    let token = provider.mint(&claims).await;
    assert_eq!(
        outcome(&verifier, &token).await,
        refused(TokenRejection::WrongIssuer)
    );

    // Another provider's token: its key is not one of ours.
    let other = OidcProvider::start().await;
    let token = other.token("admin-client").await;
    assert_eq!(
        outcome(&verifier, &token).await,
        refused(TokenRejection::UnknownKey)
    );
}

#[tokio::test]
async fn auth_unsigned_alg_none_tokens_are_refused() {
    let provider = OidcProvider::start().await;
    let verifier = verifier_of(&provider).await;
    let token = provider.token("readonly-client").await;
    let parts = parts(&token);
    let mut header = decode(&parts[0]);
    header["alg"] = json!("none");
    let unsigned = format!("{}.{}.", encode(&header), parts[1]);
    let refusal = refused(TokenRejection::AlgorithmNotAllowed);
    assert_eq!(outcome(&verifier, &unsigned).await, refusal);
    let with_old_signature = format!("{}.{}.{}", encode(&header), parts[1], parts[2]);
    assert_eq!(outcome(&verifier, &with_old_signature).await, refusal);
}

#[tokio::test]
async fn auth_hs256_tokens_keyed_with_the_public_key_are_refused() {
    let provider = OidcProvider::start().await;
    let verifier = verifier_of(&provider).await;
    let pem = provider.public_key_pem().await;
    let token = provider.token("readonly-client").await;
    let parts = parts(&token);
    let mut header = decode(&parts[0]);
    header["alg"] = json!("HS256");
    let mut claims = decode(&parts[1]);
    claims["scope"] = json!("system/*.cruds");
    let signing_input = format!("{}.{}", encode(&header), encode(&claims));
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(pem.as_bytes()).unwrap();
    mac.update(signing_input.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    let forged = format!("{signing_input}.{signature}");
    let refusal = refused(TokenRejection::AlgorithmNotAllowed);
    assert_eq!(outcome(&verifier, &forged).await, refusal);
}

#[tokio::test]
async fn auth_tampered_payloads_are_refused() {
    let provider = OidcProvider::start().await;
    let verifier = verifier_of(&provider).await;
    let token = provider.token("readonly-client").await;
    let parts = parts(&token);
    let mut claims = decode(&parts[1]);
    claims["scope"] = json!("system/*.cruds");
    claims["tenants"] = json!(["acme", "globex"]);
    let tampered = format!("{}.{}.{}", parts[0], encode(&claims), parts[2]);
    let refusal = refused(TokenRejection::BadSignature);
    assert_eq!(outcome(&verifier, &tampered).await, refusal);
    // The untouched token still passes.
    assert_eq!(outcome(&verifier, &token).await, Ok(()));
}

#[tokio::test]
async fn auth_tokens_of_a_rotated_key_verify_after_a_refetch() {
    let provider = OidcProvider::start().await;
    let verifier = verifier_of(&provider).await;
    let before = provider.token("admin-client").await;
    assert_eq!(outcome(&verifier, &before).await, Ok(()));

    let new_kid = provider.rotate().await;
    let after = provider.token("admin-client").await;
    assert_eq!(decode(&parts(&after)[0])["kid"], new_kid.as_str());
    // The unknown kid makes the verifier refetch the key set once.
    assert_eq!(outcome(&verifier, &after).await, Ok(()));
    // The old key is still published, so its tokens still verify.
    assert_eq!(outcome(&verifier, &before).await, Ok(()));
    let minted = provider.mint(&valid_claims(&provider)).await;
    assert_eq!(outcome(&verifier, &minted).await, Ok(()));
}

#[tokio::test]
async fn auth_unknown_kids_refetch_keys_at_most_once_per_interval() {
    let provider = OidcProvider::start().await;
    let verifier = verifier_of(&provider).await;
    provider.rotate().await;
    let second = provider.token("admin-client").await;
    assert_eq!(outcome(&verifier, &second).await, Ok(()));
    // A second new key within MIN_REFETCH_INTERVAL of that refetch is not
    // fetched: the token is refused until the interval has passed.
    provider.rotate().await;
    let third = provider.token("admin-client").await;
    let refusal = refused(TokenRejection::UnknownKey);
    assert_eq!(outcome(&verifier, &third).await, refusal);
    // A verifier that discovers the provider afresh knows the key.
    let fresh = verifier_of(&provider).await;
    assert_eq!(outcome(&fresh, &third).await, Ok(()));
}

#[tokio::test]
async fn auth_discovery_requires_the_exact_issuer() {
    let provider = OidcProvider::start().await;
    let mut settings = provider.settings();
    settings.issuer.push('/');
    assert!(Verifier::discover(&settings).await.is_err());
}
