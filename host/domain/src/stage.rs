//! Campaign stages: a step of the workflow tied to a channel and an agent,
//! with the channel's own settings and optional A/B alternatives.
//!
//! Which settings a channel takes, and which it requires, follow the spec's
//! "Channel Configuration Examples" one channel at a time; a setting a
//! channel does not use is an error rather than silently ignored, so a typo
//! or a leftover from another channel is caught when the stage is saved.

use serde::{Deserialize, Serialize};

use crate::integration::IntegrationKind;
use crate::FieldError;

/// The communication methods of the spec's "Available Channels", plus
/// `SIMULATED`, which reaches no one and needs no account (demos, tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Channel {
    EmailNotification,
    EmailCommunication,
    Human,
    Infobip,
    #[serde(rename = "MESSAGEBIRD_WHATSAPP")]
    MessageBirdWhatsapp,
    #[serde(rename = "MESSAGEBIRD_WEBHOOK")]
    MessageBirdWebhook,
    /// WhatsApp Business through Meta's Cloud API.
    Whatsapp,
    MobilePush,
    Telegram,
    Sip,
    Twilio,
    NoCommunication,
    Simulated,
}

/// A channel-specific setting of a stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    IntegrationId,
    AgentChannel,
    AgentRole,
    EmailSubject,
    EmailInputType,
    EmailTemplate,
    StartPhrase,
    StartState,
    ProjectId,
    Version,
    TemplateName,
}

impl Setting {
    pub fn name(self) -> &'static str {
        match self {
            Setting::IntegrationId => "integration_id",
            Setting::AgentChannel => "agent_channel",
            Setting::AgentRole => "agent_role",
            Setting::EmailSubject => "email_subject",
            Setting::EmailInputType => "email_input_type",
            Setting::EmailTemplate => "email_template",
            Setting::StartPhrase => "start_phrase",
            Setting::StartState => "start_state",
            Setting::ProjectId => "project_id",
            Setting::Version => "version",
            Setting::TemplateName => "template_name",
        }
    }
}

/// Whether a channel needs an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentRule {
    Required,
    Optional,
    NotUsed,
}

/// What a channel takes: its agent rule, required and optional settings.
pub struct ChannelRules {
    pub agent: AgentRule,
    pub required: &'static [Setting],
    pub optional: &'static [Setting],
}

impl Channel {
    pub const ALL: [Channel; 13] = [
        Channel::EmailNotification,
        Channel::EmailCommunication,
        Channel::Human,
        Channel::Infobip,
        Channel::MessageBirdWhatsapp,
        Channel::MessageBirdWebhook,
        Channel::Whatsapp,
        Channel::MobilePush,
        Channel::Telegram,
        Channel::Sip,
        Channel::Twilio,
        Channel::NoCommunication,
        Channel::Simulated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::EmailNotification => "EMAIL_NOTIFICATION",
            Channel::EmailCommunication => "EMAIL_COMMUNICATION",
            Channel::Human => "HUMAN",
            Channel::Infobip => "INFOBIP",
            Channel::MessageBirdWhatsapp => "MESSAGEBIRD_WHATSAPP",
            Channel::MessageBirdWebhook => "MESSAGEBIRD_WEBHOOK",
            Channel::Whatsapp => "WHATSAPP",
            Channel::MobilePush => "MOBILE_PUSH",
            Channel::Telegram => "TELEGRAM",
            Channel::Sip => "SIP",
            Channel::Twilio => "TWILIO",
            Channel::NoCommunication => "NO_COMMUNICATION",
            Channel::Simulated => "SIMULATED",
        }
    }

    /// The spec's required fields per channel; the optional ones are the
    /// other fields its configuration example shows.
    pub fn rules(self) -> ChannelRules {
        use Setting::*;
        let (agent, required, optional): (AgentRule, &'static [Setting], &'static [Setting]) =
            match self {
                Channel::EmailNotification => (
                    AgentRule::Optional,
                    &[IntegrationId, EmailSubject, EmailTemplate],
                    &[EmailInputType],
                ),
                Channel::EmailCommunication => (
                    AgentRule::Required,
                    &[EmailSubject, EmailTemplate],
                    &[IntegrationId, AgentChannel, EmailInputType],
                ),
                Channel::Human => (AgentRule::Optional, &[], &[AgentRole]),
                Channel::Infobip => (
                    AgentRule::Required,
                    &[],
                    &[IntegrationId, AgentChannel, StartPhrase],
                ),
                Channel::MessageBirdWhatsapp => (
                    AgentRule::Required,
                    &[ProjectId, Version, StartState],
                    &[IntegrationId],
                ),
                Channel::MessageBirdWebhook => {
                    (AgentRule::Required, &[], &[IntegrationId, AgentChannel])
                }
                Channel::Whatsapp => (
                    AgentRule::Optional,
                    &[StartState, TemplateName],
                    &[IntegrationId],
                ),
                Channel::MobilePush => (AgentRule::Optional, &[], &[]),
                Channel::Telegram => (
                    AgentRule::Required,
                    &[],
                    &[IntegrationId, AgentChannel, StartPhrase],
                ),
                Channel::Sip => (AgentRule::Required, &[], &[IntegrationId]),
                Channel::Twilio => (AgentRule::Required, &[StartState], &[IntegrationId]),
                Channel::NoCommunication => (AgentRule::NotUsed, &[], &[]),
                Channel::Simulated => (AgentRule::Optional, &[], &[]),
            };
        ChannelRules {
            agent,
            required,
            optional,
        }
    }

    /// The integration kind that carries this channel's credentials.
    pub fn integration_kind(self) -> Option<IntegrationKind> {
        match self {
            Channel::EmailNotification | Channel::EmailCommunication => Some(IntegrationKind::Smtp),
            Channel::Infobip => Some(IntegrationKind::Infobip),
            Channel::MessageBirdWhatsapp | Channel::MessageBirdWebhook => {
                Some(IntegrationKind::MessageBird)
            }
            Channel::Whatsapp => Some(IntegrationKind::WhatsappMeta),
            Channel::MobilePush => Some(IntegrationKind::Fcm),
            Channel::Telegram => Some(IntegrationKind::Telegram),
            Channel::Sip => Some(IntegrationKind::Sip),
            Channel::Twilio => Some(IntegrationKind::Twilio),
            Channel::Human | Channel::NoCommunication | Channel::Simulated => None,
        }
    }

    /// Two-way channels hold a conversation; the others end at delivery.
    pub fn is_conversational(self) -> bool {
        !matches!(
            self,
            Channel::EmailNotification | Channel::MobilePush | Channel::NoCommunication
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EmailInputType {
    /// Rich text, wrapped in the default email layout.
    #[default]
    Default,
    /// Raw HTML, sent exactly as written.
    Html,
}

/// The channel-specific fields of a stage or an alternative. Every field is
/// optional here; [`validate_channel`] says which ones a channel requires.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integration_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_channel: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_input_type: Option<EmailInputType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_template: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_phrase: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_name: Option<String>,
}

impl ChannelSettings {
    /// Whether a setting has a value; blank text counts as missing.
    pub fn has(&self, setting: Setting) -> bool {
        let text = match setting {
            Setting::EmailInputType => return self.email_input_type.is_some(),
            Setting::IntegrationId => &self.integration_id,
            Setting::AgentChannel => &self.agent_channel,
            Setting::AgentRole => &self.agent_role,
            Setting::EmailSubject => &self.email_subject,
            Setting::EmailTemplate => &self.email_template,
            Setting::StartPhrase => &self.start_phrase,
            Setting::StartState => &self.start_state,
            Setting::ProjectId => &self.project_id,
            Setting::Version => &self.version,
            Setting::TemplateName => &self.template_name,
        };
        text.as_deref().is_some_and(|text| !text.trim().is_empty())
    }

    /// Set in the body at all, even blank: used to reject settings a
    /// channel does not take.
    fn is_present(&self, setting: Setting) -> bool {
        match setting {
            Setting::EmailInputType => self.email_input_type.is_some(),
            Setting::IntegrationId => self.integration_id.is_some(),
            Setting::AgentChannel => self.agent_channel.is_some(),
            Setting::AgentRole => self.agent_role.is_some(),
            Setting::EmailSubject => self.email_subject.is_some(),
            Setting::EmailTemplate => self.email_template.is_some(),
            Setting::StartPhrase => self.start_phrase.is_some(),
            Setting::StartState => self.start_state.is_some(),
            Setting::ProjectId => self.project_id.is_some(),
            Setting::Version => self.version.is_some(),
            Setting::TemplateName => self.template_name.is_some(),
        }
    }
}

const ALL_SETTINGS: [Setting; 11] = [
    Setting::IntegrationId,
    Setting::AgentChannel,
    Setting::AgentRole,
    Setting::EmailSubject,
    Setting::EmailInputType,
    Setting::EmailTemplate,
    Setting::StartPhrase,
    Setting::StartState,
    Setting::ProjectId,
    Setting::Version,
    Setting::TemplateName,
];

/// An A/B alternative: replaces the stage's default channel settings for
/// `weight` percent of the contacts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Alternative {
    pub label: String,
    #[serde(deserialize_with = "crate::objects::whole_number")]
    pub weight: u32,
    pub channel: Channel,
    #[serde(default)]
    pub agent_id: Option<String>,
    #[serde(default, deserialize_with = "crate::objects::object")]
    pub settings: ChannelSettings,
}

/// One way a stage reaches a contact: see [`StageDefinition::choices`].
pub struct ChannelChoice<'a> {
    pub field_prefix: String,
    pub channel: Channel,
    pub agent_id: Option<&'a str>,
    pub settings: &'a ChannelSettings,
}

/// A stage as the API accepts it and stores it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageDefinition {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub channel: Channel,
    #[serde(default)]
    pub agent_id: Option<String>,
    #[serde(default, deserialize_with = "crate::objects::object")]
    pub settings: ChannelSettings,
    /// A/B alternatives; empty means every contact gets the default.
    #[serde(default, deserialize_with = "crate::objects::objects")]
    pub alternatives: Vec<Alternative>,
}

/// A stage as the API shows it; `position` orders the Stages tab.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stage {
    pub id: String,
    pub campaign_id: String,
    pub position: i64,
    #[serde(flatten)]
    pub definition: StageDefinition,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// The label recorded on a communication that got the stage's default.
pub const DEFAULT_LABEL: &str = "default";

/// Weights are percentages of contacts taken from the default.
pub const TOTAL_WEIGHT: u32 = 100;

impl StageDefinition {
    /// Every problem with the stage, each naming its field. References to
    /// agents and integrations are checked by the caller, which can see
    /// the tenant's rows.
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if !crate::is_valid_name(&self.name, 200) {
            errors.push(FieldError::new("name", "must have 1 to 200 characters"));
        }
        if self.description.chars().count() > 2000 {
            errors.push(FieldError::new(
                "description",
                "must have at most 2000 characters",
            ));
        }
        validate_channel(
            self.channel,
            self.agent_id.as_deref(),
            &self.settings,
            "",
            &mut errors,
        );
        if self.alternatives.len() > 10 {
            errors.push(FieldError::new(
                "alternatives",
                "at most 10 alternatives per stage",
            ));
        }
        let mut labels = std::collections::HashSet::new();
        let mut total = 0u32;
        for (index, alternative) in self.alternatives.iter().enumerate() {
            let at = format!("alternatives[{index}].");
            let label = alternative.label.trim();
            if !crate::is_valid_name(&alternative.label, 100) {
                errors.push(FieldError::new(
                    format!("{at}label"),
                    "must have 1 to 100 characters",
                ));
            } else if label.eq_ignore_ascii_case(DEFAULT_LABEL) {
                errors.push(FieldError::new(
                    format!("{at}label"),
                    "`default` names the stage's own settings; choose another label",
                ));
            } else if !labels.insert(label.to_lowercase()) {
                errors.push(FieldError::new(
                    format!("{at}label"),
                    format!("`{label}` is used by another alternative"),
                ));
            }
            if alternative.weight == 0 || alternative.weight > TOTAL_WEIGHT {
                errors.push(FieldError::new(
                    format!("{at}weight"),
                    format!(
                        "must be 1 to {TOTAL_WEIGHT} (percent of contacts), got {}",
                        alternative.weight
                    ),
                ));
            }
            total = total.saturating_add(alternative.weight);
            validate_channel(
                alternative.channel,
                alternative.agent_id.as_deref(),
                &alternative.settings,
                &at,
                &mut errors,
            );
        }
        if total > TOTAL_WEIGHT {
            errors.push(FieldError::new(
                "alternatives",
                format!(
                    "weights add up to {total}; they are percentages of contacts taken from the default and must add up to at most {TOTAL_WEIGHT}"
                ),
            ));
        }
        errors
    }

    /// Every way the stage reaches a contact — its own channel settings,
    /// then each alternative's — with the field prefix errors about it use
    /// (`""`, `"alternatives[0]."`, …).
    pub fn choices(&self) -> impl Iterator<Item = ChannelChoice<'_>> {
        let own = ChannelChoice {
            field_prefix: String::new(),
            channel: self.channel,
            agent_id: self.agent_id.as_deref(),
            settings: &self.settings,
        };
        std::iter::once(own).chain(self.alternatives.iter().enumerate().map(|(index, alternative)| ChannelChoice {
            field_prefix: format!("alternatives[{index}]."),
            channel: alternative.channel,
            agent_id: alternative.agent_id.as_deref(),
            settings: &alternative.settings,
        }))
    }

    /// Whether any of the stage's choices uses this agent.
    pub fn uses_agent(&self, agent_id: &str) -> bool {
        self.choices().any(|choice| choice.agent_id == Some(agent_id))
    }

    /// Whether any of the stage's choices sends through this integration.
    pub fn uses_integration(&self, integration_id: &str) -> bool {
        self.choices().any(|choice| choice.settings.integration_id.as_deref() == Some(integration_id))
    }

    /// The alternative a contact gets, or `None` for the default. Stable
    /// for a contact (`key`, e.g. its object id) and stage across runs and
    /// releases: FNV-1a, not std's hasher, whose output may change.
    pub fn choose(&self, stage_id: &str, key: &str) -> Option<&Alternative> {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in stage_id.bytes().chain([0]).chain(key.bytes()) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        let bucket = (hash % u64::from(TOTAL_WEIGHT)) as u32;
        let mut upper = 0;
        self.alternatives.iter().find(|alternative| {
            upper += alternative.weight;
            bucket < upper
        })
    }
}

/// Checks one channel choice (the stage's or an alternative's).
fn validate_channel(
    channel: Channel,
    agent_id: Option<&str>,
    settings: &ChannelSettings,
    at: &str,
    errors: &mut Vec<FieldError>,
) {
    let rules = channel.rules();
    let channel_name = channel.as_str();
    let has_agent = agent_id.is_some_and(|id| !id.trim().is_empty());
    match rules.agent {
        AgentRule::Required if !has_agent => errors.push(FieldError::new(
            format!("{at}agent_id"),
            format!("channel {channel_name} needs an agent: set agent_id to one of your agents"),
        )),
        AgentRule::NotUsed if agent_id.is_some() => errors.push(FieldError::new(
            format!("{at}agent_id"),
            format!(
                "channel {channel_name} is a final stage without communication and takes no agent"
            ),
        )),
        _ => {}
    }
    for &setting in rules.required {
        if !settings.has(setting) {
            errors.push(FieldError::new(
                format!("{at}settings.{}", setting.name()),
                format!("is required for channel {channel_name}"),
            ));
        }
    }
    let allowed: Vec<&str> = rules
        .required
        .iter()
        .chain(rules.optional)
        .map(|s| s.name())
        .collect();
    for setting in ALL_SETTINGS {
        if settings.is_present(setting) && !allowed.contains(&setting.name()) {
            let hint = if allowed.is_empty() {
                "it takes no settings".to_owned()
            } else {
                format!("its settings are {}", allowed.join(", "))
            };
            errors.push(FieldError::new(
                format!("{at}settings.{}", setting.name()),
                format!("does not apply to channel {channel_name}; {hint}"),
            ));
        }
    }
    if settings.agent_channel.is_some() && !has_agent {
        errors.push(FieldError::new(
            format!("{at}settings.agent_channel"),
            "needs agent_id: it names one of that agent's channels",
        ));
    }
    for (name, text) in [("email_subject", &settings.email_subject), ("email_template", &settings.email_template)] {
        if let Some(Err(error)) = text.as_deref().map(crate::template::check) {
            errors.push(FieldError {
                field: format!("{at}settings.{name}"),
                message: error.message,
                line: Some(error.line),
                column: Some(error.column),
            });
        }
    }
    for (setting, limit) in [
        (&settings.email_subject, 998),
        (&settings.email_template, 256 * 1024),
    ] {
        if setting.as_ref().is_some_and(|text| text.len() > limit) {
            errors.push(FieldError::new(
                format!("{at}settings"),
                format!("an email subject or template exceeds {limit} bytes"),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_stage(json: serde_json::Value) -> StageDefinition {
        serde_json::from_value(json).expect("stage parses")
    }

    fn fields(errors: &[FieldError]) -> Vec<&str> {
        errors.iter().map(|e| e.field.as_str()).collect()
    }

    #[test]
    fn works_when_each_channel_has_exactly_its_required_fields() {
        let cases = [
            (
                "EMAIL_NOTIFICATION",
                None,
                serde_json::json!({"integration_id": "int_1", "email_subject": "Hi", "email_template": "Dear {{name}}"}),
            ),
            (
                "EMAIL_COMMUNICATION",
                Some("agt_1"),
                serde_json::json!({"email_subject": "Hi", "email_template": "Dear {{name}}"}),
            ),
            ("HUMAN", None, serde_json::json!({})),
            ("INFOBIP", Some("agt_1"), serde_json::json!({})),
            (
                "MESSAGEBIRD_WHATSAPP",
                Some("agt_1"),
                serde_json::json!({"project_id": "p", "version": "3", "start_state": "greet"}),
            ),
            ("MESSAGEBIRD_WEBHOOK", Some("agt_1"), serde_json::json!({})),
            (
                "WHATSAPP",
                None,
                serde_json::json!({"start_state": "greet", "template_name": "debt_reminder"}),
            ),
            ("MOBILE_PUSH", None, serde_json::json!({})),
            ("TELEGRAM", Some("agt_1"), serde_json::json!({})),
            ("SIP", Some("agt_1"), serde_json::json!({})),
            (
                "TWILIO",
                Some("agt_1"),
                serde_json::json!({"start_state": "greet"}),
            ),
            ("NO_COMMUNICATION", None, serde_json::json!({})),
            ("SIMULATED", None, serde_json::json!({})),
        ];
        assert_eq!(cases.len(), Channel::ALL.len());
        for (channel, agent, settings) in cases {
            let stage = parse_stage(
                serde_json::json!({"name": "1. Step", "channel": channel, "agent_id": agent, "settings": settings}),
            );
            assert_eq!(stage.validate(), vec![], "{channel}");
        }
    }

    #[test]
    fn errors_when_an_email_template_has_an_unknown_placeholder() {
        let stage = parse_stage(serde_json::json!({"name": "Mail", "channel": "EMAIL_NOTIFICATION",
            "settings": {"integration_id": "int_1", "email_subject": "Hi", "email_template": "Dear {{nam}}"}}));
        let errors = stage.validate();
        assert_eq!(fields(&errors), ["settings.email_template"]);
        assert_eq!((errors[0].line, errors[0].column), (Some(1), Some(6)));
    }

    #[test]
    fn errors_when_required_fields_are_missing_or_blank() {
        let stage = parse_stage(
            serde_json::json!({"name": "1. Mail", "channel": "EMAIL_NOTIFICATION", "settings": {"email_subject": "  "}}),
        );
        let errors = stage.validate();
        assert_eq!(
            fields(&errors),
            [
                "settings.integration_id",
                "settings.email_subject",
                "settings.email_template"
            ]
        );
        assert_eq!(
            errors[0].message,
            "is required for channel EMAIL_NOTIFICATION"
        );
        let twilio = parse_stage(serde_json::json!({"name": "Call", "channel": "TWILIO"}));
        assert_eq!(
            fields(&twilio.validate()),
            ["agent_id", "settings.start_state"]
        );
    }

    #[test]
    fn errors_when_a_setting_belongs_to_another_channel() {
        let stage = parse_stage(
            serde_json::json!({"name": "Chat", "channel": "TELEGRAM", "agent_id": "agt_1", "settings": {"email_subject": "Hi"}}),
        );
        let errors = stage.validate();
        assert_eq!(fields(&errors), ["settings.email_subject"]);
        assert_eq!(
            errors[0].message,
            "does not apply to channel TELEGRAM; its settings are integration_id, agent_channel, start_phrase"
        );
        let last = parse_stage(
            serde_json::json!({"name": "End", "channel": "NO_COMMUNICATION", "agent_id": "agt_1"}),
        );
        assert_eq!(fields(&last.validate()), ["agent_id"]);
    }

    #[test]
    fn errors_when_json_names_an_unknown_channel_or_setting() {
        let error = serde_json::from_value::<StageDefinition>(
            serde_json::json!({"name": "x", "channel": "FAX"}),
        )
        .expect_err("unknown channel");
        assert!(
            error.to_string().contains("unknown variant `FAX`"),
            "{error}"
        );
        let error = serde_json::from_value::<StageDefinition>(
            serde_json::json!({"name": "x", "channel": "SIP", "settings": {"subjekt": "x"}}),
        )
        .expect_err("unknown setting");
        assert!(
            error.to_string().contains("unknown field `subjekt`"),
            "{error}"
        );
    }

    #[test]
    fn works_when_alternatives_weights_add_up_to_at_most_100() {
        let stage = parse_stage(serde_json::json!({
            "name": "Reminder", "channel": "SIMULATED",
            "alternatives": [
                {"label": "B", "weight": 30, "channel": "TELEGRAM", "agent_id": "agt_1"},
                {"label": "C", "weight": 70, "channel": "SIMULATED"}
            ]
        }));
        assert_eq!(stage.validate(), vec![]);
    }

    #[test]
    fn errors_when_alternatives_are_invalid() {
        let stage = parse_stage(serde_json::json!({
            "name": "Reminder", "channel": "SIMULATED",
            "alternatives": [
                {"label": "B", "weight": 60, "channel": "TELEGRAM"},
                {"label": "b", "weight": 50, "channel": "SIMULATED"},
                {"label": "default", "weight": 0, "channel": "SIMULATED"}
            ]
        }));
        let errors = stage.validate();
        assert_eq!(
            fields(&errors),
            [
                "alternatives[0].agent_id",
                "alternatives[1].label",
                "alternatives[2].label",
                "alternatives[2].weight",
                "alternatives"
            ]
        );
        assert!(
            errors[4].message.starts_with("weights add up to 110"),
            "{}",
            errors[4].message
        );
    }

    #[test]
    fn works_when_choosing_alternatives_in_proportion_and_stably() {
        let stage = parse_stage(serde_json::json!({
            "name": "Reminder", "channel": "SIMULATED",
            "alternatives": [{"label": "B", "weight": 30, "channel": "SIMULATED"}]
        }));
        let chosen = (0..10_000)
            .filter(|i| stage.choose("stg_1", &format!("CONTRACT-{i}")).is_some())
            .count();
        assert!(
            (2_700..3_300).contains(&chosen),
            "30% expected, got {chosen} of 10000"
        );
        for i in 0..100 {
            let key = format!("CONTRACT-{i}");
            assert_eq!(stage.choose("stg_1", &key), stage.choose("stg_1", &key));
        }
        // A pinned value: the choice must not change between releases.
        let labels: String = (0..12)
            .map(|i| {
                if stage.choose("stg_1", &i.to_string()).is_some() {
                    'B'
                } else {
                    '-'
                }
            })
            .collect();
        assert_eq!(labels, PINNED_CHOICES);
    }

    const PINNED_CHOICES: &str = "--BB-B--B--B";
}
