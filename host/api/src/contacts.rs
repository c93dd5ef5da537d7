//! Contacts: import (CSV or JSON Lines, running the DATA_LOAD strategy on
//! every row), the import job's progress and report, the contact list,
//! contact detail and export. The import and export workflows are
//! `stratagem_services::{imports, exports}`; these handlers read the
//! request, call them and answer.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::StreamExt;
use serde::Deserialize;
use stratagem_services::exports::{Export, ExportContent, ExportFormat};
use stratagem_services::imports::{ContactFile, FileInfo, ImportError, Upload};
use stratagem_store::{ContactFilter, ImportJob, StoredContact};
use stratagem_types::contact::{ContactDetail, ContactPage, ResultEntry};

use crate::auth::Tenant;
use crate::problem::{body_error, ApiError, ApiResult, Problem};
use crate::{AppState, Query, IMPORT_LIMIT_BYTES};

/// How long a contact file may take to arrive: it holds one of its
/// tenant's places meanwhile. 512 MiB in 15 minutes is 0.6 MB/s.
pub(crate) const UPLOAD_LIMIT: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// Invocations shown with a contact, newest first.
const CONTACT_INVOCATIONS: i64 = 50;

#[derive(utoipa::OpenApi)]
#[openapi(paths(import, import_job, list, export, report, read))]
pub(crate) struct Api;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/campaigns/{id}/imports", post(import))
        .route("/imports/{id}", get(import_job))
        .route("/campaigns/{id}/contacts", get(list))
        .route("/campaigns/{id}/contacts/export", get(export))
        .route("/campaigns/{id}/contacts/report", get(report))
        .route("/campaigns/{id}/contacts/{object_id}", get(read))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ImportQuery {
    /// `csv` or `jsonl`; detected from the content type and body otherwise.
    #[param(schema_with = crate::openapi::file_format)]
    format: Option<String>,
    file_name: Option<String>,
}

#[utoipa::path(post, path = "/campaigns/{id}/imports", operation_id = "importContacts", tag = "contacts",
    summary = format!("Import contacts from CSV or JSON Lines (the body is the file, at most 512 MiB); runs DATA_LOAD per row. The job is `queued` (with `queue_position`) until one of the node's {} import slots is free for it: tenants take turns, a tenant runs {} at a time. 422 with line/column for a file that cannot be read at all; 409 when the campaign is FINISHED or every version of its DATA_LOAD strategy failed to build (the job waits while one is building, with `waiting_for`); 429 when the tenant already has {} imports uploading or queued on the node", stratagem_services::imports::IMPORTS_AT_ONCE, stratagem_services::imports::TENANT_SHARE, stratagem_services::imports::WAITING_PER_TENANT),
    params(ImportQuery),
    request_body(description = "The contact file: CSV with a header row, or JSON Lines of Contact", content((String = "text/csv"), (String = "application/x-ndjson"))),
    responses((status = 202, description = "The import job", body = Object), (status = 404, response = Problem), (status = 409, response = Problem), (status = 422, response = Problem), (status = 429, response = Problem)))]
async fn import(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(campaign_id): Path<String>,
    Query(query): Query<ImportQuery>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> ApiResult<Response> {
    // The refusal closes the connection: the upload is still arriving
    // unread, hyper drops such a connection after answering, and a client
    // that pooled it failed its next request.
    let mut upload = match state.imports.receive(&tenant) {
        Ok(upload) => upload,
        Err(refused) => return Ok(([(header::CONNECTION, "close")], ApiError::from(refused)).into_response()),
    };
    // A file that trickles in would hold one of the tenant's places for good.
    let late = || {
        format!(
            "the file took longer than {} s to upload; send it over a faster connection, or split it into smaller files",
            state.upload_limit.as_secs()
        )
    };
    tokio::time::timeout(state.upload_limit, spool(body, &mut upload)).await.map_err(|_| ApiError::RequestTimeout(late()))??;
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let about = FileInfo { format: query.format, file_name: query.file_name, content_type };
    let job = state.imports.start(upload, &tenant, &campaign_id, about).await?;
    Ok((StatusCode::ACCEPTED, Json(job)).into_response())
}

/// Writes the request body to the upload's file as it arrives, at most
/// [`IMPORT_LIMIT_BYTES`].
async fn spool(body: axum::body::Body, upload: &mut Upload) -> ApiResult<()> {
    use http_body_util::BodyExt;
    let mut body = http_body_util::Limited::new(body, IMPORT_LIMIT_BYTES);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|error| body_error(&*error, IMPORT_LIMIT_BYTES))?;
        if let Some(chunk) = frame.data_ref() {
            upload.write(chunk).await.map_err(|error| ApiError::from(ImportError::Spool(error)))?;
        }
    }
    Ok(())
}

/// An uploaded contact file with what the request says about it.
pub(crate) fn contact_file(bytes: Bytes, format: Option<String>, file_name: Option<String>, headers: &HeaderMap) -> ContactFile {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    ContactFile { bytes, format, file_name, content_type }
}

#[utoipa::path(get, path = "/imports/{id}", operation_id = "readImport", tag = "contacts",
    summary = "Import job: its place in the queue, progress and report (accepted, updated, rejected with line and reason, strategy errors with traceback). The counts are of committed rows; `status` is queued (`queue_position`: 1 starts next), running, done or interrupted (its server stopped, or an error): then `interrupted_reason` and `detail` say why and what was written",
    responses((status = 200, description = "The import job", body = Object), (status = 404, response = Problem)))]
async fn import_job(State(state): State<AppState>, Tenant(tenant): Tenant, Path(id): Path<String>) -> ApiResult<Json<ImportJob>> {
    Ok(Json(state.imports.job(&tenant, &id).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// only contacts at this stage
    stage: Option<String>,
    /// substring of object id, external id, name, email or phone
    q: Option<String>,
    #[param(minimum = 1, maximum = 1000, default = 50)]
    limit: Option<i64>,
    #[param(minimum = 0, maximum = 9223372036854775807i64, default = 0)]
    offset: Option<i64>,
}

#[utoipa::path(get, path = "/campaigns/{id}/contacts", operation_id = "listContacts", tag = "contacts",
    summary = "Contacts with current stage, communication count and outcome", params(ListQuery),
    responses((status = 200, description = "A page of contacts", body = ContactPage), (status = 404, response = Problem)))]
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
    let (contacts, total) = state.store.contacts().list_contacts(&tenant, &campaign_id, &filter).await?;
    Ok(Json(ContactPage { total, limit, offset, contacts }))
}

/// 360 View > Results: the default ResultFlag and ResultDatetime, then
/// each of the campaign's result fields, named and described as in
/// Settings > Campaign Results (`null` until filled).
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

#[utoipa::path(get, path = "/campaigns/{id}/contacts/{object_id}", operation_id = "readContact", tag = "contacts",
    summary = "Contact detail: parameters, results, communications, last strategy error, and `sessions` (per started communication: channel, A/B label, session_results such as OutcomeStatus and FailureDetail, ended_at, and `messages`: the conversation transcript with role AGENT or CONTACT), `result_view` (360 View > Results: ResultFlag, ResultDatetime, then each campaign result field with code, name, description and value), and `invocations`: its newest 50 strategy invocations with hook, outcome, error, logs, fuel, peak memory and duration",
    responses((status = 200, description = "The contact", body = ContactDetail), (status = 404, response = Problem)))]
async fn read(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path((campaign_id, object_id)): Path<(String, String)>,
) -> ApiResult<Json<ContactDetail>> {
    let campaign = state.store.campaigns().campaign(&tenant, &campaign_id).await?;
    let (contact, sessions) = state.store.contacts().contact_detail(&tenant, &campaign_id, &object_id).await?;
    let result_view = result_view(&contact, &campaign.result_fields);
    let invocations = state.store.invocations().of_contact(&tenant, &campaign_id, &object_id, CONTACT_INVOCATIONS).await?;
    Ok(Json(ContactDetail { contact, sessions, result_view, invocations }))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ExportQuery {
    #[param(schema_with = export_format)]
    format: Option<String>,
}

fn export_format() -> utoipa::openapi::schema::ObjectBuilder {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(["csv", "jsonl"]))
        .default(Some("csv".into()))
}

/// How long a download may take: a client that stops reading holds an
/// export's slot and file until then.
pub(crate) const DOWNLOAD_LIMIT: std::time::Duration = std::time::Duration::from_secs(15 * 60);

#[utoipa::path(get, path = "/campaigns/{id}/contacts/export", operation_id = "exportContacts", tag = "contacts",
    summary = format!("Download the contacts file, which imports into a campaign as the same contacts; 429 when {} exports are already in progress on the node", stratagem_services::exports::EXPORTS_AT_ONCE),
    description = "The required fields and the parameters, nothing of the contacts' state (see the report). \
        CSV: a parameter column whose values are not all text is named `<name>:json` and holds JSON values, which the import reads back with their types; \
        a cell a spreadsheet would run as a formula starts with `'`, which the import removes (phone and plain numbers are left as they are). \
        JSON Lines: one object per contact, parameters at the top level with their types. Read in one snapshot.",
    params(ExportQuery),
    responses((status = 200, description = "The contacts file", content((String = "text/csv"), (String = "application/x-ndjson"))), (status = 404, response = Problem), (status = 429, response = Problem)))]
async fn export(state: State<AppState>, tenant: Tenant, campaign_id: Path<String>, query: Query<ExportQuery>) -> ApiResult<Response> {
    download_export(state, tenant, campaign_id, query, ExportContent::Contacts).await
}

#[utoipa::path(get, path = "/campaigns/{id}/contacts/report", operation_id = "exportContactReport", tag = "contacts",
    summary = format!("Download where each contact stands: stage, communications, outcome and results; 429 when {} exports are already in progress on the node", stratagem_services::exports::EXPORTS_AT_ONCE),
    description = "CSV: object_id, external_id, name, current_stage, communications, sent, planned, outcome, result_flag, result_datetime, then one `results.<code>` column per result code; cells a spreadsheet would run are guarded with `'`. \
        JSON Lines: each contact whole, with its internal data, results and communications. Read in one snapshot; for reading, not for importing.",
    params(ExportQuery),
    responses((status = 200, description = "The report", content((String = "text/csv"), (String = "application/x-ndjson"))), (status = 404, response = Problem), (status = 429, response = Problem)))]
async fn report(state: State<AppState>, tenant: Tenant, campaign_id: Path<String>, query: Query<ExportQuery>) -> ApiResult<Response> {
    download_export(state, tenant, campaign_id, query, ExportContent::Report).await
}

async fn download_export(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(campaign_id): Path<String>,
    Query(query): Query<ExportQuery>,
    content: ExportContent,
) -> ApiResult<Response> {
    let format = ExportFormat::parse(query.format.as_deref())?;
    let export = state.exports.export(&tenant, &campaign_id, content, format).await?;
    let name = match content {
        ExportContent::Contacts => "contacts",
        ExportContent::Report => "contact-report",
    };
    let disposition = format!("attachment; filename=\"{name}-{campaign_id}.{}\"", format.extension());
    let headers = [
        (header::CONTENT_TYPE, format.content_type().to_owned()),
        (header::CONTENT_DISPOSITION, disposition),
        (header::CONTENT_LENGTH, export.length.to_string()),
    ];
    Ok((headers, download(export, state.download_limit)).into_response())
}

/// A body that sends the export's file and holds its slot until the
/// download ends or `limit` passes. A task feeds it: a client that stops
/// reading is not polled again, so a deadline on the body itself would
/// never fire; the task's sends time out instead, and it drops the file
/// and the slot. The body then ends short of its Content-Length, so the
/// client sees the download fail.
fn download(export: Export, limit: std::time::Duration) -> axum::body::Body {
    let (sender, receiver) = tokio::sync::mpsc::channel(1);
    let deadline = tokio::time::Instant::now() + limit;
    tokio::spawn(async move {
        let Export { file, slot: _slot, .. } = export;
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
