//! The embedded PostgreSQL: a private cluster in the data directory, started
//! on a unix socket with no TCP port and stopped when Baraza exits.
//!
//! The cluster process is tied to the thread that starts it with
//! `PR_SET_PDEATHSIG`, so even a `kill -9` of Baraza makes PostgreSQL shut
//! down fast (rolling back open transactions) instead of lingering. Callers
//! must start it from a thread that lives as long as the process.

use anyhow::{Context, Result, anyhow, bail};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The socket "port": only the socket file's name, since TCP is off.
const SOCKET_PORT: u16 = 5432;
const SUPERUSER: &str = "baraza";

#[derive(Debug)]
pub struct EmbeddedPostgres {
    child: Option<Child>,
    pgdata: PathBuf,
    socket_dir: PathBuf,
    log_path: PathBuf,
}

/// Where the PostgreSQL server programs live.
#[derive(Debug, Clone)]
pub struct PgBinaries {
    pub initdb: PathBuf,
    pub postgres: PathBuf,
}

impl PgBinaries {
    /// Finds `initdb` and `postgres` on PATH or under `/usr/lib/postgresql/*/bin`
    /// (newest version first).
    pub fn locate() -> Result<PgBinaries> {
        let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).collect())
            .unwrap_or_default();
        let mut versioned: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let version = e.file_name().to_str()?.parse::<u32>().ok()?;
                Some((version, e.path().join("bin")))
            })
            .collect();
        versioned.sort_by_key(|v| std::cmp::Reverse(v.0));
        dirs.extend(versioned.into_iter().map(|(_, d)| d));
        PgBinaries::locate_in(dirs)
    }

    /// Looks for the programs in `dirs`, in order.
    pub fn locate_in(dirs: Vec<PathBuf>) -> Result<PgBinaries> {
        for dir in dirs {
            let (initdb, postgres) = (dir.join("initdb"), dir.join("postgres"));
            if initdb.is_file() && postgres.is_file() {
                return Ok(PgBinaries { initdb, postgres });
            }
        }
        bail!(
            "no PostgreSQL server programs (initdb, postgres) found on PATH or under /usr/lib/postgresql/*/bin; \
             install them with `apt-get install postgresql` (Debian/Ubuntu), or set BARAZA_DATABASE_URL to use an existing server"
        )
    }

    /// The major version, from `postgres --version`.
    pub fn major_version(&self) -> Result<u32> {
        let out = Command::new(&self.postgres)
            .arg("--version")
            .output()
            .with_context(|| format!("cannot run {}", self.postgres.display()))?;
        let text = String::from_utf8_lossy(&out.stdout);
        text.split_whitespace()
            .find_map(|w| w.split('.').next()?.parse::<u32>().ok())
            .ok_or_else(|| anyhow!("cannot read the PostgreSQL version from {text:?}"))
    }
}

/// The unprivileged account the cluster runs as when Baraza runs as root
/// (PostgreSQL refuses to run as root).
#[derive(Debug, Clone, Copy)]
struct RunAs {
    uid: u32,
    gid: u32,
}

fn run_as() -> Result<Option<RunAs>> {
    if !nix::unistd::geteuid().is_root() {
        return Ok(None);
    }
    let user = nix::unistd::User::from_name("postgres")
        .context("cannot look up the postgres user")?
        .ok_or_else(|| {
            anyhow!(
                "running as root, and PostgreSQL refuses to run as root: create a `postgres` user \
                 (the Debian package `postgresql` does), or run Baraza as an unprivileged user"
            )
        })?;
    Ok(Some(RunAs {
        uid: user.uid.as_raw(),
        gid: user.gid.as_raw(),
    }))
}

fn chown_tree(path: &Path, owner: RunAs) -> Result<()> {
    let uid = Some(nix::unistd::Uid::from_raw(owner.uid));
    let gid = Some(nix::unistd::Gid::from_raw(owner.gid));
    nix::unistd::chown(path, uid, gid).with_context(|| format!("chown {}", path.display()))?;
    if path.is_dir() {
        for entry in fs::read_dir(path)? {
            chown_tree(&entry?.path(), owner)?;
        }
    }
    Ok(())
}

/// Makes the child stop PostgreSQL fast when its parent thread dies.
fn die_with_parent(command: &mut Command, owner: Option<RunAs>) {
    if let Some(owner) = owner {
        command.uid(owner.uid).gid(owner.gid);
    }
    #[allow(unsafe_code)]
    // SAFETY: the closure runs in the forked child before exec and only makes
    // async-signal-safe system calls (prctl, getppid).
    unsafe {
        command.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGINT)
                .map_err(std::io::Error::from)?;
            // The parent may have died between fork and prctl.
            if nix::unistd::getppid().as_raw() == 1 {
                return Err(std::io::Error::other("parent exited"));
            }
            Ok(())
        });
    }
}

impl EmbeddedPostgres {
    /// Initialises (first time) and starts the cluster under `data_dir`, and
    /// waits until it accepts connections.
    pub fn start(data_dir: &Path) -> Result<EmbeddedPostgres> {
        let bins = PgBinaries::locate()?;
        let version = bins.major_version()?;
        if version < 14 {
            bail!("PostgreSQL {version} is too old: Baraza needs 14 or newer");
        }
        let owner = run_as()?;
        fs::create_dir_all(data_dir)
            .with_context(|| format!("cannot create data directory {}", data_dir.display()))?;
        let data_dir = data_dir
            .canonicalize()
            .with_context(|| format!("cannot resolve {}", data_dir.display()))?;
        if let Some(owner) = owner {
            check_reachable(&data_dir, owner)?;
        }
        let pgdata = data_dir.join("pgdata");
        let socket_dir = socket_dir_for(&data_dir);
        let log_path = data_dir.join("postgres.log");
        fs::create_dir_all(&socket_dir)?;
        fs::set_permissions(&socket_dir, fs::Permissions::from_mode(0o700))?;
        if !log_path.exists() {
            fs::write(&log_path, b"")?;
        }
        if let Some(owner) = owner {
            nix::unistd::chown(
                &data_dir,
                Some(nix::unistd::Uid::from_raw(owner.uid)),
                Some(nix::unistd::Gid::from_raw(owner.gid)),
            )?;
            chown_tree(&socket_dir, owner)?;
            chown_tree(&log_path, owner)?;
        }
        if !pgdata.join("PG_VERSION").exists() {
            initdb(&bins, &pgdata, owner)?;
        }
        wait_for_previous_postmaster(&pgdata)?;
        let log = fs::OpenOptions::new().append(true).open(&log_path)?;
        let mut command = Command::new(&bins.postgres);
        command
            .arg("-D")
            .arg(&pgdata)
            .arg("-k")
            .arg(&socket_dir)
            .args(["-p", &SOCKET_PORT.to_string()])
            .args(["-c", "listen_addresses="])
            .args(["-c", "max_connections=200"])
            // Statistics soon after a bulk load (see migration V8).
            .args(["-c", "autovacuum_naptime=15s"])
            // Checkpoints as the Ansible db role spaces them: each one makes
            // the next write of every page carry a full image in the WAL,
            // which dominates a bulk load's WAL with the defaults (1 GB, 5 min).
            .args(["-c", "max_wal_size=4GB"])
            .args(["-c", "checkpoint_timeout=15min"])
            .args(["-c", "wal_compression=on"])
            .args(memory_settings(physical_memory_bytes()))
            .args(["-c", "unix_socket_permissions=0700"])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        die_with_parent(&mut command, owner);
        let child = command
            .spawn()
            .with_context(|| format!("cannot start {}", bins.postgres.display()))?;
        let mut pg = EmbeddedPostgres {
            child: Some(child),
            pgdata,
            socket_dir,
            log_path,
        };
        pg.wait_until_ready()?;
        Ok(pg)
    }

    /// Connection settings for a database of this cluster, as its owner.
    pub fn config(&self, dbname: &str) -> tokio_postgres::Config {
        owner_config(&self.socket_dir, dbname)
    }

    /// Connection settings, as its owner, for the cluster that another
    /// process (a running `baraza serve`) runs in `data_dir`, if it is up.
    pub fn running_config(data_dir: &Path, dbname: &str) -> Option<tokio_postgres::Config> {
        let data_dir = data_dir.canonicalize().ok()?;
        let pgdata = data_dir.join("pgdata");
        let socket_dir = socket_dir_for(&data_dir);
        let pid: i32 = fs::read_to_string(pgdata.join("postmaster.pid"))
            .ok()?
            .lines()
            .next()?
            .trim()
            .parse()
            .ok()?;
        let alive = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok();
        (alive && ready_file_says_ready(&socket_dir, &pgdata))
            .then(|| owner_config(&socket_dir, dbname))
    }

    pub fn socket_dir(&self) -> &Path {
        &self.socket_dir
    }

    fn wait_until_ready(&mut self) -> Result<()> {
        let socket = self.socket_dir.join(format!(".s.PGSQL.{SOCKET_PORT}"));
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    bail!(
                        "embedded PostgreSQL exited during start-up ({status}); see {}:\n{}",
                        self.log_path.display(),
                        tail(&self.log_path)
                    );
                }
            }
            if socket.exists() && ready_file_says_ready(&self.socket_dir, &self.pgdata) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "embedded PostgreSQL did not become ready in 60 s; see {}",
                    self.log_path.display()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Fast shutdown: roll back open transactions, checkpoint, exit.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT);
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGQUIT);
        let _ = child.wait();
    }
}

impl Drop for EmbeddedPostgres {
    fn drop(&mut self) {
        self.stop();
    }
}

fn owner_config(socket_dir: &Path, dbname: &str) -> tokio_postgres::Config {
    let mut cfg = tokio_postgres::Config::new();
    cfg.host_path(socket_dir)
        .port(SOCKET_PORT)
        .user(SUPERUSER)
        .dbname(dbname)
        .application_name("baraza");
    cfg
}

/// Memory settings sized to the machine, as PostgreSQL's documentation
/// suggests for a dedicated server: shared buffers a quarter of memory
/// (at most 4 GiB, at least the default 128 MiB) and the planner told that
/// half of memory caches files. Index-driven search plans depend on the
/// index tables staying in memory, which the 128 MiB default cannot do for
/// a million resources.
fn memory_settings(physical: Option<u64>) -> Vec<String> {
    const MIB: u64 = 1024 * 1024;
    let Some(physical) = physical else {
        return Vec::new();
    };
    let shared_mib = (physical / 4 / MIB).clamp(128, 4096);
    let cache_mib = (physical / 2 / MIB).max(512);
    vec![
        "-c".to_owned(),
        format!("shared_buffers={shared_mib}MB"),
        "-c".to_owned(),
        format!("effective_cache_size={cache_mib}MB"),
        "-c".to_owned(),
        "maintenance_work_mem=256MB".to_owned(),
    ]
}

/// MemTotal from /proc/meminfo.
fn physical_memory_bytes() -> Option<u64> {
    let meminfo = fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Unix socket paths are limited to about 107 bytes; a deep data directory
/// gets its socket in a private directory under /tmp instead.
fn socket_dir_for(data_dir: &Path) -> PathBuf {
    let preferred = data_dir.join("run");
    let socket_len = preferred.as_os_str().len() + ".s.PGSQL.5432".len() + 1;
    if socket_len < 100 {
        return preferred;
    }
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in data_dir.as_os_str().as_encoded_bytes() {
        hash = (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
    }
    std::env::temp_dir().join(format!("baraza-{hash:016x}"))
}

/// When Baraza runs as root the cluster runs as `postgres`, which must be
/// able to reach the data directory through every parent directory.
fn check_reachable(data_dir: &Path, owner: RunAs) -> Result<()> {
    for dir in data_dir.ancestors().skip(1) {
        let Ok(meta) = fs::metadata(dir) else {
            continue;
        };
        let mode = meta.permissions().mode();
        let reachable = mode & 0o001 != 0
            || (std::os::unix::fs::MetadataExt::uid(&meta) == owner.uid && mode & 0o100 != 0);
        if !reachable {
            bail!(
                "the postgres user cannot reach {} because {} is closed to it; \
                 set BARAZA_DATA_DIR to a directory it can reach (for example /var/lib/baraza)",
                data_dir.display(),
                dir.display()
            );
        }
    }
    Ok(())
}

/// The postmaster writes its pid file before it accepts connections; the
/// socket's lock file appears once it listens. Readiness is the pid file's
/// status line (PostgreSQL 10+ writes "ready" there).
fn ready_file_says_ready(socket_dir: &Path, pgdata: &Path) -> bool {
    let lock = socket_dir.join(format!(".s.PGSQL.{SOCKET_PORT}.lock"));
    if !lock.exists() {
        return false;
    }
    fs::read_to_string(pgdata.join("postmaster.pid"))
        .map(|text| text.lines().nth(7).is_some_and(|l| l.trim() == "ready"))
        .unwrap_or(false)
}

fn initdb(bins: &PgBinaries, pgdata: &Path, owner: Option<RunAs>) -> Result<()> {
    let mut command = Command::new(&bins.initdb);
    command
        .arg("-D")
        .arg(pgdata)
        .args(["-U", SUPERUSER, "--auth=trust", "-E", "UTF8", "--no-locale"])
        .stdin(Stdio::null());
    if let Some(owner) = owner {
        command.uid(owner.uid).gid(owner.gid);
    }
    let out = command
        .output()
        .with_context(|| format!("cannot run {}", bins.initdb.display()))?;
    if !out.status.success() {
        // A half-made cluster would block the next start; remove it.
        let _ = fs::remove_dir_all(pgdata);
        bail!(
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// After a crash of Baraza the old postmaster is shutting down (death
/// signal); wait for it rather than fail on its pid file.
fn wait_for_previous_postmaster(pgdata: &Path) -> Result<()> {
    let pid_file = pgdata.join("postmaster.pid");
    let deadline = Instant::now() + Duration::from_secs(60);
    while let Ok(text) = fs::read_to_string(&pid_file) {
        let Some(pid) = text
            .lines()
            .next()
            .and_then(|l| l.trim().parse::<i32>().ok())
        else {
            return Ok(());
        };
        let alive = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok();
        if !alive {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "another PostgreSQL (pid {pid}) is still running on {}; stop it first",
                pgdata.display()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

fn tail(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn memory_settings_follow_the_machine_within_bounds() {
        const GIB: u64 = 1024 * 1024 * 1024;
        let check = |physical: u64, shared: &str, cache: &str| {
            let settings = memory_settings(Some(physical));
            assert!(
                settings.contains(&format!("shared_buffers={shared}")),
                "{settings:?}"
            );
            assert!(
                settings.contains(&format!("effective_cache_size={cache}")),
                "{settings:?}"
            );
        };
        check(GIB / 4, "128MB", "512MB");
        check(2 * GIB, "512MB", "1024MB");
        check(24 * GIB, "4096MB", "12288MB");
        assert!(memory_settings(None).is_empty());
    }

    #[test]
    fn missing_server_programs_name_the_package_to_install() {
        let err = PgBinaries::locate_in(vec![PathBuf::from("/nonexistent")]).unwrap_err();
        assert!(
            format!("{err}").contains("apt-get install postgresql"),
            "{err}"
        );
    }

    #[test]
    fn short_data_dirs_keep_their_socket_inside() {
        assert_eq!(
            socket_dir_for(Path::new("/srv/baraza")),
            PathBuf::from("/srv/baraza/run")
        );
    }

    #[test]
    fn deep_data_dirs_get_a_short_socket_dir() {
        let deep = PathBuf::from(format!("/home/{}/baraza-data", "x".repeat(120)));
        let dir = socket_dir_for(&deep);
        assert!(dir.starts_with(std::env::temp_dir()));
        assert!(dir.as_os_str().len() + ".s.PGSQL.5432".len() < 100);
        assert_eq!(dir, socket_dir_for(&deep), "stable for one data directory");
    }
}
