//! Campaign entities as the platform stores and serves them: contacts,
//! their planned communications, conversation messages and the campaign
//! context a strategy runs in. No I/O lives here.
//!
//! The JSON form of these types (serde) is the one the API and the CLI
//! accept: field names in `snake_case`, statuses in `SCREAMING_SNAKE_CASE`,
//! datetimes in RFC 3339. Free-form maps keep dates in the tagged form of
//! `wit/types.wit` (`{"$datetime": "…"}`) so they round-trip to Python.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub mod analytics;
pub mod contact_file;
pub mod stage;
pub mod template;

// Shared with the web app: see stratagem-types.
pub use stratagem_types::{agent, campaign, integration, objects, problem};
#[cfg(feature = "openapi")]
pub use stratagem_types::openapi;
pub use stratagem_types::{is_valid_name, FieldError, JsonMap, ResultField};

pub use agent::{Agent, AgentDefinition, AgentStatus};
pub use campaign::{Campaign, CampaignStatus};
pub use integration::{Integration, IntegrationKind};
pub use stage::{Channel, Stage, StageDefinition, StageValidation};

impl From<analytics::AnalyticsError> for FieldError {
    fn from(error: analytics::AnalyticsError) -> Self {
        Self { field: error.path, message: error.message, line: Some(error.line), column: Some(error.column) }
    }
}

/// A campaign subject (`object_id`) and the person to reach.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = serde_json::json!({"object_id": "CONTRACT-123", "external_id": "USER-456", "name": "John Smith", "email": "john@example.com", "parameters": {"amount_due": 120.5}})))]
#[serde(deny_unknown_fields)]
pub struct Contact {
    pub object_id: String,
    pub external_id: String,
    pub name: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub phone: String,
    /// Campaign parameters: every extra column of the import file.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub parameters: JsonMap,
    #[serde(default)]
    pub current_stage: Option<String>,
    /// The strategy's own data, kept between invocations.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub internal_data: JsonMap,
    /// Results collected so far, keyed by result code.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub results: JsonMap,
    /// ResultFlag: `Some(true)` achieved, `Some(false)` not, `None` undetermined.
    #[serde(default)]
    pub result_flag: Option<bool>,
    /// ResultDatetime: when `result_flag` was last set to true or false.
    #[serde(default)]
    pub result_datetime: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "objects::objects")]
    pub communications: Vec<Communication>,
}

impl Contact {
    /// Keeps ResultDatetime the platform's: set to `now` when ResultFlag
    /// changes to true or false, cleared while it is undetermined, and
    /// otherwise what it was `before` a strategy ran, whatever the
    /// strategy wrote.
    pub fn settle_result(&mut self, before: Option<&Contact>, now: DateTime<Utc>) {
        let previous_flag = before.and_then(|contact| contact.result_flag);
        self.result_datetime = match self.result_flag {
            None => None,
            Some(_) if self.result_flag != previous_flag => Some(now),
            Some(_) => before.and_then(|contact| contact.result_datetime),
        };
    }
}

/// One planned or past attempt to reach a contact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Communication {
    /// Assigned by the platform; `None` for one a strategy just planned.
    #[serde(default)]
    pub id: Option<String>,
    pub name: String,
    pub stage_name: String,
    /// Start of the window in which the platform may start it.
    pub start_date: DateTime<Utc>,
    /// End of that window; `None` means the campaign's default window.
    #[serde(default)]
    pub end_date: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "objects::object")]
    pub status: CommunicationState,
    /// Set by the platform on the communication whose session just ended.
    #[serde(default)]
    pub flagged: bool,
    /// The A/B alternative label chosen for it.
    #[serde(default)]
    pub alternative: Option<String>,
    /// Extra settings for the stage's channel.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub parameters: JsonMap,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CommunicationState {
    pub status: CommunicationStatus,
    #[serde(default)]
    pub detail: Option<String>,
    #[serde(default)]
    pub updated_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CommunicationStatus {
    #[default]
    Planned,
    InProgress,
    Completed,
    /// Its window passed before it could start; never sent later.
    Missed,
    Failed,
    Cancelled,
    /// It was being sent on a channel whose provider takes no idempotency
    /// key (SMTP, SIP) when its send's outcome was lost — the node sending
    /// it died, or the server stopped answering after it had the message —
    /// so it may have reached the contact. Never sent again by the
    /// platform; AGGREGATION decides whether to try once more.
    InDoubt,
}

impl CommunicationStatus {
    pub const ALL: [CommunicationStatus; 7] =
        [Self::Planned, Self::InProgress, Self::Completed, Self::Missed, Self::Failed, Self::Cancelled, Self::InDoubt];

    /// The spelling of the spec and of the JSON form, e.g. `IN_PROGRESS`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Planned => "PLANNED",
            Self::InProgress => "IN_PROGRESS",
            Self::Completed => "COMPLETED",
            Self::Missed => "MISSED",
            Self::Failed => "FAILED",
            Self::Cancelled => "CANCELLED",
            Self::InDoubt => "IN_DOUBT",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == text)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MessageRole {
    #[default]
    Agent,
    Contact,
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Message {
    #[serde(default)]
    pub role: MessageRole,
    pub content: String,
    pub sent_at: DateTime<Utc>,
    #[serde(default)]
    pub communication_id: Option<String>,
}


/// The campaign a strategy hook runs for.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignContext {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub result_fields: Vec<ResultField>,
}

impl StrategyType {
    pub fn as_str(self) -> &'static str {
        match self {
            StrategyType::DataLoad => "DATA_LOAD",
            StrategyType::Aggregation => "AGGREGATION",
            StrategyType::ContactAnswer => "CONTACT_ANSWER",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [StrategyType::DataLoad, StrategyType::Aggregation, StrategyType::ContactAnswer]
            .into_iter()
            .find(|kind| kind.as_str() == text)
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn works_when_contact_json_has_only_the_required_fields() {
        let contact: Contact = serde_json::from_str(
            r#"{"object_id":"1","external_id":"2","name":"Ann","email":"a@x.io","phone":"+1"}"#,
        )
        .expect("minimal contact parses");
        assert_eq!(contact.current_stage, None);
        assert!(contact.communications.is_empty());
    }

    #[test]
    fn errors_when_contact_json_has_an_unknown_field() {
        let error = serde_json::from_str::<Contact>(
            r#"{"object_id":"1","external_id":"2","name":"Ann","stage":"x"}"#,
        )
        .expect_err("unknown field is rejected");
        assert!(error.to_string().contains("unknown field `stage`"), "{error}");
    }

    #[test]
    fn works_when_result_datetime_follows_the_flag() {
        let mut contact: Contact =
            serde_json::from_str(r#"{"object_id":"1","external_id":"2","name":"Ann"}"#).expect("contact");
        let t1 = DateTime::from_timestamp(1_000, 0).expect("t1");
        let t2 = DateTime::from_timestamp(2_000, 0).expect("t2");
        let before = contact.clone();
        contact.result_flag = Some(true);
        contact.settle_result(Some(&before), t1);
        assert_eq!(contact.result_datetime, Some(t1));
        // Unchanged flag: the strategy cannot move the time.
        let before = contact.clone();
        contact.result_datetime = Some(t2);
        contact.settle_result(Some(&before), t2);
        assert_eq!(contact.result_datetime, Some(t1));
        contact.result_flag = Some(false);
        contact.settle_result(Some(&before), t2);
        assert_eq!(contact.result_datetime, Some(t2));
        contact.result_flag = None;
        contact.settle_result(Some(&before), t2);
        assert_eq!(contact.result_datetime, None);
    }

    #[test]
    fn works_when_status_text_matches_the_json_form() {
        for status in CommunicationStatus::ALL {
            let json = serde_json::to_string(&status).expect("serializes");
            assert_eq!(json, format!("\"{}\"", status.as_str()));
            assert_eq!(CommunicationStatus::parse(status.as_str()), Some(status));
        }
    }

    #[test]
    fn works_when_statuses_use_the_spec_spelling() {
        let state: CommunicationState =
            serde_json::from_str(r#"{"status":"MISSED"}"#).expect("status parses");
        assert_eq!(state.status, CommunicationStatus::Missed);
        assert_eq!(
            serde_json::to_string(&CommunicationStatus::InProgress).expect("serializes"),
            "\"IN_PROGRESS\""
        );
    }
}
