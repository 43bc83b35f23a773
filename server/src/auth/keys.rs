//! The provider's signing keys: found by OpenID discovery, cached, and
//! refetched when a token names an unknown `kid`, at most once per
//! [`MIN_REFETCH_INTERVAL`].

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use openidconnect::core::{
    CoreJsonWebKey, CoreJsonWebKeySet, CoreJwsSigningAlgorithm, CoreProviderMetadata,
};
use openidconnect::{IssuerUrl, JsonWebKey, JsonWebKeySetUrl, JwsSigningAlgorithm};

/// A token with an unknown `kid` triggers a refetch of the key set at most
/// this often, so a stream of forged `kid`s cannot make Baraza hammer the
/// provider. The fetch at discovery does not count.
pub const MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(30);

const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the provider's endpoints are, from its discovery document (for
/// `/.well-known/smart-configuration` and `POST /auth/login`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderEndpoints {
    pub issuer: String,
    pub authorization: String,
    pub token: Option<String>,
    pub jwks: String,
}

pub struct ProviderKeys {
    pub endpoints: ProviderEndpoints,
    http: reqwest::Client,
    jwks_url: JsonWebKeySetUrl,
    keys: RwLock<Arc<CoreJsonWebKeySet>>,
    /// When the last refetch started; the lock also makes concurrent
    /// refetches wait for one another instead of each fetching.
    last_refetch: tokio::sync::Mutex<Option<Instant>>,
}

impl ProviderKeys {
    /// Reads `<issuer>/.well-known/openid-configuration` (whose `issuer` must
    /// equal `issuer` exactly) and the key set it points to.
    pub async fn discover(issuer: &str) -> anyhow::Result<ProviderKeys> {
        // No redirects: discovery and key URLs are followed only as
        // published, never to wherever a response points.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(HTTP_TIMEOUT)
            .build()
            .context("building the HTTP client for OpenID discovery")?;
        let issuer_url = IssuerUrl::new(issuer.to_owned()).context("parsing the issuer URL")?;
        let metadata = CoreProviderMetadata::discover_async(issuer_url, &http)
            .await
            .with_context(|| format!("OpenID discovery at {issuer} failed"))?;
        Ok(ProviderKeys {
            endpoints: ProviderEndpoints {
                issuer: issuer.to_owned(),
                authorization: metadata.authorization_endpoint().url().to_string(),
                token: metadata.token_endpoint().map(|t| t.url().to_string()),
                jwks: metadata.jwks_uri().url().to_string(),
            },
            jwks_url: metadata.jwks_uri().clone(),
            keys: RwLock::new(Arc::new(metadata.jwks().clone())),
            http,
            last_refetch: tokio::sync::Mutex::new(None),
        })
    }

    fn current(&self) -> Arc<CoreJsonWebKeySet> {
        match self.keys.read() {
            Ok(keys) => Arc::clone(&keys),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    fn replace(&self, set: CoreJsonWebKeySet) {
        let mut keys = match self.keys.write() {
            Ok(keys) => keys,
            Err(poisoned) => poisoned.into_inner(),
        };
        *keys = Arc::new(set);
    }

    /// The key that may verify a token signed with `alg` under `kid`, or
    /// `None` when the provider publishes none, even after a refetch.
    pub async fn find(
        &self,
        kid: Option<&str>,
        alg: &CoreJwsSigningAlgorithm,
    ) -> Option<CoreJsonWebKey> {
        if let Some(key) = select(&self.current(), kid, alg) {
            return Some(key);
        }
        let mut last_refetch = self.last_refetch.lock().await;
        // Another request may have refetched while this one waited.
        if let Some(key) = select(&self.current(), kid, alg) {
            return Some(key);
        }
        if last_refetch.is_some_and(|at| at.elapsed() < MIN_REFETCH_INTERVAL) {
            return None;
        }
        *last_refetch = Some(Instant::now());
        match CoreJsonWebKeySet::fetch_async(&self.jwks_url, &self.http).await {
            Ok(set) => {
                tracing::info!(
                    keys = set.keys().len(),
                    "refetched the OpenID provider's keys"
                );
                self.replace(set);
            }
            Err(error) => {
                let error = anyhow::Error::new(error);
                tracing::warn!(
                    error = format!("{error:#}"),
                    "refetching the OpenID provider's keys failed"
                );
            }
        }
        select(&self.current(), kid, alg)
    }
}

/// With a `kid`, the key of that id whose type fits `alg`. Without one, the
/// only such key, if there is exactly one.
fn select(
    set: &CoreJsonWebKeySet,
    kid: Option<&str>,
    alg: &CoreJwsSigningAlgorithm,
) -> Option<CoreJsonWebKey> {
    let fits = |key: &&CoreJsonWebKey| alg.key_type().as_ref() == Some(key.key_type());
    let mut candidates = set.keys().iter().filter(fits).filter(|key| match kid {
        Some(kid) => key.key_id().is_some_and(|id| id.as_str() == kid),
        None => true,
    });
    let first = candidates.next()?;
    if kid.is_none() && candidates.next().is_some() {
        return None;
    }
    Some(first.clone())
}
