//! Lists the WIT contract (`wit/`) and the `stratagem` SDK's modules
//! (`guest-sdk-python/src/stratagem/`) for `componentize.rs` to embed, so a
//! file added to either is built into strategies with no edit here.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// SDK files that stay out of the sandbox: the plain-CPython test harness.
const HOST_ONLY_SDK_FILES: &[&str] = &["testing.py"];

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it")).join("../..");
    let wit = root.join("wit");
    let sdk = root.join("guest-sdk-python/src/stratagem");
    let mut out = String::new();
    table(&mut out, "WIT", &wit, "wit", &[]);
    table(&mut out, "SDK", &sdk, "py", HOST_ONLY_SDK_FILES);
    let path = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it")).join("embedded.rs");
    std::fs::write(path, out).expect("write embedded.rs");
}

/// `const NAME: &[(&str, &str)]` of (path relative to `dir`, contents),
/// sorted by path, for every file with the extension under `dir`.
fn table(out: &mut String, name: &str, dir: &Path, extension: &str, skip: &[&str]) {
    // A directory makes cargo rerun this script when anything under it changes.
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files = Vec::new();
    walk(dir, dir, extension, &mut files);
    files.retain(|(relative, _)| !skip.contains(&relative.as_str()));
    files.sort();
    assert!(!files.is_empty(), "no .{extension} files under {}", dir.display());
    writeln!(out, "const {name}: &[(&str, &str)] = &[").expect("a String");
    for (relative, path) in files {
        let path = path.canonicalize().expect("an existing file");
        writeln!(out, "    ({relative:?}, include_str!({:?})),", path.display().to_string()).expect("a String");
    }
    writeln!(out, "];").expect("a String");
}

fn walk(root: &Path, dir: &Path, extension: &str, files: &mut Vec<(String, PathBuf)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).expect("a readable directory").map(|entry| entry.expect("an entry").path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            if path.file_name().is_some_and(|name| name != "__pycache__") {
                walk(root, &path, extension, files);
            }
        } else if path.extension().is_some_and(|e| e == extension) {
            let relative = path.strip_prefix(root).expect("under root").to_str().expect("a UTF-8 path").replace('\\', "/");
            files.push((relative, path));
        }
    }
}
