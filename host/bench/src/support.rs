//! What every benchmark program shares: the repository root and a fresh
//! database per run.

use std::path::{Path, PathBuf};

use anyhow::bail;

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A new SQLite file in `dir`, or a new PostgreSQL database on
/// `$STRATAGEM_TEST_POSTGRES` (default postgres://postgres@127.0.0.1:5432).
pub fn database(backend: &str, dir: &Path) -> anyhow::Result<String> {
    let unique = format!("{:x}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_nanos());
    Ok(match backend {
        "sqlite" => format!("sqlite://{}", dir.join(format!("bench-{unique}.db")).display()),
        "postgres" => {
            let server = std::env::var("STRATAGEM_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
            let name = format!("stratagem_bench_{unique}");
            if !std::process::Command::new("createdb").args(["-h", "127.0.0.1", "-U", "postgres", &name]).status()?.success() {
                bail!("createdb {name} failed");
            }
            format!("{server}/{name}")
        }
        other => bail!("unknown backend {other}"),
    })
}
