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
use crate::problem::{body_error, ApiResult, Problem};
use crate::{AppState, Query};

#[derive(utoipa::OpenApi)]
#[openapi(paths(dry_run))]
pub(crate) struct Api;

pub fn router() -> Router<AppState> {
    Router::new().route("/campaigns/{id}/simulate", post(dry_run).layer(axum::extract::DefaultBodyLimit::max(FILE_LIMIT_BYTES)))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct DryRunQuery {
    /// outcome weights, e.g. NO_RESPONSE=35,PAID=20: OUTCOME=WEIGHT separated by commas, outcomes of letters, digits and _, whole weights, at least one above 0 (422 otherwise)
    personas: Option<String>,
    /// virtual days to run
    #[param(minimum = 1, maximum = 366, default = 30)]
    days: Option<u32>,
    /// virtual start; now by default
    #[param(value_type = Option<String>, format = DateTime)]
    start: Option<DateTime<Utc>>,
    #[param(schema_with = crate::openapi::file_format)]
    format: Option<String>,
    file_name: Option<String>,
}

#[utoipa::path(post, path = "/campaigns/{id}/simulate", operation_id = "simulateCampaign", tag = "campaigns",
    summary = format!("Dry run: the campaign's stages and active strategies in virtual time over the contact file in the body (CSV or JSON Lines, as for imports), every channel simulated, contacts answering by persona. Runs in a throwaway database: nothing is sent, the campaign is unchanged. Returns the timeline and final outcome distribution. Limits: {}; 409 without a ready DATA_LOAD strategy; 422 for a file that cannot be read; 429 when a run is already going on", describe()),
    params(DryRunQuery),
    request_body(description = "The contact file: CSV with a header row, or JSON Lines of Contact", content((String = "text/csv"), (String = "application/x-ndjson"))),
    responses((status = 200, description = "The simulation report", body = Object), (status = 404, response = Problem), (status = 409, response = Problem), (status = 422, response = Problem), (status = 429, response = Problem)))]
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
