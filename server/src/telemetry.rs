//! Logging: tracing set-up and a request log that records method, route
//! shape, status and latency, but never bodies, query strings (they can hold
//! identifiers) or credentials. Every response carries `X-Request-Id`.

use crate::config::{LogFormat, Settings};
use actix_web::Error;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::header::{HeaderName, HeaderValue};
use futures_util::future::LocalBoxFuture;
use std::future::{Ready, ready};
use std::time::Instant;
use tracing_subscriber::EnvFilter;

/// Libraries whose verbose levels print what they carry: tokio-postgres
/// logs statement parameters (resource content) at debug, the HTTP stacks
/// log headers (bearer tokens) and bodies at trace. They are held at info
/// whatever BARAZA_LOG asks, so that no log level reveals PHI or secrets.
const QUIET_LIBRARIES: &[&str] = &[
    "tokio_postgres=info",
    "postgres_protocol=info",
    "hyper=info",
    "hyper_util=info",
    "h2=info",
    "reqwest=info",
    "rustls=info",
    "actix_http=info",
    "actix_web=info",
    "actix_server=info",
    "openidconnect=info",
    "oauth2=info",
];

/// BARAZA_LOG with the library caps of [`QUIET_LIBRARIES`] after it (a
/// later directive for the same target wins).
pub fn log_filter(wanted: &str) -> EnvFilter {
    let mut directives = String::from(wanted);
    for quiet in QUIET_LIBRARIES {
        directives.push(',');
        directives.push_str(quiet);
    }
    EnvFilter::try_new(&directives).unwrap_or_else(|_| EnvFilter::new("info"))
}

/// Replaces the log filter of the running process (see [`set_filter`]).
type Reload = Box<dyn Fn(EnvFilter) -> Result<(), String> + Send + Sync>;

static RELOAD: std::sync::OnceLock<Reload> = std::sync::OnceLock::new();

pub fn init(settings: &Settings) {
    let filter = log_filter(&settings.log);
    let builder = tracing_subscriber::fmt().with_writer(std::io::stderr);
    // The reload handle's type depends on the format, hence two branches.
    match settings.log_format {
        LogFormat::Json => {
            let builder = builder
                .json()
                .with_env_filter(filter)
                .with_filter_reloading();
            let handle = builder.reload_handle();
            if builder.try_init().is_ok() {
                let _ = RELOAD.set(Box::new(move |f| {
                    handle.reload(f).map_err(|e| e.to_string())
                }));
            }
        }
        LogFormat::Text => {
            let builder = builder.with_env_filter(filter).with_filter_reloading();
            let handle = builder.reload_handle();
            if builder.try_init().is_ok() {
                let _ = RELOAD.set(Box::new(move |f| {
                    handle.reload(f).map_err(|e| e.to_string())
                }));
            }
        }
    }
}

/// Changes the log filter at run time (`baraza serve` does on SIGHUP, from
/// the configuration file and environment), keeping the library caps of
/// [`QUIET_LIBRARIES`].
pub fn set_filter(wanted: &str) -> Result<(), String> {
    match RELOAD.get() {
        Some(reload) => reload(log_filter(wanted)),
        None => Err("logging was not set up by this process".into()),
    }
}

/// Replaces ids in a path with `{id}` so logs carry the route shape only.
pub fn route_shape(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for (i, segment) in path.split('/').enumerate() {
        let keep = i < 3
            || segment.starts_with('$')
            || segment.starts_with('_')
            || segment.chars().next().is_some_and(char::is_uppercase);
        out.push(if keep { segment } else { "{id}" });
    }
    out.join("/")
}

#[derive(Debug, Clone, Copy)]
pub struct RequestLog;

impl<S, B> Transform<S, ServiceRequest> for RequestLog
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Transform = RequestLogService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(RequestLogService { service }))
    }
}

pub struct RequestLogService<S> {
    service: S,
}

impl<S, B> Service<ServiceRequest> for RequestLogService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let started = Instant::now();
        let request_id = uuid::Uuid::new_v4().to_string();
        let method = req.method().to_string();
        let shape = route_shape(req.path());
        let future = self.service.call(req);
        Box::pin(async move {
            let mut response = future.await?;
            tracing::info!(
                request_id = %request_id,
                method = %method,
                route = %shape,
                status = response.status().as_u16(),
                micros = started.elapsed().as_micros() as u64,
                "request"
            );
            if let Ok(value) = HeaderValue::from_str(&request_id) {
                response
                    .headers_mut()
                    .insert(HeaderName::from_static("x-request-id"), value);
            }
            Ok(response)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::route_shape;

    #[test]
    fn ids_are_masked() {
        assert_eq!(
            route_shape("/fhir/Patient/123/_history/2"),
            "/fhir/Patient/{id}/_history/{id}"
        );
        assert_eq!(
            route_shape("/fhir/Patient/$validate"),
            "/fhir/Patient/$validate"
        );
    }
}
