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
use crate::problem::{ApiError, ApiResult, Problem};
use crate::{AppState, Body, Query};

#[derive(utoipa::OpenApi)]
#[openapi(paths(list, claim, outcome))]
pub(crate) struct Api;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/tasks", get(list))
        .route("/tasks/{id}/claim", post(claim))
        .route("/tasks/{id}/outcome", post(outcome))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// only this campaign's tasks
    campaign: Option<String>,
}

#[utoipa::path(get, path = "/tasks", operation_id = "listTasks", tag = "tasks", summary = "Open operator tasks of HUMAN stages (oldest first)",
    params(ListQuery), responses((status = 200, description = "The tasks", body = Vec<Object>)))]
async fn list(State(state): State<AppState>, Tenant(tenant): Tenant, Query(query): Query<ListQuery>) -> ApiResult<Json<Vec<HumanTask>>> {
    Ok(Json(state.store.tasks().human_tasks(&tenant, query.campaign.as_deref()).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = TaskClaim, example = json!({"operator": "Dana"}))]
#[serde(deny_unknown_fields)]
struct ClaimBody {
    #[schema(schema_with = crate::openapi::name_200)]
    operator: String,
}

#[utoipa::path(post, path = "/tasks/{id}/claim", operation_id = "claimTask", tag = "tasks", summary = "Claim a task as an operator; 409 names who holds it",
    request_body = ClaimBody,
    responses((status = 200, description = "The task", body = Object), (status = 400, response = Problem), (status = 404, response = Problem), (status = 409, response = Problem)))]
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
    Ok(Json(state.store.tasks().claim_task(&tenant, &id, operator).await?))
}

/// The outcome becomes the session's `OutcomeStatus`; `results` adds
/// other session results (e.g. the campaign's custom result codes).
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = TaskOutcome, example = json!({"outcome": "PROMISE_TO_PAY", "results": {"PromiseDate": "2026-12-15"}}))]
#[serde(deny_unknown_fields)]
struct OutcomeBody {
    #[schema(schema_with = outcome_code)]
    outcome: String,
    #[serde(default)]
    #[schema(schema_with = other_results)]
    results: JsonMap,
}

fn outcome_code() -> utoipa::openapi::schema::ObjectBuilder {
    stratagem_domain::openapi::code().description(Some("letters, digits and _ (upper-cased); becomes the session's OutcomeStatus"))
}

fn other_results() -> utoipa::openapi::schema::ObjectBuilder {
    let object = utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::Object)
        .description(Some("other session results; the outcome goes in `outcome`"))
        .build();
    stratagem_domain::openapi::with_keyword(object, "not", serde_json::json!({"required": ["OutcomeStatus"]})).into()
}

#[utoipa::path(post, path = "/tasks/{id}/outcome", operation_id = "recordTaskOutcome", tag = "tasks",
    summary = "Record the outcome: {\"outcome\": \"PROMISE_TO_PAY\", \"results\": {…}} ends the session (OutcomeStatus = outcome) and AGGREGATION runs",
    request_body = OutcomeBody,
    responses((status = 204, description = "Recorded"), (status = 400, response = Problem), (status = 404, response = Problem), (status = 409, response = Problem)))]
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
    state.store.tasks().complete_task(&tenant, &id, &session_results, chrono::Utc::now()).await?;
    Ok(StatusCode::NO_CONTENT)
}
