//! Contact import: a CSV or JSON Lines file into a campaign, each row
//! through the campaign's DATA_LOAD strategy.
//!
//! [`ImportService::receive`] spools the upload to an unnamed temporary
//! file as it arrives, so files waiting for their turn are not held in
//! memory. [`ImportService::start`] checks the whole file once — a problem
//! can sit on its last line — and writes nothing if it cannot be read;
//! otherwise it creates the job, `queued` until one of the node's slots is
//! free for it (`queue.rs`: tenants take turns), then the pipeline
//! (`pipeline.rs`) runs it in the background. `recovery.rs` keeps jobs'
//! heartbeats and marks those of stopped nodes interrupted.

mod pipeline;
mod queue;
mod recovery;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use stratagem_domain::contact_file::{self, FileError, FileFormat};
use stratagem_domain::quota::Quotas;
use stratagem_domain::CampaignStatus;
use stratagem_engine::StrategyService;
use stratagem_domain::strategy::BuildError;
use stratagem_domain::StrategyType;
use stratagem_store::{ImportJob, ImportStatus, NewImportJob, Store, StoreError, StrategyState};
use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use queue::TENANT_SHARE;
pub use recovery::ImportLeases;

use crate::{UnknownFormat, CONTACT_FILE_LIMIT_BYTES};

/// Imports running at once on a node; more wait in its queue.
pub const IMPORTS_AT_ONCE: usize = 2;
/// Imports a tenant may have uploading or queued on a node at once: the
/// spooled files of one tenant are bounded.
pub const WAITING_PER_TENANT: usize = 10;
/// Files checked at once on a node (the check reads the whole file).
const CHECKS_AT_ONCE: usize = 2;

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("you have {WAITING_PER_TENANT} contact imports uploading or queued on this node; send more once one of them has started")]
    TooManyWaiting,
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
    /// The upload could not be spooled to a temporary file.
    #[error("the contact file could not be stored on the server while it waits for its import: {0}")]
    Spool(#[from] std::io::Error),
    #[error("{0}")]
    Internal(String),
}

/// What the sender of a contact file said about it.
#[derive(Debug, Clone, Default)]
pub struct FileInfo {
    /// `csv` or `jsonl` (also `ndjson`, `json`); detected when absent.
    pub format: Option<String>,
    pub file_name: Option<String>,
    pub content_type: Option<String>,
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

/// A contact file arriving: spooled to an unnamed temporary file, gone
/// with the last reference to it. Counts as one of its tenant's waiting
/// imports until its import starts or it is dropped.
pub struct Upload {
    file: tokio::io::BufWriter<tokio::fs::File>,
    length: u64,
    ticket: WaitingTicket,
}

impl Upload {
    pub async fn write(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        self.length += chunk.len() as u64;
        self.file.write_all(chunk).await
    }

    /// The whole file, mapped: its pages are the page cache's, not the
    /// process's, and only the parts being read are in memory.
    #[allow(unsafe_code)]
    async fn finish(mut self) -> std::io::Result<(Bytes, WaitingTicket)> {
        self.file.flush().await?;
        let file = self.file.into_inner().into_std().await;
        let bytes = if self.length == 0 {
            Bytes::new() // an empty file cannot be mapped
        } else {
            // SAFETY: the file is unnamed (no other process can open it)
            // and this process never writes to it again, so the mapping
            // cannot change under the slices taken from it.
            Bytes::from_owner(unsafe { memmap2::Mmap::map(&file)? })
        };
        Ok((bytes, self.ticket))
    }
}

/// One of a tenant's [`WAITING_PER_TENANT`] places.
pub(super) struct WaitingTicket {
    tenant: String,
    counts: Arc<Mutex<HashMap<String, usize>>>,
}

impl Drop for WaitingTicket {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().expect("waiting imports");
        if let Some(count) = counts.get_mut(&self.tenant) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.tenant);
            }
        }
    }
}

/// The import workflow of one node.
#[derive(Clone)]
pub struct ImportService {
    store: Store,
    strategies: Arc<StrategyService>,
    /// Import jobs carry the node that runs them, with a heartbeat.
    node_id: Arc<str>,
    /// Per tenant: imports uploading or queued on this node.
    waiting_counts: Arc<Mutex<HashMap<String, usize>>>,
    /// Queued jobs' files, by job id (`queue.rs`).
    waiting: Arc<Mutex<HashMap<String, queue::Waiting>>>,
    scheduling: Arc<tokio::sync::Mutex<()>>,
    checks: Arc<Semaphore>,
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
            waiting_counts: Arc::default(),
            waiting: Arc::default(),
            scheduling: Arc::default(),
            checks: Arc::new(Semaphore::new(CHECKS_AT_ONCE)),
            leases: ImportLeases::default(),
            shutdown: CancellationToken::new(),
            running: TaskTracker::new(),
            quotas: Quotas::default(),
        }
    }

    /// The node's default quotas: an import that would take a tenant past
    /// its contacts or storage quota, or that arrives once today's use
    /// reached a daily quota, is refused before a row is written.
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

    /// Once the shutdown token is cancelled: closes the jobs still queued
    /// and waits until every import of this node has stopped. Each writes
    /// the batch it has in hand, then closes its job `interrupted` (reason
    /// `shutdown`) with the rows written, so importing the file again
    /// finishes it.
    pub async fn drain(&self) {
        // From here the scheduler starts nothing and no job is queued
        // (both see the token under this lock).
        drop(self.scheduling.lock().await);
        self.close_queue().await;
        self.running.close();
        self.running.wait().await;
    }

    /// How often imports renew their heartbeat, and how long one may lapse
    /// before another node (or this one's sweep) marks the job interrupted.
    pub fn with_leases(mut self, leases: ImportLeases) -> Self {
        self.leases = leases;
        self
    }

    /// Takes one of `tenant`'s places for an import waiting on this node,
    /// and a temporary file for its upload; or says why not.
    pub fn receive(&self, tenant: &str) -> Result<Upload, ImportError> {
        if self.shutdown.is_cancelled() {
            return Err(ImportError::ShuttingDown);
        }
        let ticket = {
            let mut counts = self.waiting_counts.lock().expect("waiting imports");
            let count = counts.entry(tenant.to_owned()).or_default();
            if *count >= WAITING_PER_TENANT {
                return Err(ImportError::TooManyWaiting);
            }
            *count += 1;
            WaitingTicket { tenant: tenant.to_owned(), counts: self.waiting_counts.clone() }
        };
        let file = tokio::fs::File::from_std(tempfile::tempfile()?);
        Ok(Upload { file: tokio::io::BufWriter::with_capacity(1 << 20, file), length: 0, ticket })
    }

    /// Checks the uploaded file whole and creates its job, queued; starts
    /// it at once when the node has a slot for it. The job reports its
    /// place in the queue, then progress and the outcome.
    pub async fn start(&self, upload: Upload, tenant: &str, campaign_id: &str, about: FileInfo) -> Result<ImportJob, ImportError> {
        let campaign = self.store.campaigns().campaign(tenant, campaign_id).await?;
        if campaign.status == CampaignStatus::Finished {
            return Err(ImportError::CampaignFinished);
        }
        let data_load = self.store.strategies().strategy_state(tenant, campaign_id, StrategyType::DataLoad).await?;
        if let Some(StrategyState::Failed(error)) = &data_load {
            return Err(ImportError::StrategyFailed(build_failed(error.as_ref())));
        }
        let (bytes, ticket) = upload.finish().await?;
        let file = ContactFile { bytes, format: about.format, file_name: about.file_name, content_type: about.content_type };
        let format = file.format()?;
        let (rows, new_contacts) = {
            let _check = self.checks.acquire().await.map_err(internal)?;
            // Checking is CPU work: keep it off the async workers.
            let bytes = file.bytes.clone();
            let rows = tokio::task::spawn_blocking(move || contact_file::count_rows(format, &bytes, CONTACT_FILE_LIMIT_BYTES as u64))
                .await
                .map_err(internal)??;
            (rows, self.new_contacts(tenant, campaign_id, format, &file.bytes, rows).await?)
        };
        let new_job = NewImportJob {
            tenant_id: tenant,
            campaign_id,
            file_name: file.file_name.as_deref(),
            total_rows: rows as i64,
            new_contacts,
            file_bytes: file.bytes.len() as u64,
            runs_strategy: data_load.is_some(),
        };
        // The scheduler must not see the queued job before its file.
        let scheduling = self.scheduling.lock().await;
        if self.shutdown.is_cancelled() {
            return Err(ImportError::ShuttingDown); // its queue was closed
        }
        let job = self.store.imports().create_import_job(new_job, self.quotas, &self.node_id).await?;
        // The job keeps the tenant's place until it starts.
        let waiting = queue::Waiting { tenant: tenant.to_owned(), campaign_id: campaign_id.to_owned(), format, bytes: file.bytes, _ticket: ticket };
        self.waiting.lock().expect("import queue").insert(job.id.clone(), waiting);
        drop(scheduling);
        self.schedule().await?;
        self.job(tenant, &job.id).await
    }

    /// How many contacts the file adds to the campaign, for the contacts
    /// quota: counted (its object ids looked up) only when a limit is in
    /// force; else every row.
    async fn new_contacts(&self, tenant: &str, campaign_id: &str, format: FileFormat, bytes: &Bytes, rows: u64) -> Result<u64, ImportError> {
        let own = self.store.tenants().quota_settings(tenant).await?;
        if own.effective(self.quotas).contacts.is_none() {
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
        .map_err(internal)?;
        Ok(self.store.count_new_contacts(tenant, campaign_id, &object_ids).await?)
    }

    pub async fn job(&self, tenant: &str, id: &str) -> Result<ImportJob, ImportError> {
        let mut job = self.store.imports().import_job(tenant, id).await?;
        if job.status == ImportStatus::Queued {
            job.queue_position = self.queue_position(id).await?;
        }
        Ok(job)
    }
}

/// Why an import cannot run DATA_LOAD, naming the build error.
fn build_failed(error: Option<&BuildError>) -> String {
    let error = error.map_or_else(|| "no error was recorded".to_owned(), BuildError::summary);
    format!("the campaign's DATA_LOAD strategy failed to build ({error}); upload a fixed version, then import the file again")
}

fn internal(error: impl std::fmt::Display) -> ImportError {
    ImportError::Internal(error.to_string())
}
