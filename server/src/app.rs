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
    audit: crate::audit::Recorder,
    node: Arc<crate::events::Node>,
    ingest: crate::ingest::worker::Stopper,
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
        Application::build_shared(settings, pool, None).await
    }

    /// As [`Application::build`], with the settings of a connection that
    /// listens for other instances' cache invalidations (docs/events.md).
    /// Without one, this instance assumes it is alone on its database.
    pub async fn build_shared(
        settings: &Settings,
        pool: Pool,
        listen: Option<tokio_postgres::Config>,
    ) -> Result<Application> {
        // Certificate and key problems stop start-up before anything listens.
        let tls = match &settings.tls {
            Some(tls) => Some(crate::http::tls::server_config(tls).map_err(anyhow::Error::msg)?),
            None => None,
        };
        let listener = TcpListener::bind(settings.listen)
            .with_context(|| format!("cannot listen on {}", settings.listen))?;
        let addr = listener.local_addr()?;
        let base_url = settings.public_base(addr);
        let capabilities = serde_json::to_string(&capabilities::build(
            &base_url,
            crate::search::registry::Registry::global(),
        ))?;
        crate::db::check_request_role(&*pool.get().await?).await?;
        let tenants = Arc::new(
            crate::store::tenants::Directory::load(pool.clone())
                .await
                .map_err(|e| anyhow::anyhow!("cannot read the tenants: {e:?}"))?,
        );
        let registries = Arc::new(crate::search::custom::CustomRegistries::default());
        registries
            .load_all(&pool, &tenants.active())
            .await
            .map_err(|e| anyhow::anyhow!("cannot load custom search parameters: {e:?}"))?;
        let node = Arc::new(crate::events::Node::new(settings.events.clone()));
        if let Some(kafka) = &settings.kafka {
            let clients = crate::events::kafka::Kafka::new(kafka).map_err(anyhow::Error::msg)?;
            let _ = node.kafka.set(Arc::new(clients));
        }
        let read_pool = match &settings.read_database_url {
            Some(url) => {
                let url =
                    crate::db::tls::parse_database_url(url.expose()).map_err(anyhow::Error::msg)?;
                let replica =
                    crate::db::pool_with_tls(url.config, settings.db_pool_size, &url.tls)?;
                crate::db::check_request_role(&*replica.get().await?).await?;
                Some(replica)
            }
            None => None,
        };
        let auth = match &settings.oidc {
            Some(oidc) => Some(Arc::new(
                crate::auth::Verifier::discover(oidc)
                    .await
                    .context("cannot set up access-token verification")?,
            )),
            None => None,
        };
        let dhis2 = match &settings.dhis2_config {
            Some(path) => Some(Arc::new(
                adapters::dhis2::Config::load(path).map_err(|e| anyhow::anyhow!("{e}"))?,
            )),
            None => None,
        };
        let csv = match &settings.csv_config {
            Some(path) => Some(Arc::new(
                adapters::csv::CsvConfig::load(path).map_err(|e| anyhow::anyhow!("{e}"))?,
            )),
            None => None,
        };
        let login_client = settings.oidc.as_ref().and_then(|o| o.login_client.clone());
        let audit = if settings.audit {
            crate::audit::retention::spawn(pool.clone(), settings.audit_retention_days);
            crate::audit::Recorder::start(pool.clone())
        } else {
            tracing::warn!("BARAZA_AUDIT=off: no audit events are recorded");
            crate::audit::Recorder::off()
        };
        let mpi = crate::mpi_config::linker(settings)?;
        // Running $export jobs are adopted by the job adopter
        // (events::jobs) at start-up, once their lease has run out.
        let exports = Arc::new(crate::service::export::Exports::new(settings, &node));
        let state = web::Data::new(AppState {
            pool,
            base_url: base_url.clone(),
            max_bundle_entries: settings.max_bundle_entries,
            max_page_size: settings.max_page_size,
            terminology_max_expansion: settings.terminology_max_expansion,
            max_body_bytes: settings.max_body_bytes,
            capabilities: Arc::new(capabilities),
            registries,
            tenants,
            auth,
            login_client,
            groups: Arc::default(),
            audit: audit.clone(),
            metrics: Arc::default(),
            metrics_token: settings.metrics_token.clone(),
            node: node.clone(),
            read_pool,
            mpi_queued: settings.mpi_queued && mpi.is_some(),
            mpi,
            dhis2,
            csv,
            console_client_id: settings.console_client_id.clone(),
            exports,
            imports: Arc::new(crate::ingest::import::Imports::new(settings)),
        });
        crate::events::start(state.get_ref().clone(), listen);
        // Resumes batches left processing, then serves new ones.
        let ingest = crate::ingest::worker::spawn(state.get_ref().clone());
        // $import jobs still reading their inputs read on.
        if let Err(e) = crate::ingest::import::fetch::resume_all(state.get_ref()).await {
            tracing::warn!(error = %e, "cannot resume $import jobs");
        }
        crate::service::export::spawn_cleanup(state.get_ref().clone());
        crate::service::expunge::spawn_retention(
            state.get_ref().clone(),
            std::time::Duration::from_secs(settings.retention_interval_secs),
        );
        let rate_limiter = web::Data::new(crate::http::rate_limit::RateLimiter::new(
            settings.rate_limit,
        ));
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(rate_limiter.clone())
                .wrap(actix_web::middleware::from_fn(
                    crate::http::rate_limit::limit,
                ))
                .wrap(crate::telemetry::RequestLog)
                .configure(crate::http::configure)
        })
        // Idle connections stay open longer than clients' usual pool timeouts
        // so that a client rarely reuses a connection the server is closing.
        .keep_alive(std::time::Duration::from_secs(75))
        .on_connect(crate::http::tls::on_connect);
        let server = match tls {
            Some(config) => server.listen_rustls_0_23(listener, config)?,
            None => server.listen(listener)?,
        };
        let server = server.shutdown_timeout(30).run();
        Ok(Application {
            addr,
            base_url,
            server,
            audit,
            node,
            ingest,
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
    /// finishes in-flight requests, writes their queued audit events, then
    /// returns.
    pub async fn run(self) -> std::io::Result<()> {
        let served = self.server.await;
        self.node.stop();
        self.ingest.stop();
        self.audit.flush(std::time::Duration::from_secs(30)).await;
        served
    }
}
