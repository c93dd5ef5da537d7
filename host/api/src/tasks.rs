//! The operators' queue of HUMAN stages: list open tasks, claim one, and
//! record its outcome, which ends the session like any channel's.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use stratagem_domain::JsonMap;
use stratagem_store::HumanTask;

use crate::auth::Tenant;
use crate::problem::{ApiError, ApiResult};
use crate::{AppState, Body, Query};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/tasks", get(list))
        .route("/tasks/{id}/claim", post(claim))
        .route("/tasks/{id}/outcome", post(outcome))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    campaign: Option<String>,
}

async fn list(State(state): State<AppState>, Tenant(tenant): Tenant, Query(query): Query<ListQuery>) -> ApiResult<Json<Vec<HumanTask>>> {
    Ok(Json(state.store.human_tasks(&tenant, query.campaign.as_deref()).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClaimBody {
    operator: String,
}

async fn claim(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
    Body(body): Body<ClaimBody>,
) -> ApiResult<Json<HumanTask>> {
    if !stratagem_domain::is_valid_name(&body.operator, 200) {
        return Err(ApiError::BadRequest("operator must have 1 to 200 characters, not only white space".into()));
    }
    let operator = body.operator.trim();
    Ok(Json(state.store.claim_task(&tenant, &id, operator).await?))
}

/// The outcome becomes the session's `OutcomeStatus`; `results` adds
/// other session results (e.g. the campaign's custom result codes).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OutcomeBody {
    outcome: String,
    #[serde(default)]
    results: JsonMap,
}

async fn outcome(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
    Body(body): Body<OutcomeBody>,
) -> ApiResult<StatusCode> {
    let outcome = body.outcome.to_ascii_uppercase();
    if outcome.is_empty() || !outcome.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(ApiError::BadRequest(format!("outcome `{}` must be letters, digits or _, e.g. PROMISE_TO_PAY", body.outcome)));
    }
    if body.results.contains_key("OutcomeStatus") {
        return Err(ApiError::BadRequest("give the outcome in `outcome`, not in results.OutcomeStatus".into()));
    }
    let mut session_results = body.results;
    session_results.insert("OutcomeStatus".into(), outcome.into());
    state.store.complete_task(&tenant, &id, &session_results, chrono::Utc::now()).await?;
    Ok(StatusCode::NO_CONTENT)
}
