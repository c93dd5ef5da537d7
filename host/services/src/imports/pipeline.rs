//! The import pipeline: the file's rows a batch at a time, DATA_LOAD on
//! each row, and one transaction per batch — batch N is written while
//! batch N+1's strategies run, and on PostgreSQL while batch N-1's
//! contacts are still being written.

use std::ops::ControlFlow;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use stratagem_domain::contact_file::{self, FileFormat, ImportRow};
use stratagem_domain::{Contact, StrategyType};
use stratagem_runtime::{InvokeOptions, Strategy};
use stratagem_store::{
    Backend, ImportBatch, ImportCounts, ImportEnd, ImportReport, InterruptedReason, NewInvocation, RejectedRow, StoreError,
    StrategyFailure, StrategyState,
};

use super::{internal, ImportError, ImportService};
use crate::CONTACT_FILE_LIMIT_BYTES;

/// Contacts written per transaction.
const BATCH: usize = 1000;
/// Strategy invocations in flight per import.
const PARALLEL_INVOCATIONS: usize = 4;
/// Batches being written at once per import on PostgreSQL: the database
/// works on the next batch's contacts on another core while the one before
/// commits (docs/BENCHMARKS.md). SQLite has one writer: one at a time.
const POSTGRES_WRITES_IN_FLIGHT: usize = 2;

/// A file's rows, a batch at a time.
pub(super) type Batches = tokio::sync::mpsc::Receiver<Vec<Result<ImportRow, contact_file::RowError>>>;

/// Reads a file that was checked whole before (so it reads the same again,
/// without a file error) on a blocking thread, and hands over its rows
/// `BATCH` at a time, a couple of batches ahead of the import; its rows
/// are never all in memory. The reading stops when the import does.
pub(super) fn read_batches(format: FileFormat, file: Bytes) -> Batches {
    let (sender, receiver) = tokio::sync::mpsc::channel(2);
    tokio::task::spawn_blocking(move || {
        let mut batch = Vec::with_capacity(BATCH);
        let _ = contact_file::read_rows(format, &file, CONTACT_FILE_LIMIT_BYTES as u64, |row| {
            batch.push(row);
            if batch.len() < BATCH {
                return ControlFlow::Continue(());
            }
            match sender.blocking_send(std::mem::replace(&mut batch, Vec::with_capacity(BATCH))) {
                Ok(()) => ControlFlow::Continue(()),
                Err(_) => ControlFlow::Break(()),
            }
        });
        if !batch.is_empty() {
            let _ = sender.blocking_send(batch);
        }
    });
    receiver
}

/// What an import has committed so far: the job row holds the same.
#[derive(Default)]
struct Tally {
    counts: ImportCounts,
    /// Contacts written by when the database's statistics are refreshed next.
    statistics_due_at: i64,
    /// The refresh of the statistics under way, if any: it runs beside
    /// the import, which does not wait for it.
    refreshing: Option<tokio::task::JoinHandle<Result<(), StoreError>>>,
}

/// Why an import stopped before its end.
enum Stopped {
    /// The job is no longer this node's (taken for dead and marked
    /// interrupted): it wrote nothing more, and there is nothing to close.
    Lost,
    /// The DATA_LOAD strategy it waited for failed to build: why.
    StrategyFailed(String),
    /// The node is shutting down; every batch read so far is written.
    ShutDown,
    Failed(ImportError),
}

impl<E: Into<ImportError>> From<E> for Stopped {
    fn from(error: E) -> Self {
        Stopped::Failed(error.into())
    }
}

/// Runs an import in its own task while renewing its job's heartbeat,
/// closes the job (`done`, or `interrupted` on an error or a panic), then
/// starts the next import of the node's queue in its slot.
pub(super) async fn run(service: ImportService, options: InvokeOptions, job_id: String, batches: Batches) {
    import_and_close(&service, options, &job_id, batches).await;
    if let Err(error) = service.schedule().await {
        tracing::error!(%error, "could not start the next queued import; the node tries again at its next heartbeat");
    }
}

async fn import_and_close(service: &ImportService, options: InvokeOptions, job_id: &str, batches: Batches) {
    let job_id = job_id.to_owned();
    let store = service.store.clone();
    let node_id = service.node_id.clone();
    let mut import = tokio::spawn({
        let (service, job_id) = (service.clone(), job_id.clone());
        async move {
            let mut tally = Tally::default();
            import_rows(&service, options, &job_id, batches, &mut tally).await?;
            // Before the job reads as done, so that a campaign started on
            // seeing it is planned on its new rows.
            if tally.counts.accepted + tally.counts.updated > 0 {
                service.store.refresh_statistics().await?;
            }
            Ok::<(), Stopped>(())
        }
    });
    let mut heartbeat = tokio::time::interval(service.leases.heartbeat_every);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    heartbeat.tick().await;
    let outcome = loop {
        tokio::select! {
            outcome = &mut import => break outcome,
            _ = heartbeat.tick() => match store.imports().renew_import_heartbeat(&job_id, &node_id).await {
                Ok(true) => {}
                Ok(false) => {
                    // Another node took this one for dead: stop writing.
                    import.abort();
                    tracing::error!(%job_id, "the import's job was marked interrupted meanwhile; the import stops");
                    return;
                }
                Err(error) => tracing::warn!(%job_id, %error, "could not renew an import's heartbeat"),
            },
        }
    };
    let end = match outcome {
        Ok(Ok(())) => ImportEnd::Done,
        Ok(Err(Stopped::Lost)) => {
            tracing::error!(%job_id, "the import's job was marked interrupted meanwhile; the import stopped");
            return;
        }
        Ok(Err(Stopped::StrategyFailed(why))) => ImportEnd::StrategyFailed(why),
        Ok(Err(Stopped::ShutDown)) => {
            tracing::warn!(%job_id, "the import stopped for the server's shutdown");
            ImportEnd::Interrupted(InterruptedReason::Shutdown)
        }
        Ok(Err(Stopped::Failed(error))) => {
            tracing::error!(%job_id, %error, "import stopped");
            ImportEnd::Interrupted(InterruptedReason::Error)
        }
        Err(panic) => {
            tracing::error!(%job_id, %panic, "import panicked");
            ImportEnd::Interrupted(InterruptedReason::Error)
        }
    };
    match store.imports().finish_import_job(&job_id, &node_id, end).await {
        Ok(true) => {}
        Ok(false) => tracing::warn!(%job_id, "the import's job was marked interrupted before it could be closed"),
        Err(error) => tracing::error!(%job_id, %error, "could not close the import job"),
    }
}

/// One import's fixed parts, shared by its batches.
/// `options` name the tenant and campaign.
struct Run<'a> {
    service: &'a ImportService,
    job_id: &'a str,
    strategy: Option<Arc<Strategy>>,
    options: InvokeOptions,
}

async fn import_rows(service: &ImportService, options: InvokeOptions, job_id: &str, batches: Batches, tally: &mut Tally) -> Result<(), Stopped> {
    let strategy = data_load(service, &options.tenant, &options.campaign.id, job_id).await?;
    let run = Run { service, job_id, strategy, options };
    // Batch N is written while batch N+1's strategies run: the writer is
    // one database connection, the strategies the CPU. Batches never share
    // a contact (the parser rejects an object id repeated in a file), so
    // none reads a contact another is writing. Each batch commits the
    // job's counts with its contacts, so the job counts exactly the rows
    // written; a write in flight when the import stops on an error is
    // waited for, and its rows count once it committed.
    let mut writing = Writes::default();
    let outcome = import_batches(&run, batches, &mut writing, tally).await;
    let mut written = Ok(());
    while let Some(write) = writing.in_flight.pop_front() {
        // After a failed write the later ones roll back: wait for them
        // all, so nothing is written once the import has stopped.
        let finished = finish_write(service, write, tally).await;
        written = written.and(finished);
    }
    if let Some(refresh) = tally.refreshing.take() {
        written = written.and(refresh.await.map_err(internal)?.map_err(Stopped::from));
    }
    outcome.and(written)
}

/// How often an import waiting for its DATA_LOAD strategy looks again.
const BUILD_POLL: std::time::Duration = std::time::Duration::from_millis(250);

/// The campaign's active DATA_LOAD strategy, loaded; `None` when it has
/// none. While it is still building the import waits, and says so on its
/// job; when it failed to build, the import stops without a row written:
/// importing as if there were no strategy would leave every contact
/// without a stage or communications.
async fn data_load(service: &ImportService, tenant: &str, campaign_id: &str, job_id: &str) -> Result<Option<Arc<Strategy>>, Stopped> {
    let imports = service.store.imports();
    let mut waiting = false;
    loop {
        match service.store.strategies().strategy_state(tenant, campaign_id, StrategyType::DataLoad).await? {
            None | Some(StrategyState::Ready(_)) => break,
            Some(StrategyState::Failed(error)) => return Err(Stopped::StrategyFailed(super::build_failed(error.as_ref()))),
            Some(StrategyState::Building) if !waiting => {
                let why = "the campaign's DATA_LOAD strategy is still building; the import starts as soon as its build is ready";
                if !imports.set_import_waiting(job_id, &service.node_id, Some(why)).await? {
                    return Err(Stopped::Lost);
                }
                waiting = true;
            }
            Some(StrategyState::Building) => {
                if tokio::time::timeout(BUILD_POLL, service.shutdown.cancelled()).await.is_ok() {
                    return Err(Stopped::ShutDown);
                }
            }
        }
    }
    if waiting && !imports.set_import_waiting(job_id, &service.node_id, None).await? {
        return Err(Stopped::Lost);
    }
    let Some((hash, component)) = service.store.strategies().active_component(tenant, campaign_id, StrategyType::DataLoad).await? else {
        return Ok(None);
    };
    Ok(Some(service.strategies.load(&hash, component).await.map_err(internal)?))
}

async fn import_batches(run: &Run<'_>, mut batches: Batches, writing: &mut Writes, tally: &mut Tally) -> Result<(), Stopped> {
    let in_flight = match run.service.store.backend() {
        Backend::Postgres => POSTGRES_WRITES_IN_FLIGHT,
        Backend::Sqlite => 1,
    };
    loop {
        // A shutdown stops the import between batches: what was read is
        // written (below, and by the caller), nothing is half-done.
        let batch = tokio::select! {
            biased;
            () = run.service.shutdown.cancelled() => return Err(Stopped::ShutDown),
            batch = batches.recv() => match batch {
                Some(batch) => batch,
                None => break,
            },
        };
        let rows = batch.len() as i64;
        let (accepted, rejected): (Vec<_>, Vec<_>) = batch.into_iter().partition(Result::is_ok);
        let rejected: Vec<RejectedRow> = rejected
            .into_iter()
            .filter_map(Result::err)
            .map(|error| RejectedRow { line: error.line, column: error.column, reason: error.message })
            .collect();
        let prepared = prepare_batch(run, accepted.into_iter().filter_map(Result::ok).collect()).await?;
        while writing.in_flight.len() >= in_flight {
            let write = writing.in_flight.pop_front().expect("a write in flight");
            finish_write(run.service, write, tally).await?;
        }
        // The report as it stands once this batch is written.
        let rejected_count = rejected.len() as i64;
        writing.report.rejected.extend(rejected);
        writing.report.strategy_errors.extend(prepared.failures);
        let batch = ImportBatch {
            job_id: run.job_id.to_owned(),
            node_id: run.service.node_id.to_string(),
            tenant_id: run.options.tenant.clone(),
            campaign_id: run.options.campaign.id.clone(),
            contacts: prepared.writes,
            invocations: prepared.invocations,
            rows,
            rejected: rejected_count,
            report: writing.report.clone(),
        };
        let store = run.service.store.clone();
        let previous = writing.committed.take();
        let (committed, turn) = tokio::sync::oneshot::channel();
        writing.committed = Some(turn);
        writing.in_flight.push_back(tokio::spawn(async move {
            let turn = async move {
                match previous {
                    Some(previous) => previous.await.is_ok(),
                    None => true,
                }
            };
            let written = store.imports().write_import_batch(&batch, turn).await?;
            if written.is_some() {
                let _ = committed.send(());
            }
            Ok::<_, StoreError>(written)
        }));
    }
    Ok(())
}

/// An import's batches being written, oldest first.
#[derive(Default)]
struct Writes {
    in_flight: std::collections::VecDeque<WriteTask>,
    /// Says when the newest batch has committed: the next one's turn.
    committed: Option<tokio::sync::oneshot::Receiver<()>>,
    /// The job's report as it stands once the newest batch is written.
    report: ImportReport,
}

/// A batch as it will be written.
struct PreparedBatch {
    /// The contacts, with the error DATA_LOAD left on each.
    writes: Vec<(Contact, Option<serde_json::Value>)>,
    /// The report's lines for the rows whose DATA_LOAD failed.
    failures: Vec<StrategyFailure>,
    invocations: Vec<NewInvocation>,
}

/// Runs DATA_LOAD over a batch's rows, each with the contact it updates.
async fn prepare_batch(run: &Run<'_>, rows: Vec<ImportRow>) -> Result<PreparedBatch, Stopped> {
    let mut existing = match run.strategy {
        Some(_) => {
            let object_ids: Vec<String> = rows.iter().map(|row| row.contact.object_id.clone()).collect();
            run.service.store.contacts().find_contacts(&run.options.tenant, &run.options.campaign.id, &object_ids).await?
        }
        None => Default::default(),
    };
    let work = rows.into_iter().map(|row| {
        let stored = existing.remove(&row.contact.object_id).map(|stored| stored.contact);
        prepare(run, row, stored)
    });
    let prepared: Vec<PreparedRow> = futures::stream::iter(work).buffered(PARALLEL_INVOCATIONS).collect().await;
    let mut batch = PreparedBatch { writes: Vec::with_capacity(prepared.len()), failures: Vec::new(), invocations: Vec::with_capacity(prepared.len()) };
    for row in prepared {
        batch.failures.extend(row.failure);
        batch.invocations.extend(row.invocation);
        batch.writes.push((row.contact, row.last_error));
    }
    Ok(batch)
}

/// A batch being written: the job's counts once it committed, `None` when
/// it did not (the job was not this node's any more, or the batch before
/// it did not commit).
type WriteTask = tokio::task::JoinHandle<Result<Option<ImportCounts>, StoreError>>;

/// Waits for a batch's write and takes the job's counts after it.
async fn finish_write(service: &ImportService, write: WriteTask, tally: &mut Tally) -> Result<(), Stopped> {
    let Some(counts) = write.await.map_err(internal)?? else {
        return Err(Stopped::Lost);
    };
    let before = std::mem::replace(&mut tally.counts, counts);
    for (outcome, rows) in [("accepted", counts.accepted - before.accepted), ("updated", counts.updated - before.updated), ("rejected", counts.rejected - before.rejected)] {
        metrics::counter!("stratagem_import_rows_total", "outcome" => outcome).increment(rows.max(0) as u64);
    }
    // PostgreSQL plans each batch's lookup of existing contacts from its
    // statistics; statistics from before the import grew the campaign make
    // it scan the whole campaign for every batch (docs/BENCHMARKS.md).
    // Refreshing them each time the written count doubles keeps the plans
    // right at a few refreshes per import. The import goes on meanwhile.
    if tally.refreshing.as_ref().is_some_and(|refresh| refresh.is_finished()) {
        let refresh = tally.refreshing.take().expect("a refresh");
        refresh.await.map_err(internal)??;
    }
    let written = tally.counts.accepted + tally.counts.updated;
    if written >= tally.statistics_due_at && tally.refreshing.is_none() {
        let store = service.store.clone();
        tally.refreshing = Some(tokio::spawn(async move { store.refresh_statistics().await }));
        tally.statistics_due_at = written * 2;
    }
    Ok(())
}

/// Runs DATA_LOAD for one row; a failure is recorded on the contact and
/// in the job's report, with the row's line and the invocation kept.
async fn prepare(run: &Run<'_>, row: ImportRow, existing: Option<Contact>) -> PreparedRow {
    let Some(strategy) = &run.strategy else { return PreparedRow { contact: row.contact, last_error: None, failure: None, invocation: None } };
    let loaded = stratagem_engine::run_data_load(strategy, &run.options, row.contact.clone(), existing, Some(run.job_id)).await;
    let Some(error) = loaded.error else {
        return PreparedRow { contact: loaded.contact, last_error: None, failure: None, invocation: Some(loaded.invocation) };
    };
    let detail = serde_json::json!({"error": error, "message": error.to_string(), "input": row.contact, "invocation_id": loaded.invocation.record.id});
    let failure = StrategyFailure {
        line: row.line,
        object_id: row.contact.object_id.clone(),
        error: serde_json::to_value(&error).unwrap_or_default(),
        message: error.to_string(),
        invocation_id: Some(loaded.invocation.record.id.clone()),
    };
    PreparedRow { contact: loaded.contact, last_error: Some(detail), failure: Some(failure), invocation: Some(loaded.invocation) }
}

/// One row as DATA_LOAD left it.
struct PreparedRow {
    contact: Contact,
    last_error: Option<serde_json::Value>,
    failure: Option<StrategyFailure>,
    invocation: Option<NewInvocation>,
}
