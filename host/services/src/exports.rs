//! Contact exports: a campaign's contacts file (what an import reads, so
//! it imports into another campaign as the same contacts) and its state
//! report (where each contact stands), each as CSV or JSON Lines.
//!
//! The export is written to an unnamed temporary file a chunk of contacts
//! at a time, then handed over: memory holds one chunk whatever the
//! campaign's size, and the database snapshot and its connection are held
//! for as long as the database takes to read, not for as long as the
//! client takes to download.

use std::sync::Arc;

use stratagem_domain::contact_file;
use stratagem_domain::Contact;
use stratagem_store::{ContactExport, Store, StoreError, StoredContact};
use tokio::io::{AsyncSeekExt, AsyncWriteExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::UnknownFormat;

/// Exports in progress at once on a node. Each holds a temporary file of
/// the campaign's size until its download ends, so this bounds the disk
/// they take.
pub const EXPORTS_AT_ONCE: usize = 2;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{EXPORTS_AT_ONCE} contact exports are in progress on this node; try again when one has finished")]
    Busy,
    #[error(transparent)]
    UnknownFormat(#[from] UnknownFormat),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("export file: {0}")]
    Spool(#[from] std::io::Error),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Csv,
    JsonLines,
}

impl ExportFormat {
    /// `csv` (the default) or `jsonl`.
    pub fn parse(format: Option<&str>) -> Result<Self, ExportError> {
        match format.unwrap_or("csv") {
            "csv" => Ok(ExportFormat::Csv),
            "jsonl" => Ok(ExportFormat::JsonLines),
            other => Err(UnknownFormat(other.to_owned()).into()),
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            ExportFormat::Csv => "text/csv; charset=utf-8",
            ExportFormat::JsonLines => "application/x-ndjson",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            ExportFormat::Csv => "csv",
            ExportFormat::JsonLines => "jsonl",
        }
    }
}

/// What an export holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportContent {
    /// The contacts file: required fields and parameters, nothing else.
    Contacts,
    /// The state report: stage, communications, outcome and results.
    Report,
}

/// A finished export: the file, rewound, and its length. It holds its
/// slot until dropped, so keep it for as long as the download lasts.
pub struct Export {
    pub file: tokio::fs::File,
    pub length: u64,
    pub format: ExportFormat,
    pub slot: OwnedSemaphorePermit,
}

#[derive(Clone)]
pub struct ExportService {
    store: Store,
    slots: Arc<Semaphore>,
}

impl ExportService {
    pub fn new(store: Store) -> Self {
        Self { store, slots: Arc::new(Semaphore::new(EXPORTS_AT_ONCE)) }
    }

    pub async fn export(&self, tenant: &str, campaign_id: &str, content: ExportContent, format: ExportFormat) -> Result<Export, ExportError> {
        let slot = self.slots.clone().try_acquire_owned().map_err(|_| ExportError::Busy)?;
        let reader = self.store.contacts().export_contacts(tenant, campaign_id).await?;
        let (file, length) = spool(reader, content, format).await?;
        Ok(Export { file, length, format, slot })
    }
}

/// How one export writes its chunks.
enum Writer {
    ContactsCsv(contact_file::CsvExport),
    ContactsJsonLines,
    ReportCsv(contact_file::ReportCsv),
    ReportJsonLines,
}

impl Writer {
    /// The writer, with the CSV header written to `out`.
    async fn start(reader: &mut ContactExport, content: ExportContent, format: ExportFormat, out: &mut Vec<u8>) -> Result<Self, ExportError> {
        Ok(match (content, format) {
            (ExportContent::Contacts, ExportFormat::Csv) => {
                let export = contact_file::CsvExport::new(reader.parameter_columns().await?);
                export.write_header(out);
                Writer::ContactsCsv(export)
            }
            (ExportContent::Contacts, ExportFormat::JsonLines) => Writer::ContactsJsonLines,
            (ExportContent::Report, ExportFormat::Csv) => {
                let report = contact_file::ReportCsv::new(reader.result_codes().await?);
                report.write_header(out);
                Writer::ReportCsv(report)
            }
            (ExportContent::Report, ExportFormat::JsonLines) => Writer::ReportJsonLines,
        })
    }

    async fn write(&self, reader: &mut ContactExport, chunk: Vec<StoredContact>, out: &mut Vec<u8>) -> Result<(), ExportError> {
        match self {
            Writer::ReportCsv(report) => {
                let summaries = reader.summaries(&chunk).await?;
                let rows: Vec<_> = chunk.iter().map(|stored| &stored.contact).zip(&summaries).collect();
                report.write_rows(&rows, out);
            }
            other => {
                let contacts: Vec<Contact> = chunk.into_iter().map(|stored| stored.contact).collect();
                match other {
                    Writer::ContactsCsv(export) => export.write_rows(&contacts, out),
                    Writer::ContactsJsonLines => contact_file::write_jsonl(&contacts, out),
                    _ => contact_file::write_report_jsonl(&contacts, out),
                }
            }
        }
        Ok(())
    }
}

/// Writes an export to an unnamed temporary file, a chunk of contacts at a
/// time; returns the file rewound, and its length.
async fn spool(mut reader: ContactExport, content: ExportContent, format: ExportFormat) -> Result<(tokio::fs::File, u64), ExportError> {
    let mut file = tokio::io::BufWriter::new(tokio::fs::File::from_std(tempfile::tempfile()?));
    let mut out = Vec::new();
    let writer = Writer::start(&mut reader, content, format, &mut out).await?;
    while let Some(chunk) = reader.next_chunk().await? {
        writer.write(&mut reader, chunk, &mut out).await?;
        file.write_all(&out).await?;
        out.clear();
    }
    file.write_all(&out).await?;
    file.flush().await?;
    let mut file = file.into_inner();
    let length = file.seek(std::io::SeekFrom::End(0)).await?;
    file.rewind().await?;
    Ok((file, length))
}
