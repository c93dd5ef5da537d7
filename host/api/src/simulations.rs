//! Dry run: a campaign's stages and active strategies run in virtual time
//! over a contact file, against a simulated population answering by
//! persona — the `stratagem simulate` of the CLI, for a campaign already
//! set up in the service (`stratagem_services::dry_run`). Nothing is sent
//! and nothing of the campaign changes.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use stratagem_services::dry_run::{DryRunRequest, SimulationReport, FILE_LIMIT_BYTES, MAX_CONTACTS, MAX_DAYS};

use crate::auth::Tenant;
use crate::problem::{body_error, ApiResult};
use crate::{AppState, Query};

pub fn router() -> Router<AppState> {
    Router::new().route("/campaigns/{id}/simulate", post(dry_run).layer(axum::extract::DefaultBodyLimit::max(FILE_LIMIT_BYTES)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DryRunQuery {
    /// Outcome weights, e.g. `NO_RESPONSE=35,PAID=20`.
    personas: Option<String>,
    /// Virtual days to run; 30 by default.
    days: Option<u32>,
    /// Virtual start; now by default.
    start: Option<DateTime<Utc>>,
    format: Option<String>,
    file_name: Option<String>,
}

async fn dry_run(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(campaign_id): Path<String>,
    Query(query): Query<DryRunQuery>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult<Json<SimulationReport>> {
    let bytes = body.map_err(|rejection| body_error(&rejection, FILE_LIMIT_BYTES))?;
    let file = crate::contacts::contact_file(bytes, query.format, query.file_name, &headers);
    let request = DryRunRequest { file, personas: query.personas, days: query.days, start: query.start };
    Ok(Json(state.dry_runs.of_campaign(&tenant, &campaign_id, request).await?))
}

/// The limits of a dry run, for the OpenAPI document.
pub fn describe() -> String {
    format!("at most {MAX_CONTACTS} contacts, {} MiB, {MAX_DAYS} days, one run per node at a time", FILE_LIMIT_BYTES >> 20)
}
