//! Contacts as the platform stores and serves them: the contact, its
//! planned communications and conversation messages (the domain crate
//! re-exports these), the contacts table page, and the contact detail of
//! the Contacts tab with its sessions and its 360 View > Results.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::JsonMap;

/// A campaign subject (`object_id`) and the person to reach.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"object_id": "CONTRACT-123", "external_id": "USER-456", "name": "John Smith", "email": "john@example.com", "parameters": {"amount_due": 120.5}})))]
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
    #[serde(default, deserialize_with = "crate::objects::objects")]
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
    #[serde(default, deserialize_with = "crate::objects::object")]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MessageRole {
    #[default]
    Agent,
    Contact,
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Message {
    #[serde(default)]
    pub role: MessageRole,
    pub content: String,
    pub sent_at: DateTime<Utc>,
    #[serde(default)]
    pub communication_id: Option<String>,
}

/// A stored contact with the platform's bookkeeping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StoredContact {
    pub id: String,
    #[serde(flatten)]
    pub contact: Contact,
    /// The last strategy failure for this contact (traceback, input).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub last_error: Option<serde_json::Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl StoredContact {
    /// The last strategy failure for people: its `message`, which every
    /// hook's failure record has.
    pub fn last_error_message(&self) -> Option<&str> {
        self.last_error.as_ref().map(|error| error.get("message").and_then(serde_json::Value::as_str).unwrap_or_default())
    }
}

/// A row of the contacts table view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ContactSummary {
    pub id: String,
    pub object_id: String,
    pub external_id: String,
    pub name: String,
    pub email: String,
    pub phone: String,
    pub current_stage: Option<String>,
    pub communication_count: i64,
    /// Communications that went out on a channel.
    pub sent_count: i64,
    /// Communications still planned.
    pub planned_count: i64,
    pub result_flag: Option<bool>,
    /// The contact's outcome: `results["Outcome"]` when a strategy set
    /// it, else the `OutcomeStatus` of its latest ended session.
    pub outcome: Option<String>,
}

/// A page of contacts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ContactPage {
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
    pub contacts: Vec<ContactSummary>,
}

/// How one communication's session went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionRecord {
    pub communication_id: String,
    /// The channel it went out on (after the A/B choice).
    pub channel: Option<String>,
    pub alternative: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub session_results: Option<JsonMap>,
    pub ended_at: Option<DateTime<Utc>>,
    /// The conversation's transcript, for sessions that had one.
    pub messages: Vec<Message>,
}

/// A contact with how each of its sessions went (the communication
/// history of the Contacts tab) and its results as the 360 view shows them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ContactDetail {
    #[serde(flatten)]
    pub contact: StoredContact,
    pub sessions: Vec<SessionRecord>,
    pub result_view: Vec<ResultEntry>,
    /// Its newest strategy invocations (which hook ran when, how it went,
    /// what it logged), newest first, within the retention period.
    #[serde(default)]
    pub invocations: Vec<crate::invocation::InvocationRecord>,
}

/// One line of 360 View > Results: the default ResultFlag and
/// ResultDatetime, then each of the campaign's result fields, named and
/// described as in Settings > Campaign Results (`null` until filled).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResultEntry {
    pub code: String,
    pub name: String,
    pub description: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub value: serde_json::Value,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn works_when_a_contact_detail_round_trips() {
        let sent = json!({
            "id": "con_1", "object_id": "C1", "external_id": "E1", "name": "Ann", "email": "a@x.io", "phone": "+1",
            "parameters": {"amount": 12.5}, "current_stage": "Remind", "internal_data": {}, "results": {"OutcomeStatus": "PAID"},
            "result_flag": true, "result_datetime": "2026-01-02T03:04:05Z",
            "communications": [{"id": "com_1", "name": "D1", "stage_name": "Remind", "start_date": "2026-01-01T00:00:00Z",
                "end_date": null, "status": {"status": "MISSED", "detail": "window passed", "updated_at": null},
                "flagged": false, "alternative": "B", "parameters": {}}],
            "last_error": {"hook": "AGGREGATION", "message": "boom", "error": {"kind": "trap", "message": "x"}},
            "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-02T00:00:00Z",
            "sessions": [{"communication_id": "com_1", "channel": "SIMULATED", "alternative": "B",
                "session_results": {"OutcomeStatus": "PAID"}, "ended_at": "2026-01-02T00:00:00Z",
                "messages": [{"role": "CONTACT", "content": "hi", "sent_at": "2026-01-01T10:00:00Z", "communication_id": "com_1"}]}],
            "result_view": [{"code": "ResultFlag", "name": "Result", "description": "d", "value": true}],
            "invocations": [{"id": "inv_1", "campaign_id": "cmp_1", "hook": "AGGREGATION", "component_hash": "ab12", "object_id": "C1",
                "import_job_id": null, "started_at": "2026-01-02T00:00:00Z", "outcome": "exception",
                "error": {"kind": "exception"}, "message": "ValueError: boom",
                "logs": [{"level": "warning", "logger": "strategy", "message": "no amount"}], "dropped_log_records": 0,
                "fuel": 12345, "peak_memory_bytes": 1048576, "duration_us": 830, "http_calls": 1, "replayable": true}],
        });
        let detail: ContactDetail = serde_json::from_value(sent.clone()).expect("reads");
        assert_eq!(detail.contact.contact.communications[0].status.status, CommunicationStatus::Missed);
        assert_eq!(detail.contact.last_error_message(), Some("boom"));
        assert_eq!(detail.sessions[0].messages[0].role, MessageRole::Contact);
        assert_eq!(detail.invocations[0].logs[0].level, crate::invocation::LogLevel::Warning);
        assert_eq!(serde_json::to_value(&detail).expect("writes"), sent);
    }

    #[test]
    fn works_when_a_contact_page_round_trips() {
        let sent = json!({"total": 1, "limit": 20, "offset": 0, "contacts": [{"id": "con_1", "object_id": "C1", "external_id": "E1",
            "name": "Ann", "email": "", "phone": "", "current_stage": null, "communication_count": 2, "sent_count": 1, "planned_count": 1, "result_flag": null,
            "outcome": "PAID"}]});
        let page: ContactPage = serde_json::from_value(sent.clone()).expect("reads");
        assert_eq!(serde_json::to_value(&page).expect("writes"), sent);
    }
}
