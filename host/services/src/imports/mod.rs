//! Contact import: a CSV or JSON Lines file into a campaign, each row
//! through the campaign's DATA_LOAD strategy.
//!
//! [`ImportService::reserve`] takes one of the node's import slots before
//! the caller reads the upload, so a node holds at most that many files in
//! memory. [`ImportService::start`] checks the whole file once — a problem
//! can sit on its last line — and writes nothing if it cannot be read;
//! otherwise it creates the job and runs the pipeline (`pipeline.rs`) in
//! the background. `recovery.rs` keeps jobs' heartbeats and marks those of
//! stopped nodes interrupted.

mod pipeline;
mod recovery;

use std::sync::Arc;

use bytes::Bytes;
use stratagem_domain::contact_file::{self, FileError, FileFormat};
use stratagem_domain::quota::Quotas;
use stratagem_domain::CampaignStatus;
use stratagem_engine::StrategyService;
use stratagem_domain::strategy::BuildError;
use stratagem_domain::StrategyType;
use stratagem_store::{ImportJob, Store, StoreError, StrategyState};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use recovery::ImportLeases;

use crate::{UnknownFormat, CONTACT_FILE_LIMIT_BYTES};

/// Imports in progress at once on a node (upload, check and job).
pub const IMPORTS_AT_ONCE: usize = 2;

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{IMPORTS_AT_ONCE} contact imports are in progress on this node; try again when one has finished")]
    Busy,
    #[error("the server is shutting down; send the file again in a moment (to another node, or to this one once it has restarted)")]
    ShuttingDown,
    #[error("the campaign is FINISHED; contacts can no longer be imported")]
    CampaignFinished,
    /// Every version of the campaign's DATA_LOAD strategy failed to build.
    #[error("{0}")]
    StrategyFailed(String),
    #[error(transparent)]
    UnknownFormat(#[from] UnknownFormat),
    /// The file cannot be read at all; nothing was written.
    #[error(transparent)]
    File(#[from] FileError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Internal(String),
}

/// A contact file as it arrived, with what its sender said about it.
pub struct ContactFile {
    pub bytes: Bytes,
    /// `csv` or `jsonl` (also `ndjson`, `json`); detected when absent.
    pub format: Option<String>,
    pub file_name: Option<String>,
    pub content_type: Option<String>,
}

impl ContactFile {
    /// The format the sender named, else the one detected from the file
    /// name, the content type and the content.
    pub fn format(&self) -> Result<FileFormat, UnknownFormat> {
        Ok(match self.format.as_deref() {
            Some("csv") => FileFormat::Csv,
            Some("jsonl" | "ndjson" | "json") => FileFormat::JsonLines,
            Some(other) => return Err(UnknownFormat(other.to_owned())),
            None => FileFormat::detect(self.file_name.as_deref(), self.content_type.as_deref(), &self.bytes),
        })
    }
}

/// One of the node's import slots, held until the import ends.
pub struct ImportSlot {
    _permit: OwnedSemaphorePermit,
}

/// The import workflow of one node.
#[derive(Clone)]
pub struct ImportService {
    store: Store,
    strategies: Arc<StrategyService>,
    /// Import jobs carry the node that runs them, with a heartbeat.
    node_id: Arc<str>,
    slots: Arc<Semaphore>,
    leases: ImportLeases,
    /// Cancelled when the node shuts down: imports stop at their next
    /// batch and close their jobs (`drain`).
    shutdown: CancellationToken,
    running: TaskTracker,
    /// The node's default quotas (a tenant's own ones override them).
    quotas: Quotas,
}

impl ImportService {
    pub fn new(store: Store, strategies: Arc<StrategyService>, node_id: Arc<str>) -> Self {
        Self {
            store,
            strategies,
            node_id,
            slots: Arc::new(Semaphore::new(IMPORTS_AT_ONCE)),
            leases: ImportLeases::default(),
            shutdown: CancellationToken::new(),
            running: TaskTracker::new(),
            quotas: Quotas::default(),
        }
    }

    /// The node's default quotas: an import that would take a tenant past
    /// its contacts quota is refused before a row is written.
    pub fn with_quotas(mut self, quotas: Quotas) -> Self {
        self.quotas = quotas;
        self
    }

    /// Stops this node's imports when `shutdown` is cancelled (see
    /// [`ImportService::drain`]).
    pub fn with_shutdown(mut self, shutdown: CancellationToken) -> Self {
        self.shutdown = shutdown;
        self
    }

    /// Once the shutdown token is cancelled: waits until every import of
    /// this node has stopped. Each writes the batch it has in hand, then
    /// closes its job `interrupted` (reason `shutdown`) with the rows
    /// written, so importing the file again finishes it.
    pub async fn drain(&self) {
        self.running.close();
        self.running.wait().await;
    }

    /// How often imports renew their heartbeat, and how long one may lapse
    /// before another node (or this one's sweep) marks the job interrupted.
    pub fn with_leases(mut self, leases: ImportLeases) -> Self {
        self.leases = leases;
        self
    }

    /// Takes an import slot, or says the node is busy. Take it before
    /// reading the upload: that bounds the files held in memory.
    pub fn reserve(&self) -> Result<ImportSlot, ImportError> {
        if self.shutdown.is_cancelled() {
            return Err(ImportError::ShuttingDown);
        }
        self.slots.clone().try_acquire_owned().map(|permit| ImportSlot { _permit: permit }).map_err(|_| ImportError::Busy)
    }

    /// Checks `file` whole, creates its job and runs the import in the
    /// background; the job reports progress and the outcome.
    pub async fn start(&self, slot: ImportSlot, tenant: &str, campaign_id: &str, file: ContactFile) -> Result<ImportJob, ImportError> {
        let campaign = self.store.campaigns().campaign(tenant, campaign_id).await?;
        if campaign.status == CampaignStatus::Finished {
            return Err(ImportError::CampaignFinished);
        }
        if let Some(StrategyState::Failed(error)) =
            self.store.strategies().strategy_state(tenant, campaign_id, StrategyType::DataLoad).await?
        {
            return Err(ImportError::StrategyFailed(build_failed(error.as_ref())));
        }
        let format = file.format()?;
        // Checking is CPU work: keep it off the async workers.
        let bytes = file.bytes.clone();
        let rows = tokio::task::spawn_blocking(move || contact_file::count_rows(format, &bytes, CONTACT_FILE_LIMIT_BYTES as u64))
            .await
            .map_err(|e| ImportError::Internal(e.to_string()))??;
        let new_contacts = self.new_contacts(tenant, campaign_id, format, &file.bytes, rows).await?;
        let job = self
            .store
            .imports()
            .create_import_job(tenant, campaign_id, file.file_name.as_deref(), rows as i64, new_contacts, self.quotas, &self.node_id)
            .await?;
        let options = stratagem_engine::invoke_options(&self.store, tenant, &campaign, Arc::new(stratagem_runtime::SystemClock));
        let batches = pipeline::read_batches(format, file.bytes);
        self.running.spawn(pipeline::run(self.clone(), options, job.id.clone(), batches, slot));
        Ok(job)
    }

    /// How many contacts the file adds to the campaign, for the contacts
    /// quota: counted (its object ids looked up) only when a limit is in
    /// force; else every row.
    async fn new_contacts(&self, tenant: &str, campaign_id: &str, format: FileFormat, bytes: &Bytes, rows: u64) -> Result<u64, ImportError> {
        let own = self.store.tenants().quota_settings(tenant).await?;
        if Quotas::effective(own.contacts, self.quotas.contacts).is_none() {
            return Ok(rows);
        }
        let bytes = bytes.clone();
        let object_ids = tokio::task::spawn_blocking(move || {
            let mut ids = Vec::new();
            let _ = contact_file::read_rows(format, &bytes, CONTACT_FILE_LIMIT_BYTES as u64, |row| {
                if let Ok(row) = row {
                    ids.push(row.contact.object_id);
                }
                std::ops::ControlFlow::Continue(())
            });
            ids
        })
        .await
        .map_err(|e| ImportError::Internal(e.to_string()))?;
        Ok(self.store.count_new_contacts(tenant, campaign_id, &object_ids).await?)
    }

    pub async fn job(&self, tenant: &str, id: &str) -> Result<ImportJob, ImportError> {
        Ok(self.store.imports().import_job(tenant, id).await?)
    }
}

/// Why an import cannot run DATA_LOAD, naming the build error.
fn build_failed(error: Option<&BuildError>) -> String {
    let error = error.map_or_else(|| "no error was recorded".to_owned(), BuildError::summary);
    format!("the campaign's DATA_LOAD strategy failed to build ({error}); upload a fixed version, then import the file again")
}
