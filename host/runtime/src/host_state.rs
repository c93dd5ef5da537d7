//! The state a store carries: the locked-down WASI context, resource
//! accounting, the invocation's log, its HTTP policy and its clock.

use std::sync::Arc;

pub use stratagem_domain::invocation::{LogLevel, LogRecord};
use wasmtime::component::ResourceTable;
use wasmtime_wasi::filesystem::WasiFilesystemCtx;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::bindings::{clock, http, log, types};
use crate::clock::{Clock, ClockSlot};
use crate::limits::MemoryLimiter;
use crate::outbound_http::{self, Credentials, HttpClient, HttpPolicy};

/// The log of one invocation, bounded in bytes.
#[derive(Debug, Default)]
pub(crate) struct LogBuffer {
    pub(crate) records: Vec<LogRecord>,
    pub(crate) dropped: usize,
    bytes: usize,
    cap: usize,
}

impl LogBuffer {
    pub(crate) fn reset(&mut self, cap: usize) {
        *self = Self { cap, ..Self::default() };
    }

    fn push(&mut self, record: LogRecord) {
        let size = record.logger.len() + record.message.len();
        if self.bytes + size > self.cap {
            self.dropped += 1;
            return;
        }
        self.bytes += size;
        self.records.push(record);
    }
}

pub(crate) struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) memory: MemoryLimiter,
    pub(crate) logs: LogBuffer,
    pub(crate) http_policy: HttpPolicy,
    /// The invoking tenant's integration credentials, if the caller gave them.
    pub(crate) credentials: Option<Arc<dyn Credentials>>,
    /// Requests of this invocation that went out.
    pub(crate) http_calls: u64,
    client: HttpClient,
    pub(crate) clock: ClockSlot,
}

impl HostState {
    /// `filesystem`: the runtime's read-only preopens (the Python library).
    pub(crate) fn new(client: HttpClient, clock: Arc<dyn Clock>, filesystem: WasiFilesystemCtx) -> Self {
        let clock = ClockSlot::new(clock);
        // No environment, arguments, network or stdio: the builder's
        // defaults, spelled out so a reader need not check them.
        let mut wasi = WasiCtx::builder()
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .wall_clock(clock.clone())
            .build();
        *wasi.filesystem() = filesystem;
        Self {
            wasi,
            table: ResourceTable::new(),
            memory: MemoryLimiter::default(),
            logs: LogBuffer::default(),
            http_policy: HttpPolicy::default(),
            credentials: None,
            http_calls: 0,
            client,
            clock,
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl HostState {
    /// Counts a request that went out: refused before it left, it did not.
    fn count(&mut self, reply: &Result<http::Response, http::HttpError>) {
        if !matches!(reply, Err(http::HttpError::Denied(_) | http::HttpError::InvalidRequest(_))) {
            self.http_calls += 1;
        }
    }
}

impl types::Host for HostState {}

impl log::Host for HostState {
    async fn emit(&mut self, level: log::Level, logger: String, message: String) {
        let level = match level {
            log::Level::Debug => LogLevel::Debug,
            log::Level::Info => LogLevel::Info,
            log::Level::Warning => LogLevel::Warning,
            log::Level::Error => LogLevel::Error,
            log::Level::Critical => LogLevel::Critical,
        };
        self.logs.push(LogRecord { level, logger, message });
    }
}

impl clock::Host for HostState {
    async fn now(&mut self) -> types::Instant {
        crate::convert::instant(self.clock.now())
    }
}

impl http::Host for HostState {
    async fn fetch(&mut self, request: http::Request) -> Result<http::Response, http::HttpError> {
        let reply = outbound_http::fetch(&self.client, &self.http_policy, request, None).await;
        self.count(&reply);
        reply
    }

    async fn fetch_with_auth(&mut self, request: http::Request, integration: String) -> Result<http::Response, http::HttpError> {
        let Some(credentials) = self.credentials.clone() else {
            return Err(http::HttpError::Denied(format!(
                "auth `{integration}`: integration credentials are added by the service; this run has none (a local `stratagem strategy run`)"
            )));
        };
        let credential = credentials
            .credential(&integration)
            .await
            .map_err(|why| http::HttpError::Denied(format!("auth `{integration}`: {why}")))?;
        let reply = outbound_http::fetch(&self.client, &self.http_policy, request, Some((&integration, &credential))).await;
        self.count(&reply);
        reply
    }
}
