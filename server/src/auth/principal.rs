//! The verified caller: who it is and what its access token grants, read
//! from the token's claims.

use std::fmt;

use serde_json::{Map, Value};

use super::error::TokenRejection;
use super::scopes::Scopes;

/// The names of the claims whose name depends on the provider
/// (BARAZA_OIDC_GROUPS_CLAIM, BARAZA_OIDC_TENANTS_CLAIM). A name is looked
/// up as a top-level claim first (so `https://baraza.example/tenants`
/// works), then as a dotted path (`realm_access.roles`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimNames {
    pub groups: String,
    pub tenants: String,
}

impl Default for ClaimNames {
    fn default() -> Self {
        ClaimNames {
            groups: "groups".into(),
            tenants: "tenants".into(),
        }
    }
}

/// A caller whose access token was verified.
#[derive(Clone, PartialEq, Eq)]
pub struct Principal {
    /// `sub`: the user, or the client itself for client credentials.
    pub subject: String,
    /// `client_id` (RFC 9068), else `azp`.
    pub client_id: Option<String>,
    /// `scope` (a space-separated string), else `scp` (string or array).
    pub scopes: Scopes,
    pub tenants: Vec<String>,
    pub groups: Vec<String>,
    /// `integrator`: the organisation feeding data through this client.
    pub integrator: Option<String>,
    /// `patient`: the patient in context, for `patient/` scopes.
    pub patient: Option<String>,
}

/// Leaves out the subject and the patient: a log line must not identify a
/// person.
impl fmt::Debug for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Principal")
            .field("subject", &"[redacted]")
            .field("client_id", &self.client_id)
            .field("scopes", &self.scopes)
            .field("tenants", &self.tenants)
            .field("groups", &self.groups)
            .field("integrator", &self.integrator)
            .field("patient", &self.patient.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

impl Principal {
    /// The principal as a claim set with the default claim names, as kept
    /// by work done later on its behalf (an ingest batch's caller, a
    /// subscription's owner); [`Principal::from_claims`] reads it back.
    pub fn to_claims(&self) -> Value {
        let scopes: Vec<String> = self
            .scopes
            .smart()
            .iter()
            .map(ToString::to_string)
            .chain(self.scopes.other().iter().cloned())
            .collect();
        serde_json::json!({
            "sub": self.subject,
            "client_id": self.client_id,
            "scope": scopes.join(" "),
            "tenants": self.tenants,
            "groups": self.groups,
            "integrator": self.integrator,
            "patient": self.patient,
        })
    }

    /// Reads the caller from a verified claim set. `sub` is required; a
    /// claim of the wrong JSON type refuses the token rather than being
    /// read as absent.
    pub fn from_claims(
        claims: &Map<String, Value>,
        names: &ClaimNames,
    ) -> Result<Principal, TokenRejection> {
        let subject = optional_string(claims.get("sub"))?.ok_or(TokenRejection::MissingClaim)?;
        let client_id = match optional_string(claims.get("client_id"))? {
            Some(id) => Some(id),
            None => optional_string(claims.get("azp"))?,
        };
        Ok(Principal {
            subject,
            client_id,
            scopes: scopes(claims)?,
            tenants: strings(lookup(claims, &names.tenants))?,
            groups: strings(lookup(claims, &names.groups))?,
            integrator: optional_string(claims.get("integrator"))?,
            patient: optional_string(claims.get("patient"))?,
        })
    }
}

fn lookup<'c>(claims: &'c Map<String, Value>, name: &str) -> Option<&'c Value> {
    if let Some(value) = claims.get(name) {
        return Some(value);
    }
    let mut path = name.split('.');
    let first = claims.get(path.next()?)?;
    path.try_fold(first, |value, step| value.as_object()?.get(step))
}

fn optional_string(value: Option<&Value>) -> Result<Option<String>, TokenRejection> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(_) => Err(TokenRejection::InvalidClaim),
    }
}

/// An array of strings, or one string standing for a one-element array.
fn strings(value: Option<&Value>) -> Result<Vec<String>, TokenRejection> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(text)) => Ok(vec![text.clone()]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| item.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or(TokenRejection::InvalidClaim),
        Some(_) => Err(TokenRejection::InvalidClaim),
    }
}

fn scopes(claims: &Map<String, Value>) -> Result<Scopes, TokenRejection> {
    let claim = claims.get("scope").or_else(|| claims.get("scp"));
    match claim {
        None | Some(Value::Null) => Ok(Scopes::default()),
        Some(Value::String(list)) => Ok(Scopes::parse(list)),
        Some(Value::Array(_)) => {
            let items = strings(claim)?;
            Ok(Scopes::from_items(items.iter().map(String::as_str)))
        }
        Some(_) => Err(TokenRejection::InvalidClaim),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn principal(claims: Value, names: &ClaimNames) -> Result<Principal, TokenRejection> {
        Principal::from_claims(&claims.as_object().cloned().unwrap_or_default(), names)
    }

    #[test]
    fn reads_every_field_of_a_client_credentials_token() {
        let claims = json!({
            "sub": "integrator-a", "client_id": "integrator-a", "scope": "system/*.cruds openid",
            "tenants": ["acme", "globex"], "groups": ["integrators"], "integrator": "integrator-a",
        });
        let p = principal(claims, &ClaimNames::default());
        let expected = Principal {
            subject: "integrator-a".into(),
            client_id: Some("integrator-a".into()),
            scopes: Scopes::parse("system/*.cruds openid"),
            tenants: vec!["acme".into(), "globex".into()],
            groups: vec!["integrators".into()],
            integrator: Some("integrator-a".into()),
            patient: None,
        };
        assert_eq!(p, Ok(expected));
    }

    #[test]
    fn falls_back_to_azp_and_scp_and_reads_nested_or_namespaced_claims() {
        let names = ClaimNames {
            groups: "realm_access.roles".into(),
            tenants: "https://baraza.example/tenants".into(),
        };
        let claims = json!({
            "sub": "u1", "azp": "portal", "scp": ["patient/*.rs", "launch"], "patient": "p1",
            "realm_access": {"roles": ["nurse"]}, "https://baraza.example/tenants": "acme",
        });
        let Ok(p) = principal(claims, &names) else {
            panic!("refused");
        };
        assert_eq!(p.client_id.as_deref(), Some("portal"));
        assert_eq!(p.scopes, Scopes::parse("patient/*.rs launch"));
        assert_eq!(p.groups, ["nurse"]);
        assert_eq!(p.tenants, ["acme"]);
        assert_eq!(p.patient.as_deref(), Some("p1"));
    }

    #[test]
    fn absent_optional_claims_are_empty() {
        let Ok(p) = principal(json!({"sub": "s"}), &ClaimNames::default()) else {
            panic!("refused");
        };
        assert_eq!((p.client_id, p.integrator, p.patient), (None, None, None));
        assert!(p.tenants.is_empty() && p.groups.is_empty());
        assert_eq!(p.scopes, Scopes::default());
    }

    #[test]
    fn wrong_types_and_a_missing_subject_refuse_the_token() {
        let names = ClaimNames::default();
        for (claims, expected) in [
            (json!({}), TokenRejection::MissingClaim),
            (json!({"sub": 5}), TokenRejection::InvalidClaim),
            (
                json!({"sub": "s", "tenants": 5}),
                TokenRejection::InvalidClaim,
            ),
            (
                json!({"sub": "s", "tenants": ["a", 5]}),
                TokenRejection::InvalidClaim,
            ),
            (
                json!({"sub": "s", "groups": {"a": 1}}),
                TokenRejection::InvalidClaim,
            ),
            (
                json!({"sub": "s", "scope": 5}),
                TokenRejection::InvalidClaim,
            ),
            (
                json!({"sub": "s", "patient": ["p"]}),
                TokenRejection::InvalidClaim,
            ),
            (
                json!({"sub": "s", "client_id": true}),
                TokenRejection::InvalidClaim,
            ),
        ] {
            assert_eq!(principal(claims.clone(), &names), Err(expected), "{claims}");
        }
    }

    #[test]
    fn debug_output_names_no_person() {
        let claims = json!({"sub": "alice@example.org", "patient": "pat-123", "client_id": "c"});
        let Ok(p) = principal(claims, &ClaimNames::default()) else {
            panic!("refused");
        };
        let printed = format!("{p:?}");
        assert!(
            !printed.contains("alice") && !printed.contains("pat-123"),
            "{printed}"
        );
        assert!(printed.contains("\"c\""), "{printed}");
    }
}
