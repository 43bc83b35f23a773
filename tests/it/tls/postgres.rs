//! PostgreSQL over TLS: a second, small private cluster with `ssl=on` and a
//! certificate made here, on a loopback TCP port, accepting TLS connections
//! only (`hostssl`); Baraza connects with `sslmode=verify-full`.

use super::certs::{Authority, Dir, Issued};
use baraza::db::tls::parse_database_url;
use baraza::embedded_pg::PgBinaries;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_baraza-under-test");

/// A cluster that serves TLS only; stopped (fast shutdown) when dropped.
struct TlsCluster {
    child: Child,
    port: u16,
}

impl TlsCluster {
    /// Initialises and starts a cluster under `root` serving `server`'s
    /// certificate. Blocking: initdb takes a few seconds.
    fn start(root: PathBuf, server_cert: PathBuf, server_key: PathBuf) -> TlsCluster {
        let bins = PgBinaries::locate().expect("PostgreSQL server programs");
        // PostgreSQL refuses to run as root; the tests may run as root.
        let owner = nix::unistd::geteuid().is_root().then(|| {
            nix::unistd::User::from_name("postgres")
                .expect("user lookup")
                .expect("a postgres user")
        });
        let (pgdata, socket) = (root.join("data"), root.join("run"));
        std::fs::create_dir_all(&socket).expect("socket dir");
        let (cert, key) = (root.join("server.crt"), root.join("server.key"));
        std::fs::copy(server_cert, &cert).expect("copy certificate");
        std::fs::copy(server_key, &key).expect("copy key");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let as_owner = |command: &mut Command| {
            if let Some(user) = &owner {
                command.uid(user.uid.as_raw()).gid(user.gid.as_raw());
            }
        };
        if let Some(user) = &owner {
            for path in [&root, &socket, &cert, &key] {
                nix::unistd::chown(path, Some(user.uid), Some(user.gid)).expect("chown");
            }
        }
        let mut initdb = Command::new(&bins.initdb);
        initdb
            .arg("-D")
            .arg(&pgdata)
            .args(["-U", "baraza", "--auth=trust", "-E", "UTF8", "--no-locale"])
            .stdout(Stdio::null());
        as_owner(&mut initdb);
        let out = initdb.output().expect("run initdb");
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // TLS on TCP only; the socket stays for nothing but the readiness check.
        std::fs::write(
            pgdata.join("pg_hba.conf"),
            "local all all trust\nhostssl all all 127.0.0.1/32 trust\n",
        )
        .expect("pg_hba.conf");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let log = std::fs::File::create(root.join("postgres.log")).expect("log");
        let mut postgres = Command::new(&bins.postgres);
        postgres
            .arg("-D")
            .arg(&pgdata)
            .arg("-k")
            .arg(&socket)
            .args(["-p", &port.to_string()])
            .args(["-c", "listen_addresses=127.0.0.1"])
            .args(["-c", "ssl=on"])
            .arg("-c")
            .arg(format!("ssl_cert_file={}", cert.display()))
            .arg("-c")
            .arg(format!("ssl_key_file={}", key.display()))
            .args(["-c", "shared_buffers=16MB", "-c", "max_connections=20"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        as_owner(&mut postgres);
        let child = postgres.spawn().expect("start postgres");
        let mut cluster = TlsCluster { child, port };
        cluster.wait_until_ready(&pgdata, &root);
        cluster
    }

    /// The pid file's status line says "ready" once connections are taken.
    fn wait_until_ready(&mut self, pgdata: &Path, root: &Path) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                let log = std::fs::read_to_string(root.join("postgres.log")).unwrap_or_default();
                panic!("postgres exited ({status}): {log}");
            }
            let ready = std::fs::read_to_string(pgdata.join("postmaster.pid"))
                .map(|text| text.lines().nth(7).is_some_and(|l| l.trim() == "ready"))
                .unwrap_or(false);
            if ready {
                return;
            }
            assert!(Instant::now() < deadline, "postgres did not become ready");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A libpq key=value URL: TCP to 127.0.0.1, TLS name `host`.
    fn url(&self, host: &str, sslmode: &str, ca: &Authority, dbname: &str) -> String {
        format!(
            "host={host} hostaddr=127.0.0.1 port={} user=baraza dbname={dbname} sslmode={sslmode} sslrootcert='{}'",
            self.port,
            ca.pem_path.display()
        )
    }
}

impl Drop for TlsCluster {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_cluster(dir: &Dir, server: &Issued) -> TlsCluster {
    let root = dir.path().join("pg");
    std::fs::create_dir_all(&root).expect("cluster dir");
    let (cert, key) = (server.cert_path.clone(), server.key_path.clone());
    tokio::task::spawn_blocking(move || TlsCluster::start(root, cert, key))
        .await
        .expect("cluster start")
}

/// Connects with `url` and answers whether the server sees TLS.
async fn connect(url: &str) -> anyhow::Result<bool> {
    let parsed = parse_database_url(url).map_err(anyhow::Error::msg)?;
    let client = baraza::db::connect_with_tls(&parsed.config, &parsed.tls).await?;
    let row = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await?;
    Ok(row.get(0))
}

#[tokio::test]
async fn verify_full_connects_to_the_certified_name_and_refuses_another() {
    let dir = Dir::new();
    let ca = Authority::new(&dir, "ca");
    let other_ca = Authority::new(&dir, "other-ca");
    let server = ca.server(&dir, &["localhost", "127.0.0.1"]);
    let cluster = start_cluster(&dir, &server).await;

    let url = cluster.url("localhost", "verify-full", &ca, "postgres");
    assert!(
        connect(&url).await.expect("verify-full to localhost"),
        "not TLS"
    );
    let parsed = parse_database_url(&url).expect("URL");
    let pool = baraza::db::pool_with_tls(parsed.config, 2, &parsed.tls).expect("pool");
    let pooled = pool.get().await.expect("pooled TLS connection");
    pooled.query_one("SELECT 1", &[]).await.expect("query");

    // The server's certificate is for another name than the one asked for.
    let elsewhere = cluster.url("db.elsewhere.example", "verify-full", &ca, "postgres");
    let err = connect(&elsewhere)
        .await
        .expect_err("name mismatch accepted");
    assert!(format!("{err:#}").contains("certificate"), "{err:#}");
    // verify-ca checks the chain only.
    let chain_only = cluster.url("db.elsewhere.example", "verify-ca", &ca, "postgres");
    assert!(connect(&chain_only).await.expect("verify-ca"));
    // A CA that did not sign the server's certificate: refused either way.
    for mode in ["verify-full", "verify-ca"] {
        let foreign = cluster.url("localhost", mode, &other_ca, "postgres");
        let err = connect(&foreign).await.expect_err("foreign CA accepted");
        assert!(
            format!("{err:#}").contains("certificate"),
            "{mode}: {err:#}"
        );
    }
    // The cluster takes TLS only, so the successes above were encrypted.
    let plain = format!(
        "host=127.0.0.1 port={} user=baraza dbname=postgres sslmode=disable",
        cluster.port
    );
    assert!(connect(&plain).await.is_err(), "plain connection accepted");
}

/// `baraza migrate` reads sslmode from BARAZA_DATABASE_URL and makes every
/// connection through verified TLS.
#[tokio::test]
async fn baraza_migrate_goes_through_verified_tls() {
    let dir = Dir::new();
    let ca = Authority::new(&dir, "ca");
    let server = ca.server(&dir, &["localhost"]);
    let cluster = start_cluster(&dir, &server).await;
    let admin =
        parse_database_url(&cluster.url("localhost", "verify-full", &ca, "postgres")).expect("URL");
    baraza::db::connect_with_tls(&admin.config, &admin.tls)
        .await
        .expect("admin connection")
        .batch_execute("CREATE DATABASE baraza")
        .await
        .expect("create database");
    let migrate = |url: String| {
        let mut command = Command::new(BIN);
        command.arg("migrate");
        for (name, _) in std::env::vars().filter(|(k, _)| k.starts_with("BARAZA_")) {
            command.env_remove(name);
        }
        command
            .env("BARAZA_DATABASE_URL", url)
            .env("BARAZA_LOG", "warn");
        tokio::task::spawn_blocking(move || command.output().expect("run baraza migrate"))
    };
    let out = migrate(cluster.url("localhost", "verify-full", &ca, "baraza"))
        .await
        .expect("migrate");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("schema is at version"),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = migrate(cluster.url("db.elsewhere.example", "verify-full", &ca, "baraza"))
        .await
        .expect("migrate");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a name mismatch was accepted");
    assert!(stderr.contains("certificate"), "{stderr}");
    let out = migrate(cluster.url("localhost", "require", &ca, "baraza"))
        .await
        .expect("migrate");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("verify-full"), "{stderr}");
}
