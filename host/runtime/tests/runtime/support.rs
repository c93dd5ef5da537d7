//! Shared set-up: builds strategies once per content hash, one runtime per
//! test binary, and a tiny local HTTP server for the outbound-HTTP tests.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use stratagem_domain::{CampaignContext, Contact};
use stratagem_runtime::{
    Builder, EgressPolicy, Hook, Invocation, InvokeOptions, PythonLibrary, Runtime, RuntimeConfig, Strategy, StrategySource, VirtualClock,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn componentize_py() -> PathBuf {
    std::env::var_os("STRATAGEM_COMPONENTIZE_PY")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv/bin/componentize-py"))
}

/// A component made by hand from `app.py` against the WIT package in
/// `wit_dir`: what a customer might upload instead of Python source.
pub fn handmade_component(wit_dir: &Path, world: &str, app: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("app.py"), app).expect("app");
    let output = std::process::Command::new(componentize_py())
        .current_dir(dir.path())
        .arg("-d")
        .arg(wit_dir)
        .args(["-w", world, "componentize", "app", "-o", "app.wasm"])
        .output()
        .expect("componentize-py runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    std::fs::read(dir.path().join("app.wasm")).expect("built")
}

/// A builder that always runs componentize-py.
pub fn builder_without_cache() -> Builder {
    Builder::new(componentize_py())
}

fn build_cache() -> PathBuf {
    std::env::var_os("STRATAGEM_BUILD_CACHE").map(PathBuf::from).unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).join("strategy-builds"))
}

/// The interpreter's library guests import from at run time, prepared once
/// per toolchain beside the build cache (as `serve` does).
pub fn python_library() -> PythonLibrary {
    static LIBRARY: OnceLock<PythonLibrary> = OnceLock::new();
    LIBRARY.get_or_init(|| PythonLibrary::prepare(&componentize_py(), &build_cache()).expect("the Python library is prepared")).clone()
}

pub fn builder() -> Builder {
    Builder::new(componentize_py()).with_cache(build_cache()).with_python_library(python_library())
}

/// Builds (or takes from the build cache) a strategy file of the repository.
pub async fn component(relative: &str) -> Vec<u8> {
    let source = StrategySource::from_path(&repo_root().join(relative)).expect("readable strategy source");
    builder().build(&source).await.unwrap_or_else(|error| panic!("building {relative}: {error}"))
}

pub fn cache_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("artifact-cache")
}

/// A fresh runtime: its own HTTP client, so no pooled connection outlives
/// the tokio runtime of the test that made it.
/// A runtime whose strategies may reach private addresses: the tests'
/// servers listen on 127.0.0.1.
pub fn new_runtime() -> Arc<Runtime> {
    runtime_with_egress(EgressPolicy { allow_private_endpoints: true })
}

pub fn runtime_with_egress(egress: EgressPolicy) -> Arc<Runtime> {
    Arc::new(
        Runtime::new(RuntimeConfig {
            cache_dir: cache_dir(),
            max_instances: 32,
            max_memory_bytes: 512 << 20,
            egress,
            python_library: Some(python_library()),
            ..RuntimeConfig::default()
        })
            .expect("runtime starts"),
    )
}

pub fn runtime() -> Arc<Runtime> {
    static RUNTIME: OnceLock<Arc<Runtime>> = OnceLock::new();
    RUNTIME.get_or_init(new_runtime).clone()
}

pub async fn strategy(relative: &str) -> Strategy {
    load_with(&runtime(), relative).await
}

pub async fn load_with(runtime: &Arc<Runtime>, relative: &str) -> Strategy {
    runtime.load(&component(relative).await).expect("component loads").0
}

pub const PROBE: &str = "host/runtime/tests/strategies/probe.py";

pub fn contact(parameters: serde_json::Value) -> Contact {
    serde_json::from_value(serde_json::json!({
        "object_id": "CONTRACT-123",
        "external_id": "USER-456",
        "name": "John Smith",
        "email": "john@example.com",
        "phone": "+1234567890",
        "parameters": parameters,
    }))
    .expect("valid contact")
}

pub fn options() -> InvokeOptions {
    InvokeOptions {
        tenant: "tenant-a".into(),
        campaign: CampaignContext { id: "c-1".into(), name: "Collections".into(), result_fields: Vec::new() },
        clock: Arc::new(VirtualClock::new("2026-11-26T10:00:00Z".parse().expect("valid time"))),
        ..InvokeOptions::default()
    }
}

pub async fn run_probe(strategy: &Strategy, parameters: serde_json::Value, options: &InvokeOptions) -> Invocation {
    strategy.invoke(&Hook::DataLoad { contact: contact(parameters), existing: None }, options).await
}

/// Serves `/ok` (JSON), `/slow` (answers after 10 s), `/big` (2 MiB),
/// `/redirect?to=URL` (302) on 127.0.0.1; returns the `host:port`.
pub async fn http_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address").to_string();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buffer = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buffer[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&request).into_owned();
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let (status, extra, body) = if path.starts_with("/echo") {
                    // The request's head, for tests of what was sent.
                    ("200 OK", String::new(), head.to_ascii_lowercase().into_bytes())
                } else if path == "/ok" {
                    ("200 OK", String::new(), br#"{"balance": 42}"#.to_vec())
                } else if path == "/slow" {
                    tokio::time::sleep(Duration::from_secs(10)).await;
                    ("200 OK", String::new(), b"late".to_vec())
                } else if path == "/big" {
                    ("200 OK", String::new(), vec![b'x'; 2 << 20])
                } else if let Some(target) = path.strip_prefix("/redirect?to=") {
                    ("302 Found", format!("location: {target}\r\n"), Vec::new())
                } else {
                    ("404 Not Found", String::new(), b"no such path".to_vec())
                };
                let reply = format!(
                    "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n{extra}\r\n",
                    body.len()
                );
                let _ = socket.write_all(reply.as_bytes()).await;
                let _ = socket.write_all(&body).await;
            });
        }
    });
    address
}
