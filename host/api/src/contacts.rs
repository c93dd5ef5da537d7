//! Contacts: import (CSV or JSON Lines, running the DATA_LOAD strategy on
//! every row), the import job's progress and report, the contact list,
//! contact detail and export.

use std::ops::ControlFlow;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use stratagem_domain::contact_file::{self, FileError, FileFormat, ImportRow};
use stratagem_domain::{CampaignContext, CampaignStatus, Contact, StrategyType};
use stratagem_runtime::{InvokeOptions, Isolation, Strategy};
use stratagem_store::{
    Backend, ContactExport, ContactFilter, ContactSummary, ImportBatch, ImportCounts, ImportEnd, ImportJob, ImportReport,
    InterruptedReason, RejectedRow, SessionRecord, StoredContact, StrategyFailure,
};
use tokio::io::{AsyncSeekExt, AsyncWriteExt};

use crate::auth::Tenant;
use crate::problem::{read_body_within, ApiError, ApiResult, Position};
use crate::{AppState, Query, IMPORT_LIMIT_BYTES};

/// Contacts written per transaction.
const BATCH: usize = 500;
/// Imports in progress at once on a node (upload, parse and job); another
/// one is told to come back (429).
pub(crate) const IMPORTS_AT_ONCE: usize = 2;
/// How long a contact file may take to arrive: its import's slot is held
/// meanwhile. 512 MiB in 15 minutes is 0.6 MB/s.
pub(crate) const UPLOAD_LIMIT: std::time::Duration = std::time::Duration::from_secs(15 * 60);
/// Strategy invocations in flight per import.
const PARALLEL_INVOCATIONS: usize = 4;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/campaigns/{id}/imports", post(import))
        .route("/imports/{id}", get(import_job))
        .route("/campaigns/{id}/contacts", get(list))
        .route("/campaigns/{id}/contacts/export", get(export))
        .route("/campaigns/{id}/contacts/{object_id}", get(read))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportQuery {
    /// `csv` or `jsonl`; detected from the content type and body otherwise.
    format: Option<String>,
    file_name: Option<String>,
}

/// A contact file's format: `?format=` if given, else detected from the
/// file name, the content type and the body.
pub(crate) fn file_format(format: Option<&str>, file_name: Option<&str>, headers: &HeaderMap, body: &[u8]) -> ApiResult<FileFormat> {
    Ok(match format {
        Some("csv") => FileFormat::Csv,
        Some("jsonl" | "ndjson" | "json") => FileFormat::JsonLines,
        Some(other) => return Err(ApiError::BadRequest(format!("format `{other}` is not csv or jsonl"))),
        None => FileFormat::detect(file_name, headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()), body),
    })
}

pub(crate) fn file_error(error: FileError) -> ApiError {
    let position = match &error {
        FileError::NotUtf8 { line, column } => Some(Position { line: *line, column: Some(*column) }),
        FileError::Malformed { line, column, .. } => Some(Position { line: *line, column: *column }),
        _ => None,
    };
    match error {
        FileError::TooLarge { limit_bytes } => ApiError::TooLarge { limit_bytes },
        other => ApiError::InvalidFile { detail: other.to_string(), position },
    }
}

async fn import(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(campaign_id): Path<String>,
    Query(query): Query<ImportQuery>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> ApiResult<Response> {
    // Taken before the body is read: a node holds at most this many files
    // (up to the upload limit each) in memory, until their imports end.
    // The refusal closes the connection: the upload is still arriving
    // unread, hyper drops such a connection after answering, and a client
    // that pooled it failed its next request.
    let Ok(slot) = state.imports.clone().try_acquire_owned() else {
        let busy = ApiError::Busy(format!(
            "{IMPORTS_AT_ONCE} contact imports are in progress on this node; try again when one has finished"
        ));
        return Ok(([(header::CONNECTION, "close")], busy).into_response());
    };
    // The slot is held while the file arrives: a file that trickles in
    // could otherwise hold it, and the node's imports, for good.
    let body = read_body_within(body, IMPORT_LIMIT_BYTES, state.upload_limit, || {
        format!(
            "the file took longer than {} s to upload; send it over a faster connection, or split it into smaller files",
            state.upload_limit.as_secs()
        )
    })
    .await?;
    let campaign = state.store.campaign(&tenant, &campaign_id).await?;
    if campaign.status == CampaignStatus::Finished {
        return Err(ApiError::Conflict { detail: "the campaign is FINISHED; contacts can no longer be imported".into(), allowed: None });
    }
    let format = file_format(query.format.as_deref(), query.file_name.as_deref(), &headers, &body)?;
    // The whole file is checked once before anything is written, since a
    // problem with the file can sit on its last line; the import then
    // reads it a batch at a time, so its rows are never all held at once.
    // Checking is CPU work: keep it off the async workers.
    let file = body.clone();
    let rows = tokio::task::spawn_blocking(move || contact_file::count_rows(format, &file, IMPORT_LIMIT_BYTES as u64))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(file_error)?;
    let job = state.store.create_import_job(&tenant, &campaign_id, query.file_name.as_deref(), rows as i64, &state.node_id).await?;
    let context = CampaignContext { id: campaign.id.clone(), name: campaign.name.clone(), result_fields: campaign.result_fields.clone() };
    tokio::spawn(run_import(state, tenant, context, job.id.clone(), read_batches(format, body), slot));
    Ok((StatusCode::ACCEPTED, Json(job)).into_response())
}

/// What an import has committed so far: the job row holds the same.
#[derive(Default)]
struct Tally {
    counts: ImportCounts,
    report: ImportReport,
    /// Contacts written by when the database's statistics are refreshed next.
    statistics_due_at: i64,
}

/// A file's rows, a batch at a time.
type Batches = tokio::sync::mpsc::Receiver<Vec<Result<ImportRow, contact_file::RowError>>>;

/// Reads a file that was read to its end before (so it reads the same
/// again, without a file error) on a blocking thread, and hands over its
/// rows `BATCH` at a time, a couple of batches ahead of the import. The
/// reading stops when the import does.
fn read_batches(format: FileFormat, file: axum::body::Bytes) -> Batches {
    let (sender, receiver) = tokio::sync::mpsc::channel(2);
    tokio::task::spawn_blocking(move || {
        let mut batch = Vec::with_capacity(BATCH);
        let _ = contact_file::read_rows(format, &file, IMPORT_LIMIT_BYTES as u64, |row| {
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

/// How a node keeps its imports' jobs alive, and finds those of nodes
/// that stopped. A node renews the heartbeat of each job it runs every
/// `heartbeat_every` (and with every batch it writes); every `sweep_every`
/// each node marks `interrupted` the running jobs not heard from for
/// `lapse`. The lapse must be several heartbeats long: a live node whose
/// job is taken for dead has its next batch refused and stops, so a
/// wrong guess costs an import but never a count.
#[derive(Debug, Clone, Copy)]
pub struct ImportLeases {
    pub heartbeat_every: std::time::Duration,
    pub lapse: std::time::Duration,
    pub sweep_every: std::time::Duration,
}

impl Default for ImportLeases {
    /// A heartbeat every 10 s; a job silent for a minute (six missed
    /// heartbeats) is interrupted within 15 s more.
    fn default() -> Self {
        Self {
            heartbeat_every: std::time::Duration::from_secs(10),
            lapse: std::time::Duration::from_secs(60),
            sweep_every: std::time::Duration::from_secs(15),
        }
    }
}

/// At a node's start-up: on SQLite, which one process uses at a time,
/// every import still `running` was left by a process that stopped, and is
/// marked `interrupted` at once. On every backend, imports whose node's
/// heartbeat lapsed are marked interrupted now and every `sweep_every`
/// after, by the task this returns.
pub async fn recover_imports(state: AppState) -> Result<tokio::task::JoinHandle<()>, stratagem_store::StoreError> {
    if state.store.backend() == Backend::Sqlite {
        let interrupted = state.store.interrupt_imports_of_other_nodes(&state.node_id).await?;
        if interrupted > 0 {
            tracing::warn!(interrupted, "import jobs left running by a stopped process were marked interrupted");
        }
    }
    let leases = state.import_leases;
    let lapse = chrono::Duration::from_std(leases.lapse).unwrap_or(chrono::Duration::MAX);
    let interrupted = state.store.interrupt_lapsed_imports(chrono::Utc::now() - lapse).await?;
    if interrupted > 0 {
        tracing::warn!(interrupted, "import jobs whose node stopped were marked interrupted");
    }
    Ok(tokio::spawn(async move {
        let mut sweep = tokio::time::interval(leases.sweep_every);
        sweep.tick().await;
        loop {
            sweep.tick().await;
            match state.store.interrupt_lapsed_imports(chrono::Utc::now() - lapse).await {
                Ok(0) => {}
                Ok(interrupted) => tracing::warn!(interrupted, "import jobs whose node stopped were marked interrupted"),
                Err(error) => tracing::warn!(%error, "could not look for import jobs whose node stopped"),
            }
        }
    }))
}

/// Why an import stopped before its end.
enum Stopped {
    /// The job is no longer this node's (taken for dead and marked
    /// interrupted): it wrote nothing more, and there is nothing to close.
    Lost,
    Failed(ApiError),
}

impl From<ApiError> for Stopped {
    fn from(error: ApiError) -> Self {
        Stopped::Failed(error)
    }
}

impl From<stratagem_store::StoreError> for Stopped {
    fn from(error: stratagem_store::StoreError) -> Self {
        Stopped::Failed(error.into())
    }
}

/// Runs an import in its own task while renewing its job's heartbeat, then
/// closes the job: `done`, or `interrupted` on an error or a panic.
async fn run_import(
    state: AppState,
    tenant: String,
    campaign: CampaignContext,
    job_id: String,
    batches: Batches,
    _slot: tokio::sync::OwnedSemaphorePermit,
) {
    let node_id = state.node_id.clone();
    let mut import = tokio::spawn({
        let (state, job_id) = (state.clone(), job_id.clone());
        async move {
            let mut tally = Tally::default();
            import_rows(&state, &tenant, &campaign, &job_id, batches, &mut tally).await?;
            // Before the job reads as done, so that a campaign started on
            // seeing it is planned on its new rows.
            if tally.counts.accepted + tally.counts.updated > 0 {
                state.store.refresh_statistics().await?;
            }
            Ok::<(), Stopped>(())
        }
    });
    let mut heartbeat = tokio::time::interval(state.import_leases.heartbeat_every);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    heartbeat.tick().await;
    let outcome = loop {
        tokio::select! {
            outcome = &mut import => break outcome,
            _ = heartbeat.tick() => match state.store.renew_import_heartbeat(&job_id, &node_id).await {
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
        Ok(Err(Stopped::Failed(error))) => {
            tracing::error!(%job_id, %error, "import stopped");
            ImportEnd::Interrupted(InterruptedReason::Error)
        }
        Err(panic) => {
            tracing::error!(%job_id, %panic, "import panicked");
            ImportEnd::Interrupted(InterruptedReason::Error)
        }
    };
    match state.store.finish_import_job(&job_id, &node_id, end).await {
        Ok(true) => {}
        Ok(false) => tracing::warn!(%job_id, "the import's job was marked interrupted before it could be closed"),
        Err(error) => tracing::error!(%job_id, %error, "could not close the import job"),
    }
}

async fn import_rows(
    state: &AppState,
    tenant: &str,
    campaign: &CampaignContext,
    job_id: &str,
    batches: Batches,
    tally: &mut Tally,
) -> Result<(), Stopped> {
    let strategy: Option<Arc<Strategy>> = match state.store.active_component(tenant, &campaign.id, StrategyType::DataLoad).await? {
        Some((hash, component)) => {
            let service = state.strategies.clone();
            Some(
                tokio::task::spawn_blocking(move || service.load(&hash, &component))
                    .await
                    .map_err(|e| ApiError::Internal(e.to_string()))?
                    .map_err(|e| ApiError::Internal(e.to_string()))?,
            )
        }
        None => None,
    };
    let options = InvokeOptions {
        tenant: tenant.to_owned(),
        campaign: campaign.clone(),
        isolation: Isolation::ReuseInstance,
        ..InvokeOptions::default()
    };
    // Batch N is written while batch N+1's strategies run: the writer is
    // one database connection, the strategies the CPU. Batches never share
    // a contact (the parser rejects an object id repeated in a file), so
    // none reads a contact another is writing. Each batch commits the
    // job's counts with its contacts, so the job counts exactly the rows
    // written; a write in flight when the import stops on an error is
    // waited for, and its rows count once it committed.
    let mut writing = None;
    let outcome = import_batches(state, tenant, campaign, job_id, strategy, &options, batches, &mut writing, tally).await;
    let written = finish_write(state, writing, tally).await;
    outcome.and(written)
}

#[allow(clippy::too_many_arguments)]
async fn import_batches(
    state: &AppState,
    tenant: &str,
    campaign: &CampaignContext,
    job_id: &str,
    strategy: Option<Arc<Strategy>>,
    options: &InvokeOptions,
    mut batches: Batches,
    writing: &mut Option<WriteTask>,
    tally: &mut Tally,
) -> Result<(), Stopped> {
    while let Some(batch) = batches.recv().await {
        let rows = batch.len() as i64;
        let mut rejected = Vec::new();
        let mut accepted_rows = Vec::with_capacity(batch.len());
        for row in batch {
            match row {
                Ok(row) => accepted_rows.push(row),
                Err(error) => rejected.push(RejectedRow { line: error.line, column: error.column, reason: error.message }),
            }
        }
        let mut existing = match strategy {
            Some(_) => {
                let object_ids: Vec<String> = accepted_rows.iter().map(|row| row.contact.object_id.clone()).collect();
                state.store.find_contacts(tenant, &campaign.id, &object_ids).await?
            }
            None => Default::default(),
        };
        let work = accepted_rows.into_iter().map(|row| {
            let stored = existing.remove(&row.contact.object_id).map(|stored| stored.contact);
            prepare(strategy.as_ref(), options, row, stored)
        });
        let prepared: Vec<(Contact, Option<serde_json::Value>, Option<StrategyFailure>)> =
            futures::stream::iter(work).buffered(PARALLEL_INVOCATIONS).collect().await;
        let mut writes = Vec::with_capacity(prepared.len());
        let mut failures = Vec::new();
        for (contact, last_error, failure) in prepared {
            failures.extend(failure);
            writes.push((contact, last_error));
        }
        finish_write(state, writing.take(), tally).await?;
        // The report as it stands once this batch is written.
        let mut report = tally.report.clone();
        let rejected_count = rejected.len() as i64;
        report.rejected.extend(rejected);
        report.strategy_errors.extend(failures);
        let batch = ImportBatch {
            job_id: job_id.to_owned(),
            node_id: state.node_id.to_string(),
            tenant_id: tenant.to_owned(),
            campaign_id: campaign.id.clone(),
            contacts: writes,
            rows,
            rejected: rejected_count,
            before: tally.counts,
            report,
        };
        let store = state.store.clone();
        let task = tokio::spawn(async move {
            let written = store.write_import_batch(&batch).await?;
            Ok::<_, stratagem_store::StoreError>(written.map(|counts| (counts, batch.report)))
        });
        *writing = Some(task);
    }
    Ok(())
}

/// A batch being written: the job's counts and report once it committed,
/// `None` when the job was not this node's any more.
type WriteTask = tokio::task::JoinHandle<Result<Option<(ImportCounts, ImportReport)>, stratagem_store::StoreError>>;

/// Waits for a batch's write and takes the job's counts after it.
async fn finish_write(state: &AppState, writing: Option<WriteTask>, tally: &mut Tally) -> Result<(), Stopped> {
    let Some(task) = writing else { return Ok(()) };
    let Some((counts, report)) = task.await.map_err(|e| ApiError::Internal(e.to_string()))?? else {
        return Err(Stopped::Lost);
    };
    tally.counts = counts;
    tally.report = report;
    // PostgreSQL plans each batch's lookup of existing contacts from its
    // statistics. Statistics from before the import grew the campaign make
    // it scan the whole campaign for every batch, so lookups slowed from
    // 1.3 ms to 52 ms by 400k contacts. Refreshing them each time the
    // written count doubles keeps the plans right, at about a dozen
    // refreshes for a million contacts.
    let written = tally.counts.accepted + tally.counts.updated;
    if written >= tally.statistics_due_at {
        state.store.refresh_statistics().await?;
        tally.statistics_due_at = written * 2;
    }
    Ok(())
}

/// Runs DATA_LOAD for one row; a failure is recorded on the contact and
/// in the job's report, with the row's line.
async fn prepare(
    strategy: Option<&Arc<Strategy>>,
    options: &InvokeOptions,
    row: ImportRow,
    existing: Option<Contact>,
) -> (Contact, Option<serde_json::Value>, Option<StrategyFailure>) {
    let Some(strategy) = strategy else { return (row.contact, None, None) };
    match stratagem_engine::run_data_load(strategy, options, row.contact.clone(), existing).await {
        (contact, Ok(())) => (contact, None, None),
        (contact, Err(error)) => {
            let detail = serde_json::json!({"error": error, "message": error.to_string(), "input": row.contact});
            let failure = StrategyFailure {
                line: row.line,
                object_id: row.contact.object_id.clone(),
                error: serde_json::to_value(&error).unwrap_or_default(),
                message: error.to_string(),
            };
            (contact, Some(detail), Some(failure))
        }
    }
}

async fn import_job(State(state): State<AppState>, Tenant(tenant): Tenant, Path(id): Path<String>) -> ApiResult<Json<ImportJob>> {
    Ok(Json(state.store.import_job(&tenant, &id).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    stage: Option<String>,
    q: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
}

#[derive(Serialize)]
struct ContactPage {
    total: i64,
    limit: i64,
    offset: i64,
    contacts: Vec<ContactSummary>,
}

async fn list(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(campaign_id): Path<String>,
    Query(query): Query<ListQuery>,
) -> ApiResult<Json<ContactPage>> {
    let limit = query.limit.unwrap_or(50);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::BadRequest("limit must be between 1 and 1000".into()));
    }
    let offset = query.offset.unwrap_or(0);
    if offset < 0 {
        return Err(ApiError::BadRequest("offset must not be negative".into()));
    }
    let filter = ContactFilter { stage: query.stage, search: query.q, limit, offset };
    let (contacts, total) = state.store.list_contacts(&tenant, &campaign_id, &filter).await?;
    Ok(Json(ContactPage { total, limit, offset, contacts }))
}

/// A contact with how each of its sessions went (the communication
/// history of the Contacts tab) and its results as the 360 view shows them.
#[derive(Serialize)]
struct ContactDetail {
    #[serde(flatten)]
    contact: StoredContact,
    sessions: Vec<SessionRecord>,
    result_view: Vec<ResultEntry>,
}

/// One line of 360 View > Results: the default ResultFlag and
/// ResultDatetime, then each of the campaign's result fields, named and
/// described as in Settings > Campaign Results (`null` until filled).
#[derive(Serialize)]
struct ResultEntry {
    code: String,
    name: String,
    description: String,
    value: serde_json::Value,
}

fn result_view(contact: &StoredContact, fields: &[stratagem_domain::ResultField]) -> Vec<ResultEntry> {
    let entry = |code: &str, name: &str, description: &str, value: serde_json::Value| ResultEntry {
        code: code.into(),
        name: name.into(),
        description: description.into(),
        value,
    };
    let contact_fields = &contact.contact;
    let mut view = vec![
        entry("ResultFlag", "Result", "true: success, false: failure, null: not determined yet", contact_fields.result_flag.into()),
        entry(
            "ResultDatetime",
            "Result date",
            "When the result was determined",
            serde_json::to_value(contact_fields.result_datetime).unwrap_or_default(),
        ),
    ];
    for field in fields {
        let value = contact_fields.results.get(&field.code).cloned().unwrap_or(serde_json::Value::Null);
        view.push(entry(&field.code, &field.name, &field.description, value));
    }
    view
}

async fn read(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path((campaign_id, object_id)): Path<(String, String)>,
) -> ApiResult<Json<ContactDetail>> {
    let campaign = state.store.campaign(&tenant, &campaign_id).await?;
    let (contact, sessions) = state.store.contact_detail(&tenant, &campaign_id, &object_id).await?;
    let result_view = result_view(&contact, &campaign.result_fields);
    Ok(Json(ContactDetail { contact, sessions, result_view }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportQuery {
    format: Option<String>,
}

/// Exports in progress at once on a node; another one is told to come back
/// (429). Each holds a temporary file of the campaign's size until its
/// download ends, so this bounds the disk they take.
pub(crate) const EXPORTS_AT_ONCE: usize = 2;
/// How long a download may take: a client that stops reading holds an
/// export's slot and file until then.
pub(crate) const DOWNLOAD_LIMIT: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// The export is written to an unnamed temporary file a chunk of contacts at
/// a time, then sent from it: memory holds one chunk whatever the campaign's
/// size, and the snapshot and its connection are held for as long as the
/// database takes to read, not for as long as the client takes to download.
async fn export(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(campaign_id): Path<String>,
    Query(query): Query<ExportQuery>,
) -> ApiResult<Response> {
    let csv = match query.format.as_deref().unwrap_or("csv") {
        "csv" => true,
        "jsonl" => false,
        other => return Err(ApiError::BadRequest(format!("format `{other}` is not csv or jsonl"))),
    };
    let Ok(slot) = state.exports.clone().try_acquire_owned() else {
        return Err(ApiError::Busy(format!(
            "{EXPORTS_AT_ONCE} contact exports are in progress on this node; try again when one has finished"
        )));
    };
    let reader = state.store.export_contacts(&tenant, &campaign_id).await?;
    let (file, length) = spool(reader, csv).await?;
    let (content_type, extension) = if csv { ("text/csv; charset=utf-8", "csv") } else { ("application/x-ndjson", "jsonl") };
    let disposition = format!("attachment; filename=\"contacts-{campaign_id}.{extension}\"");
    let headers = [
        (header::CONTENT_TYPE, content_type.to_owned()),
        (header::CONTENT_DISPOSITION, disposition),
        (header::CONTENT_LENGTH, length.to_string()),
    ];
    Ok((headers, download(file, slot, state.download_limit)).into_response())
}

/// Writes an export to an unnamed temporary file, a chunk of contacts at a
/// time; returns the file rewound, and its length.
async fn spool(mut reader: ContactExport, csv: bool) -> ApiResult<(tokio::fs::File, u64)> {
    let spool_error = |error: std::io::Error| ApiError::Internal(format!("export file: {error}"));
    let mut file = tokio::io::BufWriter::new(tokio::fs::File::from_std(tempfile::tempfile().map_err(spool_error)?));
    let mut out = Vec::new();
    let csv_export = if csv {
        let export = contact_file::CsvExport::new(reader.parameter_names().await?);
        export.write_header(&mut out);
        Some(export)
    } else {
        None
    };
    while let Some(chunk) = reader.next_chunk().await? {
        let contacts: Vec<Contact> = chunk.into_iter().map(|stored| stored.contact).collect();
        match &csv_export {
            Some(export) => export.write_rows(&contacts, &mut out),
            None => contact_file::write_jsonl(&contacts, &mut out),
        }
        file.write_all(&out).await.map_err(spool_error)?;
        out.clear();
    }
    file.write_all(&out).await.map_err(spool_error)?;
    file.flush().await.map_err(spool_error)?;
    let mut file = file.into_inner();
    let length = file.seek(std::io::SeekFrom::End(0)).await.map_err(spool_error)?;
    file.rewind().await.map_err(spool_error)?;
    Ok((file, length))
}

/// A body that sends `file` and holds the export's slot until the download
/// ends or `limit` passes. A task feeds it: a client that stops reading is
/// not polled again, so a deadline on the body itself would never fire; the
/// task's sends time out instead, and it drops the file and the slot. The
/// body then ends short of its Content-Length, so the client sees the
/// download fail.
fn download(file: tokio::fs::File, slot: tokio::sync::OwnedSemaphorePermit, limit: std::time::Duration) -> axum::body::Body {
    let (sender, receiver) = tokio::sync::mpsc::channel(1);
    let deadline = tokio::time::Instant::now() + limit;
    tokio::spawn(async move {
        let _slot = slot;
        let mut chunks = tokio_util::io::ReaderStream::new(file);
        while let Some(chunk) = chunks.next().await {
            // Ends on the limit, or when the client has gone (body dropped).
            if !matches!(tokio::time::timeout_at(deadline, sender.send(chunk)).await, Ok(Ok(()))) {
                return;
            }
        }
    });
    axum::body::Body::from_stream(futures::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|chunk| (chunk, receiver))
    }))
}
