//! Strategies: upload Python source (one file or a small package) with a
//! type; the build runs in the background and its status (building, ready,
//! failed with file, line and column) is on the strategy. Editing uploads a
//! new version; the newest READY version is the active one.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use stratagem_domain::StrategyType;
use stratagem_runtime::{BuildError, StrategySource};
use stratagem_store::StrategyView;

use crate::auth::Tenant;
use crate::problem::{ApiError, ApiResult};
use crate::{AppState, Body};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/campaigns/{id}/strategies", get(list).post(upload))
        .route("/strategies/{id}", get(read).put(edit).delete(remove))
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
        let source = match (self.source, self.files) {
            (Some(text), None) => StrategySource::single(self.file_name.unwrap_or_else(|| "strategy.py".into()), text),
            (None, Some(files)) => {
                let entry = self.entry.ok_or_else(|| ApiError::BadRequest("`files` needs an `entry` naming the main file".into()))?;
                StrategySource { entry, files }
            }
            _ => return Err(ApiError::BadRequest("give either `source` or `files`, not both or neither".into())),
        };
        source.validate().map_err(|error| ApiError::BadRequest(error.to_string()))?;
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
    let name = body.name.trim().to_owned();
    if name.is_empty() {
        return Err(ApiError::BadRequest("name must not be empty".into()));
    }
    let source = body.source.into_source()?;
    let (id, version) =
        state.store.add_strategy_version(&tenant, &campaign, &name, body.kind, &source.entry, &source.files).await?;
    spawn_build(state.clone(), id.clone(), version, source);
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
    let current = state.store.strategy(&tenant, &id).await?;
    let source = body.source.into_source()?;
    let name = body.name.unwrap_or(current.name);
    let (id, version) = state
        .store
        .add_strategy_version(&tenant, &current.campaign_id, &name, current.kind, &source.entry, &source.files)
        .await?;
    spawn_build(state.clone(), id.clone(), version, source);
    Ok((StatusCode::ACCEPTED, Json(state.store.strategy(&tenant, &id).await?)))
}

async fn remove(State(state): State<AppState>, Tenant(tenant): Tenant, Path(id): Path<String>) -> ApiResult<StatusCode> {
    state.store.delete_strategy(&tenant, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Builds and compiles off the request path; the outcome lands on the
/// version row, where any node can read it.
fn spawn_build(state: AppState, strategy_id: String, version: i64, source: StrategySource) {
    tokio::spawn(async move {
        let outcome = match state.strategies.builder.build(&source).await {
            Ok(component) => {
                let service = state.strategies.clone();
                let compiled = tokio::task::spawn_blocking(move || {
                    let hash = stratagem_runtime::content_hash(&component);
                    service.load(&hash, &component).map(|_| (component, hash))
                })
                .await;
                match compiled {
                    Ok(Ok(built)) => Ok(built),
                    Ok(Err(error)) => Err(json!({"kind": "contract", "detail": error.to_string()})),
                    Err(panic) => Err(json!({"kind": "internal", "detail": format!("compilation stopped: {panic}")})),
                }
            }
            Err(error) => Err(build_error(&error)),
        };
        let stored = match &outcome {
            Ok((component, hash)) => state.store.finish_strategy_build(&strategy_id, version, Ok((component, hash))).await,
            Err(error) => state.store.finish_strategy_build(&strategy_id, version, Err(error.clone())).await,
        };
        if let Err(error) = stored {
            tracing::error!(%strategy_id, version, %error, "could not record the build outcome");
        }
    });
}

fn build_error(error: &BuildError) -> Value {
    match error {
        BuildError::Python(python) => json!({
            "kind": "python",
            "type": python.type_name,
            "message": python.message,
            "file": python.file,
            "line": python.line,
            "column": python.column,
            "source": python.source,
            "detail": error.to_string(),
        }),
        BuildError::InvalidSource(_) => json!({"kind": "invalid_source", "detail": error.to_string()}),
        BuildError::Timeout(_) => json!({"kind": "timeout", "detail": error.to_string()}),
        BuildError::Toolchain(detail) => {
            // Server paths and tool output are for the operator's log.
            tracing::error!(%detail, "strategy build failed in the toolchain");
            json!({"kind": "internal", "detail": "the build service failed; try again, or contact support if it persists"})
        }
    }
}
