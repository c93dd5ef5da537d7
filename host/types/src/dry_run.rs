//! A dry run's answer (`POST /campaigns/{id}/simulate`): the campaign run
//! in virtual time over a contact file against a simulated population.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::CampaignStatus;

/// One communication of the timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TimelineEntry {
    pub object_id: String,
    pub name: String,
    pub stage: String,
    pub start_date: DateTime<Utc>,
    pub status: String,
    /// The A/B label the contact got.
    pub alternative: Option<String>,
    /// `OutcomeStatus` of its session, once it ended.
    pub outcome: Option<String>,
}

/// Where each contact ended up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ContactOutcome {
    pub object_id: String,
    pub current_stage: Option<String>,
    pub result_flag: Option<bool>,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SimulationReport {
    pub start: DateTime<Utc>,
    /// The virtual time the simulation stopped at.
    pub end: DateTime<Utc>,
    pub campaign_status: CampaignStatus,
    pub timeline: Vec<TimelineEntry>,
    pub contacts: Vec<ContactOutcome>,
    /// Contacts by final ResultFlag: `true`, `false`, `undetermined`.
    pub results: BTreeMap<String, usize>,
    /// Contacts by final stage.
    pub stages: BTreeMap<String, usize>,
    /// Sends recorded; one per started communication.
    pub sends: i64,
    /// DATA_LOAD failures at import, by object id.
    pub import_errors: Vec<(String, String)>,
    /// Rows of the contact file that could not be read, each with its line
    /// and why, as an import reports them; the other rows were simulated.
    pub rejected: Vec<crate::import::RejectedRow>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn works_when_a_report_round_trips() {
        let sent = json!({"start": "2026-01-01T00:00:00Z", "end": "2026-01-11T00:00:00Z", "campaign_status": "FINISHED",
            "timeline": [{"object_id": "C1", "name": "D1", "stage": "Remind", "start_date": "2026-01-01T09:00:00Z",
                "status": "COMPLETED", "alternative": null, "outcome": "PAID"}],
            "contacts": [{"object_id": "C1", "current_stage": "Paid", "result_flag": true, "last_error": null}],
            "results": {"true": 1}, "stages": {"Paid": 1}, "sends": 1, "import_errors": [["C2", "boom"]],
            "rejected": [{"line": 3, "column": 1, "reason": "line 3, column 1 (object_id): C1 is repeated"}]});
        let report: SimulationReport = serde_json::from_value(sent.clone()).expect("reads");
        assert_eq!(report.import_errors[0].1, "boom");
        assert_eq!(serde_json::to_value(&report).expect("writes"), sent);
    }
}
