//! Compact JWS access tokens: splitting and decoding, the signing-algorithm
//! allow-list, and the time, issuer and audience checks (RFC 7519 §7.2,
//! RFC 9068 §4). Pure functions; the keys live in `keys`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openidconnect::core::CoreJwsSigningAlgorithm;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::error::TokenRejection;

/// Longer tokens are refused before any decoding. Real access tokens are a
/// few kilobytes at most, even with many groups.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// A token split into its parts, with a header that passed the allow-list.
/// The payload is decoded only after the signature has been checked.
#[derive(Debug)]
pub struct SignedToken<'t> {
    pub alg: CoreJwsSigningAlgorithm,
    pub kid: Option<String>,
    /// `base64url(header) "." base64url(payload)`, what the signature covers.
    pub signing_input: &'t str,
    pub signature: Vec<u8>,
    payload: &'t str,
}

/// The header fields Baraza reads. Keys are taken only from the provider's
/// published set: `jwk`, `jku`, `x5u` and `x5c` are ignored. `typ` is not
/// required to be `at+jwt` (RFC 9068) because Keycloak writes `JWT`; an ID
/// token is still refused, by its audience.
#[derive(Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
    /// Extensions the verifier must understand (RFC 7515 §4.1.11). Baraza
    /// understands none, so any `crit` refuses the token.
    crit: Option<Value>,
}

/// The accepted signing algorithms: asymmetric ones only. `none` would skip
/// the signature, and HS* would let anyone holding the provider's *public*
/// key (used as an HMAC secret) forge tokens; EdDSA and ES512 are left out
/// until a provider needs them.
pub fn allowed_algorithm(alg: &str) -> Option<CoreJwsSigningAlgorithm> {
    type Alg = CoreJwsSigningAlgorithm;
    Some(match alg {
        "RS256" => Alg::RsaSsaPkcs1V15Sha256,
        "RS384" => Alg::RsaSsaPkcs1V15Sha384,
        "RS512" => Alg::RsaSsaPkcs1V15Sha512,
        "PS256" => Alg::RsaSsaPssSha256,
        "PS384" => Alg::RsaSsaPssSha384,
        "PS512" => Alg::RsaSsaPssSha512,
        "ES256" => Alg::EcdsaP256Sha256,
        "ES384" => Alg::EcdsaP384Sha384,
        _ => return None,
    })
}

fn decode_part(part: &str) -> Result<Vec<u8>, TokenRejection> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| TokenRejection::Malformed)
}

/// Splits a compact JWS and checks its header. A JWE (five parts), a token
/// with an algorithm outside the allow-list or with `crit` is refused here.
pub fn split(token: &str) -> Result<SignedToken<'_>, TokenRejection> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenRejection::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenRejection::Malformed);
    };
    let parsed: Header =
        serde_json::from_slice(&decode_part(header)?).map_err(|_| TokenRejection::Malformed)?;
    let alg = allowed_algorithm(&parsed.alg).ok_or(TokenRejection::AlgorithmNotAllowed)?;
    if parsed.crit.is_some() {
        return Err(TokenRejection::Malformed);
    }
    let signature = decode_part(signature)?;
    if signature.is_empty() {
        return Err(TokenRejection::Malformed);
    }
    Ok(SignedToken {
        alg,
        kid: parsed.kid,
        signing_input: &token[..header.len() + 1 + payload.len()],
        signature,
        payload,
    })
}

impl SignedToken<'_> {
    /// The claim set; call only once the signature has been verified.
    pub fn claims(&self) -> Result<Map<String, Value>, TokenRejection> {
        serde_json::from_slice(&decode_part(self.payload)?).map_err(|_| TokenRejection::Malformed)
    }
}

/// What the registered claims must say.
#[derive(Debug, Clone)]
pub struct Expectations {
    pub issuer: String,
    pub audience: String,
    pub clock_skew_secs: u64,
}

/// Checks `iss`, `aud`, `exp` and `nbf` at time `now` (seconds since the
/// epoch). `exp`, `iss` and `aud` are required (RFC 9068 §2.2).
pub fn check_registered_claims(
    claims: &Map<String, Value>,
    expect: &Expectations,
    now: f64,
) -> Result<(), TokenRejection> {
    match claims.get("iss") {
        None => return Err(TokenRejection::MissingClaim),
        Some(Value::String(iss)) if *iss == expect.issuer => {}
        Some(Value::String(_)) => return Err(TokenRejection::WrongIssuer),
        Some(_) => return Err(TokenRejection::InvalidClaim),
    }
    let audience_matches = match claims.get("aud") {
        None => return Err(TokenRejection::MissingClaim),
        Some(Value::String(aud)) => *aud == expect.audience,
        Some(Value::Array(auds)) => {
            if !auds.iter().all(Value::is_string) {
                return Err(TokenRejection::InvalidClaim);
            }
            auds.iter()
                .any(|aud| aud.as_str() == Some(&expect.audience))
        }
        Some(_) => return Err(TokenRejection::InvalidClaim),
    };
    if !audience_matches {
        return Err(TokenRejection::WrongAudience);
    }
    let skew = expect.clock_skew_secs as f64;
    let exp = numeric_date(claims, "exp")?.ok_or(TokenRejection::MissingClaim)?;
    // RFC 7519 §4.1.4: the token may be used only *before* `exp`.
    if now - skew >= exp {
        return Err(TokenRejection::Expired);
    }
    if let Some(nbf) = numeric_date(claims, "nbf")? {
        if now + skew < nbf {
            return Err(TokenRejection::NotYetValid);
        }
    }
    numeric_date(claims, "iat")?;
    Ok(())
}

/// A NumericDate claim: a finite JSON number of seconds, or absent.
fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<f64>, TokenRejection> {
    match claims.get(name) {
        None => Ok(None),
        Some(value) => value
            .as_f64()
            .filter(|secs| secs.is_finite())
            .map(Some)
            .ok_or(TokenRejection::InvalidClaim),
    }
}

#[cfg(test)]
mod tests;
