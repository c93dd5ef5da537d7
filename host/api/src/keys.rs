//! API keys of the caller's tenant: list, create (the secret is in the
//! response once), revoke — except the last active one, which would lock
//! the tenant out (409 `last-api-key`: create another key first).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::Deserialize;
use stratagem_store::{ApiKey, CreatedKey};

use crate::auth::Tenant;
use crate::problem::{ApiError, ApiResult, Problem};
use crate::{AppState, Body};

#[derive(utoipa::OpenApi)]
#[openapi(paths(list, create, revoke))]
pub(crate) struct Api;

pub fn router() -> Router<AppState> {
    Router::new().route("/keys", get(list).post(create)).route("/keys/{id}", delete(revoke))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"name": "CI pipeline"}))]
#[serde(deny_unknown_fields)]
struct NewKey {
    #[schema(schema_with = crate::openapi::name_200)]
    name: String,
}

#[utoipa::path(get, path = "/keys", operation_id = "listKeys", tag = "keys",
    summary = "List the tenant's API keys (secrets are never returned)",
    responses((status = 200, description = "The keys", body = Vec<ApiKey>)))]
async fn list(State(state): State<AppState>, Tenant(tenant): Tenant) -> ApiResult<Json<Vec<ApiKey>>> {
    Ok(Json(state.store.tenants().list_api_keys(&tenant).await?))
}

#[utoipa::path(post, path = "/keys", operation_id = "createKey", tag = "keys",
    summary = "Create an API key; the secret is in this response only", request_body = NewKey,
    responses((status = 201, description = "The key and its secret", body = CreatedKey), (status = 400, response = Problem)))]
async fn create(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Body(new): Body<NewKey>,
) -> ApiResult<(StatusCode, Json<CreatedKey>)> {
    if !stratagem_domain::is_valid_name(&new.name, 200) {
        return Err(ApiError::BadRequest("name must have 1 to 200 characters, not only white space".into()));
    }
    Ok((StatusCode::CREATED, Json(state.store.tenants().create_api_key(&tenant, new.name.trim()).await?)))
}

#[utoipa::path(delete, path = "/keys/{id}", operation_id = "revokeKey", tag = "keys",
    summary = "Revoke an API key. The tenant's last active key cannot be revoked (409 `/problems/last-api-key`): create another key first",
    responses((status = 204, description = "Revoked"), (status = 404, response = Problem), (status = 409, response = Problem)))]
async fn revoke(State(state): State<AppState>, Tenant(tenant): Tenant, Path(id): Path<String>) -> ApiResult<StatusCode> {
    state.store.tenants().revoke_api_key(&tenant, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
