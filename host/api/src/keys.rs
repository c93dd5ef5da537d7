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
use crate::problem::{ApiError, ApiResult};
use crate::{AppState, Body};

pub fn router() -> Router<AppState> {
    Router::new().route("/keys", get(list).post(create)).route("/keys/{id}", delete(revoke))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKey {
    name: String,
}

async fn list(State(state): State<AppState>, Tenant(tenant): Tenant) -> ApiResult<Json<Vec<ApiKey>>> {
    Ok(Json(state.store.list_api_keys(&tenant).await?))
}

async fn create(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Body(new): Body<NewKey>,
) -> ApiResult<(StatusCode, Json<CreatedKey>)> {
    if !stratagem_domain::is_valid_name(&new.name, 200) {
        return Err(ApiError::BadRequest("name must have 1 to 200 characters, not only white space".into()));
    }
    Ok((StatusCode::CREATED, Json(state.store.create_api_key(&tenant, new.name.trim()).await?)))
}

async fn revoke(State(state): State<AppState>, Tenant(tenant): Tenant, Path(id): Path<String>) -> ApiResult<StatusCode> {
    state.store.revoke_api_key(&tenant, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
