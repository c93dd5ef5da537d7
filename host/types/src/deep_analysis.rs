//! Deep Analysis as the API shows it: a run over the conversations
//! (`…/analysis/runs`), the results per metric (`…/analysis/results`) and
//! one session's values (`…/analysis/sessions/{communication_id}`).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::analytics_file::{Display, MetricKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "UPPERCASE")]
pub enum AnalysisMode {
    /// Every metric of the YAML over every session within its depth,
    /// replacing earlier values.
    Recalculate,
    /// Only the (session, metric) pairs that have no value yet: metrics new
    /// in an updated YAML, and sessions no run has seen.
    Continue,
}

impl AnalysisMode {
    pub const ALL: [AnalysisMode; 2] = [AnalysisMode::Recalculate, AnalysisMode::Continue];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Recalculate => "RECALCULATE",
            Self::Continue => "CONTINUE",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|mode| mode.as_str() == text)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "UPPERCASE")]
pub enum AnalysisStatus {
    Progress,
    Done,
    Stopped,
}

impl AnalysisStatus {
    pub const ALL: [AnalysisStatus; 3] = [AnalysisStatus::Progress, AnalysisStatus::Done, AnalysisStatus::Stopped];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Progress => "PROGRESS",
            Self::Done => "DONE",
            Self::Stopped => "STOPPED",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == text)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AnalysisRun {
    pub id: String,
    pub mode: AnalysisMode,
    pub status: AnalysisStatus,
    /// The codes of the metrics the run computes.
    pub metrics: Vec<String>,
    /// Started by the YAML's schedule rather than by hand.
    pub scheduled: bool,
    pub total: i64,
    pub done: i64,
    pub failed: i64,
    /// Sessions within the depth that have no transcript (a one-way
    /// message, a simulated or operator session, a call nobody answered):
    /// nothing to ask the LLM about, so they are not analysed.
    pub skipped: i64,
    /// Why the last batch could not finish (the LLM is down, say); cleared
    /// by a batch that does.
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// The body that starts a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"mode": "CONTINUE"})))]
#[serde(deny_unknown_fields)]
pub struct AnalysisStart {
    pub mode: AnalysisMode,
}

/// One metric's value for one session.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionValue {
    pub metric: String,
    /// `null` when the conversation does not tell, or on error.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub value: serde_json::Value,
    pub error: Option<String>,
    pub computed_at: DateTime<Utc>,
}

/// Deep Analysis results over the stored values of the current YAML's
/// metrics; `metrics` is empty without a YAML file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AnalysisResults {
    pub metrics: Vec<MetricResult>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MetricResult {
    pub code: String,
    pub name: String,
    pub description: String,
    /// `type` and its own field (`scale`, `categories`, `range`).
    #[serde(flatten)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub kind: MetricKind,
    pub display: Display,
    /// Sessions with a valid answer.
    pub sessions: i64,
    /// Sessions whose answer was invalid or could not be had.
    pub errors: i64,
    /// Sessions whose conversation does not tell (the LLM answered null).
    pub unanswered: i64,
    /// Each answer (as text) and how many sessions gave it.
    pub values: BTreeMap<String, i64>,
    /// Numbers and scales: the mean answer; booleans: the share of `true`.
    pub mean: Option<f64>,
    /// The valid answers per day their session ended (UTC), oldest first:
    /// what a `line` display draws.
    pub by_day: Vec<DayResult>,
}

/// One day of a metric's answers.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DayResult {
    pub day: chrono::NaiveDate,
    /// Sessions with a valid answer that day.
    pub sessions: i64,
    /// As [`MetricResult::mean`], over that day's answers.
    pub mean: Option<f64>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn works_when_a_run_and_results_round_trip() {
        let run = json!({"id": "anr_1", "mode": "CONTINUE", "status": "PROGRESS", "metrics": ["s"], "scheduled": true, "total": 4, "done": 1,
            "failed": 0, "skipped": 2, "last_error": null, "created_at": "2026-01-01T00:00:00Z", "finished_at": null});
        let read: AnalysisRun = serde_json::from_value(run.clone()).expect("reads");
        assert_eq!(read.status, AnalysisStatus::Progress);
        assert_eq!(serde_json::to_value(&read).expect("writes"), run);
        let results = json!({"metrics": [{"code": "s", "name": "S", "description": "", "type": "scale", "scale": {"min": 1, "max": 5},
            "display": "bar", "sessions": 3, "errors": 1, "unanswered": 0, "values": {"4": 2, "5": 1}, "mean": 4.333,
            "by_day": [{"day": "2026-01-01", "sessions": 3, "mean": 4.333}]}]});
        let read: AnalysisResults = serde_json::from_value(results.clone()).expect("reads");
        assert_eq!(read.metrics[0].kind.type_name(), "scale");
        assert_eq!(serde_json::to_value(&read).expect("writes"), results);
        let values = json!([{"metric": "s", "value": null, "error": "no answer", "computed_at": "2026-01-01T00:00:00Z"}]);
        let read: Vec<SessionValue> = serde_json::from_value(values.clone()).expect("reads");
        assert_eq!(serde_json::to_value(&read).expect("writes"), values);
    }
}
