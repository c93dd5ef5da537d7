//! Strategies: upload Python source (one file or a small package) with a
//! type; the build runs in the background and its status (building, ready,
//! failed with file, line and column) is on the strategy. Editing uploads a
//! new version; the newest READY version is the active one. A prebuilt
//! component can be uploaded instead of source.
//!
//! Builds go through the queue of `stratagem_engine::StrategyService`
//! (`host/engine/src/builds.rs`): a queued build shows its position, and an
//! upload cancels the build of the version it replaces.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use stratagem_domain::{FieldError, StrategyType};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use stratagem_runtime::StrategySource;
use stratagem_store::{StrategyView, VersionInput};

use crate::auth::Tenant;
use crate::problem::{body_error, ApiError, ApiResult};
use crate::{AppState, Body, Query, COMPONENT_LIMIT_BYTES};


pub fn router() -> Router<AppState> {
    Router::new()
        .route("/campaigns/{id}/strategies", get(list).post(upload))
        .route("/strategies/{id}", get(read).put(edit).delete(remove))
        .route(
            "/campaigns/{id}/strategies/component",
            post(upload_component).layer(axum::extract::DefaultBodyLimit::max(COMPONENT_LIMIT_BYTES)),
        )
        .route(
            "/strategies/{id}/component",
            put(edit_component).layer(axum::extract::DefaultBodyLimit::max(COMPONENT_LIMIT_BYTES)),
        )
}

/// Either `source` (with an optional `file_name`, default `strategy.py`)
/// or `files` with an `entry`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceBody {
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    file_name: Option<String>,
    #[serde(default)]
    files: Option<BTreeMap<String, String>>,
    #[serde(default)]
    entry: Option<String>,
}

impl SourceBody {
    fn into_source(self) -> ApiResult<StrategySource> {
        let (source, field) = match (self.source, self.files) {
            (Some(text), None) => (StrategySource::single(self.file_name.unwrap_or_else(|| "strategy.py".into()), text), "file_name"),
            (None, Some(files)) => {
                let entry = self.entry.ok_or_else(|| ApiError::BadRequest("`files` needs an `entry` naming the main file".into()))?;
                (StrategySource { entry, files }, "files")
            }
            _ => return Err(ApiError::BadRequest("give either `source` or `files`, not both or neither".into())),
        };
        // Well-formed, but not sources that can be built (a file name that
        // is not a module path, an entry not among the files, too large):
        // 422 on the field.
        source.validate().map_err(|error| ApiError::Invalid(vec![FieldError::new(field, error.to_string())]))?;
        Ok(source)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UploadBody {
    name: String,
    #[serde(rename = "type")]
    kind: StrategyType,
    #[serde(flatten)]
    source: SourceBody,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EditBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(flatten)]
    source: SourceBody,
}

async fn list(State(state): State<AppState>, Tenant(tenant): Tenant, Path(campaign): Path<String>) -> ApiResult<Json<Vec<StrategyView>>> {
    Ok(Json(state.store.list_strategies(&tenant, &campaign).await?))
}

async fn upload(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(campaign): Path<String>,
    Body(body): Body<UploadBody>,
) -> ApiResult<(StatusCode, Json<StrategyView>)> {
    let name = checked_name(&body.name)?;
    let source = body.source.into_source()?;
    let input = VersionInput::Source { entry: &source.entry, sources: &source.files };
    let (id, version) = state.store.add_strategy_version(&tenant, &campaign, &name, body.kind, input, None).await?;
    state.strategies.queued(&state.store, &id, version);
    Ok((StatusCode::ACCEPTED, Json(state.store.strategy(&tenant, &id).await?)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ComponentQuery {
    name: Option<String>,
    #[serde(rename = "type")]
    kind: Option<StrategyType>,
}

/// A strategy's name, on upload and on edit alike.
fn checked_name(name: &str) -> ApiResult<String> {
    if !stratagem_domain::is_valid_name(name, 200) {
        return Err(ApiError::BadRequest("name must have 1 to 200 characters, not only white space".into()));
    }
    Ok(name.trim().to_owned())
}

/// The body must look like a component before anything is stored; the
/// contract check and compilation happen in the background build.
fn component_bytes(body: Result<Bytes, BytesRejection>) -> ApiResult<Bytes> {
    let bytes = body.map_err(|rejection| body_error(&rejection, COMPONENT_LIMIT_BYTES))?;
    // A component's preamble: `\0asm`, then version 0x0d and layer 1.
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" || bytes[6..8] != [1, 0] {
        return Err(ApiError::InvalidFile {
            detail: "the body is not a WebAssembly component (build one with `stratagem strategy build` or componentize-py against wit/)"
                .into(),
            position: None,
        });
    }
    Ok(bytes)
}

async fn upload_component(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(campaign): Path<String>,
    Query(query): Query<ComponentQuery>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<(StatusCode, Json<StrategyView>)> {
    let kind = query.kind.ok_or_else(|| ApiError::BadRequest("give the strategy type: `?type=DATA_LOAD|AGGREGATION|CONTACT_ANSWER`".into()))?;
    let name = query.name.as_deref().ok_or_else(|| ApiError::BadRequest("give the strategy a name: `?name=…`".into()))?;
    let name = checked_name(name)?;
    let bytes = component_bytes(body)?;
    let input = VersionInput::Component(&bytes);
    let (id, version) = state.store.add_strategy_version(&tenant, &campaign, &name, kind, input, None).await?;
    state.strategies.queued(&state.store, &id, version);
    Ok((StatusCode::ACCEPTED, Json(state.store.strategy(&tenant, &id).await?)))
}

async fn edit_component(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
    Query(query): Query<ComponentQuery>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<(StatusCode, Json<StrategyView>)> {
    let name = query.name.as_deref().map(checked_name).transpose()?;
    let current = state.store.strategy(&tenant, &id).await?;
    if query.kind.is_some_and(|kind| kind != current.kind) {
        return Err(ApiError::Conflict {
            detail: format!("the strategy is {}; a strategy's type cannot change: upload a new strategy instead", current.kind.as_str()),
            allowed: None,
        });
    }
    let bytes = component_bytes(body)?;
    let name = name.unwrap_or(current.name);
    let input = VersionInput::Component(&bytes);
    let (id, version) =
        state.store.add_strategy_version(&tenant, &current.campaign_id, &name, current.kind, input, None).await?;
    state.strategies.queued(&state.store, &id, version);
    Ok((StatusCode::ACCEPTED, Json(state.store.strategy(&tenant, &id).await?)))
}

async fn read(State(state): State<AppState>, Tenant(tenant): Tenant, Path(id): Path<String>) -> ApiResult<Json<StrategyView>> {
    Ok(Json(state.store.strategy(&tenant, &id).await?))
}

async fn edit(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
    Body(body): Body<EditBody>,
) -> ApiResult<(StatusCode, Json<StrategyView>)> {
    // Validated as on upload: a new name, if given, like an upload's.
    let name = body.name.as_deref().map(checked_name).transpose()?;
    let current = state.store.strategy(&tenant, &id).await?;
    let source = body.source.into_source()?;
    let name = name.unwrap_or(current.name);
    let input = VersionInput::Source { entry: &source.entry, sources: &source.files };
    let (id, version) =
        state.store.add_strategy_version(&tenant, &current.campaign_id, &name, current.kind, input, None).await?;
    state.strategies.queued(&state.store, &id, version);
    Ok((StatusCode::ACCEPTED, Json(state.store.strategy(&tenant, &id).await?)))
}

async fn remove(State(state): State<AppState>, Tenant(tenant): Tenant, Path(id): Path<String>) -> ApiResult<StatusCode> {
    state.store.delete_strategy(&tenant, &id).await?;
    // Its compiled code leaves this node's memory and disk now; other
    // nodes drop it at their next sweep.
    if let Err(error) = state.strategies.prune(&state.store).await {
        tracing::warn!(%error, "could not prune a deleted strategy");
    }
    Ok(StatusCode::NO_CONTENT)
}
