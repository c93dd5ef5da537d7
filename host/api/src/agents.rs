//! AI agents: list (filter by status, as the UI's Running default), create,
//! read, update, delete (refused while a stage uses the agent).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use stratagem_domain::{Agent, AgentDefinition, AgentStatus, FieldError, IntegrationKind};
use stratagem_store::{Store, StoreError};

use crate::auth::Tenant;
use crate::problem::{check, ApiError, ApiResult, Problem};
use crate::{AppState, Body, Query};

#[derive(utoipa::OpenApi)]
#[openapi(paths(list, create, read, update, remove))]
pub(crate) struct Api;

pub fn router() -> Router<AppState> {
    Router::new().route("/agents", get(list).post(create)).route("/agents/{id}", get(read).put(update).delete(remove))
}

async fn validate(store: &Store, tenant: &str, definition: &AgentDefinition) -> ApiResult<()> {
    check(definition.validate())?;
    let mut errors = Vec::new();
    for (index, channel) in definition.channels.iter().enumerate() {
        match store.integrations().integration(tenant, &channel.integration_id).await {
            Ok(_) => {}
            Err(StoreError::NotFound(_)) => errors.push(FieldError::new(
                format!("channels[{index}].integration_id"),
                format!("there is no integration `{}`", channel.integration_id),
            )),
            Err(other) => return Err(other.into()),
        }
    }
    if let Some(id) = &definition.push_integration_id {
        match store.integrations().integration(tenant, id).await {
            Ok(integration) if integration.kind != IntegrationKind::Fcm => errors.push(FieldError::new(
                "push_integration_id",
                format!("integration `{}` is {}; push notifications need an FCM integration", integration.name, integration.kind.as_str()),
            )),
            Ok(_) => {}
            Err(StoreError::NotFound(_)) => {
                errors.push(FieldError::new("push_integration_id", format!("there is no integration `{id}`")))
            }
            Err(other) => return Err(other.into()),
        }
    }
    check(errors)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// only agents in this status
    #[param(value_type = Option<AgentStatus>)]
    status: Option<String>,
}

#[utoipa::path(get, path = "/agents", operation_id = "listAgents", tag = "agents", summary = "List AI agents",
    params(ListQuery), responses((status = 200, description = "The agents", body = Vec<Agent>)))]
async fn list(State(state): State<AppState>, Tenant(tenant): Tenant, Query(query): Query<ListQuery>) -> ApiResult<Json<Vec<Agent>>> {
    let status = match query.status.as_deref() {
        None => None,
        Some(text) => Some(
            AgentStatus::parse(&text.to_ascii_uppercase())
                .ok_or_else(|| ApiError::BadRequest(format!("unknown status `{text}`; one of RUNNING, STOPPED")))?,
        ),
    };
    Ok(Json(state.store.agents().list_agents(&tenant, status).await?))
}

#[utoipa::path(post, path = "/agents", operation_id = "createAgent", tag = "agents", summary = "Create an AI agent; 422 names integrations that do not exist or do not fit",
    request_body = AgentDefinition,
    responses((status = 201, description = "The agent", body = Agent), (status = 400, response = Problem), (status = 422, response = Problem)))]
async fn create(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Body(definition): Body<AgentDefinition>,
) -> ApiResult<(StatusCode, Json<Agent>)> {
    validate(&state.store, &tenant, &definition).await?;
    Ok((StatusCode::CREATED, Json(state.store.agents().create_agent(&tenant, &definition).await?)))
}

#[utoipa::path(get, path = "/agents/{id}", operation_id = "readAgent", tag = "agents", summary = "Read an agent",
    responses((status = 200, description = "The agent", body = Agent), (status = 404, response = Problem)))]
async fn read(State(state): State<AppState>, Tenant(tenant): Tenant, Path(id): Path<String>) -> ApiResult<Json<Agent>> {
    Ok(Json(state.store.agents().agent(&tenant, &id).await?))
}

#[utoipa::path(put, path = "/agents/{id}", operation_id = "updateAgent", tag = "agents", summary = "Replace an agent's definition; validated as on create",
    request_body = AgentDefinition,
    responses((status = 200, description = "The agent", body = Agent), (status = 400, response = Problem), (status = 404, response = Problem), (status = 422, response = Problem)))]
async fn update(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
    Body(definition): Body<AgentDefinition>,
) -> ApiResult<Json<Agent>> {
    state.store.agents().agent(&tenant, &id).await?;
    validate(&state.store, &tenant, &definition).await?;
    Ok(Json(state.store.agents().update_agent(&tenant, &id, &definition).await?))
}

#[utoipa::path(delete, path = "/agents/{id}", operation_id = "deleteAgent", tag = "agents", summary = "Delete an agent (409 while a stage uses it)",
    responses((status = 204, description = "Deleted"), (status = 404, response = Problem), (status = 409, response = Problem)))]
async fn remove(State(state): State<AppState>, Tenant(tenant): Tenant, Path(id): Path<String>) -> ApiResult<StatusCode> {
    state.store.agents().agent(&tenant, &id).await?;
    let users: Vec<String> = state
        .store
        .stages().tenant_stages(&tenant)
        .await?
        .into_iter()
        .filter(|stage| stage.definition.uses_agent(&id))
        .map(|stage| format!("`{}` ({})", stage.definition.name, stage.id))
        .collect();
    if !users.is_empty() {
        return Err(ApiError::Conflict {
            detail: format!("the agent is used by stage {}; change those stages first", users.join(", ")),
            allowed: None,
        });
    }
    state.store.agents().delete_agent(&tenant, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
