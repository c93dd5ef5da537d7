//! Campaign entities as the platform stores and serves them: contacts,
//! their planned communications, conversation messages and the campaign
//! context a strategy runs in. No I/O lives here.
//!
//! The JSON form of these types (serde) is the one the API and the CLI
//! accept: field names in `snake_case`, statuses in `SCREAMING_SNAKE_CASE`,
//! datetimes in RFC 3339. Free-form maps keep dates in the tagged form of
//! `wit/types.wit` (`{"$datetime": "…"}`) so they round-trip to Python.

use serde::{Deserialize, Serialize};

pub mod allowlist;
pub mod analytics;
pub mod contact_file;
pub mod stage;
pub mod template;

// Shared with the web app: see stratagem-types.
pub use stratagem_types::{agent, campaign, contact, integration, invocation, objects, problem, quota, strategy, usage};
#[cfg(feature = "openapi")]
pub use stratagem_types::openapi;
pub use stratagem_types::{is_valid_name, FieldError, JsonMap, ResultField};

pub use agent::{Agent, AgentDefinition, AgentStatus};
pub use contact::{Communication, CommunicationState, CommunicationStatus, Contact, Message, MessageRole};
pub use strategy::StrategyType;
pub use campaign::{Campaign, CampaignStatus};
pub use integration::{Integration, IntegrationKind};
pub use stage::{Channel, Stage, StageDefinition, StageValidation};

/// The `session_results` of a send the platform could not make: what
/// AGGREGATION gets, and what makes the communication FAILED with `detail`.
pub fn failed_outcome(detail: impl Into<String>) -> JsonMap {
    let mut outcome = JsonMap::new();
    outcome.insert("OutcomeStatus".into(), "FAILED".into());
    outcome.insert("FailureDetail".into(), detail.into().into());
    outcome
}

/// Whether `session_results` say the send failed ([`failed_outcome`]).
pub fn is_failed_outcome(session_results: &JsonMap) -> bool {
    session_results.get("OutcomeStatus").and_then(serde_json::Value::as_str) == Some("FAILED")
}

impl From<analytics::AnalyticsError> for FieldError {
    fn from(error: analytics::AnalyticsError) -> Self {
        Self { field: error.path, message: error.message, line: Some(error.line), column: Some(error.column) }
    }
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

#[cfg(test)]
mod tests {
    use chrono::DateTime;

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
