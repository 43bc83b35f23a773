//! Per-client rate limits (issue 4, BARAZA_RATE_LIMIT): one GCRA bucket per
//! client (governor's keyed limiter, whose state is a dashmap of one atomic
//! word per client), answering 429 with the real wait in `Retry-After` and
//! an OperationOutcome. `/health` and `/ready` are never limited: probes
//! must see the truth.
//!
//! Requests are counted twice. Before authentication, the middleware
//! counts each request against [`client_key`] (client certificate, bearer
//! token, or peer address), so that floods of refused credentials are
//! limited too. After the token is verified, `http::auth::caller` counts
//! it against the verified client id ([`RateLimiter::check_client`]), so
//! that a client cannot escape its limit by fetching a new token per
//! request: every token of one client shares one bucket.

use super::negotiate::Output;
use super::render_error;
use crate::config::RateLimit;
use crate::error::{ApiError, Category};
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse, web};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Whom a request is counted against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ClientKey {
    /// The identity of a verified client certificate (`super::tls`).
    Certificate(String),
    /// A keyed hash of the bearer token (the token itself is not kept).
    Token(u64),
    /// The peer address, for requests without credentials.
    Address(IpAddr),
    /// No address (not on TCP): all such requests share one bucket.
    Unknown,
    /// The client id of a verified access token (counted after
    /// authentication).
    Client(String),
}

/// The client a request is counted against: the verified client
/// certificate's identity, else the bearer token, else the peer address.
///
/// The token is not verified yet when this runs (the limit comes before
/// authentication, so that refused credentials are limited too): a caller
/// that invents a new token per request gets a fresh bucket each time, but
/// also a 401 before any database work; valid tokens are then counted
/// again by their verified client id ([`RateLimiter::check_client`]).
pub fn client_key(req: &HttpRequest, token_hasher: &RandomState) -> ClientKey {
    if let Some(identity) = super::tls::client_certificate_identity(req) {
        return ClientKey::Certificate(identity);
    }
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, token)| scheme.eq_ignore_ascii_case("bearer") && !token.is_empty());
    if let Some((_, token)) = bearer {
        return ClientKey::Token(token_hasher.hash_one(token.trim()));
    }
    match req.peer_addr() {
        Some(peer) => ClientKey::Address(peer.ip()),
        None => ClientKey::Unknown,
    }
}

/// The limiter shared by all workers; without BARAZA_RATE_LIMIT it lets
/// everything through.
pub struct RateLimiter {
    inner: Option<Limiter>,
}

struct Limiter {
    limit: RateLimit,
    buckets: DefaultKeyedRateLimiter<ClientKey>,
    token_hasher: RandomState,
    checks: AtomicU64,
}

/// Buckets untouched for longer than a full refill are forgotten every this
/// many checks, so that the map does not grow with every client ever seen.
const FORGET_EVERY: u64 = 4096;

impl RateLimiter {
    pub fn new(limit: Option<RateLimit>) -> RateLimiter {
        let inner = limit.map(|limit| {
            let quota = Quota::with_period(limit.replenish_interval())
                .unwrap_or_else(|| Quota::per_second(limit.requests))
                .allow_burst(limit.burst);
            Limiter {
                limit,
                buckets: DefaultKeyedRateLimiter::keyed(quota),
                token_hasher: RandomState::new(),
                checks: AtomicU64::new(0),
            }
        });
        RateLimiter { inner }
    }

    /// `Ok` if `req` may proceed now, else how long its client must wait.
    pub fn check(&self, req: &HttpRequest) -> Result<(), Duration> {
        let Some(limiter) = &self.inner else {
            return Ok(());
        };
        limiter.check_key(client_key(req, &limiter.token_hasher))
    }

    /// `Ok` if the verified client `client_id` may proceed now, else how
    /// long it must wait.
    pub fn check_client(&self, client_id: &str) -> Result<(), Duration> {
        match &self.inner {
            Some(limiter) => limiter.check_key(ClientKey::Client(client_id.to_owned())),
            None => Ok(()),
        }
    }

    fn limit(&self) -> Option<RateLimit> {
        self.inner.as_ref().map(|limiter| limiter.limit)
    }
}

impl Limiter {
    fn check_key(&self, key: ClientKey) -> Result<(), Duration> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % FORGET_EVERY == FORGET_EVERY - 1 {
            self.buckets.retain_recent();
            self.buckets.shrink_to_fit();
        }
        self.buckets
            .check_key(&key)
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }
}

/// Whole seconds to announce in `Retry-After`: the wait rounded up, at
/// least 1 (RFC 9110 §10.2.3 has no fractions, and 0 invites a retry storm).
fn retry_after_secs(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

/// The middleware (`actix_web::middleware::from_fn`): counts the request
/// against its client and answers 429 when the client is over its limit.
pub async fn limit<B: MessageBody>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    let exempt = matches!(req.path(), "/health" | "/ready");
    let verdict = match req.app_data::<web::Data<RateLimiter>>() {
        Some(limiter) if !exempt => limiter
            .check(req.request())
            .map_err(|wait| (wait, limiter.limit())),
        _ => Ok(()),
    };
    match verdict {
        Ok(()) => next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body),
        Err((wait, limit)) => {
            let output = Output::negotiate(req.request()).unwrap_or_default();
            let response = too_many_requests(wait, limit, output);
            Ok(req.into_response(response).map_into_right_body())
        }
    }
}

/// Counts an authenticated request against its verified client (see the
/// module documentation); `Some` is the 429 to answer.
pub fn refuse_verified_client(
    req: &HttpRequest,
    client_id: &str,
    output: Output,
) -> Option<HttpResponse> {
    let limiter = req.app_data::<web::Data<RateLimiter>>()?;
    let wait = limiter.check_client(client_id).err()?;
    Some(too_many_requests(wait, limiter.limit(), output))
}

/// 429 with `Retry-After` and an OperationOutcome.
fn too_many_requests(wait: Duration, limit: Option<RateLimit>, output: Output) -> HttpResponse {
    let secs = retry_after_secs(wait);
    let configured = limit.map(|l| format!(" (limit {l})")).unwrap_or_default();
    let error = ApiError::new(
        Category::TooManyRequests,
        format!("too many requests from this client{configured}; retry after {secs} s"),
    );
    let mut response = render_error(&error, output);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    response
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;
    use std::num::NonZeroU32;

    fn limit(requests: u32, burst: u32) -> RateLimit {
        RateLimit {
            requests: NonZeroU32::new(requests).unwrap(),
            per: Duration::from_secs(1),
            burst: NonZeroU32::new(burst).unwrap(),
        }
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        for (wait_ms, secs) in [(0, 1), (1, 1), (999, 1), (1000, 1), (1001, 2), (59_500, 60)] {
            assert_eq!(
                retry_after_secs(Duration::from_millis(wait_ms)),
                secs,
                "{wait_ms}"
            );
        }
    }

    #[test]
    fn off_lets_everything_through() {
        let limiter = RateLimiter::new(None);
        let req = TestRequest::default().to_http_request();
        assert!((0..1000).all(|_| limiter.check(&req).is_ok()));
    }

    #[test]
    fn a_client_gets_its_burst_then_waits_one_interval() {
        let limiter = RateLimiter::new(Some(limit(2, 5)));
        let req = TestRequest::default()
            .peer_addr("10.1.2.3:5000".parse().unwrap())
            .to_http_request();
        for _ in 0..5 {
            assert!(limiter.check(&req).is_ok());
        }
        let wait = limiter.check(&req).unwrap_err();
        assert!(
            wait > Duration::from_millis(400) && wait <= Duration::from_millis(500),
            "{wait:?}"
        );
        // Another address has its own bucket.
        let other = TestRequest::default()
            .peer_addr("10.1.2.4:5000".parse().unwrap())
            .to_http_request();
        assert!(limiter.check(&other).is_ok());
    }

    #[test]
    fn clients_are_told_apart_by_token_before_address() {
        let hasher = RandomState::new();
        let peer = "10.0.0.9:443".parse().unwrap();
        let with_token = |token: &str| {
            TestRequest::default()
                .peer_addr(peer)
                .insert_header((header::AUTHORIZATION, token))
                .to_http_request()
        };
        let a = client_key(&with_token("Bearer aaa"), &hasher);
        assert!(matches!(a, ClientKey::Token(_)));
        assert_eq!(a, client_key(&with_token("bearer aaa"), &hasher));
        assert_ne!(a, client_key(&with_token("Bearer bbb"), &hasher));
        let address = ClientKey::Address(peer.ip());
        assert_eq!(client_key(&with_token("Basic dTpw"), &hasher), address);
        assert_eq!(client_key(&with_token("Bearer "), &hasher), address);
        let anonymous = TestRequest::default().peer_addr(peer).to_http_request();
        assert_eq!(client_key(&anonymous, &hasher), address);
    }

    #[test]
    fn verified_clients_have_one_bucket_whatever_their_tokens() {
        let limiter = RateLimiter::new(Some(limit(1, 3)));
        for _ in 0..3 {
            assert!(limiter.check_client("integrator-a").is_ok());
        }
        assert!(limiter.check_client("integrator-a").is_err());
        assert!(limiter.check_client("integrator-b").is_ok());
        assert!(RateLimiter::new(None).check_client("x").is_ok());
    }
}
