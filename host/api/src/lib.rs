//! The HTTP API of Stratagem: one router per resource, API-key auth,
//! problem-details errors, and the OpenAPI document at /api/openapi.json.

// The OpenAPI document's schemas are one `json!` literal, deeper than the default limit.
#![recursion_limit = "512"]

mod agents;
mod analytics;
mod auth;
mod campaigns;
mod contacts;
mod deep_analysis;
mod integrations;
mod invocations;
mod keys;
mod metrics;
mod openapi;
mod problem;
mod rate_limit;
mod server;
mod simulations;
mod stages;
mod strategies;
mod tasks;
mod usage;
pub mod web;
mod webhooks;

use std::sync::Arc;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::Router;
use serde::de::DeserializeOwned;
use stratagem_domain::objects::Object;
use stratagem_store::Store;

pub use metrics::{install as install_metrics, Metrics};
pub use problem::ApiError;
pub use server::{serve, ConnectionLimits};
pub use stratagem_engine::{BuildLeases, StrategyService};
pub use stratagem_services::imports::ImportLeases;
use stratagem_services::campaigns::CampaignService;
use stratagem_services::dry_run::DryRunService;
use stratagem_services::email::EmailService;
use stratagem_services::strategies::StrategyCatalog;
use stratagem_services::exports::ExportService;
use stratagem_services::imports::ImportService;

/// Bodies of JSON endpoints; uploads have their own limit.
pub const JSON_LIMIT_BYTES: usize = 1 << 20;
/// Contact files.
pub const IMPORT_LIMIT_BYTES: usize = stratagem_services::CONTACT_FILE_LIMIT_BYTES;
/// Prebuilt strategy components (a Python one is about 18 MB).
pub const COMPONENT_LIMIT_BYTES: usize = 64 << 20;

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub strategies: Arc<StrategyService>,
    /// The workflows the handlers call.
    campaigns: CampaignService,
    imports: ImportService,
    exports: ExportService,
    dry_runs: DryRunService,
    strategy_catalog: StrategyCatalog,
    emails: EmailService,
    /// How long an import's upload and an export's download may take
    /// (`contacts`), and a webhook's body (`webhooks`).
    upload_limit: std::time::Duration,
    download_limit: std::time::Duration,
    webhook_body_limit: std::time::Duration,
    /// The built web UI, served at `/` (`web`).
    ui: web::UiFiles,
    /// Private endpoints and the public URL (`integrations`, `webhooks`).
    outbound: Arc<stratagem_engine::OutboundConfig>,
    /// The process's metrics, served at `/metrics` (`serve` installs them).
    metrics: Option<Metrics>,
    /// Requests per second per API key; none: unlimited.
    rate_limit: Option<Arc<rate_limit::KeyBuckets>>,
    /// The node's default quotas; a tenant's own override them.
    quotas: stratagem_domain::quota::Quotas,
}

impl AppState {
    pub fn new(store: Store, strategies: Arc<StrategyService>) -> Self {
        // This node (process): the import jobs it runs carry it.
        let node_id: Arc<str> = format!("node_{}", uuid::Uuid::now_v7().simple()).into();
        Self {
            campaigns: CampaignService::new(store.clone()),
            imports: ImportService::new(store.clone(), strategies.clone(), node_id),
            exports: ExportService::new(store.clone()),
            dry_runs: DryRunService::new(store.clone(), strategies.clone()),
            strategy_catalog: StrategyCatalog::new(store.clone(), strategies.clone()),
            emails: EmailService::new(store.clone()),
            store,
            strategies,
            upload_limit: contacts::UPLOAD_LIMIT,
            download_limit: contacts::DOWNLOAD_LIMIT,
            webhook_body_limit: webhooks::BODY_DEADLINE,
            ui: web::UiFiles::Embedded,
            outbound: Arc::default(),
            metrics: None,
            rate_limit: None,
            quotas: Default::default(),
        }
    }

    /// Refuses Python strategy uploads with `problem`: this node's
    /// toolchain is missing (what `serve` found at start-up).
    pub fn without_toolchain(mut self, problem: String) -> Self {
        self.strategy_catalog = self.strategy_catalog.without_toolchain(problem);
        self
    }

    /// Whether integrations may name private endpoints, and the public
    /// URL providers sign webhooks with (default: refused, and
    /// `http://127.0.0.1:8080`).
    pub fn with_outbound(mut self, outbound: stratagem_engine::OutboundConfig) -> Self {
        self.emails = self.emails.with_egress(outbound.egress());
        self.outbound = Arc::new(outbound);
        self
    }

    /// At most `per_minute` test emails a minute per tenant (default
    /// `stratagem_services::email::TEST_EMAILS_PER_MINUTE`).
    pub fn with_test_email_limit(mut self, per_minute: u32) -> Self {
        self.emails = self.emails.with_limit(per_minute);
        self
    }

    /// How often imports renew their heartbeat, and how long one may lapse
    /// before another node (or this one's sweep) marks the job interrupted.
    pub fn with_import_leases(mut self, leases: ImportLeases) -> Self {
        self.imports = self.imports.with_leases(leases);
        self
    }

    /// Serves `metrics` at `/metrics`.
    /// The node's default quotas (`serve --quota-…`); `stratagem tenant
    /// quota` sets a tenant's own.
    pub fn with_quotas(mut self, quotas: stratagem_domain::quota::Quotas) -> Self {
        self.quotas = quotas;
        self.imports = self.imports.with_quotas(quotas);
        self.strategy_catalog = self.strategy_catalog.with_quotas(quotas);
        self.campaigns = self.campaigns.with_quotas(quotas);
        self
    }

    /// At most `per_second` requests a second per API key (bursts of twice
    /// that), else 429 with Retry-After; 0: unlimited.
    pub fn with_api_rate_limit(mut self, per_second: u32) -> Self {
        self.rate_limit = (per_second > 0).then(|| Arc::new(rate_limit::KeyBuckets::new(per_second)));
        self
    }

    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Stops this node's imports when `shutdown` is cancelled: new uploads
    /// are refused (503), running imports stop at their next batch. Wait
    /// for them with [`AppState::drain`].
    pub fn with_shutdown(mut self, shutdown: stratagem_engine::CancellationToken) -> Self {
        self.imports = self.imports.with_shutdown(shutdown);
        self
    }

    /// After the shutdown token is cancelled: waits until this node's
    /// imports have closed their jobs, and puts the strategy builds it runs
    /// back in the queue.
    pub async fn drain(&self) {
        let released = self.strategies.release_builds(&self.store).await;
        if released > 0 {
            tracing::warn!(released, "strategy builds in progress were put back in the queue for the next node");
        }
        self.imports.drain().await;
    }

    /// Refuses contact files still arriving after `limit` (default 15
    /// minutes).
    pub fn with_upload_limit(mut self, limit: std::time::Duration) -> Self {
        self.upload_limit = limit;
        self
    }

    /// Cuts export downloads short after `limit` (default 15 minutes).
    pub fn with_download_limit(mut self, limit: std::time::Duration) -> Self {
        self.download_limit = limit;
        self
    }

    /// Serves the web UI from `dir` instead of the one built into the
    /// binary (for UI development).
    pub fn with_web_dir(mut self, dir: std::path::PathBuf) -> Self {
        self.ui = web::UiFiles::Directory(dir);
        self
    }

    /// Refuses webhook bodies still arriving after `limit` (default 30 s).
    pub fn with_webhook_body_limit(mut self, limit: std::time::Duration) -> Self {
        self.webhook_body_limit = limit;
        self
    }
}

/// Marks interrupted the import jobs of stopped nodes, now and from then
/// on (`ImportService::recover`).
pub async fn recover_imports(state: AppState) -> Result<tokio::task::JoinHandle<()>, stratagem_store::StoreError> {
    state.imports.recover().await
}

pub fn app(state: AppState) -> Router {
    let protected = Router::new()
        .merge(keys::router())
        .merge(campaigns::router())
        .merge(strategies::router())
        .merge(invocations::router())
        .merge(contacts::router())
        .merge(stages::router())
        .merge(agents::router())
        .merge(integrations::router())
        .merge(analytics::router())
        .merge(deep_analysis::router())
        .merge(tasks::router())
        .merge(usage::router())
        .merge(simulations::router())
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), auth::require_api_key));
    Router::new()
        .nest("/api", protected.merge(openapi::router()))
        // Providers sign their calls instead of holding an API key.
        .merge(webhooks::router())
        // For load balancers and orchestrators: alive, and able to serve.
        .route("/healthz", axum::routing::get(|| async { "ok" }))
        .route("/readyz", axum::routing::get(readyz))
        .route("/metrics", axum::routing::get(metrics::scrape))
        .route_layer(axum::middleware::from_fn(metrics::mark_route))
        .fallback_service(web::service(state.ui.clone()))
        .layer(axum::middleware::from_fn(reject_oversized))
        .layer(axum::middleware::from_fn(metrics::count_requests))
        .layer(axum::extract::DefaultBodyLimit::max(JSON_LIMIT_BYTES))
        // Outermost last: the request id is set (or the client's kept)
        // before the request's span opens, and returned on the response.
        .layer(tower_http::request_id::PropagateRequestIdLayer::x_request_id())
        .layer(
            tower_http::trace::TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_response(tower_http::trace::DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .layer(tower_http::request_id::SetRequestIdLayer::x_request_id(RequestId))
        .with_state(state)
}

/// A request id for a request that brings none: a UUIDv7, so ids sort by
/// time.
#[derive(Clone, Copy)]
struct RequestId;

impl tower_http::request_id::MakeRequestId for RequestId {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<tower_http::request_id::RequestId> {
        let id = uuid::Uuid::now_v7().simple().to_string();
        axum::http::HeaderValue::from_str(&id).ok().map(tower_http::request_id::RequestId::new)
    }
}

/// The span every log line of a request is written in: its id, method and
/// path, the campaign its path names, and the tenant once its key is
/// checked (`auth`).
fn request_span<B>(request: &axum::http::Request<B>) -> tracing::Span {
    let id = request.headers().get("x-request-id").and_then(|value| value.to_str().ok()).unwrap_or_default();
    // A client's own id is kept, but not at any length.
    let id = id.get(..id.len().min(128)).unwrap_or_default();
    let path = request.uri().path();
    let campaign = path.strip_prefix("/api/campaigns/").and_then(|rest| rest.split('/').next()).filter(|id| !id.is_empty());
    tracing::info_span!(
        "request",
        request_id = %id,
        method = %request.method(),
        path = %path,
        tenant = tracing::field::Empty,
        campaign = campaign,
    )
}

/// 200 when this node can serve (its database answers and has this
/// release's migrations), else 503 with a problem saying what is wrong.
async fn readyz(axum::extract::State(state): axum::extract::State<AppState>) -> Result<&'static str, ApiError> {
    state.store.readiness().await.map(|()| "ready").map_err(ApiError::Unavailable)
}

/// Answers 413 from `Content-Length` alone, before any of the body is read:
/// the client gets a clean problem document instead of a reset connection.
/// Bodies without a length are still capped while they are read.
async fn reject_oversized(request: Request, next: axum::middleware::Next) -> axum::response::Response {
    use axum::response::IntoResponse;
    let path = request.uri().path();
    let limit = if path.ends_with("/imports") {
        IMPORT_LIMIT_BYTES
    } else if path.ends_with("/simulate") {
        stratagem_services::dry_run::FILE_LIMIT_BYTES
    } else if path.ends_with("/component") {
        COMPONENT_LIMIT_BYTES
    } else if path.starts_with("/webhooks/") {
        webhooks::WEBHOOK_LIMIT_BYTES
    } else {
        JSON_LIMIT_BYTES
    };
    let declared = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        let mut response = ApiError::TooLarge { limit_bytes: limit as u64 }.into_response();
        response.headers_mut().insert(axum::http::header::CONNECTION, axum::http::HeaderValue::from_static("close"));
        return response;
    }
    next.run(request).await
}

/// `Json` whose rejections are problem documents with line and column.
/// Every body is a JSON object (not an array of the fields in order).
pub(crate) struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T>
where
    axum::Json<Object<T>>: FromRequest<S, Rejection = JsonRejection>,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let axum::Json(Object(value)) = axum::Json::<Object<T>>::from_request(request, state).await?;
        Ok(Body(value))
    }
}

/// `Query` whose rejections are problem documents.
pub(crate) struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Query(value) =
            axum::extract::Query::<T>::from_request_parts(parts, state).await.map_err(|e: QueryRejection| ApiError::from(e))?;
        Ok(Query(value))
    }
}
