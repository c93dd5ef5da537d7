//! Settings > YAML Analytics: upload (validated, every error with its line
//! and column), read back as parsed metrics, and download verbatim.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use stratagem_domain::analytics::{self, AnalyticsDefinition};
use stratagem_domain::FieldError;

use crate::auth::Tenant;
use crate::problem::{ApiError, ApiResult, Position};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/campaigns/{id}/analytics", get(read).put(upload))
        .route("/campaigns/{id}/analytics/yaml", get(download))
}

#[derive(Serialize)]
struct AnalyticsView {
    uploaded_at: chrono::DateTime<chrono::Utc>,
    definition: AnalyticsDefinition,
}

/// The body must be UTF-8; a bad byte is reported where it is.
fn text(body: &Bytes) -> ApiResult<&str> {
    std::str::from_utf8(body).map_err(|error| {
        let valid = &body[..error.valid_up_to()];
        let line = valid.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
        let line_start = valid.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let column = String::from_utf8_lossy(&valid[line_start..]).chars().count() as u64 + 1;
        ApiError::InvalidFile {
            detail: format!("line {line}, column {column}: the file is not UTF-8 text; save it as UTF-8"),
            position: Some(Position { line, column: Some(column) }),
        }
    })
}

fn parse(yaml: &str) -> ApiResult<AnalyticsDefinition> {
    analytics::parse(yaml).map_err(|errors| ApiError::Invalid(errors.0.into_iter().map(FieldError::from).collect()))
}

async fn upload(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(campaign): Path<String>,
    body: Bytes,
) -> ApiResult<Json<AnalyticsView>> {
    state.store.campaign(&tenant, &campaign).await?;
    let yaml = text(&body)?;
    let definition = parse(yaml)?;
    let uploaded_at = state.store.set_analytics_yaml(&tenant, &campaign, yaml).await?;
    Ok(Json(AnalyticsView { uploaded_at, definition }))
}

async fn read(State(state): State<AppState>, Tenant(tenant): Tenant, Path(campaign): Path<String>) -> ApiResult<Json<AnalyticsView>> {
    let (yaml, uploaded_at) =
        state.store.analytics_yaml(&tenant, &campaign).await?.ok_or(ApiError::NotFound("YAML analytics file"))?;
    // Stored files were valid when uploaded; a stricter release may refuse
    // one, and then the user sees why instead of an empty panel.
    Ok(Json(AnalyticsView { uploaded_at, definition: parse(&yaml)? }))
}

async fn download(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(campaign): Path<String>,
) -> ApiResult<impl IntoResponse> {
    let (yaml, _) = state.store.analytics_yaml(&tenant, &campaign).await?.ok_or(ApiError::NotFound("YAML analytics file"))?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/yaml; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{campaign}-analytics.yaml\"")),
        ],
        yaml,
    ))
}
