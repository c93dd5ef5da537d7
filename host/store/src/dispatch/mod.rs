//! The engine's queries: claiming due communications with a lease,
//! marking missed ones, recording session outcomes, applying a strategy's
//! outcome to a contact, and finishing campaigns whose work is done.
//!
//! Claims are `UPDATE … WHERE id IN (SELECT … LIMIT n)`, one select per
//! campaign with work waiting, each its fair share of the batch
//! ([`fair`]): on PostgreSQL the selects take `FOR UPDATE SKIP LOCKED`,
//! so nodes claiming at once split the work instead of queueing on it;
//! SQLite has one writer.
//!
//! `channel_sends` records each send under its idempotency key. A send to
//! a provider that takes no key is announced there first, as a row without
//! an outcome ([`Dispatch::begin_send`]), committed before the network call; a
//! claim left with such a row by a node that died becomes IN_DOUBT
//! ([`Dispatch::mark_in_doubt`]) instead of being sent again.

mod claims;
mod completion;
mod contact_write;
mod outcomes;
mod revisions;
mod sends;
mod sessions;
mod windows;

pub use claims::{ClaimedCommunication, DueBacklog, EndedSession};
pub use outcomes::SessionOutcome;
pub use revisions::ContactAtRevision;
pub use sends::{in_doubt_results, SendClaim};
pub(crate) use sessions::read_sessions;
pub use sessions::{SessionRecord, SessionStart};

use crate::{Backend, Store, StoreError};

/// The communications queue: claims, send windows, sends, sessions,
/// outcomes and completion. Reached through [`Store::dispatch`].
#[derive(Clone, Copy)]
pub struct Dispatch<'a> {
    store: &'a Store,
}

impl Store {
    pub fn dispatch(&self) -> Dispatch<'_> {
        Dispatch { store: self }
    }

    pub(crate) fn skip_locked(&self) -> &'static str {
        match self.backend {
            Backend::Postgres => "FOR UPDATE OF c SKIP LOCKED",
            Backend::Sqlite => "",
        }
    }

    /// `id` among the ids the subquery `ids` selects. PostgreSQL plans
    /// `id IN (subquery)` for a claim's few hundred ids as a hash semi-join
    /// that reads the whole table; the same ids as an array are looked up
    /// in the primary key.
    pub(crate) fn id_among(&self, ids: &str) -> String {
        match self.backend {
            Backend::Postgres => format!("id = ANY(ARRAY({ids}))"),
            Backend::Sqlite => format!("id IN ({ids})"),
        }
    }

    /// Locks the rows a statement reads in a write transaction until it
    /// ends: on PostgreSQL; SQLite's write transaction holds the database.
    fn lock_rows(&self) -> &'static str {
        match self.backend {
            Backend::Postgres => "FOR UPDATE",
            Backend::Sqlite => "",
        }
    }
}

/// How often a batch is tried again after PostgreSQL aborted it to break a
/// deadlock with another node's batch (rows of both are locked in
/// different orders); the whole transaction rolled back, so retrying it
/// is safe.
const CONFLICT_RETRIES: u32 = 3;

fn is_transient_conflict(error: &StoreError) -> bool {
    match error {
        // deadlock_detected, serialization_failure
        StoreError::Database(sqlx::Error::Database(error)) => matches!(error.code().as_deref(), Some("40P01" | "40001")),
        _ => false,
    }
}

/// The parameters of one column of a `VALUES` list (`$first`, then every
/// `columns`-th), for a `WHERE id IN (…)` beside a join on that column.
/// The join alone left PostgreSQL's plan to statistics, which lag behind a
/// running campaign: it bitmap-scanned the status and tenant indexes
/// instead of reading the rows by primary key, which the constant list
/// makes the obvious plan.
fn column_params(first: usize, columns: usize, rows: usize) -> String {
    (0..rows).map(|row| format!("${}", first + row * columns)).collect::<Vec<_>>().join(", ")
}
