//! Contact import jobs as the API shows them (`POST
//! /campaigns/{id}/imports`, `GET /imports/{id}`): progress and the report
//! (accepted, updated, rejected rows with line and reason, strategy
//! failures with traceback).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum ImportStatus {
    /// Waiting for one of its node's import slots: `queue_position` says
    /// how many start before it. Nothing is written yet.
    Queued,
    Running,
    Done,
    /// The import stopped before the end; the batches written stay, and
    /// the counts are theirs.
    Interrupted,
}

impl ImportStatus {
    pub const ALL: [ImportStatus; 4] = [ImportStatus::Queued, ImportStatus::Running, ImportStatus::Done, ImportStatus::Interrupted];

    /// Queued or running: the job has not ended yet.
    pub fn is_active(self) -> bool {
        matches!(self, ImportStatus::Queued | ImportStatus::Running)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ImportStatus::Queued => "queued",
            ImportStatus::Running => "running",
            ImportStatus::Done => "done",
            ImportStatus::Interrupted => "interrupted",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == text)
    }
}

/// Why an import was interrupted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum InterruptedReason {
    /// The server process running it stopped (a crash, a kill, a restart):
    /// its heartbeat lapsed, or on SQLite a later process started.
    NodeStopped,
    /// The server running it was shut down (SIGTERM): it stopped between
    /// two batches, every row before is written.
    Shutdown,
    /// It stopped on a server error (in the server's log).
    Error,
    /// It waited for the campaign's DATA_LOAD strategy, whose build failed;
    /// `detail` names the build error.
    StrategyFailed,
}

impl InterruptedReason {
    pub const ALL: [InterruptedReason; 4] =
        [InterruptedReason::NodeStopped, InterruptedReason::Shutdown, InterruptedReason::Error, InterruptedReason::StrategyFailed];

    pub fn as_str(self) -> &'static str {
        match self {
            InterruptedReason::NodeStopped => "node_stopped",
            InterruptedReason::Shutdown => "shutdown",
            InterruptedReason::Error => "error",
            InterruptedReason::StrategyFailed => "strategy_failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|reason| reason.as_str() == text)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RejectedRow {
    pub line: u64,
    pub column: Option<u64>,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StrategyFailure {
    pub line: u64,
    pub object_id: String,
    /// The runtime's error, with the Python traceback when there is one.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub error: serde_json::Value,
    pub message: String,
    /// The failed invocation, with its log and input
    /// (`GET /invocations/{id}`); none in reports older than it.
    #[serde(default)]
    pub invocation_id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ImportReport {
    pub rejected: Vec<RejectedRow>,
    pub strategy_errors: Vec<StrategyFailure>,
}

/// A job's counts: `processed_rows` = `accepted` + `updated` + `rejected`,
/// all of committed batches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ImportCounts {
    pub processed_rows: i64,
    pub accepted: i64,
    pub updated: i64,
    pub rejected: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ImportJob {
    pub id: String,
    pub campaign_id: String,
    pub status: ImportStatus,
    pub file_name: Option<String>,
    pub total_rows: i64,
    /// Rows of committed batches: accepted + updated + rejected.
    pub processed_rows: i64,
    pub accepted: i64,
    pub updated: i64,
    pub rejected: i64,
    pub report: ImportReport,
    /// While `queued`: its place in its node's queue, 1 for the next to
    /// start. Tenants take turns: a tenant's import goes ahead of another
    /// tenant's second one.
    pub queue_position: Option<u32>,
    /// While `running` without having read a row: what the import waits
    /// for (the campaign's DATA_LOAD strategy still building).
    pub waiting_for: Option<String>,
    /// Set when `interrupted`.
    pub interrupted_reason: Option<InterruptedReason>,
    /// For an interrupted job: why, what was written, and what to do.
    pub detail: Option<String>,
    /// The last sign of life of the node running the job.
    pub heartbeat_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// When it left the queue and began.
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn works_when_an_import_job_round_trips() {
        let sent = json!({"id": "imp_1", "campaign_id": "cmp_1", "status": "interrupted", "file_name": "c.csv", "total_rows": 4,
            "processed_rows": 3, "accepted": 1, "updated": 1, "rejected": 1,
            "report": {"rejected": [{"line": 3, "column": null, "reason": "line 3: email is not valid"}],
                "strategy_errors": [{"line": 2, "object_id": "C2", "error": {"kind": "trap"}, "message": "boom", "invocation_id": "inv_1"}]},
            "queue_position": null, "waiting_for": null,
            "interrupted_reason": "node_stopped", "detail": "its server stopped", "heartbeat_at": null,
            "created_at": "2026-01-01T00:00:00Z", "started_at": "2026-01-01T00:00:10Z", "finished_at": "2026-01-01T00:01:00Z"});
        let job: ImportJob = serde_json::from_value(sent.clone()).expect("reads");
        assert_eq!(job.interrupted_reason, Some(InterruptedReason::NodeStopped));
        assert_eq!(serde_json::to_value(&job).expect("writes"), sent);
    }
}
