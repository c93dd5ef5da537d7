//! AI agents: the persona that speaks for the campaign on two-way channels.
//! Stages pick an agent; an agent's channels bind it to integrations.

use serde::{Deserialize, Serialize};

use crate::FieldError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AgentStatus {
    /// Available to stages; the default filter of the AI Agents list.
    #[default]
    Running,
    Stopped,
}

impl AgentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AgentStatus::Running => "RUNNING",
            AgentStatus::Stopped => "STOPPED",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [AgentStatus::Running, AgentStatus::Stopped]
            .into_iter()
            .find(|status| status.as_str() == text)
    }
}

/// A named way for the agent to talk through an integration ("Agent
/// channel" in a stage).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AgentChannel {
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::name_100))]
    pub name: String,
    pub integration_id: String,
}

/// The agent's settings as the API accepts and stores them.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"name": "Collector", "instructions": "You remind customers of overdue invoices, politely.", "channels": [{"name": "telegram", "integration_id": "int_telegram"}]})))]
#[serde(deny_unknown_fields)]
pub struct AgentDefinition {
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::name_200))]
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// The system prompt: who the agent is and how it speaks.
    #[serde(default)]
    pub instructions: String,
    /// Overrides the campaign's LLM for this agent.
    #[serde(default)]
    pub llm_model: Option<String>,
    #[serde(default)]
    pub status: AgentStatus,
    #[serde(default, deserialize_with = "crate::objects::objects")]
    pub channels: Vec<AgentChannel>,
    /// The FCM integration used by Mobile Push stages ("Set push
    /// notification configuration").
    #[serde(default)]
    pub push_integration_id: Option<String>,
}

impl AgentDefinition {
    /// Problems the definition has on its own; the caller checks that the
    /// integrations it names exist and have the right kind.
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if !crate::is_valid_name(&self.name, 200) {
            errors.push(FieldError::new("name", "must have 1 to 200 characters"));
        }
        if self.instructions.len() > 64 * 1024 {
            errors.push(FieldError::new("instructions", "must be at most 64 KiB"));
        }
        let mut names = std::collections::HashSet::new();
        for (index, channel) in self.channels.iter().enumerate() {
            let name = channel.name.trim();
            if !crate::is_valid_name(&channel.name, 100) {
                errors.push(FieldError::new(
                    format!("channels[{index}].name"),
                    "must have 1 to 100 characters",
                ));
            } else if !names.insert(name.to_owned()) {
                errors.push(FieldError::new(
                    format!("channels[{index}].name"),
                    format!("`{name}` is used by another channel"),
                ));
            }
        }
        errors
    }
}

/// An agent as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Agent {
    pub id: String,
    #[serde(flatten)]
    pub definition: AgentDefinition,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Agent {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        let own = ObjectBuilder::new()
            .property("id", ObjectBuilder::new().schema_type(Type::String))
            .property("created_at", crate::openapi::date_time())
            .property("updated_at", crate::openapi::date_time())
            .required("id")
            .required("created_at")
            .required("updated_at");
        crate::openapi::into_schema(crate::openapi::extended(<AgentDefinition as utoipa::PartialSchema>::schema(), own.build()))
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Agent {
    fn schemas(schemas: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)>) {
        <AgentDefinition as utoipa::ToSchema>::schemas(schemas);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn works_when_an_agent_has_a_name_only() {
        let agent: AgentDefinition =
            serde_json::from_value(serde_json::json!({"name": "Collector"})).expect("parses");
        assert_eq!(agent.status, AgentStatus::Running);
        assert_eq!(agent.validate(), vec![]);
    }

    #[test]
    fn errors_when_channel_names_repeat() {
        let agent: AgentDefinition = serde_json::from_value(serde_json::json!({
            "name": "Collector",
            "channels": [{"name": "wa", "integration_id": "int_1"}, {"name": "wa", "integration_id": "int_2"}]
        }))
        .expect("parses");
        assert_eq!(
            agent.validate(),
            vec![FieldError::new(
                "channels[1].name",
                "`wa` is used by another channel"
            )]
        );
    }
}
