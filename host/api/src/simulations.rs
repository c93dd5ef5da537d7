//! Dry run: a campaign's stages and active strategies run in virtual time
//! over a contact file, against a simulated population answering by
//! persona — the `stratagem simulate` of the CLI, for a campaign already
//! set up in the service. It runs in a throwaway database: nothing is
//! sent and nothing of the campaign changes.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use stratagem_domain::{contact_file, FieldError};
use stratagem_domain::StrategyType;
use stratagem_engine::simulator::{simulate, Simulation, SimulationReport};
use stratagem_engine::Personas;
use stratagem_store::{NewCampaign, Store};

use crate::auth::Tenant;
use crate::problem::{body_error, ApiError, ApiResult, Position};
use crate::{AppState, Query};

/// Contacts one dry run takes: enough to see a strategy's behaviour, few
/// enough that a run ends in seconds.
pub const MAX_CONTACTS: usize = 5_000;
/// The contact file of a dry run.
pub const SIMULATION_LIMIT_BYTES: usize = 8 << 20;
pub(crate) const MAX_DAYS: u32 = 366;
/// Longest wall-clock time one dry run may take.
const TIME_LIMIT: Duration = Duration::from_secs(300);

pub fn router() -> Router<AppState> {
    Router::new().route(
        "/campaigns/{id}/simulate",
        post(dry_run).layer(axum::extract::DefaultBodyLimit::max(SIMULATION_LIMIT_BYTES)),
    )
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
    let body = body.map_err(|rejection| body_error(&rejection, SIMULATION_LIMIT_BYTES))?;
    let campaign = state.store.campaign(&tenant, &campaign_id).await?;
    let personas = match &query.personas {
        // The query is well-formed; what it says is not a mix of personas.
        Some(text) => Personas::parse(text).map_err(|error| ApiError::Invalid(vec![FieldError::new("personas", error)]))?,
        None => Personas::default(),
    };
    let days = query.days.unwrap_or(30);
    if !(1..=MAX_DAYS).contains(&days) {
        return Err(ApiError::BadRequest(format!("days must be from 1 to {MAX_DAYS}")));
    }
    let format = crate::contacts::file_format(query.format.as_deref(), query.file_name.as_deref(), &headers, &body)?;
    let parsed = contact_file::parse(format, &body, SIMULATION_LIMIT_BYTES as u64).map_err(crate::contacts::file_error)?;
    if parsed.rows.len() > MAX_CONTACTS {
        return Err(ApiError::InvalidFile {
            detail: format!("a dry run takes at most {MAX_CONTACTS} contacts; this file has {}: simulate a sample", parsed.rows.len()),
            position: None,
        });
    }
    let mut contacts = Vec::with_capacity(parsed.rows.len());
    for row in parsed.rows {
        // A dry run is all or nothing: the first bad row is the answer.
        let row = row.map_err(|error| ApiError::InvalidFile { detail: error.message, position: Some(Position { line: error.line, column: None }) })?;
        contacts.push(row.contact);
    }
    // One at a time per node: a dry run compiles nothing but runs every
    // strategy of every contact, which is CPU the live campaigns need.
    let Ok(_slot) = state.dry_runs.try_acquire() else {
        return Err(ApiError::Busy("a dry run is already running on this node; try again when it has finished".into()));
    };

    // The throwaway copy: the campaign's settings, stages and strategies.
    let dir = tempfile::tempdir().map_err(|error| ApiError::Internal(error.to_string()))?;
    let copy = Store::connect(&format!("sqlite://{}", dir.path().join("dry-run.db").display())).await?;
    let (copy_tenant, _) = copy.create_tenant("dry run").await?;
    let copy_campaign = copy
        .create_campaign(
            &copy_tenant,
            NewCampaign {
                name: campaign.name.clone(),
                description: campaign.description.clone(),
                llm_integration_id: None,
                llm_model: None,
                result_fields: campaign.result_fields.clone(),
            },
        )
        .await?;
    for stage in state.store.list_stages(&tenant, &campaign_id).await? {
        let mut definition = stage.definition;
        // Integrations and agents stay in the real tenant; every channel is simulated.
        definition.agent_id = None;
        definition.settings.integration_id = None;
        for alternative in &mut definition.alternatives {
            alternative.agent_id = None;
            alternative.settings.integration_id = None;
        }
        copy.create_stage(&copy_tenant, &copy_campaign.id, &definition).await?;
    }
    let mut has_data_load = false;
    for kind in [StrategyType::DataLoad, StrategyType::Aggregation, StrategyType::ContactAnswer] {
        if let Some((_, component)) = state.store.active_component(&tenant, &campaign_id, kind).await? {
            has_data_load |= kind == StrategyType::DataLoad;
            state.strategies.install(&copy, &copy_tenant, &copy_campaign.id, kind, &component).await.map_err(|error| {
                ApiError::Conflict { detail: format!("the campaign's {} strategy cannot run: {error}", kind.as_str()), allowed: None }
            })?;
        }
    }
    if !has_data_load {
        return Err(ApiError::Conflict {
            detail: "the campaign has no ready DATA_LOAD strategy to plan the first communications: upload one in the Strategies tab".into(),
            allowed: None,
        });
    }
    let start = query.start.unwrap_or_else(Utc::now);
    let simulation = Simulation { start, until: start + chrono::Duration::days(i64::from(days)), personas };
    let run = simulate(&copy, state.strategies.clone(), &copy_tenant, &copy_campaign.id, contacts, simulation);
    let report = tokio::time::timeout(TIME_LIMIT, run)
        .await
        .map_err(|_| ApiError::Busy(format!("the dry run took longer than {} s; simulate fewer contacts or days", TIME_LIMIT.as_secs())))?
        .map_err(|error| ApiError::Internal(error.to_string()))?;
    copy.close().await;
    Ok(Json(report))
}

/// The limits of a dry run, for the OpenAPI document.
pub fn describe() -> String {
    format!("at most {MAX_CONTACTS} contacts, {} MiB, {MAX_DAYS} days, one run per node at a time", SIMULATION_LIMIT_BYTES >> 20)
}
