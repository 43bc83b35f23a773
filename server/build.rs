//! Embeds the operator console (`server/console/`, issue 11): writes
//! `$OUT_DIR/console_assets.rs`, one `Asset` per file with its path,
//! content type and `include_bytes!`, so that a new file (a new view's
//! module) is served without listing it anywhere. No npm, no bundler: the
//! files are served as they are written. Also makes a new migration
//! rebuild the server, which embeds them.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn content_type(path: &Path) -> Option<&'static str> {
    Some(match path.extension()?.to_str()? {
        "html" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        _ => return None,
    })
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, files)?;
        } else {
            files.push(path);
        }
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("console");
    println!("cargo:rerun-if-changed={}", root.display());
    // `db.rs` embeds the migrations at compile time (refinery's
    // `embed_migrations!`); a build script's own rerun-if-changed list
    // replaces cargo's default, so a new migration must be named here to
    // be built in.
    println!("cargo:rerun-if-changed=../migrations");
    let mut files = Vec::new();
    walk(&root, &mut files)?;
    files.sort();
    let mut out = String::from("&[\n");
    for file in &files {
        let relative = file
            .strip_prefix(&root)?
            .to_string_lossy()
            .replace('\\', "/");
        let Some(kind) = content_type(file) else {
            return Err(format!("console file {relative} has no known content type").into());
        };
        writeln!(
            out,
            "    Asset {{ path: {relative:?}, content_type: {kind:?}, bytes: include_bytes!({:?}) }},",
            file.display().to_string()
        )?;
    }
    out.push(']');
    let target = PathBuf::from(std::env::var("OUT_DIR")?).join("console_assets.rs");
    std::fs::write(target, out)?;
    Ok(())
}
