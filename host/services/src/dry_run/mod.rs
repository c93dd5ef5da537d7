//! Dry runs: a campaign's stages and strategies in virtual time over a
//! contact file, against a simulated population answering by persona
//! (`simulator.rs`). A dry run works on a throwaway copy — a [`Sandbox`],
//! its own SQLite database in a temporary directory — so nothing is sent
//! and nothing of a real campaign changes.
//!
//! The API's dry run copies a campaign set up in the service
//! ([`DryRunService::of_campaign`]); `stratagem simulate` fills a sandbox
//! with strategies from files.

mod simulator;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use stratagem_domain::contact_file::{self, FileError, FileFormat};
use stratagem_domain::{Contact, StrategyType};
use stratagem_engine::{EngineError, InstallError, Personas, StrategyService};
use stratagem_store::{NewCampaign, RejectedRow, Store, StoreError};
use tokio::sync::Semaphore;

pub use simulator::{ContactOutcome, Simulation, SimulationReport, TimelineEntry};

use crate::imports::ContactFile;
use crate::UnknownFormat;

/// What one dry run of the service may take: enough to see a strategy's
/// behaviour, little enough that a run ends in seconds.
pub const MAX_CONTACTS: usize = 5_000;
/// The contact file of a dry run.
pub const FILE_LIMIT_BYTES: usize = 8 << 20;
pub const MAX_DAYS: u32 = 366;
/// Longest wall-clock time one dry run may take.
const TIME_LIMIT: Duration = Duration::from_secs(300);

#[derive(Debug, thiserror::Error)]
pub enum DryRunError {
    #[error("a dry run is already running on this node; try again when it has finished")]
    Busy,
    /// The personas do not describe a mix of outcomes.
    #[error("{0}")]
    Personas(String),
    #[error("days must be from 1 to {MAX_DAYS}")]
    Days,
    #[error(transparent)]
    UnknownFormat(#[from] UnknownFormat),
    #[error(transparent)]
    File(#[from] FileError),
    #[error("a dry run takes at most {MAX_CONTACTS} contacts; this file has {0}: simulate a sample")]
    TooManyContacts(usize),
    #[error("the campaign's {} strategy cannot run: {error}", kind.as_str())]
    StrategyCannotRun { kind: StrategyType, error: InstallError },
    #[error("the campaign has no ready DATA_LOAD strategy to plan the first communications: upload one in the Strategies tab")]
    NoDataLoad,
    #[error("the dry run took longer than {} s; simulate fewer contacts or days", TIME_LIMIT.as_secs())]
    TimedOut,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("{0}")]
    Internal(String),
}

/// A contact file's rows: the contacts, and the rows that could not be
/// read with why — as an import takes them, a bad row is rejected and the
/// others go on.
pub struct ContactRows {
    pub contacts: Vec<Contact>,
    pub rejected: Vec<RejectedRow>,
}

/// Every row of a file; an error when the file itself cannot be read.
pub fn read_contacts(format: FileFormat, bytes: &[u8], limit_bytes: u64, max_contacts: usize) -> Result<ContactRows, DryRunError> {
    let parsed = contact_file::parse(format, bytes, limit_bytes)?;
    if parsed.rows.len() > max_contacts {
        return Err(DryRunError::TooManyContacts(parsed.rows.len()));
    }
    let mut rows = ContactRows { contacts: Vec::with_capacity(parsed.rows.len()), rejected: Vec::new() };
    for row in parsed.rows {
        match row {
            Ok(row) => rows.contacts.push(row.contact),
            Err(error) => rows.rejected.push(RejectedRow { line: error.line, column: error.column, reason: error.message }),
        }
    }
    Ok(rows)
}

/// A throwaway campaign in its own database.
pub struct Sandbox {
    pub store: Store,
    pub tenant: String,
    pub campaign_id: String,
    /// Removed, with the database, when the sandbox is dropped.
    _dir: tempfile::TempDir,
}

impl Sandbox {
    pub async fn new(campaign: NewCampaign) -> Result<Self, DryRunError> {
        let dir = tempfile::tempdir().map_err(|error| DryRunError::Internal(error.to_string()))?;
        let store = Store::connect(&format!("sqlite://{}", dir.path().join("dry-run.db").display())).await?;
        let (tenant, _) = store.tenants().create_tenant("dry run").await?;
        let campaign = store.campaigns().create_campaign(&tenant, campaign, Default::default()).await?;
        Ok(Self { store, tenant, campaign_id: campaign.id, _dir: dir })
    }

    /// Makes `component` the sandbox campaign's strategy of `kind`.
    pub async fn install(&self, strategies: &StrategyService, kind: StrategyType, component: &[u8]) -> Result<(), InstallError> {
        strategies.install(&self.store, &self.tenant, &self.campaign_id, kind, component).await
    }

    /// Imports the rows' contacts, starts the campaign and runs it in
    /// virtual time; the report lists the rows that were rejected.
    pub async fn run(self, strategies: Arc<StrategyService>, rows: ContactRows, simulation: Simulation) -> Result<SimulationReport, DryRunError> {
        let mut report = simulator::simulate(&self.store, strategies, &self.tenant, &self.campaign_id, rows.contacts, simulation).await?;
        report.rejected = rows.rejected;
        self.store.close().await;
        Ok(report)
    }
}

/// What a dry run of a service campaign is asked to do.
pub struct DryRunRequest {
    pub file: ContactFile,
    /// Outcome weights, e.g. `NO_RESPONSE=35,PAID=20`.
    pub personas: Option<String>,
    /// Virtual days to run; 30 by default.
    pub days: Option<u32>,
    /// Virtual start; now by default.
    pub start: Option<DateTime<Utc>>,
}

/// Dry runs of campaigns set up in the service, one at a time per node: a
/// dry run compiles nothing but runs every strategy of every contact,
/// which is CPU the live campaigns need.
#[derive(Clone)]
pub struct DryRunService {
    store: Store,
    strategies: Arc<StrategyService>,
    slot: Arc<Semaphore>,
}

impl DryRunService {
    pub fn new(store: Store, strategies: Arc<StrategyService>) -> Self {
        Self { store, strategies, slot: Arc::new(Semaphore::new(1)) }
    }

    /// Runs the campaign's stages and active strategies over the request's
    /// contacts in a copy of it; every channel is simulated.
    pub async fn of_campaign(&self, tenant: &str, campaign_id: &str, request: DryRunRequest) -> Result<SimulationReport, DryRunError> {
        let campaign = self.store.campaigns().campaign(tenant, campaign_id).await?;
        let personas = match &request.personas {
            Some(text) => Personas::parse(text).map_err(DryRunError::Personas)?,
            None => Personas::default(),
        };
        let days = request.days.unwrap_or(30);
        if !(1..=MAX_DAYS).contains(&days) {
            return Err(DryRunError::Days);
        }
        let format = request.file.format()?;
        let contacts = read_contacts(format, &request.file.bytes, FILE_LIMIT_BYTES as u64, MAX_CONTACTS)?;
        let Ok(_slot) = self.slot.try_acquire() else { return Err(DryRunError::Busy) };

        let copy = Sandbox::new(NewCampaign {
            name: campaign.name,
            description: campaign.description,
            llm_integration_id: None,
            llm_model: None,
            result_fields: campaign.result_fields,
            // Its strategies behave as the campaign's do, calls out included.
            http_allowlist: campaign.http_allowlist,
        })
        .await?;
        self.copy_stages(tenant, campaign_id, &copy).await?;
        self.copy_strategies(tenant, campaign_id, &copy).await?;
        let start = request.start.unwrap_or_else(Utc::now);
        let simulation = Simulation { start, until: start + chrono::Duration::days(i64::from(days)), personas };
        tokio::time::timeout(TIME_LIMIT, copy.run(self.strategies.clone(), contacts, simulation)).await.map_err(|_| DryRunError::TimedOut)?
    }

    /// The campaign's stages, with integrations and agents left out: they
    /// stay in the real tenant, and every channel is simulated.
    async fn copy_stages(&self, tenant: &str, campaign_id: &str, copy: &Sandbox) -> Result<(), DryRunError> {
        for stage in self.store.stages().list_stages(tenant, campaign_id).await? {
            let mut definition = stage.definition;
            definition.agent_id = None;
            definition.settings.integration_id = None;
            for alternative in &mut definition.alternatives {
                alternative.agent_id = None;
                alternative.settings.integration_id = None;
            }
            copy.store.stages().create_stage(&copy.tenant, &copy.campaign_id, &definition).await?;
        }
        Ok(())
    }

    /// The campaign's active strategies; DATA_LOAD is required.
    async fn copy_strategies(&self, tenant: &str, campaign_id: &str, copy: &Sandbox) -> Result<(), DryRunError> {
        let mut has_data_load = false;
        for kind in [StrategyType::DataLoad, StrategyType::Aggregation, StrategyType::ContactAnswer] {
            if let Some((_, component)) = self.store.strategies().active_component(tenant, campaign_id, kind).await? {
                has_data_load |= kind == StrategyType::DataLoad;
                copy.install(&self.strategies, kind, &component).await.map_err(|error| DryRunError::StrategyCannotRun { kind, error })?;
            }
        }
        if has_data_load {
            Ok(())
        } else {
            Err(DryRunError::NoDataLoad)
        }
    }
}
