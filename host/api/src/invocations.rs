//! What strategies did: one invocation with its input (what
//! `stratagem strategy replay` fetches), and a strategy version's recent
//! invocations with its error rate and median fuel. A contact's
//! invocations come with the contact (`contacts.rs`).

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use stratagem_domain::invocation::{InvocationDetail, VersionInvocations};
use stratagem_store::StoreError;

use crate::auth::Tenant;
use crate::problem::{ApiResult, Problem};
use crate::AppState;

/// Invocations listed with a strategy version, newest first.
const VERSION_INVOCATIONS: i64 = 50;

#[derive(utoipa::OpenApi)]
#[openapi(paths(read, of_version))]
pub(crate) struct Api;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/invocations/{id}", get(read))
        .route("/strategies/{id}/versions/{version}/invocations", get(of_version))
}

#[utoipa::path(get, path = "/invocations/{id}", operation_id = "readInvocation", tag = "strategies",
    summary = "One strategy invocation: hook, contact, the time it saw, outcome and error, logs, fuel, peak memory and duration; for a failed call (and a sample of successful ones) its `input`, `output` and `limits`, with the version's `sources`, so `stratagem strategy replay` can run it again",
    responses((status = 200, description = "The invocation", body = InvocationDetail), (status = 404, response = Problem)))]
async fn read(State(state): State<AppState>, Tenant(tenant): Tenant, Path(id): Path<String>) -> ApiResult<Json<InvocationDetail>> {
    Ok(Json(state.store.invocations().invocation(&tenant, &id).await?))
}

#[utoipa::path(get, path = "/strategies/{id}/versions/{version}/invocations", operation_id = "listVersionInvocations", tag = "strategies",
    summary = "A strategy version's invocations within the retention period: how many, how many failed, the error rate, median fuel and duration, and the newest 50",
    responses((status = 200, description = "The version's invocations", body = VersionInvocations), (status = 404, response = Problem)))]
async fn of_version(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path((id, version)): Path<(String, String)>,
) -> ApiResult<Json<VersionInvocations>> {
    // Versions are numbered from 1: any other segment names none.
    let version: i64 = version.parse().map_err(|_| StoreError::NotFound("strategy version"))?;
    Ok(Json(state.store.invocations().of_version(&tenant, &id, version, VERSION_INVOCATIONS).await?))
}
