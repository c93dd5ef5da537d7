//! Application services: the workflows of Stratagem, between the ways in
//! (the HTTP API in `host/api`, the CLI in `host/cli`, the benches) and the
//! parts they combine (`engine`, `runtime`, `store`).
//!
//! A service owns a workflow from end to end — its limits, its background
//! tasks, its recovery after a crash — and answers with an error type of
//! its own that says what went wrong in the user's terms. Callers only
//! parse what they were given, call the service and present the result
//! (an HTTP handler maps the error to a problem document, the CLI prints
//! it).
//!
//! - [`campaigns`]: a campaign's readiness — stages whose channels
//!   resolve, strategies built, contacts imported — checked before it
//!   becomes CONFIGURED or RUNNING, and a stage's references when saved.
//! - [`imports`]: a contact file into a campaign — checked whole before
//!   anything is written, then read a batch at a time through DATA_LOAD
//!   into the database, as a job with progress, a report and a heartbeat.
//! - [`exports`]: a campaign's contacts to CSV or JSON Lines, spooled to a
//!   temporary file.
//! - [`dry_run`]: a campaign's stages and strategies in virtual time over a
//!   contact file, in a throwaway copy.
//! - [`strategies`]: uploads, edits and deletes of a campaign's
//!   strategies, each upload a version for the engine's build queue.
//! - [`email`]: a stage's draft email sent as a test to one address,
//!   exactly as the stage would send it, a few a minute per tenant.
//! - [`rate`]: token buckets per key, for limits that say when to retry.

pub mod campaigns;
pub mod dry_run;
pub mod email;
pub mod exports;
pub mod imports;
pub mod rate;
pub mod strategies;

/// A file format the sender named that is neither CSV nor JSON Lines.
#[derive(Debug, thiserror::Error)]
#[error("format `{0}` is not csv or jsonl")]
pub struct UnknownFormat(pub String);

/// The largest contact file an import, or the CLI's dry run, reads.
pub const CONTACT_FILE_LIMIT_BYTES: usize = 512 << 20;
