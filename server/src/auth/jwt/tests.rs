//! Token splitting, the algorithm allow-list and the registered-claim
//! checks, one case a line.

use super::*;
use serde_json::json;

const NOW: f64 = 1_700_000_000.0;

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

/// A token with the given header and a fixed payload and signature.
fn token_with_header(header: Value) -> String {
    format!("{}.{}.c2ln", b64(&header), b64(&json!({"sub": "x"})))
}

fn check_split(token: &str, expected: Result<&str, TokenRejection>) {
    let actual = split(token).map(|t| format!("{:?} kid={:?}", t.alg, t.kid));
    assert_eq!(actual.as_deref().map_err(|e| *e), expected, "{token}");
}

#[test]
fn split_accepts_only_allow_listed_asymmetric_algorithms() {
    let ok = |alg: &str| token_with_header(json!({"alg": alg, "kid": "k1"}));
    check_split(&ok("RS256"), Ok("RsaSsaPkcs1V15Sha256 kid=Some(\"k1\")"));
    check_split(&ok("RS384"), Ok("RsaSsaPkcs1V15Sha384 kid=Some(\"k1\")"));
    check_split(&ok("RS512"), Ok("RsaSsaPkcs1V15Sha512 kid=Some(\"k1\")"));
    check_split(&ok("PS256"), Ok("RsaSsaPssSha256 kid=Some(\"k1\")"));
    check_split(&ok("PS384"), Ok("RsaSsaPssSha384 kid=Some(\"k1\")"));
    check_split(&ok("PS512"), Ok("RsaSsaPssSha512 kid=Some(\"k1\")"));
    check_split(&ok("ES256"), Ok("EcdsaP256Sha256 kid=Some(\"k1\")"));
    check_split(&ok("ES384"), Ok("EcdsaP384Sha384 kid=Some(\"k1\")"));
    let refused = Err(TokenRejection::AlgorithmNotAllowed);
    for alg in [
        "none", "None", "NONE", "HS256", "HS384", "HS512", "EdDSA", "ES512", "rs256", "",
    ] {
        check_split(&ok(alg), refused);
    }
}

#[test]
fn split_refuses_malformed_tokens() {
    let malformed = Err(TokenRejection::Malformed);
    let rs256 = json!({"alg": "RS256"});
    check_split("", malformed);
    check_split("abc", malformed);
    check_split("a.b", malformed);
    check_split("a.b.c.d.e", malformed);
    check_split("!!.e30.c2ln", malformed);
    check_split(&format!("{}.e30.", b64(&rs256)), malformed);
    check_split(&format!("{}.e30.c2ln=", b64(&rs256)), malformed);
    check_split(&format!("{}.e30.c2ln", b64(&json!(["RS256"]))), malformed);
    check_split(
        &format!("{}.e30.c2ln", b64(&json!({"kid": "k"}))),
        malformed,
    );
    check_split(
        &token_with_header(json!({"alg": "RS256", "crit": ["exp"], "exp": 1})),
        malformed,
    );
    check_split(&"a".repeat(MAX_TOKEN_BYTES + 1), malformed);
    check_split(
        &format!("{}.e30.c2ln", b64(&rs256)),
        Ok("RsaSsaPkcs1V15Sha256 kid=None"),
    );
}

#[test]
fn the_signing_input_is_header_dot_payload() {
    let token = token_with_header(json!({"alg": "RS256"}));
    let split = split(&token).map_err(|e| e.to_string());
    let Ok(split) = split else {
        panic!("{split:?}");
    };
    assert_eq!(format!("{}.c2ln", split.signing_input), token);
    assert_eq!(split.signature, b"sig");
    assert_eq!(
        split.claims(),
        Ok(json!({"sub": "x"}).as_object().cloned().unwrap_or_default())
    );
}

fn check_claims(claims: Value, expected: Result<(), TokenRejection>) {
    let expect = Expectations {
        issuer: "https://idp.example/realms/hie".into(),
        audience: "baraza".into(),
        clock_skew_secs: 60,
    };
    let claims = claims.as_object().cloned().unwrap_or_default();
    assert_eq!(
        check_registered_claims(&claims, &expect, NOW),
        expected,
        "{claims:?}"
    );
}

const ISS: &str = "https://idp.example/realms/hie";

#[test]
fn issuer_must_match_exactly() {
    check_claims(
        json!({"iss": ISS, "aud": "baraza", "exp": NOW + 300.0}),
        Ok(()),
    );
    let wrong = Err(TokenRejection::WrongIssuer);
    check_claims(
        json!({"iss": format!("{ISS}/"), "aud": "baraza", "exp": NOW + 300.0}),
        wrong,
    );
    check_claims(
        json!({"iss": "https://IDP.example/realms/hie", "aud": "baraza", "exp": NOW + 300.0}),
        wrong,
    );
    check_claims(
        json!({"iss": "https://evil.example", "aud": "baraza", "exp": NOW + 300.0}),
        wrong,
    );
    check_claims(
        json!({"aud": "baraza", "exp": NOW + 300.0}),
        Err(TokenRejection::MissingClaim),
    );
    check_claims(
        json!({"iss": [ISS], "aud": "baraza", "exp": NOW + 300.0}),
        Err(TokenRejection::InvalidClaim),
    );
}

#[test]
fn audience_must_name_baraza() {
    check_claims(
        json!({"iss": ISS, "aud": ["account", "baraza"], "exp": NOW + 300.0}),
        Ok(()),
    );
    let wrong = Err(TokenRejection::WrongAudience);
    check_claims(
        json!({"iss": ISS, "aud": "account", "exp": NOW + 300.0}),
        wrong,
    );
    check_claims(json!({"iss": ISS, "aud": [], "exp": NOW + 300.0}), wrong);
    check_claims(
        json!({"iss": ISS, "aud": "Baraza", "exp": NOW + 300.0}),
        wrong,
    );
    check_claims(
        json!({"iss": ISS, "exp": NOW + 300.0}),
        Err(TokenRejection::MissingClaim),
    );
    check_claims(
        json!({"iss": ISS, "aud": ["baraza", 1], "exp": NOW + 300.0}),
        Err(TokenRejection::InvalidClaim),
    );
    check_claims(
        json!({"iss": ISS, "aud": 7, "exp": NOW + 300.0}),
        Err(TokenRejection::InvalidClaim),
    );
}

#[test]
fn expiry_allows_the_configured_skew_and_no_more() {
    let at = |exp: f64| json!({"iss": ISS, "aud": "baraza", "exp": exp});
    check_claims(at(NOW + 1.0), Ok(()));
    check_claims(at(NOW - 59.0), Ok(()));
    check_claims(at(NOW - 59.5), Ok(()));
    check_claims(at(NOW - 60.0), Err(TokenRejection::Expired));
    check_claims(at(NOW - 3600.0), Err(TokenRejection::Expired));
    check_claims(
        json!({"iss": ISS, "aud": "baraza"}),
        Err(TokenRejection::MissingClaim),
    );
    check_claims(
        json!({"iss": ISS, "aud": "baraza", "exp": "soon"}),
        Err(TokenRejection::InvalidClaim),
    );
    check_claims(
        json!({"iss": ISS, "aud": "baraza", "exp": null}),
        Err(TokenRejection::InvalidClaim),
    );
}

#[test]
fn not_before_allows_the_configured_skew_and_no_more() {
    let at = |nbf: f64| json!({"iss": ISS, "aud": "baraza", "exp": NOW + 600.0, "nbf": nbf});
    check_claims(at(NOW), Ok(()));
    check_claims(at(NOW + 60.0), Ok(()));
    check_claims(at(NOW + 61.0), Err(TokenRejection::NotYetValid));
    check_claims(at(NOW + 3600.0), Err(TokenRejection::NotYetValid));
    check_claims(
        json!({"iss": ISS, "aud": "baraza", "exp": NOW + 600.0, "nbf": "now"}),
        Err(TokenRejection::InvalidClaim),
    );
    check_claims(
        json!({"iss": ISS, "aud": "baraza", "exp": NOW + 600.0, "iat": "now"}),
        Err(TokenRejection::InvalidClaim),
    );
}

#[test]
fn a_very_large_exp_is_not_a_token_that_never_expires() {
    let claims: Value = serde_json::from_str(&format!(
        r#"{{"iss": "{ISS}", "aud": "baraza", "exp": 1e400}}"#
    ))
    .unwrap_or(Value::Null);
    check_claims(claims, Err(TokenRejection::InvalidClaim));
}
