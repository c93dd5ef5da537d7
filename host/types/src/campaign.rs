//! Campaigns and their status machine:
//! CREATED → CONFIGURED → RUNNING ⇄ STOPPED → FINISHED, and ERROR (with a
//! reason) from any state but FINISHED.

use serde::{Deserialize, Serialize};

use crate::ResultField;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CampaignStatus {
    /// Created; contact processing has not started.
    Created,
    /// Fully set up and ready to run.
    Configured,
    /// Processing contacts and sending communications.
    Running,
    /// Manually stopped; processing is paused.
    Stopped,
    /// Every contact has a final result.
    Finished,
    /// Cannot proceed because of a technical or logical error.
    Error,
}

impl CampaignStatus {
    pub const ALL: [CampaignStatus; 6] = [
        Self::Created,
        Self::Configured,
        Self::Running,
        Self::Stopped,
        Self::Finished,
        Self::Error,
    ];

    /// The statuses this one may move to by a user's action. ERROR is set by
    /// the platform with a reason; CONFIGURED may be re-entered from ERROR
    /// once the cause is fixed.
    pub fn next(self) -> &'static [CampaignStatus] {
        use CampaignStatus::*;
        match self {
            Created => &[Configured],
            Configured => &[Running, Created],
            Running => &[Stopped, Finished],
            Stopped => &[Running, Finished],
            Finished => &[],
            Error => &[Configured],
        }
    }

    pub fn can_become(self, next: CampaignStatus) -> bool {
        self.next().contains(&next) || (next == CampaignStatus::Error && self != CampaignStatus::Finished)
    }

    pub fn as_str(self) -> &'static str {
        use CampaignStatus::*;
        match self {
            Created => "CREATED",
            Configured => "CONFIGURED",
            Running => "RUNNING",
            Stopped => "STOPPED",
            Finished => "FINISHED",
            Error => "ERROR",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == text)
    }
}

/// A campaign as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Campaign {
    pub id: String,
    pub name: String,
    pub description: String,
    pub status: CampaignStatus,
    /// Why the campaign is in ERROR.
    pub error_reason: Option<String>,
    /// The LLM integration (an OpenAI-compatible endpoint) its agents,
    /// result extraction and Deep Analysis use (Settings > LLM Settings).
    pub llm_integration_id: Option<String>,
    /// The model on that endpoint; the integration's default if none.
    pub llm_model: Option<String>,
    /// Custom result fields (Settings > Campaign Results).
    pub result_fields: Vec<ResultField>,
    /// The hosts its strategies may call over HTTP (Settings > External
    /// APIs): `api.example.com`, `api.example.com:8443` or `*.example.com`.
    /// Empty: no outbound HTTP.
    #[serde(default)]
    pub http_allowlist: Vec<String>,
    /// While RUNNING: what its strategies wait for (its tenant used a
    /// daily quota, so AGGREGATION waits; sends go on).
    #[serde(default)]
    pub waiting_for: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    /// When it first became RUNNING; `null` while it never has (and for
    /// campaigns started before this was recorded). The analytics panel's
    /// default period starts on its day, or on `created_at`'s.
    #[serde(default)]
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// What keeps a campaign from CONFIGURED or RUNNING: `GET
/// /campaigns/{id}/readiness`, and the `blockers` of the 409 a status
/// change gets while any remain. The web app shows it as a checklist.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Readiness {
    /// No blockers: the campaign can be configured and started.
    pub ready: bool,
    pub blockers: Vec<Blocker>,
}

/// One reason a campaign cannot run yet, with where it is fixed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Blocker {
    pub code: BlockerCode,
    /// For people: what is wrong and how to fix it.
    pub message: String,
    /// The stage it concerns (`stage`), with the field in the stage's
    /// definition (`settings.integration_id`, `alternatives[0].agent_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The strategy it concerns (`strategy_building`, `strategy_failed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum BlockerCode {
    /// The campaign has no stage to plan communications on.
    NoStages,
    /// A stage's channel cannot be sent on: its integration or agent is
    /// missing, of the wrong kind, or lacks the channel or push
    /// configuration the stage needs.
    Stage,
    /// A strategy has no ready version yet; its build is running.
    StrategyBuilding,
    /// Every version of a strategy failed to build.
    StrategyFailed,
    /// No contact was imported.
    NoContacts,
}

#[cfg(test)]
mod tests {
    use super::CampaignStatus::*;

    #[test]
    fn works_when_following_the_documented_path() {
        for (from, to) in [(Created, Configured), (Configured, Running), (Running, Stopped), (Stopped, Running), (Stopped, Finished)] {
            assert!(from.can_become(to), "{from:?} -> {to:?}");
        }
    }

    #[test]
    fn errors_when_skipping_or_leaving_finished() {
        for (from, to) in [(Created, Running), (Finished, Running), (Finished, Error), (Running, Created)] {
            assert!(!from.can_become(to), "{from:?} -> {to:?}");
        }
    }
}
