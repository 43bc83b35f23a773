//! What the benchmark commands share: the HTTP client, waiting for the
//! server and for autovacuum, concurrent client loops that time every
//! request, latency percentiles and the CPU split; `baraza serve`
//! processes on scratch data directories.

use crate::cpu;
use anyhow::{Context, Result, bail};
use std::future::Future;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// One client with a connection pool large enough for every phase.
pub fn http_client() -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .pool_max_idle_per_host(128)
        .build()?)
}

/// Waits up to a minute for the server to answer /metadata.
pub async fn wait_until_up(client: &reqwest::Client, base: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match client.get(format!("{base}/metadata")).send().await {
            Ok(r) if r.status().is_success() => return Ok(()),
            Ok(r) if Instant::now() > deadline => bail!("{base}/metadata answered {}", r.status()),
            Err(e) if Instant::now() > deadline => return Err(e).context("is Baraza running?"),
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// Waits after seeding so that autovacuum analyses the fresh tables, as it
/// would in any running deployment (autovacuum_naptime is one minute);
/// without statistics PostgreSQL may pick poor plans.
pub async fn settle(done: &str, seconds: u64) {
    println!("# {done}; waiting {seconds} s for autovacuum to analyse");
    tokio::time::sleep(Duration::from_secs(seconds)).await;
}

/// Request latencies, sorted, for percentiles.
#[derive(Debug, Clone, Default)]
pub struct Latencies(Vec<u64>);

impl Latencies {
    /// Latencies in microseconds, in any order.
    pub fn from_micros(mut micros: Vec<u64>) -> Latencies {
        micros.sort_unstable();
        Latencies(micros)
    }

    /// The `p`-quantile (0.5 for the median) in milliseconds; 0 when empty.
    pub fn ms(&self, p: f64) -> f64 {
        let index = ((self.0.len() as f64 * p) as usize).min(self.0.len().saturating_sub(1));
        self.0.get(index).copied().unwrap_or(0) as f64 / 1000.0
    }
}

/// CPU seconds per process group, as `baraza 1.2s, bench 0.3s, postgres 2.0s`.
pub fn cpu_split(cpu: &[(String, f64)]) -> String {
    cpu.iter()
        .map(|(k, v)| format!("{k} {v:.1}s"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One timed request of a [`Run`]: its sequence number, what it returned
/// and how long it took.
#[derive(Debug)]
pub struct Sample<O> {
    pub n: usize,
    pub outcome: O,
    pub micros: u64,
}

/// The median (the upper one of an even count).
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN)
}

/// The result of [`run_clients`].
#[derive(Debug)]
pub struct Run<O> {
    pub samples: Vec<Sample<O>>,
    pub elapsed: Duration,
    /// CPU seconds per group of [`cpu::GROUPS`] during the run.
    pub cpu: Vec<(String, f64)>,
}

impl<O> Run<O> {
    /// Every sample's latency.
    pub fn latencies(&self) -> Latencies {
        Latencies::from_micros(self.samples.iter().map(|s| s.micros).collect())
    }
}

/// Runs `clients` loops for `seconds`, each calling `make(n)` with a global
/// request counter.
pub async fn timed<F, Fut, O>(clients: usize, seconds: u64, make: F) -> Run<O>
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = O> + Send,
    O: Send + 'static,
{
    let deadline = Instant::now() + Duration::from_secs(seconds);
    run_clients(clients, move |_| Instant::now() < deadline, make).await
}

/// Runs exactly `total` requests over `clients` loops.
pub async fn counted<F, Fut, O>(clients: usize, total: usize, make: F) -> Run<O>
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = O> + Send,
    O: Send + 'static,
{
    run_clients(clients, move |n| n < total, make).await
}

/// Runs `clients` concurrent loops; each takes the next request number `n`
/// while `keep_going(n)`, awaits `make(n)` and records how long it took.
pub async fn run_clients<C, F, Fut, O>(clients: usize, keep_going: C, make: F) -> Run<O>
where
    C: Fn(usize) -> bool + Clone + Send + 'static,
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = O> + Send,
    O: Send + 'static,
{
    let counter = Arc::new(AtomicUsize::new(0));
    let before = cpu::snapshot(cpu::GROUPS);
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (counter, keep_going, make) = (counter.clone(), keep_going.clone(), make.clone());
            tokio::spawn(async move {
                let mut samples = Vec::new();
                loop {
                    let n = counter.fetch_add(1, Ordering::Relaxed);
                    if !keep_going(n) {
                        break;
                    }
                    let t = Instant::now();
                    let outcome = make(n).await;
                    samples.push(Sample {
                        n,
                        outcome,
                        micros: t.elapsed().as_micros() as u64,
                    });
                }
                samples
            })
        })
        .collect();
    let mut samples = Vec::new();
    for task in tasks {
        if let Ok(mut done) = task.await {
            samples.append(&mut done);
        }
    }
    let elapsed = started.elapsed();
    samples.sort_by_key(|s| s.n);
    Run {
        samples,
        elapsed,
        cpu: cpu::used(&before, &cpu::snapshot(cpu::GROUPS)),
    }
}

/// `baraza serve` on a data directory, stopped with SIGTERM.
pub struct Server {
    child: Child,
}

impl Server {
    /// Starts `baraza serve` with the scripts' `BARAZA_*` variables
    /// removed and `env` added; waits until it answers.
    pub async fn start(
        baraza: &Path,
        data_dir: &Path,
        port: u16,
        env: &[(&str, &str)],
        client: &reqwest::Client,
        base: &str,
    ) -> Result<Server> {
        let mut command = Command::new(baraza);
        command.arg("serve");
        for (name, _) in std::env::vars() {
            if name.starts_with("BARAZA_") {
                command.env_remove(name);
            }
        }
        command
            .env("BARAZA_DATA_DIR", data_dir)
            .env("BARAZA_LISTEN", format!("127.0.0.1:{port}"))
            .env("BARAZA_LOG", "warn")
            .envs(env.iter().copied())
            .stderr(Stdio::from(std::fs::File::create(
                data_dir.with_extension("log"),
            )?));
        let child = command
            .spawn()
            .with_context(|| format!("cannot start {}", baraza.display()))?;
        let server = Server { child };
        wait_until_up(client, base).await?;
        Ok(server)
    }

    pub fn stop(&mut self) -> Result<()> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        if !status.success() {
            bail!("cannot signal baraza");
        }
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
            let _ = self.child.wait();
        }
    }
}
