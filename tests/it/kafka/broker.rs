//! A real Kafka-protocol broker on loopback for the Kafka tests: tansu
//! (crates.io), one process per test with in-memory storage, so tests do
//! not share topics. The binary is `BARAZA_TEST_TANSU` when set, else
//! `tansu` under the target directory, built there once by
//! `cargo install` (under a file lock; `.ci/run` builds it first so that
//! the build does not compete with running tests).

use rdkafka::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const TANSU_VERSION: &str = "0.6.0";

/// The tansu binary, built if need be.
pub fn tansu() -> PathBuf {
    if let Ok(path) = std::env::var("BARAZA_TEST_TANSU") {
        return PathBuf::from(path);
    }
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("tansu-{TANSU_VERSION}"));
    let binary = root.join("bin/tansu");
    if binary.exists() {
        return binary;
    }
    std::fs::create_dir_all(&root).expect("create the tansu directory");
    let lock_file = std::fs::File::create(root.join(".lock")).expect("create the lock file");
    let _lock = nix::fcntl::Flock::lock(lock_file, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, errno)| errno)
        .expect("lock the tansu directory");
    if !binary.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let status = Command::new(cargo)
            .args(["install", "tansu", "--locked", "--no-default-features"])
            .args(["--features", "dynostore", "--version", TANSU_VERSION])
            .arg("--root")
            .arg(&root)
            .env("CARGO_TARGET_DIR", root.join("build"))
            .status()
            .expect("run cargo install tansu");
        assert!(status.success(), "cargo install tansu failed");
        let _ = std::fs::remove_dir_all(root.join("build"));
    }
    binary
}

/// One broker process, stopped when dropped.
pub struct Broker {
    child: Child,
    pub address: String,
    /// The CA of the broker's certificate, when it speaks TLS.
    tls_ca: Option<PathBuf>,
}

impl Broker {
    pub async fn start() -> Broker {
        let address = format!("127.0.0.1:{}", crate::processes::free_port());
        Broker::spawn(&address, &address, None).await
    }

    /// A broker behind TLS with this certificate, signed by `ca`: tansu
    /// 0.6's own TLS options cannot be given together, so a rustls proxy
    /// on loopback terminates TLS in front of it, and tansu advertises the
    /// proxy's address.
    pub async fn start_tls(cert_pem: &str, key_pem: &str, ca: &Path) -> Broker {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let certs = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let public = listener.local_addr().unwrap().to_string();
        let inner_port = crate::processes::free_port();
        let inner = format!("127.0.0.1:{inner_port}");
        let mut broker = Broker::spawn(&inner, &public, Some(ca.to_path_buf())).await;
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, inner) = (acceptor.clone(), inner.clone());
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let Ok(mut upstream) = tokio::net::TcpStream::connect(&inner).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut upstream).await;
                });
            }
        });
        broker.address = public;
        broker
    }

    /// tansu listening on `listen`, telling clients to use `advertised`.
    async fn spawn(listen: &str, advertised: &str, tls_ca: Option<PathBuf>) -> Broker {
        let child = Command::new(tansu())
            .arg("broker")
            .args(["--listener-url", &format!("tcp://{listen}")])
            .args(["--advertised-listener-url", &format!("tcp://{advertised}")])
            .args(["--storage-engine", "memory://tansu/"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tansu");
        let deadline = Instant::now() + Duration::from_secs(30);
        while tokio::net::TcpStream::connect(listen).await.is_err() {
            assert!(Instant::now() < deadline, "tansu did not listen");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Broker {
            child,
            address: advertised.to_owned(),
            tls_ca,
        }
    }

    /// The properties of a test client of this broker.
    fn client(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.address);
        if let Some(ca) = &self.tls_ca {
            config
                .set("security.protocol", "ssl")
                .set("ssl.ca.location", ca.display().to_string());
        }
        config
    }

    pub fn producer(&self) -> FutureProducer {
        self.client()
            .set("message.timeout.ms", "10000")
            .create()
            .expect("test producer")
    }

    /// A consumer of `topics` in a group of its own, from the start.
    pub fn consumer(&self, topics: &[&str]) -> StreamConsumer {
        let consumer: StreamConsumer = self
            .client()
            .set("group.id", uuid::Uuid::new_v4().to_string())
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false")
            .set("topic.metadata.refresh.interval.ms", "500")
            .create()
            .expect("test consumer");
        consumer.subscribe(topics).expect("subscribe");
        consumer
    }

    /// Sends one message (value, key and headers) and waits for it.
    pub async fn send(&self, topic: &str, key: &str, value: &[u8], headers: &[(&str, &str)]) {
        let mut h = OwnedHeaders::new();
        for (name, v) in headers {
            h = h.insert(Header {
                key: name,
                value: Some(v.as_bytes()),
            });
        }
        let record = FutureRecord::to(topic).key(key).payload(value).headers(h);
        self.producer()
            .send(record, Duration::from_secs(10))
            .await
            .map_err(|(e, _)| e)
            .expect("produce a test message");
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A received message, owned.
#[derive(Debug, Clone)]
pub struct Got {
    pub partition: i32,
    pub key: String,
    pub value: String,
    pub headers: Vec<(String, String)>,
}

impl Got {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.value).expect("a JSON message")
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads until `done` holds for what was read, or the limit passes.
pub async fn read_until(
    consumer: &StreamConsumer,
    limit: Duration,
    done: impl Fn(&[Got]) -> bool,
) -> Vec<Got> {
    let deadline = Instant::now() + limit;
    let mut got = Vec::new();
    while !done(&got) && Instant::now() < deadline {
        let wait = deadline.saturating_duration_since(Instant::now());
        let Ok(Ok(message)) = tokio::time::timeout(wait, consumer.recv()).await else {
            continue;
        };
        got.push(Got {
            partition: message.partition(),
            key: String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned(),
            value: String::from_utf8_lossy(message.payload().unwrap_or_default()).into_owned(),
            headers: message
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|h| {
                            (
                                h.key.to_owned(),
                                String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default(),
        });
    }
    got
}
