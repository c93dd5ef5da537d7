//! Persistence: SQLite by default, PostgreSQL for scale-out, through sqlx's
//! `Any` driver so each query is written once. Every tenant-owned query
//! takes the tenant id and filters on it; a row of another tenant is
//! indistinguishable from a missing one (`StoreError::NotFound`).

mod agents;
mod analytics;
mod array_rows;
mod campaigns;
mod communication_row;
mod contacts;
mod conversations;
mod deep_analysis;
mod dispatch;
mod fair;
mod imports;
mod integrations;
mod invocations;
mod quotas;
mod secrets;
mod stages;
mod strategies;
mod tasks;
mod tenants;
mod usage;

// The store's parts, one per aggregate: `store.contacts().find_contacts(…)`.
// Each is a copy of a reference, taken by value, so a call's future
// borrows the store, not the part.
pub use agents::Agents;
pub use analytics::Analytics;
pub use campaigns::Campaigns;
pub use contacts::Contacts;
pub use conversations::Conversations;
pub use deep_analysis::DeepAnalysis;
pub use dispatch::Dispatch;
pub use imports::Imports;
pub use integrations::Integrations;
pub use invocations::{Invocations, NewInvocation};
pub use stages::Stages;
pub use strategies::Strategies;
pub use tasks::Tasks;
pub use tenants::Tenants;
pub use quotas::QuotaSettings;
pub use usage::Usage;

pub use analytics::{AlternativeCount, DistributionKey, Overview, StageCount};
pub use campaigns::NewCampaign;
pub use conversations::{Conversation, EarlyInbound, OpenSession};
pub use deep_analysis::{AnalysisCursor, AnalysisMode, AnalysisRun, AnalysisStatus, AnalysisValue, ClaimedAnalysis, MetricTally, PendingSession, SessionValue};
pub use contacts::{ContactExport, ContactFilter, ContactSummary, StoredContact, UpsertOutcome};
pub use integrations::IntegrationChanges;
pub use secrets::SecretsKey;
pub use dispatch::{in_doubt_results, ClaimedCommunication, ContactAtRevision, DueBacklog, EndedSession, SendClaim, SessionOutcome, SessionRecord, SessionStart};
pub use imports::{ImportBatch, ImportCounts, ImportEnd, ImportJob, NewImportJob, NodeImport, ImportReport, ImportStatus, InterruptedReason, RejectedRow, StrategyFailure};
pub use strategies::{BuildClaim, BuildJob, BuildQueue, BuildStatus, OwnedVersionInput, StrategyState, StrategyVersion, StrategyView, VersionInput, VersionStart};
pub use tasks::HumanTask;
pub use tenants::{ApiKey, CreatedKey, DeletedTenant, KeyCheck, TenantInfo, TenantStatus};

use chrono::{DateTime, Utc};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::AnyPool;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    /// Revoking this key would leave its tenant with none.
    #[error("the tenant's last active API key cannot be revoked")]
    LastApiKey,
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// Writing would take the tenant past one of its quotas; nothing was.
    #[error("{0}")]
    QuotaExceeded(stratagem_domain::quota::QuotaExceeded),
}

pub type Result<T> = std::result::Result<T, StoreError>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A handle on the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    secrets: Option<SecretsKey>,
}

/// The schema migrations of this release for `backend`.
fn migrator(backend: Backend) -> &'static sqlx::migrate::Migrator {
    static SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/sqlite");
    static POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/postgres");
    match backend {
        Backend::Sqlite => &SQLITE,
        Backend::Postgres => &POSTGRES,
    }
}

impl Store {
    /// Connects and applies the backend's migrations. `sqlite://path` (the
    /// file is created) or `postgres://…`.
    pub async fn connect(url: &str) -> Result<Self> {
        let store = Self::connect_unmigrated(url).await?;
        migrator(store.backend).run(&store.pool).await?;
        Ok(store)
    }

    /// Connects without changing the schema: for looking at a database
    /// ([`Store::readiness`]), not for working on it.
    pub async fn connect_unmigrated(url: &str) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            return Err(StoreError::Conflict(format!(
                "unsupported database URL `{url}`: use sqlite://PATH or postgres://…"
            )));
        };
        let url = match backend {
            // WAL lets readers proceed during an import; foreign keys are
            // off by default in SQLite.
            Backend::Sqlite if !url.contains('?') => format!("{url}?mode=rwc"),
            _ => url.to_owned(),
        };
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 8 } else { 16 })
            .after_connect(move |connection, _| {
                Box::pin(async move {
                    if backend == Backend::Postgres {
                        // A generic plan for `object_id IN ($3, …)` picks the
                        // (tenant, campaign) prefix of another index and scans a
                        // whole campaign per batch (measured: 100-200 ms per
                        // lookup at 100k contacts); custom plans use the key.
                        sqlx::query("SET plan_cache_mode = force_custom_plan").execute(&mut *connection).await?;
                    }
                    if backend == Backend::Sqlite {
                        sqlx::query("PRAGMA journal_mode = WAL").execute(&mut *connection).await?;
                        sqlx::query("PRAGMA foreign_keys = ON").execute(&mut *connection).await?;
                        sqlx::query("PRAGMA busy_timeout = 10000").execute(&mut *connection).await?;
                        sqlx::query("PRAGMA synchronous = NORMAL").execute(&mut *connection).await?;
                    }
                    Ok(())
                })
            })
            .after_release(move |connection, _| {
                Box::pin(async move {
                    // A request cancelled while SQLite's BEGIN was being
                    // acknowledged leaves the transaction begun with no
                    // `Transaction` to end it: the connection would hold the
                    // write lock in the pool ("database is locked" for every
                    // other writer) and fail its own next BEGIN. The ping
                    // lets a rollback queued by a dropped `Transaction`
                    // finish first; a transaction still open then is such a
                    // leak, and closing the connection rolls it back.
                    if backend == Backend::Sqlite {
                        sqlx::Connection::ping(&mut *connection).await?;
                        if sqlx::Connection::is_in_transaction(&*connection) {
                            tracing::warn!("a database connection came back with a transaction left open; closing it, which rolls it back");
                            return Ok(false);
                        }
                    }
                    Ok(true)
                })
            })
            .connect(&url)
            .await?;
        Ok(Self { pool, backend, secrets: None })
    }

    /// Whether this node can serve requests: the database answers and has
    /// exactly the migrations of this release applied. `Err` says what is
    /// wrong and what to do.
    pub async fn readiness(&self) -> std::result::Result<(), String> {
        use sqlx::Row;
        let applied: Vec<i64> = sqlx::query("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(&self.pool)
            .await
            .map_err(|error| format!("the database does not answer: {error}"))?
            .iter()
            .map(|row| row.try_get::<i64, _>("version"))
            .collect::<std::result::Result<_, _>>()
            .map_err(|error| format!("the database's migration table cannot be read: {error}"))?;
        let known: Vec<i64> = migrator(self.backend).iter().map(|migration| migration.version).collect();
        let list = |versions: Vec<&i64>| versions.iter().map(|version| version.to_string()).collect::<Vec<_>>().join(", ");
        let missing: Vec<&i64> = known.iter().filter(|version| !applied.contains(version)).collect();
        if !missing.is_empty() {
            return Err(format!(
                "the database lacks migration(s) {} of this release; restart `stratagem serve`, which applies them",
                list(missing)
            ));
        }
        let unknown: Vec<&i64> = applied.iter().filter(|version| !known.contains(version)).collect();
        if !unknown.is_empty() {
            return Err(format!(
                "the database has migration(s) {} that this release does not know: a newer release upgraded it; upgrade this node",
                list(unknown)
            ));
        }
        Ok(())
    }

    /// The key that seals integration secrets; without one, integrations
    /// with secrets cannot be stored or read.
    pub fn with_secrets_key(mut self, key: SecretsKey) -> Self {
        self.secrets = Some(key);
        self
    }

    /// A transaction that will write. On SQLite it takes the write lock at
    /// `BEGIN` (IMMEDIATE): a deferred one that reads first and then writes
    /// fails at once with SQLITE_BUSY if another connection committed in
    /// between, instead of waiting its turn under the busy timeout.
    pub(crate) async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    /// A read-only transaction whose statements all see one snapshot: on
    /// PostgreSQL REPEATABLE READ (READ COMMITTED takes one per
    /// statement); a SQLite read transaction keeps its snapshot (WAL).
    pub(crate) async fn begin_snapshot(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin().await?,
            Backend::Postgres => self.pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").await?,
        })
    }

    /// `sql` with anonymous `?` parameters on SQLite, when its `$N` appear
    /// exactly in the order 1, 2, …; else as it is. SQLite looks each `$N`
    /// up by name in a list as long as the statement's parameters, so
    /// binding a 50-row insert (900 parameters) is quadratic: it was 39 %
    /// of a SQLite import's time. `?` are bound by position. PostgreSQL
    /// takes only `$N`.
    pub(crate) fn positional(&self, sql: String) -> String {
        match self.backend {
            Backend::Sqlite => anonymous_parameters(&sql).unwrap_or(sql),
            Backend::Postgres => sql,
        }
    }

    /// Refreshes PostgreSQL's statistics of the contact tables after a bulk
    /// change (an import grew them, a campaign starts). Autovacuum does it only
    /// a minute or more later; until then the engine's batch statements were
    /// planned as if the tables were empty: a sequential scan of every
    /// communication to read 50 contacts' (10 ms instead of 0.3 ms at
    /// 20 000). ANALYZE samples a bounded number of rows whatever the
    /// tables' size. SQLite keeps no statistics unless ANALYZE ran, and
    /// plans these statements by their indexes alone.
    pub async fn refresh_statistics(&self) -> Result<()> {
        if self.backend == Backend::Postgres {
            sqlx::query("ANALYZE contacts, communications").execute(&self.pool).await?;
        }
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// `sql` with its `$1`, `$2`, … as `?`, if they appear exactly in that order.
fn anonymous_parameters(sql: &str) -> Option<String> {
    let mut rewritten = String::with_capacity(sql.len());
    let (mut rest, mut next) = (sql, 1usize);
    while let Some(at) = rest.find('$') {
        let digits = rest[at + 1..].bytes().take_while(u8::is_ascii_digit).count();
        if rest[at + 1..at + 1 + digits].parse() != Ok(next) {
            return None;
        }
        rewritten.push_str(&rest[..at]);
        rewritten.push('?');
        rest = &rest[at + 1 + digits..];
        next += 1;
    }
    rewritten.push_str(rest);
    Some(rewritten)
}

/// `prefix_` + a time-ordered UUID: sortable, unguessable enough to carry no
/// information, and readable in logs.
pub(crate) fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

pub(crate) fn micros(time: DateTime<Utc>) -> i64 {
    time.timestamp_micros()
}

pub(crate) fn from_micros(value: i64) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_micros(value).ok_or_else(|| StoreError::Corrupt(format!("timestamp {value}")))
}

/// Reads a JSON (TEXT) column.
pub(crate) fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|error| StoreError::Corrupt(format!("JSON column: {error}")))
}

/// Writes a JSON (TEXT) column.
pub(crate) fn to_json<T: serde::Serialize + ?Sized>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|error| StoreError::Corrupt(format!("JSON column: {error}")))
}

pub(crate) fn get<'r, T>(row: &'r AnyRow, column: &str) -> Result<T>
where
    T: sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    use sqlx::Row;
    Ok(row.try_get(column)?)
}

#[cfg(test)]
mod tests {
    use super::{anonymous_parameters, Store};

    /// What a request cancelled at BEGIN leaves: a pooled connection whose
    /// transaction nobody will end. Every other writer still gets the lock.
    #[tokio::test]
    async fn works_when_a_connection_comes_back_with_a_transaction_left_open() {
        let dir = tempfile::tempdir().expect("dir");
        let store = Store::connect(&format!("sqlite://{}", dir.path().join("leak.db").display())).await.expect("store");
        {
            let mut connection = store.pool.acquire().await.expect("connection");
            let leaked = sqlx::Connection::begin_with(&mut *connection, "BEGIN IMMEDIATE").await.expect("begin");
            std::mem::forget(leaked);
        }
        for _ in 0..10 {
            let write = tokio::time::timeout(std::time::Duration::from_secs(5), store.begin_write()).await;
            let write = write.expect("the write lock is not held by the leaked transaction").expect("begins");
            write.commit().await.expect("commits");
        }
    }

    #[test]
    fn works_when_parameters_appear_in_order() {
        assert_eq!(anonymous_parameters("SELECT a FROM t WHERE b = $1 AND c IN ($2, $3)").as_deref(), Some("SELECT a FROM t WHERE b = ? AND c IN (?, ?)"));
        assert_eq!(anonymous_parameters("VALUES ($1, $2), ($3, $4)").as_deref(), Some("VALUES (?, ?), (?, ?)"));
        assert_eq!(anonymous_parameters("SELECT 1").as_deref(), Some("SELECT 1"));
    }

    #[test]
    fn errors_when_parameters_repeat_or_skip() {
        // A repeated or out-of-order `$N` cannot be bound by position.
        assert_eq!(anonymous_parameters("UPDATE t SET a = $1, b = $1"), None);
        assert_eq!(anonymous_parameters("SELECT $2, $1"), None);
        assert_eq!(anonymous_parameters("SELECT $1, $3"), None);
        assert_eq!(anonymous_parameters("SELECT $1, $"), None);
    }
}
