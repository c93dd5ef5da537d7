//! The campaign's analytics panel as the API answers it: the metrics
//! overview (`GET /campaigns/{id}/analytics/overview`), the distribution
//! by period (`…/analytics/distribution`) and the uploaded YAML analytics
//! file (`GET`/`PUT /campaigns/{id}/analytics`).

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::analytics_file::AnalyticsDefinition;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Overview {
    pub total_contacts: i64,
    pub processed_contacts: i64,
    pub completed_contacts: i64,
    pub successful_contacts: i64,
    /// completed / total (0 when there are no contacts).
    pub completion_rate: f64,
    /// successful / completed (0 when none is completed).
    pub success_rate: f64,
    pub by_stage: Vec<StageCount>,
    pub by_alternative: Vec<AlternativeCount>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StageCount {
    /// The contacts' current stage; `null` for contacts without one.
    pub stage: Option<String>,
    pub contacts: i64,
    pub successful: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AlternativeCount {
    pub stage: String,
    /// The A/B label (`default` for the stage's own settings).
    pub label: String,
    pub communications: i64,
    /// Of those, communications whose contact's ResultFlag is true.
    pub successful: i64,
}

/// One period of a distribution.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Bucket {
    pub start: NaiveDate,
    /// key (a stage name or a status) → communications
    pub counts: BTreeMap<String, i64>,
}

impl Bucket {
    /// Its communications, every key together.
    pub fn total(&self) -> i64 {
        self.counts.values().sum()
    }
}

/// Stage or Status Distribution by Period.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Distribution {
    /// `stage` or `status`.
    pub by: String,
    /// `day`, `week` or `month`.
    pub period: String,
    pub tz: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub buckets: Vec<Bucket>,
}

/// The campaign's YAML analytics file: when it was uploaded and what it
/// says.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AnalyticsView {
    pub uploaded_at: DateTime<Utc>,
    pub definition: AnalyticsDefinition,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn works_when_an_overview_and_a_distribution_round_trip() {
        let overview = json!({"total_contacts": 3, "processed_contacts": 2, "completed_contacts": 1, "successful_contacts": 1,
            "completion_rate": 0.5, "success_rate": 1.0, "by_stage": [{"stage": null, "contacts": 1, "successful": 0}],
            "by_alternative": [{"stage": "Remind", "label": "default", "communications": 2, "successful": 1}]});
        let read: Overview = serde_json::from_value(overview.clone()).expect("reads");
        assert_eq!(serde_json::to_value(&read).expect("writes"), overview);
        let distribution = json!({"by": "stage", "period": "day", "tz": "Europe/Paris", "from": "2026-01-01", "to": "2026-01-02",
            "buckets": [{"start": "2026-01-01", "counts": {"Remind": 2}}, {"start": "2026-01-02", "counts": {}}]});
        let read: Distribution = serde_json::from_value(distribution.clone()).expect("reads");
        assert_eq!(read.buckets[0].total(), 2);
        assert_eq!(serde_json::to_value(&read).expect("writes"), distribution);
    }

    #[test]
    fn works_when_an_analytics_file_round_trips() {
        let sent = json!({"uploaded_at": "2026-01-01T00:00:00Z", "definition": {"version": 1, "depth_days": 30, "schedule": {"every_minutes": 15}, "metrics": [
            {"code": "s", "name": "S", "description": "", "prompt": "Q?", "type": "scale", "scale": {"min": 1, "max": 5}, "display": "bar"},
            {"code": "n", "name": "N", "description": "d", "prompt": "Q?", "type": "number", "display": "line"},
            {"code": "c", "name": "C", "description": "", "prompt": "Q?", "type": "category", "categories": ["a", "b"], "display": "pie"},
            {"code": "b", "name": "B", "description": "", "prompt": "Q?", "type": "boolean", "display": "number"}]}});
        let view: AnalyticsView = serde_json::from_value(sent.clone()).expect("reads");
        assert_eq!(view.definition.metrics[0].kind.type_name(), "scale");
        assert_eq!(view.definition.schedule.map(|schedule| schedule.every_minutes), Some(15));
        assert_eq!(serde_json::to_value(&view).expect("writes"), sent);
    }
}
