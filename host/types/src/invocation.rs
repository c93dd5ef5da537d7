//! What a strategy did: every invocation's outcome, log and usage, kept
//! for a retention period and shown in a contact's history, an import's
//! report and per strategy version (`GET /invocations/{id}`,
//! `GET /strategies/{id}/versions/{version}/invocations`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::strategy::StrategyType;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Debug,
    Info,
    Warning,
    Error,
    Critical,
}

/// One log record from a strategy (`logger.info(...)` or `print(...)`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LogRecord {
    pub level: LogLevel,
    pub logger: String,
    pub message: String,
}

/// One invocation of a strategy hook, as kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InvocationRecord {
    pub id: String,
    pub campaign_id: String,
    pub hook: StrategyType,
    /// SHA-256 of the component that ran: the strategy version's identity.
    pub component_hash: String,
    /// The contact it ran for.
    pub object_id: String,
    /// The import whose row it ran for (DATA_LOAD during an import).
    pub import_job_id: Option<String>,
    /// The time the strategy saw: `datetime.now()` during the call.
    pub started_at: DateTime<Utc>,
    /// `ok`, or the error's kind (`exception`, `fuel_exhausted`, …).
    pub outcome: String,
    /// The runtime's error, with the Python traceback when there is one.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub error: Option<serde_json::Value>,
    /// The error as a person reads it.
    pub message: Option<String>,
    pub logs: Vec<LogRecord>,
    /// Log records dropped because the call logged more than its cap.
    pub dropped_log_records: u64,
    pub fuel: u64,
    pub peak_memory_bytes: u64,
    pub duration_us: u64,
    /// Outbound HTTP requests it made that went out.
    pub http_calls: u64,
    /// Whether its input was kept (every failed call, a sample of the
    /// others), so `stratagem strategy replay` can run it again.
    pub replayable: bool,
}

/// An invocation with what replaying it needs: its input, what it
/// returned, and the limits it ran under.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InvocationDetail {
    #[serde(flatten)]
    pub record: InvocationRecord,
    /// The strategy and version that ran (its sources are
    /// `GET /strategies/{id}`), when the version still exists.
    pub strategy_id: Option<String>,
    pub version: Option<i64>,
    /// That version's Python: its entry file and every file's source
    /// (none for a prebuilt component).
    pub entry: Option<String>,
    pub sources: Option<std::collections::BTreeMap<String, String>>,
    /// The hook's arguments, as `stratagem strategy run` takes them:
    /// `contact`, and `existing`, `session_results` or `message`; and
    /// `campaign` as the strategy saw it.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub input: Option<serde_json::Value>,
    /// The contact it returned (a kept successful call).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub output: Option<serde_json::Value>,
    /// The limits it ran under: `fuel`, `time` (`{secs, nanos}`),
    /// `memory_bytes`, `output_bytes`, `log_bytes`.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub limits: Option<serde_json::Value>,
}

/// A strategy version's recent invocations and how they went, over what
/// is kept (the retention period).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VersionInvocations {
    pub strategy_id: String,
    pub version: i64,
    pub invocations: u64,
    pub errors: u64,
    /// `errors / invocations`; 0 when there were none.
    pub error_rate: f64,
    pub median_fuel: Option<u64>,
    pub median_duration_us: Option<u64>,
    /// Newest first.
    pub recent: Vec<InvocationRecord>,
}
