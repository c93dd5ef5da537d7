//! Strategies as the API shows them: one per type per campaign, each
//! upload or edit a new version with its own build (`GET
//! /campaigns/{id}/strategies`, `GET /strategies/{id}`).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The three kinds of strategy of a campaign, one hook each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StrategyType {
    /// Runs when a contact is imported.
    DataLoad,
    /// Runs when a communication session ends.
    Aggregation,
    /// Runs after each agent message of a conversation.
    ContactAnswer,
}

impl StrategyType {
    pub const ALL: [StrategyType; 3] = [StrategyType::DataLoad, StrategyType::Aggregation, StrategyType::ContactAnswer];

    pub fn as_str(self) -> &'static str {
        match self {
            StrategyType::DataLoad => "DATA_LOAD",
            StrategyType::Aggregation => "AGGREGATION",
            StrategyType::ContactAnswer => "CONTACT_ANSWER",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum BuildStatus {
    Building,
    Ready,
    Failed,
    /// A newer version replaced it before its build finished.
    Cancelled,
}

impl BuildStatus {
    pub const ALL: [BuildStatus; 4] = [BuildStatus::Building, BuildStatus::Ready, BuildStatus::Failed, BuildStatus::Cancelled];

    pub fn as_str(self) -> &'static str {
        match self {
            BuildStatus::Building => "building",
            BuildStatus::Ready => "ready",
            BuildStatus::Failed => "failed",
            BuildStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == text)
    }
}

/// Where a `building` version is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum BuildPhase {
    /// Waiting for a build slot (`queue_position` says where).
    Queued,
    /// componentize-py turns the Python into a component; the strategy's
    /// top-level code runs.
    Building,
    /// The component is compiled to machine code.
    Compiling,
}

impl BuildPhase {
    pub fn as_str(self) -> &'static str {
        match self {
            BuildPhase::Queued => "queued",
            BuildPhase::Building => "building",
            BuildPhase::Compiling => "compiling",
        }
    }
}

/// What kind of build error a version has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum BuildErrorKind {
    /// Python could not import the code (a syntax error, a missing
    /// module); where it is comes with it.
    Python,
    /// The files are not a strategy (no entry, a bad path).
    InvalidSource,
    /// The build took too long or too much CPU.
    Timeout,
    /// The build needed too much memory; where, when Python said.
    MemoryLimit,
    /// The built component is too large.
    TooLarge,
    /// The component does not fit the strategy contract.
    Contract,
    /// The build service failed (the operator's log says why).
    Internal,
    /// A newer version replaced this one before its build finished.
    Superseded,
}

/// Where Python failed in the user's code, as a build error carries it
/// (every key present, `null` when Python did not say).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PythonBuildError {
    /// The exception's type, e.g. `SyntaxError`.
    #[serde(rename = "type")]
    pub type_name: String,
    pub message: String,
    pub file: Option<String>,
    pub line: Option<u32>,
    pub column: Option<u32>,
    /// The line of code it points at.
    pub source: Option<String>,
}

/// A build error as the version row keeps it and the API shows it: a
/// `kind`, a `detail` for people, and for Python errors where in the
/// user's code it was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BuildError {
    pub kind: BuildErrorKind,
    pub detail: String,
    /// Kinds `python` and (when Python said where) `memory_limit`.
    #[serde(flatten)]
    pub python: Option<PythonBuildError>,
}

impl BuildError {
    /// A build error without a place in the code.
    pub fn new(kind: BuildErrorKind, detail: impl Into<String>) -> Self {
        Self { kind, detail: detail.into(), python: None }
    }

    /// The error in one line for a reason or a problem: where in the
    /// source, when Python said, and what.
    pub fn summary(&self) -> String {
        let Some(python) = &self.python else { return self.detail.clone() };
        let what = format!("{}: {}", python.type_name, python.message);
        match (&python.file, python.line, python.column) {
            (Some(file), Some(line), Some(column)) => format!("{file}, line {line}, column {column}: {what}"),
            (Some(file), Some(line), None) => format!("{file}, line {line}: {what}"),
            _ => what,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StrategyVersion {
    pub version: i64,
    pub status: BuildStatus,
    /// `source` (Python built by the platform) or `component` (prebuilt).
    pub origin: String,
    /// The build error when `failed` (or `cancelled`).
    pub error: Option<BuildError>,
    pub entry: String,
    pub sources: BTreeMap<String, String>,
    pub created_at: DateTime<Utc>,
    /// While it waits for a build slot: 1 when it is next in the queue.
    pub queue_position: Option<i64>,
    /// While it is `building`: where its build is.
    pub phase: Option<BuildPhase>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StrategyView {
    pub id: String,
    pub campaign_id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: StrategyType,
    pub latest: StrategyVersion,
    /// The version that runs: the newest READY one.
    pub active_version: Option<i64>,
    pub created_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn works_when_a_python_build_error_round_trips_with_its_nulls() {
        let sent = json!({"kind": "python", "detail": "strategy.py, line 2: SyntaxError: bad", "type": "SyntaxError",
            "message": "bad", "file": "strategy.py", "line": 2, "column": null, "source": null});
        let error: BuildError = serde_json::from_value(sent.clone()).expect("reads");
        assert_eq!(error.python.as_ref().and_then(|p| p.line), Some(2));
        assert_eq!(serde_json::to_value(&error).expect("writes"), sent);
    }

    #[test]
    fn works_when_a_build_error_has_no_place() {
        for sent in [json!({"kind": "superseded", "detail": "version 3 replaced this version"}), json!({"kind": "timeout", "detail": "t"})] {
            let error: BuildError = serde_json::from_value(sent.clone()).expect("reads");
            assert_eq!(error.python, None);
            assert_eq!(serde_json::to_value(&error).expect("writes"), sent);
        }
    }

    #[test]
    fn works_when_a_strategy_round_trips() {
        let sent = json!({"id": "str_1", "campaign_id": "cmp_1", "name": "Load", "type": "DATA_LOAD", "active_version": null,
            "created_at": "2026-01-02T03:04:05Z", "latest": {"version": 1, "status": "building", "origin": "source", "error": null,
            "entry": "strategy.py", "sources": {"strategy.py": "x = 1\n"}, "created_at": "2026-01-02T03:04:05Z", "queue_position": 2,
            "phase": "queued"}});
        let view: StrategyView = serde_json::from_value(sent.clone()).expect("reads");
        assert_eq!(view.latest.status, BuildStatus::Building);
        assert_eq!(serde_json::to_value(&view).expect("writes"), sent);
    }
}
