//! Why a request's credentials were refused, and the one mapping of each
//! reason to an HTTP status and an RFC 6750 `WWW-Authenticate` challenge.

use crate::error::Category;

/// Why a bearer token was refused (`error="invalid_token"`). Each reason's
/// description is fixed text: it never echoes the token or a claim value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenRejection {
    #[error("the token is not a well-formed signed JWT")]
    Malformed,
    #[error("the token's signing algorithm is not accepted")]
    AlgorithmNotAllowed,
    #[error("the token is signed with an unknown key")]
    UnknownKey,
    #[error("the token's signature is invalid")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token was issued by another issuer")]
    WrongIssuer,
    #[error("the token is meant for another audience")]
    WrongAudience,
    /// A required claim (`exp`, `iss`, `aud`, `sub`) is absent.
    #[error("the token lacks a required claim")]
    MissingClaim,
    /// A claim has the wrong JSON type (the name is the claim's, never a value).
    #[error("a claim of the token has the wrong type")]
    InvalidClaim,
}

/// A refused request. [`AuthError::category`] and
/// [`AuthError::www_authenticate`] are the only places that decide how each
/// case is answered (https://www.rfc-editor.org/rfc/rfc6750#section-3).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No bearer credentials at all (no header, or another scheme): 401
    /// with a bare `Bearer` challenge and no error code (RFC 6750 §3.1).
    #[error("authentication is required")]
    MissingToken,
    /// An `Authorization: Bearer` header that is not well formed: 400
    /// `invalid_request`.
    #[error("{0}")]
    InvalidRequest(&'static str),
    /// 401 `invalid_token`.
    #[error("{0}")]
    InvalidToken(TokenRejection),
    /// A valid token whose scopes do not allow the request: 403
    /// `insufficient_scope`, naming a scope that would (`scope="..."`).
    #[error("the token's scopes do not allow this request")]
    InsufficientScope { needed: String },
    /// The provider's discovery document or keys cannot be had: 503, a
    /// fault on our side rather than the client's.
    #[error("the identity provider is unavailable")]
    ProviderUnavailable,
}

impl From<TokenRejection> for AuthError {
    fn from(reason: TokenRejection) -> AuthError {
        AuthError::InvalidToken(reason)
    }
}

impl AuthError {
    /// The error category, hence the HTTP status (see `crate::error`).
    pub fn category(&self) -> Category {
        match self {
            AuthError::MissingToken | AuthError::InvalidToken(_) => Category::Unauthorized,
            AuthError::InvalidRequest(_) => Category::Invalid,
            AuthError::InsufficientScope { .. } => Category::Forbidden,
            AuthError::ProviderUnavailable => Category::Unavailable,
        }
    }

    /// The `WWW-Authenticate` value to send, or `None` when the answer is
    /// not a challenge (503).
    pub fn www_authenticate(&self) -> Option<String> {
        let (code, description, scope) = match self {
            AuthError::MissingToken => return Some("Bearer".to_owned()),
            AuthError::ProviderUnavailable => return None,
            AuthError::InvalidRequest(why) => ("invalid_request", why.to_string(), None),
            AuthError::InvalidToken(reason) => ("invalid_token", reason.to_string(), None),
            AuthError::InsufficientScope { needed } => {
                ("insufficient_scope", self.to_string(), Some(needed))
            }
        };
        let mut value = format!(
            "Bearer error=\"{code}\", error_description=\"{}\"",
            quotable(&description)
        );
        if let Some(scope) = scope {
            value.push_str(&format!(", scope=\"{}\"", quotable(scope)));
        }
        Some(value)
    }
}

/// Keeps only the characters RFC 6750 §3 allows inside these quoted
/// strings (%x20-21 / %x23-5B / %x5D-7E): no quote, no backslash.
fn quotable(text: &str) -> String {
    text.chars()
        .filter(|c| matches!(c, ' '..='~') && *c != '"' && *c != '\\')
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(error: AuthError, status: u16, challenge: Option<&str>) {
        assert_eq!(error.category().status().as_u16(), status, "{error:?}");
        assert_eq!(error.www_authenticate().as_deref(), challenge, "{error:?}");
    }

    #[test]
    fn each_error_has_one_status_and_challenge() {
        check(AuthError::MissingToken, 401, Some("Bearer"));
        check(
            AuthError::InvalidRequest("the Authorization header is not a Bearer credential"),
            400,
            Some(
                "Bearer error=\"invalid_request\", error_description=\"the Authorization header is not a Bearer credential\"",
            ),
        );
        check(
            AuthError::InvalidToken(TokenRejection::Expired),
            401,
            Some("Bearer error=\"invalid_token\", error_description=\"the token has expired\""),
        );
        check(
            TokenRejection::WrongAudience.into(),
            401,
            Some(
                "Bearer error=\"invalid_token\", error_description=\"the token is meant for another audience\"",
            ),
        );
        check(
            AuthError::InsufficientScope {
                needed: "system/Patient.r".into(),
            },
            403,
            Some(
                "Bearer error=\"insufficient_scope\", error_description=\"the token's scopes do not allow this request\", scope=\"system/Patient.r\"",
            ),
        );
        check(AuthError::ProviderUnavailable, 503, None);
    }

    #[test]
    fn quoted_values_drop_quotes_backslashes_and_controls() {
        assert_eq!(quotable("a\"b\\c\nd é"), "abcd ");
    }
}
