//! Analytics > Deep Analysis: start a run (Recalculate or Continue
//! calculation) over the sessions within the YAML's depth, watch and stop
//! it, and read what it found — per metric across the campaign, and per
//! session for a contact's 360 view. The engine does the work
//! (`stratagem_engine::analysis`); this module only starts and reads it.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::Value;
use stratagem_domain::analytics::{self, AnalyticsDefinition, Metric, MetricKind};
use stratagem_domain::FieldError;
use stratagem_engine::analysis::{self, StartError};
use stratagem_store::{AnalysisRun, MetricTally, SessionValue};
use stratagem_types::deep_analysis::{AnalysisResults, AnalysisStart, DayResult, MetricResult};

use crate::auth::Tenant;
use crate::problem::{ApiError, ApiResult, Problem};
use crate::{AppState, Body};

#[derive(utoipa::OpenApi)]
#[openapi(paths(start, latest, stop, results, session))]
pub(crate) struct Api;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/campaigns/{id}/analysis/runs", post(start))
        .route("/campaigns/{id}/analysis/runs/latest", get(latest))
        .route("/campaigns/{id}/analysis/runs/{run_id}/stop", post(stop))
        .route("/campaigns/{id}/analysis/results", get(results))
        .route("/campaigns/{id}/analysis/sessions/{communication_id}", get(session))
}

/// The campaign's current analytics file, if it has one.
async fn definition(state: &AppState, tenant: &str, campaign: &str) -> ApiResult<Option<AnalyticsDefinition>> {
    let Some((yaml, _)) = state.store.campaigns().analytics_yaml(tenant, campaign).await? else { return Ok(None) };
    analytics::parse(&yaml).map(Some).map_err(|errors| ApiError::Invalid(errors.0.into_iter().map(FieldError::from).collect()))
}

#[utoipa::path(post, path = "/campaigns/{id}/analysis/runs", operation_id = "startAnalysis", tag = "analysis",
    summary = "Start a Deep Analysis run over the conversations (sessions with a transcript) that ended within the YAML's depth_days; sessions without a transcript are counted in `skipped`. The YAML's `schedule` (hourly by default) also starts CONTINUE runs on its own (`scheduled: true`) when sessions ended since the last one. RECALCULATE computes every metric of the current YAML, replacing earlier values as it goes; CONTINUE computes only the (session, metric) pairs without a value, i.e. metrics new in an updated YAML and sessions a stopped run left (a stored error counts as computed; RECALCULATE asks again). The engine works it in batches: one LLM call per session with all its pending metrics; an invalid answer is stored as that metric's error and the run goes on; an LLM that is down or slow (no answer within the engine's lease, at most 60 s) sets `last_error` and the session is asked again after a pause of up to 10 s, nothing lost. A run with nothing to compute is DONE at once. 409 while a run is in progress; 422 without a YAML analytics file or an LLM integration, saying how to set them up",
    request_body = AnalysisStart,
    responses((status = 202, description = "The run", body = AnalysisRun), (status = 400, response = Problem), (status = 404, response = Problem), (status = 409, response = Problem), (status = 422, response = Problem)))]
async fn start(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(campaign_id): Path<String>,
    Body(body): Body<AnalysisStart>,
) -> ApiResult<(StatusCode, Json<AnalysisRun>)> {
    let run = analysis::start_run(&state.store, &tenant, &campaign_id, body.mode, chrono::Utc::now(), false).await.map_err(|error| match error {
        StartError::Store(error) => error.into(),
        StartError::InvalidAnalyticsFile(errors) => ApiError::Invalid(errors.into_iter().map(FieldError::from).collect()),
        other => ApiError::NotReady(other.to_string()),
    })?;
    // Only a scheduled start with nothing to compute starts no run.
    let run = run.ok_or_else(|| ApiError::NotReady("there is nothing to analyse".to_owned()))?;
    Ok((StatusCode::ACCEPTED, Json(run)))
}

#[utoipa::path(get, path = "/campaigns/{id}/analysis/runs/latest", operation_id = "latestAnalysis", tag = "analysis",
    summary = "The campaign's most recent Deep Analysis run; 404 when it never had one",
    responses((status = 200, description = "The run", body = AnalysisRun), (status = 404, response = Problem)))]
async fn latest(State(state): State<AppState>, Tenant(tenant): Tenant, Path(campaign): Path<String>) -> ApiResult<Json<AnalysisRun>> {
    let run = state.store.deep_analysis().latest_analysis_run(&tenant, &campaign).await?.ok_or(ApiError::NotFound("analysis run"))?;
    Ok(Json(run))
}

#[utoipa::path(post, path = "/campaigns/{id}/analysis/runs/{run_id}/stop", operation_id = "stopAnalysis", tag = "analysis",
    summary = "Stop a run in progress: status STOPPED, no further batch starts and the batch in flight writes nothing; values written so far stay. 409 when the run is not in progress",
    responses((status = 200, description = "The run", body = AnalysisRun), (status = 404, response = Problem), (status = 409, response = Problem)))]
async fn stop(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path((campaign, run_id)): Path<(String, String)>,
) -> ApiResult<Json<AnalysisRun>> {
    state.store.campaigns().campaign(&tenant, &campaign).await?;
    Ok(Json(state.store.deep_analysis().stop_analysis_run(&tenant, &campaign, &run_id, chrono::Utc::now()).await?))
}

fn answer_text(answer: &Value) -> String {
    match answer {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// The mean of `(answer, sessions)`: the mean answer of a number or a
/// scale, the share of true of a boolean, none for a category.
fn mean<'a>(kind: &MetricKind, answers: impl Iterator<Item = (&'a Value, i64)>) -> Option<f64> {
    let weighted: Vec<(f64, i64)> = match kind {
        MetricKind::Category { .. } => return None,
        MetricKind::Boolean => answers.filter_map(|(a, n)| a.as_bool().map(|b| (f64::from(u8::from(b)), n))).collect(),
        MetricKind::Number { .. } | MetricKind::Scale { .. } => answers.filter_map(|(a, n)| a.as_f64().map(|x| (x, n))).collect(),
    };
    let count: i64 = weighted.iter().map(|(_, n)| n).sum();
    (count > 0).then(|| weighted.iter().map(|(x, n)| x * *n as f64).sum::<f64>() / count as f64)
}

fn metric_result(metric: &Metric, tally: MetricTally) -> MetricResult {
    let mut values = BTreeMap::new();
    for (answer, n) in &tally.answers {
        *values.entry(answer_text(answer)).or_insert(0) += n;
    }
    let mut by_day: Vec<DayResult> = Vec::new();
    for (day, answers) in tally.by_day.chunk_by(|a, b| a.0 == b.0).map(|answers| (answers[0].0, answers)) {
        by_day.push(DayResult {
            day,
            sessions: answers.iter().map(|(_, _, n)| n).sum(),
            mean: mean(&metric.kind, answers.iter().map(|(_, answer, n)| (answer, *n))),
        });
    }
    MetricResult {
        code: metric.code.clone(),
        name: metric.name.clone(),
        description: metric.description.clone(),
        kind: metric.kind.clone(),
        display: metric.display,
        sessions: tally.answers.iter().map(|(_, n)| n).sum(),
        errors: tally.errors,
        unanswered: tally.unanswered,
        mean: mean(&metric.kind, tally.answers.iter().map(|(answer, n)| (answer, *n))),
        values,
        by_day,
    }
}

#[utoipa::path(get, path = "/campaigns/{id}/analysis/results", operation_id = "analysisResults", tag = "analysis",
    summary = "Deep Analysis results over the stored values of the current YAML's metrics: {metrics: [{code, name, description, type (and scale | categories | range), display, sessions (valid answers), errors (invalid or failed answers), unanswered (the conversation does not tell), values: {answer as text: sessions}, mean (number and scale: mean answer; boolean: share of true; category: null)}]}; metrics is empty without a YAML file",
    responses((status = 200, description = "The results", body = AnalysisResults), (status = 404, response = Problem), (status = 422, response = Problem)))]
async fn results(State(state): State<AppState>, Tenant(tenant): Tenant, Path(campaign): Path<String>) -> ApiResult<Json<AnalysisResults>> {
    state.store.campaigns().campaign(&tenant, &campaign).await?;
    let Some(definition) = definition(&state, &tenant, &campaign).await? else { return Ok(Json(AnalysisResults { metrics: Vec::new() })) };
    let codes: Vec<String> = definition.metrics.iter().map(|metric| metric.code.clone()).collect();
    let mut tallies = state.store.deep_analysis().analysis_tallies(&tenant, &campaign, &codes).await?;
    let metrics =
        definition.metrics.iter().map(|metric| metric_result(metric, tallies.remove(&metric.code).unwrap_or_default())).collect();
    Ok(Json(AnalysisResults { metrics }))
}

#[utoipa::path(get, path = "/campaigns/{id}/analysis/sessions/{communication_id}", operation_id = "sessionAnalysis", tag = "analysis",
    summary = "One session's Deep Analysis values for a contact's 360 view, in the YAML's order: [{metric, value (null when the conversation does not tell or on error), error, computed_at}]; 404 when the session is not the campaign's",
    responses((status = 200, description = "The values", body = Vec<Object>), (status = 404, response = Problem), (status = 422, response = Problem)))]
async fn session(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path((campaign, communication)): Path<(String, String)>,
) -> ApiResult<Json<Vec<SessionValue>>> {
    state.store.campaigns().campaign(&tenant, &campaign).await?;
    let codes: Vec<String> = definition(&state, &tenant, &campaign)
        .await?
        .map(|definition| definition.metrics.into_iter().map(|metric| metric.code).collect())
        .unwrap_or_default();
    Ok(Json(state.store.deep_analysis().session_analysis(&tenant, &campaign, &communication, &codes).await?))
}
