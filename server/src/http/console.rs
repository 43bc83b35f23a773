//! The operator console (issue 11, docs/console.md): plain HTML, CSS and
//! JavaScript modules under `server/console/`, compiled into the binary
//! with `include_bytes!` (listed by `server/build.rs`) so that `cargo run` serves them with no build step
//! and no file lookup at run time. Served at `/console/` with a strong
//! ETag (revalidated on every load: `no-cache`), `nosniff` and a strict
//! Content-Security-Policy; `/console/config.json` tells the page how to
//! sign in. The console has no API of its own: it calls `/fhir` and
//! `/admin` with the user's token like any client.

use super::negotiate::Output;
use super::render_error;
use crate::error::ApiError;
use crate::service::AppState;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use sha2::{Digest, Sha256};
use std::sync::OnceLock;

/// Registers `/console`, `/console/` and its files.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/console", web::get().to(redirect_to_index))
        .route("/console/config.json", web::get().to(config))
        .route("/console/{file:.*}", web::get().to(asset));
}

/// One embedded file: its path under `/console/`, content type and bytes.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

/// Every file under `server/console/`, listed by `server/build.rs`.
const ASSETS: &[Asset] = include!(concat!(env!("OUT_DIR"), "/console_assets.rs"));

/// The ETag of each asset (a digest of its bytes), computed once.
fn etags() -> &'static [String] {
    static ETAGS: OnceLock<Vec<String>> = OnceLock::new();
    ETAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| {
                let digest = Sha256::digest(a.bytes);
                let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
                format!("\"{hex}\"")
            })
            .collect()
    })
}

/// The policy of every console response: only this origin's scripts,
/// styles and images; the provider's token endpoint for the code exchange;
/// no framing, no plugins, no `<base>`.
fn content_security_policy(state: &AppState) -> String {
    let provider = state
        .auth
        .as_ref()
        .and_then(|verifier| origin_of(&verifier.endpoints().issuer))
        .map(|origin| format!(" {origin}"))
        .unwrap_or_default();
    format!(
        "default-src 'self'; connect-src 'self'{provider}; img-src 'self' data:; \
         object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    )
}

fn origin_of(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    Some(parsed.origin().ascii_serialization())
}

fn secured(builder: &mut actix_web::HttpResponseBuilder, state: &AppState) {
    builder
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            content_security_policy(state),
        ))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"));
}

/// `/console` → `/console/`, so that the page's relative URLs resolve.
async fn redirect_to_index() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header((header::LOCATION, "/console/"))
        .finish()
}

async fn asset(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let file = req.match_info().get("file").unwrap_or_default();
    let file = if file.is_empty() { "index.html" } else { file };
    let Some(index) = ASSETS.iter().position(|a| a.path == file) else {
        return render_error(
            &ApiError::not_found(format!("the console has no file {file}")),
            Output::default(),
        );
    };
    let (found, etag) = (&ASSETS[index], &etags()[index]);
    let revalidated = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut builder = if revalidated {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    secured(&mut builder, &state);
    // `no-cache`: the browser keeps the file but asks each time, so an
    // upgraded server is seen at once; the answer is usually a bodiless 304.
    builder
        .insert_header((header::ETAG, etag.as_str()))
        .insert_header((header::CACHE_CONTROL, "no-cache"));
    if revalidated {
        return builder.finish();
    }
    builder.content_type(found.content_type).body(found.bytes)
}

/// `GET /console/config.json`: how the page signs in. With authentication
/// off (loopback only) it does not; otherwise with the provider's
/// authorization-code flow and PKCE for BARAZA_CONSOLE_CLIENT_ID.
async fn config(state: web::Data<AppState>) -> HttpResponse {
    let body = match &state.auth {
        None => serde_json::json!({ "auth": "off" }),
        Some(verifier) => {
            let endpoints = verifier.endpoints();
            serde_json::json!({
                "auth": "oidc",
                "issuer": endpoints.issuer,
                "authorization_endpoint": endpoints.authorization,
                "token_endpoint": endpoints.token,
                "client_id": state.console_client_id,
                "scope": "openid user/*.cruds",
            })
        }
    };
    let mut builder = HttpResponse::Ok();
    secured(&mut builder, &state);
    builder
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(body)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_is_listed_once_with_a_distinct_etag() {
        let mut paths: Vec<&str> = ASSETS.iter().map(|a| a.path).collect();
        paths.sort_unstable();
        paths.dedup();
        assert_eq!(paths.len(), ASSETS.len());
        let mut tags = etags().to_vec();
        tags.sort();
        tags.dedup();
        assert_eq!(tags.len(), ASSETS.len());
    }

    #[test]
    fn origin_drops_the_path() {
        assert_eq!(
            origin_of("http://127.0.0.1:9000/realms/x").unwrap(),
            "http://127.0.0.1:9000"
        );
    }
}
