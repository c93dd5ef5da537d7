//! Integrations: a provider's settings and write-only secrets. Responses
//! name the secrets that are set and never carry a value.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use stratagem_domain::integration::{IntegrationUpdate, NewIntegration};
use stratagem_domain::{FieldError, Integration, JsonMap};
use stratagem_engine::egress::EgressPolicy;
use stratagem_store::IntegrationChanges;

use crate::auth::Tenant;
use crate::problem::{check, ApiError, ApiResult, Problem};
use crate::{AppState, Body};

#[derive(utoipa::OpenApi)]
#[openapi(paths(list, create, read, update, remove))]
pub(crate) struct Api;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/integrations", get(list).post(create))
        .route("/integrations/{id}", get(read).put(update).delete(remove))
}

/// An integration as the API shows it: with the URL its provider's
/// webhooks go to, on this service's public URL (`--public-url`).
fn shown(state: &AppState, mut integration: Integration) -> Integration {
    let sends_webhooks = stratagem_engine::providers::provider(integration.kind).is_some_and(|provider| provider.sends_webhooks());
    integration.webhook_url = sends_webhooks.then(|| state.outbound.webhook_url(&integration.id));
    integration
}

/// The endpoints the engine will call must be public (see
/// `stratagem_engine::egress`): `api_base_url`, and an SMTP `host`.
fn endpoint_errors(egress: EgressPolicy, settings: &JsonMap) -> Vec<FieldError> {
    ["api_base_url", "host"]
        .into_iter()
        .filter_map(|name| {
            let endpoint = settings.get(name)?.as_str()?;
            let problem = egress.check_endpoint(endpoint).err()?;
            Some(FieldError::new(format!("settings.{name}"), problem))
        })
        .collect()
}

fn check_name(name: &str) -> ApiResult<()> {
    if name.trim().is_empty() || name.chars().count() > 200 {
        return Err(ApiError::BadRequest("name must have 1 to 200 characters".into()));
    }
    Ok(())
}

#[utoipa::path(get, path = "/integrations", operation_id = "listIntegrations", tag = "integrations",
    summary = "List integrations: settings and the names of the secrets that are set, never their values",
    responses((status = 200, description = "The integrations", body = Vec<Integration>)))]
async fn list(State(state): State<AppState>, Tenant(tenant): Tenant) -> ApiResult<Json<Vec<Integration>>> {
    let integrations = state.store.integrations().list_integrations(&tenant).await?;
    Ok(Json(integrations.into_iter().map(|integration| shown(&state, integration)).collect()))
}

#[utoipa::path(post, path = "/integrations", operation_id = "createIntegration", tag = "integrations",
    summary = "Create an integration; settings and secrets are checked per kind (422 lists every problem)", request_body = NewIntegration,
    responses((status = 201, description = "The integration", body = Integration), (status = 400, response = Problem), (status = 422, response = Problem)))]
async fn create(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Body(body): Body<NewIntegration>,
) -> ApiResult<(StatusCode, Json<Integration>)> {
    check_name(&body.name)?;
    check(body.kind.validate(&body.settings, &body.secrets, &[]))?;
    check(endpoint_errors(state.outbound.egress(), &body.settings))?;
    let changes = IntegrationChanges { name: body.name.trim(), settings: &body.settings, secrets: &body.secrets };
    let created = state.store.integrations().create_integration(&tenant, body.kind, changes).await?;
    Ok((StatusCode::CREATED, Json(shown(&state, created))))
}

#[utoipa::path(get, path = "/integrations/{id}", operation_id = "readIntegration", tag = "integrations", summary = "Read an integration (secret names only)",
    responses((status = 200, description = "The integration", body = Integration), (status = 404, response = Problem)))]
async fn read(State(state): State<AppState>, Tenant(tenant): Tenant, Path(id): Path<String>) -> ApiResult<Json<Integration>> {
    Ok(Json(shown(&state, state.store.integrations().integration(&tenant, &id).await?)))
}

#[utoipa::path(put, path = "/integrations/{id}", operation_id = "updateIntegration", tag = "integrations",
    summary = "Update name and settings; secrets sent replace the stored ones, secrets left out are kept; validated as on create", request_body = IntegrationUpdate,
    responses((status = 200, description = "The integration", body = Integration), (status = 400, response = Problem), (status = 404, response = Problem), (status = 422, response = Problem)))]
async fn update(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
    Body(body): Body<IntegrationUpdate>,
) -> ApiResult<Json<Integration>> {
    let current = state.store.integrations().integration(&tenant, &id).await?;
    check_name(&body.name)?;
    check(current.kind.validate(&body.settings, &body.secrets, &current.secrets_set))?;
    check(endpoint_errors(state.outbound.egress(), &body.settings))?;
    let changes = IntegrationChanges { name: body.name.trim(), settings: &body.settings, secrets: &body.secrets };
    Ok(Json(shown(&state, state.store.integrations().update_integration(&tenant, &id, changes).await?)))
}

#[utoipa::path(delete, path = "/integrations/{id}", operation_id = "deleteIntegration", tag = "integrations", summary = "Delete an integration (409 while a stage or agent uses it)",
    responses((status = 204, description = "Deleted"), (status = 404, response = Problem), (status = 409, response = Problem)))]
async fn remove(State(state): State<AppState>, Tenant(tenant): Tenant, Path(id): Path<String>) -> ApiResult<StatusCode> {
    state.store.integrations().integration(&tenant, &id).await?;
    let mut users: Vec<String> = state
        .store
        .stages().tenant_stages(&tenant)
        .await?
        .into_iter()
        .filter(|stage| stage.definition.uses_integration(&id))
        .map(|stage| format!("stage `{}` ({})", stage.definition.name, stage.id))
        .collect();
    for agent in state.store.agents().list_agents(&tenant, None).await? {
        let definition = &agent.definition;
        if definition.push_integration_id.as_deref() == Some(id.as_str())
            || definition.channels.iter().any(|channel| channel.integration_id == id)
        {
            users.push(format!("agent `{}` ({})", definition.name, agent.id));
        }
    }
    if !users.is_empty() {
        return Err(ApiError::Conflict {
            detail: format!("the integration is used by {}; change those first", users.join(", ")),
            allowed: None,
        });
    }
    state.store.integrations().delete_integration(&tenant, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
