//! Where pooled connections are driven.
//!
//! A `tokio_postgres` connection is a task that moves bytes between the
//! socket and the client's channel. deadpool spawns it on whichever
//! runtime asks for the connection first, which for the request pool is
//! one of actix-web's single-threaded workers: a request that another
//! worker later served on that connection then crossed threads at every
//! round trip, and waited for the first worker to be free to move its
//! bytes. Here connections are spawned on the process's multi-threaded
//! runtime ([`set_runtime`]), on which request handling also runs
//! (`http::serve_fhir`), so a round trip wakes a task on the same thread.

use deadpool_postgres::Connect;
use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use tokio::runtime::Handle;
use tokio::task::JoinHandle;
use tokio_postgres::Socket;
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};

static RUNTIME: OnceLock<Handle> = OnceLock::new();

/// Records the process's multi-threaded runtime (once, at start-up).
pub fn set_runtime(handle: Handle) {
    let _ = RUNTIME.set(handle);
}

/// The process's multi-threaded runtime, once recorded.
pub fn runtime() -> Option<&'static Handle> {
    RUNTIME.get()
}

/// Spawns `task` on the process's runtime, or on the current one before
/// it is recorded (tests and tools that build their own).
pub fn spawn<F>(task: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    match runtime() {
        Some(handle) => handle.spawn(task),
        None => tokio::spawn(task),
    }
}

/// deadpool's [`Connect`], with the connection driven by [`spawn`].
pub struct OnProcessRuntime<T> {
    pub tls: T,
}

type Connected = Result<(tokio_postgres::Client, JoinHandle<()>), tokio_postgres::Error>;

impl<T> Connect for OnProcessRuntime<T>
where
    T: MakeTlsConnect<Socket> + Clone + Sync + Send + 'static,
    T::Stream: Sync + Send,
    T::TlsConnect: Sync + Send,
    <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
{
    fn connect(
        &self,
        pg_config: &tokio_postgres::Config,
    ) -> Pin<Box<dyn Future<Output = Connected> + Send + '_>> {
        let tls = self.tls.clone();
        let pg_config = pg_config.clone();
        Box::pin(async move {
            let (client, connection) = pg_config.connect(tls).await?;
            let task = spawn(async move {
                if let Err(e) = connection.await {
                    tracing::warn!(target: "deadpool.postgres", "connection error: {e}");
                }
            });
            Ok((client, task))
        })
    }
}
