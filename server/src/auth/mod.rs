//! Authentication groundwork (issue 4): verifying OpenID Connect access
//! tokens (JWTs) into a [`Principal`], and SMART on FHIR scopes.
//!
//! A token is accepted when its signature verifies with the provider's key
//! of the token's `kid` (an asymmetric algorithm from a fixed allow-list),
//! `iss` equals BARAZA_OIDC_ISSUER, `aud` names BARAZA_OIDC_AUDIENCE, and
//! `exp`/`nbf` hold within the configured clock skew. Discovery and the key
//! set come through the `openidconnect` crate, and so does the signature
//! check: its JWK type already verifies every algorithm Baraza accepts
//! (RustCrypto `rsa`, `p256`, `p384`) and checks that the key's type, `use`
//! and `alg` fit the token's algorithm, so `jsonwebtoken` would only add a
//! second JWK model and crypto stack. The claim checks are our own
//! (`jwt`), because openidconnect's verifiers are for ID tokens, whose
//! audience is the client, not the resource server (RFC 9068).
//!
//! Nothing here logs a token, a secret or a claim value.

mod error;
pub mod integrator;
mod jwt;
mod keys;
pub mod permissions;
mod principal;
pub mod scopes;
mod verifier;

pub use error::{AuthError, TokenRejection};
pub use keys::{MIN_REFETCH_INTERVAL, ProviderEndpoints};
pub use principal::{ClaimNames, Principal};
pub use scopes::{Context, Interaction, Scopes, SmartScope};
pub use verifier::{Verifier, bearer_token};
