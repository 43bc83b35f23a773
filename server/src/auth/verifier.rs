//! From an `Authorization` header to a [`Principal`]: the bearer credential,
//! the signature with the provider's key, the registered claims, then the
//! caller's own claims.

use std::time::{SystemTime, UNIX_EPOCH};

use openidconnect::JsonWebKey;

use super::error::{AuthError, TokenRejection};
use super::jwt::{self, Expectations};
use super::keys::ProviderKeys;
use super::principal::{ClaimNames, Principal};
use crate::config::OidcSettings;

/// Verifies access tokens of one OpenID provider for one audience.
pub struct Verifier {
    keys: ProviderKeys,
    expect: Expectations,
    claim_names: ClaimNames,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("issuer", &self.expect.issuer)
            .field("audience", &self.expect.audience)
            .finish()
    }
}

impl Verifier {
    /// Discovers the provider and loads its keys; fails when the provider
    /// cannot be reached or its metadata names another issuer.
    pub async fn discover(settings: &OidcSettings) -> anyhow::Result<Verifier> {
        Ok(Verifier {
            keys: ProviderKeys::discover(&settings.issuer).await?,
            expect: Expectations {
                issuer: settings.issuer.clone(),
                audience: settings.audience.clone(),
                clock_skew_secs: settings.clock_skew_secs,
            },
            claim_names: ClaimNames {
                groups: settings.groups_claim.clone(),
                tenants: settings.tenants_claim.clone(),
            },
        })
    }

    /// The provider's endpoints.
    pub fn endpoints(&self) -> &super::keys::ProviderEndpoints {
        &self.keys.endpoints
    }

    /// The caller named by an `Authorization` header value (`None` when the
    /// request has none).
    pub async fn authenticate(&self, authorization: Option<&[u8]>) -> Result<Principal, AuthError> {
        let token = bearer_token(authorization)?;
        self.verify(token).await
    }

    /// Verifies one access token (the part after `Bearer `).
    pub async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let signed = jwt::split(token)?;
        let key = self
            .keys
            .find(signed.kid.as_deref(), &signed.alg)
            .await
            .ok_or(TokenRejection::UnknownKey)?;
        key.verify_signature(
            &signed.alg,
            signed.signing_input.as_bytes(),
            &signed.signature,
        )
        .map_err(|_| TokenRejection::BadSignature)?;
        let claims = signed.claims()?;
        jwt::check_registered_claims(&claims, &self.expect, now_secs())?;
        Ok(Principal::from_claims(&claims, &self.claim_names)?)
    }
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |since| since.as_secs_f64())
}

/// The token of a `Bearer` credential (RFC 6750 §2.1): the scheme in any
/// case, one or more spaces, then a b64token. Another scheme counts as no
/// bearer token at all.
pub fn bearer_token(authorization: Option<&[u8]>) -> Result<&str, AuthError> {
    let Some(value) = authorization else {
        return Err(AuthError::MissingToken);
    };
    let not_bearer =
        AuthError::InvalidRequest("the Authorization header is not a valid Bearer credential");
    let value = std::str::from_utf8(value).map_err(|_| not_bearer.clone())?;
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::MissingToken);
    }
    let token = rest.trim_start_matches(' ');
    let body = token.trim_end_matches('=');
    let b64token = |c: char| c.is_ascii_alphanumeric() || "-._~+/".contains(c);
    if body.is_empty() || !body.chars().all(b64token) {
        return Err(not_bearer);
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(header: Option<&str>, expected: Result<&str, AuthError>) {
        assert_eq!(
            bearer_token(header.map(str::as_bytes)),
            expected,
            "{header:?}"
        );
    }

    #[test]
    fn bearer_credentials_are_parsed_by_rfc_6750() {
        let invalid = Err(AuthError::InvalidRequest(
            "the Authorization header is not a valid Bearer credential",
        ));
        check(Some("Bearer abc.def.ghi"), Ok("abc.def.ghi"));
        check(Some("bearer abc"), Ok("abc"));
        check(Some("BEARER   a-b_c~d+e/f=="), Ok("a-b_c~d+e/f=="));
        check(None, Err(AuthError::MissingToken));
        check(Some("Basic dXNlcjpwdw=="), Err(AuthError::MissingToken));
        check(Some("Bearerabc"), Err(AuthError::MissingToken));
        check(Some(""), Err(AuthError::MissingToken));
        check(Some("Bearer"), invalid.clone());
        check(Some("Bearer "), invalid.clone());
        check(Some("Bearer ==="), invalid.clone());
        check(Some("Bearer abc def"), invalid.clone());
        check(Some("Bearer abc\tdef"), invalid.clone());
        check(Some("Bearer a=b"), invalid.clone());
        check(Some("Bearer \"abc\""), invalid.clone());
        assert_eq!(bearer_token(Some(b"Bearer \xff")), invalid);
    }
}
