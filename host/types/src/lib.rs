//! The contracts the service and the web app share: channel rules,
//! integration kinds, the problem document every error is, and the JSON
//! the API takes and answers. Serde types and pure rules only, no I/O, so
//! it compiles for the host and for wasm32-unknown-unknown; the domain
//! crate re-exports it, and the web app deserializes into it instead of
//! mirroring its tables.

use serde::{Deserialize, Serialize};

pub mod agent;
pub mod analytics;
pub mod analytics_file;
pub mod campaign;
pub mod contact;
pub mod deep_analysis;
pub mod dry_run;
pub mod import;
pub mod integration;
pub mod invocation;
pub mod objects;
#[cfg(feature = "openapi")]
pub mod openapi;
pub mod problem;
pub mod quota;
pub mod stage;
pub mod strategy;
pub mod usage;

pub use agent::{Agent, AgentDefinition, AgentStatus};
pub use campaign::{Blocker, BlockerCode, Campaign, CampaignStatus, Readiness};
pub use contact::{Communication, CommunicationState, CommunicationStatus, Contact, Message, MessageRole};
pub use integration::{Integration, IntegrationKind};
pub use problem::Problem;
pub use stage::{Channel, Stage, StageDefinition};
pub use strategy::StrategyType;

/// One problem with one field of a request, e.g. `settings.email_subject`:
/// "is required for channel EMAIL_NOTIFICATION".
/// Fields of an uploaded file also carry where they are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FieldError {
    pub field: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into(), line: None, column: None }
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.line, self.column) {
            (Some(line), Some(column)) => write!(f, "line {line}, column {column}: ")?,
            (Some(line), None) => write!(f, "line {line}: ")?,
            _ => {}
        }
        if self.field.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

/// A name as the API takes it: not blank, and at most `max` characters as
/// sent (it is stored trimmed). The OpenAPI document states the same rule.
pub fn is_valid_name(text: &str, max: usize) -> bool {
    !text.trim().is_empty() && text.chars().count() <= max
}

/// A JSON object: campaign parameters, internal data, results.
pub type JsonMap = serde_json::Map<String, serde_json::Value>;

/// A custom campaign result field (Settings > Campaign Results).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ResultField {
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::result_code))]
    pub code: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
}
