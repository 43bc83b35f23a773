//! Wiring: binds the listener, builds the shared state and the actix-web
//! server. Tests build it on port 0 against their own database.

use crate::config::Settings;
use crate::service::{AppState, capabilities};
use actix_web::dev::Server;
use actix_web::{App, HttpServer, web};
use anyhow::{Context, Result};
use deadpool_postgres::Pool;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

pub struct Application {
    addr: SocketAddr,
    base_url: String,
    server: Server,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("addr", &self.addr)
            .finish()
    }
}

impl Application {
    /// Binds `settings.listen` (port 0 picks a free port) and prepares the
    /// server; call [`Application::run`] to serve.
    /// Also loads the tenants' custom search parameters and resumes
    /// `$reindex` jobs left running.
    pub async fn build(settings: &Settings, pool: Pool) -> Result<Application> {
        let listener = TcpListener::bind(settings.listen)
            .with_context(|| format!("cannot listen on {}", settings.listen))?;
        let addr = listener.local_addr()?;
        let base_url = settings.public_base(addr);
        let capabilities = serde_json::to_string(&capabilities::build(
            &base_url,
            crate::search::registry::Registry::global(),
        ))?;
        let registries = Arc::new(crate::search::custom::CustomRegistries::default());
        registries.load_all(&pool.get().await?).await?;
        crate::service::reindex::resume_all(&pool, &base_url, &registries)
            .await
            .map_err(|e| anyhow::anyhow!("cannot resume $reindex jobs: {e:?}"))?;
        let auth = match &settings.oidc {
            Some(oidc) => Some(Arc::new(
                crate::auth::Verifier::discover(oidc)
                    .await
                    .context("cannot set up access-token verification")?,
            )),
            None => None,
        };
        let login_client = settings.oidc.as_ref().and_then(|o| o.login_client.clone());
        let state = web::Data::new(AppState {
            pool,
            base_url: base_url.clone(),
            max_bundle_entries: settings.max_bundle_entries,
            max_page_size: settings.max_page_size,
            max_body_bytes: settings.max_body_bytes,
            capabilities: Arc::new(capabilities),
            registries,
            auth,
            login_client,
        });
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .wrap(crate::telemetry::RequestLog)
                .configure(crate::http::configure)
        })
        // Idle connections stay open longer than clients' usual pool timeouts
        // so that a client rarely reuses a connection the server is closing.
        .keep_alive(std::time::Duration::from_secs(75))
        .listen(listener)?
        .shutdown_timeout(30)
        .run();
        Ok(Application {
            addr,
            base_url,
            server,
        })
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// A handle that stops the server gracefully.
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves until SIGTERM/SIGINT (or the handle's stop): stops accepting,
    /// finishes in-flight requests, then returns.
    pub async fn run(self) -> std::io::Result<()> {
        self.server.await
    }
}
