//! Embeds the built web UI (`make web` writes it to web/dist) when it is
//! there: `serve` then needs no files next to it. Without it the binary
//! still builds, and its UI page says how to build one.

use std::path::Path;

fn main() {
    let dist = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web/dist");
    println!("cargo::rustc-check-cfg=cfg(embedded_ui)");
    // A directory is watched whole: a rebuilt UI rebuilds this crate.
    println!("cargo::rerun-if-changed={}", dist.display());
    if dist.join("index.html").is_file() {
        println!("cargo::rustc-cfg=embedded_ui");
    }
}
