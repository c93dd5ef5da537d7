//! A running app per test, on a fresh SQLite file or a fresh PostgreSQL
//! database, and a client that speaks to it with a tenant's key.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde_json::Value;
use stratagem_api::{AppState, BuildLeases, ConnectionLimits, ImportLeases, StrategyService};
use stratagem_engine::{EngineConfig, OutboundConfig, RateLimits};
use stratagem_runtime::{Builder, Runtime, RuntimeConfig, SystemClock};
use stratagem_store::Store;

/// Generates `sqlite` and `postgres` variants of an async test taking a
/// `Backend`.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() { super::$name($crate::support::Backend::Sqlite).await }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() { super::$name($crate::support::Backend::Postgres).await }
            }
        )*
    };
}

#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct App {
    pub base: String,
    pub store: Store,
    url: String,
    secrets: stratagem_store::SecretsKey,
    pub http: reqwest::Client,
    pub strategies: Arc<StrategyService>,
    /// Where the node's compiled strategy code is kept on disk.
    pub artifact_dir: PathBuf,
    _dir: tempfile::TempDir,
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A text file of the repository.
pub fn repo_file(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).expect("repository file")
}

/// The compiled code of the runtime the test binary shares.
pub fn artifact_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("api-artifacts")
}

pub fn runtime() -> Arc<Runtime> {
    static RUNTIME: OnceLock<Arc<Runtime>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            let config = RuntimeConfig { cache_dir: artifact_dir(), max_instances: 32, max_memory_bytes: 512 << 20, egress: TEST_OUTBOUND.egress(), ..RuntimeConfig::default() };
            Arc::new(Runtime::new(config).expect("runtime"))
        })
        .clone()
}

pub fn builder() -> Builder {
    let tool = std::env::var_os("STRATAGEM_COMPONENTIZE_PY")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".venv/bin/componentize-py"));
    let cache = std::env::var_os("STRATAGEM_BUILD_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).join("strategy-builds"));
    Builder::new(tool).with_cache(cache)
}

async fn database_url(backend: Backend, dir: &Path) -> String {
    match backend {
        Backend::Sqlite => format!("sqlite://{}", dir.join("test.db").display()),
        Backend::Postgres => {
            let server = std::env::var("STRATAGEM_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
            let name = format!("stratagem_test_{}", uuid::Uuid::new_v4().simple());
            use sqlx::Connection;
            let mut admin = sqlx::PgConnection::connect(&format!("{server}/postgres"))
                .await
                .expect("PostgreSQL on 127.0.0.1:5432 (started by .ci/run)");
            sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await.expect("create database");
            format!("{server}/{name}")
        }
    }
}

/// Short leases so a test sees a stopped node's build taken over quickly.
pub const TEST_LEASES: BuildLeases =
    BuildLeases { lease: Duration::from_secs(2), sweep_every: Duration::from_millis(200), poll_every: Duration::from_millis(100) };

/// The tests' providers, LLMs and strategies' servers listen on 127.0.0.1.
pub const TEST_OUTBOUND: OutboundConfig =
    OutboundConfig { allow_private_endpoints: true, public_url: std::borrow::Cow::Borrowed(OutboundConfig::DEFAULT_PUBLIC_URL) };

/// Ticks often so tests see a campaign progress within moments.
pub const TEST_ENGINE: EngineConfig = EngineConfig {
    batch: 200,
    lease: chrono::Duration::seconds(5),
    default_window: chrono::Duration::hours(24),
    tick_every: Duration::from_millis(50),
    simulate_every_channel: false,
    session_timeout: chrono::Duration::seconds(3),
    loops: 1,
    outbound: TEST_OUTBOUND,
    retry_after: chrono::Duration::milliseconds(200),
    invocation_retention: chrono::Duration::days(14),
    quotas: stratagem_domain::quota::Quotas::UNLIMITED,
};

/// Limits a test shortens to see them act; the service's defaults otherwise.
#[derive(Default)]
pub struct Tuning {
    pub download_limit: Option<Duration>,
    pub upload_limit: Option<Duration>,
    pub webhook_body_limit: Option<Duration>,
    pub connections: ConnectionLimits,
    /// A runtime of the node's own, with its compiled code in the node's
    /// data directory, instead of the one the test binary shares.
    pub own_runtime: bool,
    pub max_loaded_bytes: Option<usize>,
    pub import_leases: Option<ImportLeases>,
    /// Requests per second per API key (`serve --api-rate-limit`).
    pub api_rate_limit: Option<u32>,
    /// The node's default quotas (`serve --quota-…`).
    pub quotas: Option<stratagem_domain::quota::Quotas>,
}

/// Whether a node runs its background work: the campaign engine and the
/// sweeps for builds and imports left by stopped nodes. Off, a node only
/// answers requests — the state a test leaves behind for another node to
/// find.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Background {
    On,
    Off,
}

/// A 500 answers "internal error" and logs the cause; the log goes to the
/// test's own output, which is shown when the test fails.
fn log_internal_errors() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("stratagem_api=error"))
        .with_test_writer()
        .try_init();
}

impl App {
    pub async fn start(backend: Backend) -> App {
        App::start_with(backend, Background::On).await
    }

    pub async fn start_with(backend: Backend, background: Background) -> App {
        App::start_limited(backend, background, RateLimits::default()).await
    }

    /// A node whose engine keeps these per-channel rate limits.
    pub async fn start_limited(backend: Backend, background: Background, limits: RateLimits) -> App {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = database_url(backend, dir.path()).await;
        App::node(url, stratagem_store::SecretsKey::generate(), dir, background, limits, TEST_ENGINE, Tuning::default()).await
    }

    /// A node with shorter limits on its connections, uploads or downloads.
    pub async fn start_tuned(backend: Backend, tuning: Tuning) -> App {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = database_url(backend, dir.path()).await;
        App::node(url, stratagem_store::SecretsKey::generate(), dir, Background::On, RateLimits::default(), TEST_ENGINE, tuning).await
    }

    /// A node whose conversations end after `timeout` without a word from
    /// the contact: long enough for a test's scripted replies to arrive on
    /// a loaded machine.
    pub async fn start_with_session_timeout(backend: Backend, timeout: chrono::Duration) -> App {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = database_url(backend, dir.path()).await;
        let engine = EngineConfig { session_timeout: timeout, ..TEST_ENGINE };
        App::node(url, stratagem_store::SecretsKey::generate(), dir, Background::On, RateLimits::default(), engine, Tuning::default()).await
    }

    /// Another node on the same database, as a second `serve` process
    /// would be: its own store pool, strategy cache and data directory.
    pub async fn second_node(&self) -> App {
        self.second_node_tuned(Tuning::default()).await
    }

    /// Another node on the same database with shorter limits.
    pub async fn second_node_tuned(&self, tuning: Tuning) -> App {
        let dir = tempfile::tempdir().expect("temp dir");
        App::node(self.url.clone(), self.secrets.clone(), dir, Background::On, RateLimits::default(), TEST_ENGINE, tuning).await
    }

    async fn node(
        url: String,
        secrets: stratagem_store::SecretsKey,
        dir: tempfile::TempDir,
        background: Background,
        limits: RateLimits,
        engine: EngineConfig,
        tuning: Tuning,
    ) -> App {
        log_internal_errors();
        let store = Store::connect(&url).await.expect("store").with_secrets_key(secrets.clone());
        let (runtime, artifact_dir) = if tuning.own_runtime {
            let artifact_dir = dir.path().join("artifacts");
            // The shared runtime's configuration, so its compiled artifacts fit this one.
            let config = RuntimeConfig { cache_dir: artifact_dir.clone(), max_instances: 32, max_memory_bytes: 512 << 20, egress: TEST_OUTBOUND.egress(), ..RuntimeConfig::default() };
            (Arc::new(Runtime::new(config).expect("runtime")), artifact_dir)
        } else {
            (runtime(), crate::support::artifact_dir())
        };
        let mut strategies = StrategyService::new(runtime, builder()).with_build_leases(TEST_LEASES);
        if let Some(bytes) = tuning.max_loaded_bytes {
            strategies = strategies.with_max_loaded_bytes(bytes);
        }
        let mut state = AppState::new(store.clone(), Arc::new(strategies)).with_outbound(TEST_OUTBOUND);
        if let Some(limit) = tuning.download_limit {
            state = state.with_download_limit(limit);
        }
        if let Some(limit) = tuning.upload_limit {
            state = state.with_upload_limit(limit);
        }
        if let Some(limit) = tuning.webhook_body_limit {
            state = state.with_webhook_body_limit(limit);
        }
        if let Some(leases) = tuning.import_leases {
            state = state.with_import_leases(leases);
        }
        if let Some(per_second) = tuning.api_rate_limit {
            state = state.with_api_rate_limit(per_second);
        }
        if let Some(quotas) = tuning.quotas {
            state = state.with_quotas(quotas);
        }
        if background == Background::On {
            // As `serve` does before its first request.
            stratagem_api::recover_imports(state.clone()).await.expect("import recovery");
            state.strategies.spawn_build_recovery(state.store.clone());
            let engine =
                stratagem_engine::Engine::new(store.clone(), state.strategies.clone(), Arc::new(SystemClock), engine).with_rate_limits(limits);
            Arc::new(engine).spawn(stratagem_engine::CancellationToken::new());
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let state_strategies = state.strategies.clone();
        let app = stratagem_api::app(state);
        tokio::spawn(stratagem_api::serve(listener, app, tuning.connections, std::future::pending()));
        App { base, store, url, secrets, http: reqwest::Client::new(), strategies: state_strategies, artifact_dir, _dir: dir }
    }

    /// Announces a body of `length` bytes and sends none of it: the
    /// answer must come from the headers alone. Returns the raw reply,
    /// lowercased.
    pub async fn announce_body(&self, key: &str, method: &str, path: &str, content_type: &str, length: usize) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let address = self.base.trim_start_matches("http://");
        let mut socket = tokio::net::TcpStream::connect(address).await.expect("connect");
        let head = format!(
            "{method} /api{path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {key}\r\n\
             Content-Type: {content_type}\r\nContent-Length: {length}\r\n\r\n"
        );
        socket.write_all(head.as_bytes()).await.expect("write");
        let mut reply = vec![0u8; 4096];
        let read = tokio::time::timeout(Duration::from_secs(10), socket.read(&mut reply)).await.expect("answered").expect("read");
        String::from_utf8_lossy(&reply[..read]).to_lowercase()
    }

    /// A client of this node holding another node's client's key.
    pub fn client_for(&self, other: &Client) -> Client {
        Client { base: self.base.clone(), http: self.http.clone(), key: other.key.clone() }
    }

    /// An engine on this node's database that the test ticks itself; start
    /// the node with `Background::Off` so no other engine ticks with it.
    pub fn engine(&self, config: EngineConfig) -> stratagem_engine::Engine {
        self.engine_with_clock(config, Arc::new(SystemClock))
    }

    /// An engine whose time moves only as the test says.
    pub fn engine_with_clock(&self, config: EngineConfig, clock: Arc<dyn stratagem_runtime::Clock>) -> stratagem_engine::Engine {
        let strategies = StrategyService::new(runtime(), builder()).with_build_leases(TEST_LEASES);
        stratagem_engine::Engine::new(self.store.clone(), Arc::new(strategies), clock, config)
    }

    /// The database this node's store is on (for tests that check tables).
    pub fn database_url(&self) -> &str {
        &self.url
    }

    /// A new tenant and a client authenticated as it.
    pub async fn tenant(&self, name: &str) -> Client {
        self.tenant_with_id(name).await.1
    }

    /// A new tenant's id and a client authenticated as it.
    pub async fn tenant_with_id(&self, name: &str) -> (String, Client) {
        let (id, key) = self.store.tenants().create_tenant(name).await.expect("tenant");
        (id, Client { base: self.base.clone(), http: self.http.clone(), key: key.key })
    }
}

#[derive(Clone)]
pub struct Client {
    pub base: String,
    pub http: reqwest::Client,
    pub key: String,
}

pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub body: Value,
    pub text: String,
}

impl Client {
    pub async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Reply {
        let mut request = self.http.request(method, format!("{}/api{path}", self.base)).bearer_auth(&self.key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        Reply::read(request.send().await.expect("request")).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(reqwest::Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn upload(&self, path: &str, content_type: &str, bytes: Vec<u8>) -> Reply {
        let request = self
            .http
            .post(format!("{}/api{path}", self.base))
            .bearer_auth(&self.key)
            .header("content-type", content_type)
            .body(bytes);
        Reply::read(request.send().await.expect("request")).await
    }

    pub async fn put_raw(&self, path: &str, content_type: &str, bytes: Vec<u8>) -> Reply {
        let request = self
            .http
            .put(format!("{}/api{path}", self.base))
            .bearer_auth(&self.key)
            .header("content-type", content_type)
            .body(bytes);
        Reply::read(request.send().await.expect("request")).await
    }

    pub async fn campaign(&self, name: &str) -> String {
        let reply = self.post("/campaigns", serde_json::json!({"name": name})).await;
        assert_eq!(reply.status, 201, "{}", reply.text);
        reply.body["id"].as_str().expect("id").to_owned()
    }

    /// A campaign that may become CONFIGURED and RUNNING: one stage that
    /// sends nothing and one contact, without strategies.
    pub async fn ready_campaign(&self, name: &str) -> String {
        let id = self.campaign(name).await;
        let stage = self.post(&format!("/campaigns/{id}/stages"), serde_json::json!({"name": "Wait", "channel": "NO_COMMUNICATION"})).await;
        assert_eq!(stage.status, 201, "{}", stage.text);
        let csv = "object_id,external_id,name,email,phone\nR1,R1,Ready One,ready@example.com,+1\n";
        let job = self.upload(&format!("/campaigns/{id}/imports"), "text/csv", csv.into()).await;
        assert_eq!(job.status, 202, "{}", job.text);
        let job = self.wait_for_import(job.body["id"].as_str().expect("job")).await;
        assert_eq!(job["accepted"], 1, "{job}");
        id
    }

    /// Uploads a strategy file of the repository and waits for its build.
    pub async fn strategy(&self, campaign: &str, kind: &str, file: &str) -> Value {
        let source = std::fs::read_to_string(repo().join(file)).expect("strategy file");
        let name = Path::new(file).file_name().and_then(|n| n.to_str()).expect("name");
        self.strategy_source(campaign, kind, name, &source).await
    }

    /// Uploads a strategy's source and waits for its build, which must
    /// succeed: a campaign whose strategy failed to build runs without it,
    /// and a test would then fail far from the cause.
    pub async fn strategy_source(&self, campaign: &str, kind: &str, name: &str, source: &str) -> Value {
        let reply = self
            .post(&format!("/campaigns/{campaign}/strategies"), serde_json::json!({"name": name, "type": kind, "file_name": name, "source": source}))
            .await;
        assert_eq!(reply.status, 202, "{}", reply.text);
        let built = self.wait_for_build(reply.body["id"].as_str().expect("id")).await;
        assert_eq!(built["latest"]["status"], "ready", "{name} did not build: {built}");
        built
    }

    pub async fn wait_for_build(&self, id: &str) -> Value {
        for _ in 0..1500 {
            let reply = self.get(&format!("/strategies/{id}")).await;
            if reply.body["latest"]["status"] != "building" {
                return reply.body;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("strategy {id} still building after 5 minutes")
    }

    pub async fn wait_for_import(&self, id: &str) -> Value {
        for _ in 0..1800 {
            let reply = self.get(&format!("/imports/{id}")).await;
            if !["queued", "running"].contains(&reply.body["status"].as_str().unwrap_or_default()) {
                return reply.body;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("import {id} still running after 3 minutes")
    }
}

impl Reply {
    pub async fn read(response: reqwest::Response) -> Reply {
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let text = response.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply { status, content_type, body, text }
    }

    /// Asserts an RFC 9457 problem with this status and returns its detail.
    pub fn problem(&self, status: u16) -> String {
        assert_eq!(self.status, status, "{}", self.text);
        assert_eq!(self.content_type, "application/problem+json", "{}", self.text);
        assert_eq!(self.body["status"], status);
        self.body["detail"].as_str().expect("detail").to_owned()
    }
}
