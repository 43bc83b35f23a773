//! Authentication at the HTTP edge (issue 4): every FHIR request carries a
//! bearer access token except the CapabilityStatement; the SMART discovery
//! document `/.well-known/smart-configuration`; and `POST /auth/login`,
//! which forwards a user's name and password to the provider for clients
//! that cannot run a browser flow. Tokens, passwords and request bodies are
//! never logged.

use super::negotiate::Output;
use super::render_error;
use crate::auth::{AuthError, Principal};
use crate::error::{ApiError, Category};
use crate::service::AppState;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};
use std::sync::Arc;

/// The caller of `req`, or `None` when authentication is off or the path is
/// public (`tail` is the path under `/fhir/`). An `Err` is the response to
/// send: 401 with a `WWW-Authenticate` challenge, or 400.
pub async fn caller(
    req: &HttpRequest,
    state: &AppState,
    tail: &str,
    output: Output,
) -> Result<Option<Arc<Principal>>, HttpResponse> {
    let Some(verifier) = &state.auth else {
        return Ok(None);
    };
    if is_public_fhir_path(tail) {
        return Ok(None);
    }
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|value| value.as_bytes());
    let principal = match verifier.authenticate(authorization).await {
        Ok(principal) => principal,
        Err(e) => return Err(refusal(&e, output)),
    };
    let certificate = super::tls::client_certificate_identity(req);
    if !certificate_fits(certificate.as_deref(), &principal) {
        return Err(render_error(
            &ApiError::new(
                Category::Forbidden,
                "the client certificate does not belong to the access token's client",
            ),
            output,
        ));
    }
    let client = principal.client_id.as_deref().unwrap_or(&principal.subject);
    if let Some(refusal) = super::rate_limit::refuse_verified_client(req, client, output) {
        return Err(refusal);
    }
    Ok(Some(Arc::new(principal)))
}

/// mTLS binding: a verified client certificate (its identity, see
/// `http::tls`) must name the token's integrator or client id, so that a
/// token is usable only over its own client's connection. Without a
/// certificate the token alone decides.
fn certificate_fits(certificate: Option<&str>, principal: &Principal) -> bool {
    match certificate {
        None => true,
        Some(identity) => {
            principal.integrator.as_deref() == Some(identity)
                || principal.client_id.as_deref() == Some(identity)
        }
    }
}

/// `metadata` at the base of any tenant is public (http.html#capabilities:
/// clients read it to learn how to authenticate).
fn is_public_fhir_path(tail: &str) -> bool {
    let segments: Vec<&str> = tail.trim_matches('/').split('/').collect();
    match segments.as_slice() {
        ["metadata"] => true,
        [tenant, "metadata"] => tenant
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase()),
        _ => false,
    }
}

/// The answer to a refused credential.
fn refusal(e: &AuthError, output: Output) -> HttpResponse {
    let error = ApiError::new(e.category(), e.to_string());
    let mut response = render_error(&error, output);
    if let Some(challenge) = e.www_authenticate() {
        if let Ok(value) = header::HeaderValue::from_str(&challenge) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
    }
    response
}

/// `GET /.well-known/smart-configuration` (SMART App Launch 2.0 §2.1).
pub async fn smart_configuration(state: web::Data<AppState>) -> HttpResponse {
    let Some(verifier) = &state.auth else {
        return render_error(
            &ApiError::not_found("authentication is not configured on this server"),
            Output::default(),
        );
    };
    HttpResponse::Ok().json(smart_document(verifier.endpoints()))
}

fn smart_document(endpoints: &crate::auth::ProviderEndpoints) -> Value {
    json!({
        "issuer": endpoints.issuer,
        "jwks_uri": endpoints.jwks,
        "authorization_endpoint": endpoints.authorization,
        "token_endpoint": endpoints.token,
        "grant_types_supported": ["authorization_code", "client_credentials"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "private_key_jwt"],
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": [
            "openid", "fhirUser", "launch/patient", "offline_access",
            "patient/*.rs", "patient/*.read",
            "user/*.cruds", "user/*.rs", "user/*.read", "user/*.write",
            "system/*.cruds", "system/*.rs", "system/*.read", "system/*.write"
        ],
        "capabilities": [
            "client-confidential-symmetric", "client-confidential-asymmetric",
            "sso-openid-connect", "context-standalone-patient",
            "permission-patient", "permission-user", "permission-v1", "permission-v2"
        ]
    })
}

/// The fields of a login request, as a form or JSON.
#[derive(serde::Deserialize)]
pub struct Login {
    /// Audited (never the password).
    pub(super) username: String,
    password: String,
}

/// `POST /auth/login`: the provider's password grant on the user's behalf;
/// the provider's token response (or its refusal, as 401) is passed back.
pub async fn login(
    state: web::Data<AppState>,
    body: Result<web::Either<web::Form<Login>, web::Json<Login>>, actix_web::Error>,
) -> HttpResponse {
    let output = Output::default();
    let (Some(verifier), Some((client_id, secret))) = (&state.auth, &state.login_client) else {
        return render_error(
            &ApiError::not_found("password login is not configured on this server"),
            output,
        );
    };
    let Ok(body) = body else {
        return render_error(
            &ApiError::invalid("expected username and password, as a form or JSON").at("username"),
            output,
        );
    };
    let login = body.into_inner();
    let Some(token_endpoint) = &verifier.endpoints().token else {
        return render_error(
            &ApiError::new(Category::Unavailable, "the provider has no token endpoint"),
            output,
        );
    };
    let forwarded = reqwest::Client::new()
        .post(token_endpoint)
        .basic_auth(client_id, Some(secret.expose()))
        .form(&[
            ("grant_type", "password"),
            ("username", login.username.as_str()),
            ("password", login.password.as_str()),
        ])
        .timeout(std::time::Duration::from_secs(15))
        .send()
        .await;
    let response = match forwarded {
        Ok(response) => response,
        Err(_) => {
            return render_error(
                &ApiError::new(
                    Category::Unavailable,
                    "the identity provider is unavailable",
                ),
                output,
            );
        }
    };
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if status.is_success() {
        return HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(body);
    }
    let refused = ApiError::new(
        Category::Unauthorized,
        "the identity provider refused the username and password",
    );
    let mut response = render_error(&refused, output);
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_certificates_must_name_the_tokens_client_or_integrator() {
        let principal = Principal {
            subject: "s".into(),
            client_id: Some("dhis2-kenya".into()),
            scopes: crate::auth::Scopes::parse("system/*.cruds"),
            tenants: vec![],
            groups: vec![],
            integrator: Some("moh-dhis2".into()),
            patient: None,
        };
        for (certificate, fits) in [
            (None, true),
            (Some("dhis2-kenya"), true),
            (Some("moh-dhis2"), true),
            (Some("another-lab"), false),
        ] {
            assert_eq!(
                certificate_fits(certificate, &principal),
                fits,
                "{certificate:?}"
            );
        }
    }

    #[test]
    fn only_metadata_is_public() {
        for (tail, public) in [
            ("metadata", true),
            ("a-tenant/metadata", true),
            ("Patient/metadata", false),
            ("Patient", false),
            ("", false),
            ("_history", false),
        ] {
            assert_eq!(is_public_fhir_path(tail), public, "{tail}");
        }
    }
}
