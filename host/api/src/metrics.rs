//! Prometheus metrics at `/metrics`. The crates record through the
//! `metrics` facade as things happen — strategy invocations (runtime),
//! import rows (services), sends (engine), requests (here) — and `serve`
//! installs the one recorder ([`install`]). What lives in the database —
//! due communications waiting, the build queue — is read at scrape time.
//!
//! Labels never carry a tenant, a campaign or a raw path: routes are the
//! router's templates, so no client can grow the series without bound.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, Method};
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use stratagem_store::Store;

use crate::{ApiError, AppState};

/// Seconds: requests, strategy calls.
const SECONDS_BUCKETS: &[f64] = &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];
/// Fuel of one strategy call: a spec-like hook takes 10⁵–10⁷.
const FUEL_BUCKETS: &[f64] = &[1e4, 3e4, 1e5, 3e5, 1e6, 3e6, 1e7, 3e7, 1e8, 3e8, 1e9];
/// How long a scrape's database readings are reused: scrapes cannot make
/// the database count the backlog more often than this.
const BACKLOG_TTL: Duration = Duration::from_secs(5);

/// The process's metrics: the recorder's handle, and how `/metrics` is
/// guarded.
#[derive(Clone)]
pub struct Metrics {
    handle: PrometheusHandle,
    /// When set, a scrape must bring `Authorization: Bearer <token>`.
    token: Option<Arc<str>>,
    /// The window of a communication planned without an end (the
    /// engine's), to count what is due as the engine does.
    default_window: chrono::Duration,
    backlog_read_at: Arc<tokio::sync::Mutex<Option<Instant>>>,
}

/// Installs the process's recorder (once, in `serve`) and keeps its
/// histograms drained.
pub fn install(token: Option<String>, default_window: chrono::Duration) -> Result<Metrics, String> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
        .and_then(|builder| builder.set_buckets_for_metric(Matcher::Full("stratagem_strategy_fuel".into()), FUEL_BUCKETS))
        .and_then(PrometheusBuilder::install_recorder)
        .map_err(|error| format!("the metrics recorder: {error}"))?;
    describe();
    let upkeep = handle.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            upkeep.run_upkeep();
        }
    });
    Ok(Metrics { handle, token: token.filter(|token| !token.is_empty()).map(Into::into), default_window, backlog_read_at: Arc::default() })
}

/// Every metric, with its help text: the list an operator reads.
fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!("stratagem_http_requests_total", "HTTP requests answered, by method, route template and status");
    describe_histogram!("stratagem_http_request_duration_seconds", Unit::Seconds, "Time to answer an HTTP request, by method and route");
    describe_counter!("stratagem_import_rows_total", "Contact rows written by imports, by outcome (accepted, updated, rejected)");
    describe_counter!("stratagem_strategy_invocations_total", "Strategy calls, by hook and outcome (ok, or the error kind)");
    describe_histogram!("stratagem_strategy_fuel", "Fuel one strategy call used, by hook");
    describe_histogram!("stratagem_strategy_duration_seconds", Unit::Seconds, "Wall time of one strategy call, by hook");
    describe_counter!("stratagem_sends_total", "Communications sent, by channel and status (sent, ended, failed, in_doubt, retry_later, deferred)");
    describe_gauge!("stratagem_due_communications", "Due communications of running campaigns that no node has claimed yet");
    describe_gauge!("stratagem_due_oldest_age_seconds", Unit::Seconds, "How long the longest-waiting due communication has waited (0 when none)");
    describe_gauge!("stratagem_strategy_builds", "Strategy builds over all nodes, by state (waiting, building)");
}

impl Metrics {
    /// Reads the database's gauges, unless a scrape did in the last
    /// [`BACKLOG_TTL`]. A failed reading leaves the last values.
    async fn read_backlog(&self, store: &Store) {
        let mut read_at = self.backlog_read_at.lock().await;
        if read_at.is_some_and(|at| at.elapsed() < BACKLOG_TTL) {
            return;
        }
        let now = chrono::Utc::now();
        match store.dispatch().due_backlog(now, self.default_window).await {
            Ok(due) => {
                metrics::gauge!("stratagem_due_communications").set(due.waiting as f64);
                let age = due.oldest_due_at.map(|at| (now - at).num_milliseconds().max(0) as f64 / 1000.0).unwrap_or(0.0);
                metrics::gauge!("stratagem_due_oldest_age_seconds").set(age);
            }
            Err(error) => tracing::warn!(%error, "metrics: could not count due communications"),
        }
        match store.strategies().build_queue(now).await {
            Ok(queue) => {
                metrics::gauge!("stratagem_strategy_builds", "state" => "waiting").set(queue.waiting as f64);
                metrics::gauge!("stratagem_strategy_builds", "state" => "building").set(queue.building as f64);
            }
            Err(error) => tracing::warn!(%error, "metrics: could not read the build queue"),
        }
        *read_at = Some(Instant::now());
    }
}

/// `GET /metrics`: the Prometheus text format.
pub(crate) async fn scrape(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let Some(metrics) = &state.metrics else {
        return Err(ApiError::NotFound("metrics collection (`stratagem serve` has it)"));
    };
    if let Some(token) = &metrics.token {
        let given = headers.get(header::AUTHORIZATION).and_then(|value| value.to_str().ok()).and_then(|value| value.strip_prefix("Bearer "));
        let matches = given.is_some_and(|given| subtle::ConstantTimeEq::ct_eq(given.as_bytes(), token.as_bytes()).into());
        if !matches {
            return Err(ApiError::MetricsTokenRequired);
        }
    }
    metrics.read_backlog(&state.store).await;
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], metrics.handle.render()).into_response())
}

/// The route a request matched, handed from the router to [`count_requests`].
#[derive(Clone)]
struct Route(Arc<str>);

/// On every route (a route layer, which sees the matched template): puts
/// the template on the response.
pub(crate) async fn mark_route(request: Request, next: axum::middleware::Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map(|path| Route(path.as_str().into()));
    let mut response = next.run(request).await;
    if let Some(route) = route {
        response.extensions_mut().insert(route);
    }
    response
}

/// Around everything: counts and times each request by method, route
/// template (`fallback` for the web UI's files and unknown paths) and status.
pub(crate) async fn count_requests(request: Request, next: axum::middleware::Next) -> Response {
    let method = match *request.method() {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    };
    let started = Instant::now();
    let response = next.run(request).await;
    let route = response.extensions().get::<Route>().map_or_else(|| Arc::from("fallback"), |route| route.0.clone());
    let status = response.status().as_u16().to_string();
    metrics::counter!("stratagem_http_requests_total", "method" => method, "route" => route.to_string(), "status" => status).increment(1);
    metrics::histogram!("stratagem_http_request_duration_seconds", "method" => method, "route" => route.to_string())
        .record(started.elapsed().as_secs_f64());
    response
}
