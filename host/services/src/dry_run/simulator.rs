//! A whole campaign in virtual time: its strategies see a virtual clock,
//! every channel reaches a simulated population that answers by persona,
//! and the clock jumps to the next planned communication whenever nothing
//! is due — a month of campaign runs in seconds, before a single real
//! message is sent.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use stratagem_domain::{CampaignStatus, Contact, StrategyType};
use stratagem_runtime::{Clock, VirtualClock};
use stratagem_store::Store;

use stratagem_engine::{run_data_load, Engine, EngineConfig, EngineError, Personas, StrategyService};

pub struct Simulation {
    pub start: DateTime<Utc>,
    /// Virtual time stops here even if work remains.
    pub until: DateTime<Utc>,
    pub personas: Personas,
}

pub use stratagem_types::dry_run::{ContactOutcome, SimulationReport, TimelineEntry};

/// Runs the campaign (its stored strategies and stages) over `contacts`.
/// The campaign must be new: the simulation imports, starts and runs it.
pub(super) async fn simulate(
    store: &Store,
    strategies: Arc<StrategyService>,
    tenant_id: &str,
    campaign_id: &str,
    contacts: Vec<Contact>,
    simulation: Simulation,
) -> Result<SimulationReport, EngineError> {
    let clock = Arc::new(VirtualClock::new(simulation.start));
    let campaign = store.campaigns().campaign(tenant_id, campaign_id).await?;
    let mut import_errors = Vec::new();
    let data_load = match store.strategies().active_component(tenant_id, campaign_id, StrategyType::DataLoad).await? {
        Some((hash, component)) => Some(strategies.load(&hash, component).await?),
        None => None,
    };
    let options = stratagem_engine::invoke_options(store, tenant_id, &campaign, clock.clone());
    let mut imported = Vec::with_capacity(contacts.len());
    let mut invocations = Vec::new();
    for contact in contacts {
        let (contact, error) = match &data_load {
            Some(strategy) => {
                let existing = store.contacts().find_contact(tenant_id, campaign_id, &contact.object_id).await?.map(|stored| stored.contact);
                let loaded = run_data_load(strategy, &options, contact, existing, None).await;
                invocations.push(loaded.invocation);
                let error = loaded.error.map(|error| serde_json::json!({"hook": "DATA_LOAD", "message": error.to_string(), "error": error}));
                if let Some(error) = &error {
                    import_errors.push((loaded.contact.object_id.clone(), error["message"].as_str().unwrap_or_default().to_owned()));
                }
                (loaded.contact, error)
            }
            None => (contact, None),
        };
        imported.push((contact, error));
    }
    for batch in imported.chunks(500) {
        store.contacts().upsert_contacts(tenant_id, campaign_id, batch).await?;
    }
    store.invocations().record(&invocations).await?;
    for status in [CampaignStatus::Configured, CampaignStatus::Running] {
        store.campaigns().set_campaign_status(tenant_id, campaign_id, status, None).await?;
    }

    let config = EngineConfig { simulate_every_channel: true, ..EngineConfig::default() };
    let engine = Engine::new(store.clone(), strategies, clock.clone(), config).with_personas(simulation.personas);
    loop {
        let report = engine.tick().await?;
        if !report.is_idle() {
            continue;
        }
        match store.dispatch().next_planned_start(tenant_id, campaign_id).await? {
            Some(next) if next <= simulation.until => {
                if next > clock.now() {
                    clock.set(next);
                } else {
                    // Due but not claimed: the campaign is not RUNNING any more.
                    break;
                }
            }
            _ => break,
        }
    }
    let end = clock.now();
    report(store, tenant_id, campaign_id, simulation.start, end, import_errors).await
}

async fn report(
    store: &Store,
    tenant_id: &str,
    campaign_id: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    import_errors: Vec<(String, String)>,
) -> Result<SimulationReport, EngineError> {
    let timeline = store
        .dispatch().campaign_timeline(tenant_id, campaign_id)
        .await?
        .into_iter()
        .map(|(object_id, communication, results)| TimelineEntry {
            object_id,
            name: communication.name,
            stage: communication.stage_name,
            start_date: communication.start_date,
            status: communication.status.status.as_str().to_owned(),
            alternative: communication.alternative,
            outcome: results.and_then(|results| results.get("OutcomeStatus").and_then(|v| v.as_str()).map(str::to_owned)),
        })
        .collect();
    let mut contacts = Vec::new();
    let mut results = BTreeMap::new();
    let mut stages = BTreeMap::new();
    for stored in store.contacts().all_contacts(tenant_id, campaign_id).await? {
        let flag = match stored.contact.result_flag {
            Some(true) => "true",
            Some(false) => "false",
            None => "undetermined",
        };
        *results.entry(flag.to_owned()).or_insert(0) += 1;
        *stages.entry(stored.contact.current_stage.clone().unwrap_or_else(|| "(none)".into())).or_insert(0) += 1;
        contacts.push(ContactOutcome {
            object_id: stored.contact.object_id,
            current_stage: stored.contact.current_stage,
            result_flag: stored.contact.result_flag,
            last_error: stored.last_error.map(|error| error["message"].as_str().unwrap_or_default().to_owned()),
        });
    }
    Ok(SimulationReport {
        start,
        end,
        campaign_status: store.campaigns().campaign(tenant_id, campaign_id).await?.status,
        timeline,
        contacts,
        results,
        stages,
        sends: store.dispatch().count_sends(tenant_id, campaign_id).await?,
        import_errors,
        rejected: Vec::new(),
    })
}
