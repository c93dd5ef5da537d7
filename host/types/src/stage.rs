//! Campaign stages: a step of the workflow tied to a channel and an agent,
//! with the channel's own settings and optional A/B alternatives. The
//! channel rules here are the one table both the service (which validates a
//! stage with them in the domain crate) and the web form (which shows
//! exactly those inputs) read.
//!
//! Which settings a channel takes, and which it requires, follow the spec's
//! "Channel Configuration Examples" one channel at a time; a setting a
//! channel does not use is an error rather than silently ignored, so a typo
//! or a leftover from another channel is caught when the stage is saved.

use serde::{Deserialize, Serialize};

use crate::integration::IntegrationKind;

/// The communication methods of the spec's "Available Channels", plus
/// `SIMULATED`, which reaches no one and needs no account (demos, tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

    /// Whether the channel takes a setting at all.
    pub fn takes(self, setting: Setting) -> bool {
        let rules = self.rules();
        rules.required.contains(&setting) || rules.optional.contains(&setting)
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(description = "Which fields a channel requires and takes (422 names a missing or foreign one): EMAIL_NOTIFICATION integration_id*, email_subject*, email_template*, email_input_type; EMAIL_COMMUNICATION (agent*) email_subject*, email_template*, integration_id, agent_channel, email_input_type; HUMAN agent_role; INFOBIP (agent*) integration_id, agent_channel, start_phrase; MESSAGEBIRD_WHATSAPP (agent*) project_id*, version*, start_state*, integration_id; MESSAGEBIRD_WEBHOOK (agent*) integration_id, agent_channel; WHATSAPP start_state*, template_name*, integration_id; MOBILE_PUSH none (the agent needs a push integration); TELEGRAM (agent*) integration_id, agent_channel, start_phrase; SIP (agent*) integration_id; TWILIO (agent*) start_state*, integration_id; NO_COMMUNICATION none and no agent; SIMULATED none."))]
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

    /// A text setting's value (`None` for the email input type, which is
    /// not text).
    pub fn text(&self, setting: Setting) -> Option<&str> {
        match setting {
            Setting::EmailInputType => None,
            Setting::IntegrationId => self.integration_id.as_deref(),
            Setting::AgentChannel => self.agent_channel.as_deref(),
            Setting::AgentRole => self.agent_role.as_deref(),
            Setting::EmailSubject => self.email_subject.as_deref(),
            Setting::EmailTemplate => self.email_template.as_deref(),
            Setting::StartPhrase => self.start_phrase.as_deref(),
            Setting::StartState => self.start_state.as_deref(),
            Setting::ProjectId => self.project_id.as_deref(),
            Setting::Version => self.version.as_deref(),
            Setting::TemplateName => self.template_name.as_deref(),
        }
    }

    /// Sets a text setting; the email input type is left as it is.
    pub fn set_text(&mut self, setting: Setting, value: Option<String>) {
        let slot = match setting {
            Setting::EmailInputType => return,
            Setting::IntegrationId => &mut self.integration_id,
            Setting::AgentChannel => &mut self.agent_channel,
            Setting::AgentRole => &mut self.agent_role,
            Setting::EmailSubject => &mut self.email_subject,
            Setting::EmailTemplate => &mut self.email_template,
            Setting::StartPhrase => &mut self.start_phrase,
            Setting::StartState => &mut self.start_state,
            Setting::ProjectId => &mut self.project_id,
            Setting::Version => &mut self.version,
            Setting::TemplateName => &mut self.template_name,
        };
        *slot = value;
    }

    /// Set in the body at all, even blank: used to reject settings a
    /// channel does not take.
    pub fn is_present(&self, setting: Setting) -> bool {
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

/// Whether a Default email template holds tags (the rich-text editor's)
/// rather than plain text: a `<` that opens or closes an element. The
/// service renders the one as sanitized HTML, the other as paragraphs, and
/// the editor loads each the same way.
pub fn has_markup(template: &str) -> bool {
    template.match_indices('<').any(|(at, _)| {
        let next = template[at + 1..].chars().next();
        next.is_some_and(|c| c.is_ascii_alphabetic() || c == '/')
    })
}

/// The settings a communication's `parameters` may set for that one
/// communication: what it says, never where it goes (the integration and
/// the agent channel stay the stage's, as readiness checked them).
pub const OVERRIDABLE_SETTINGS: [Setting; 7] = [
    Setting::EmailSubject,
    Setting::EmailTemplate,
    Setting::StartPhrase,
    Setting::StartState,
    Setting::ProjectId,
    Setting::Version,
    Setting::TemplateName,
];

impl ChannelSettings {
    /// These settings for one communication: each overridable setting the
    /// channel takes that the communication's `parameters` name with a
    /// text value replaces the stage's.
    pub fn overridden_by(&self, channel: Channel, parameters: &crate::JsonMap) -> ChannelSettings {
        let mut settings = self.clone();
        for setting in OVERRIDABLE_SETTINGS.into_iter().filter(|setting| channel.takes(*setting)) {
            if let Some(text) = parameters.get(setting.name()).and_then(serde_json::Value::as_str) {
                settings.set_text(setting, Some(text.to_owned()));
            }
        }
        settings
    }
}

/// Every setting, in the order forms show them.
pub const ALL_SETTINGS: [Setting; 11] = [
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Alternative {
    /// Unique in the stage, and not `default`.
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::name_100))]
    pub label: String,
    #[serde(deserialize_with = "crate::objects::whole_number")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::weight))]
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

impl ChannelChoice<'_> {
    /// The integration this choice sends through: see [`integration_id`].
    pub fn integration_id(&self, agent: Option<&crate::AgentDefinition>) -> Option<String> {
        integration_id(self.channel, self.settings, agent)
    }
}

/// The integration a channel sends through: for Mobile Push the agent's
/// push integration, else the stage's own, else its agent channel's.
/// `None` when the channel takes none or none is set.
pub fn integration_id(channel: Channel, settings: &ChannelSettings, agent: Option<&crate::AgentDefinition>) -> Option<String> {
    channel.integration_kind()?;
    if channel == Channel::MobilePush {
        return agent?.push_integration_id.clone();
    }
    let via_agent_channel = || {
        let name = settings.agent_channel.as_deref()?;
        agent?.channels.iter().find(|c| c.name == name).map(|c| c.integration_id.clone())
    };
    settings.integration_id.clone().or_else(via_agent_channel)
}

/// A stage as the API accepts it and stores it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"name": "1. Email reminder", "channel": "EMAIL_NOTIFICATION", "settings": {"integration_id": "int_smtp", "email_subject": "Your invoice", "email_template": "Hello {{name}}, {{parameters.amount_due}} is due."}, "alternatives": [{"label": "short", "weight": 50, "channel": "EMAIL_NOTIFICATION", "settings": {"integration_id": "int_smtp", "email_subject": "Invoice", "email_template": "{{parameters.amount_due}} due"}}]})))]
pub struct StageDefinition {
    /// Unique in the campaign; strategies plan communications by stage name.
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::name_200))]
    pub name: String,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 2000))]
    pub description: String,
    pub channel: Channel,
    #[serde(default)]
    pub agent_id: Option<String>,
    #[serde(default, deserialize_with = "crate::objects::object")]
    pub settings: ChannelSettings,
    /// A/B alternatives: each takes `weight` percent of the contacts (chosen
    /// per contact, stably); weights add up to at most 100, the rest get the
    /// default.
    #[serde(default, deserialize_with = "crate::objects::objects")]
    #[cfg_attr(feature = "openapi", schema(max_items = 10))]
    pub alternatives: Vec<Alternative>,
}

/// A stage as the API shows it; `position` orders the Stages tab.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stage {
    pub id: String,
    pub campaign_id: String,
    pub position: i64,
    #[serde(flatten)]
    pub definition: StageDefinition,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Stage {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        let string = || ObjectBuilder::new().schema_type(Type::String);
        let own = ObjectBuilder::new()
            .description(Some("A stage as the API shows it; `position` orders the Stages tab."))
            .property("id", string())
            .property("campaign_id", string())
            .property("position", ObjectBuilder::new().schema_type(Type::Integer).format(Some(utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::Int64))))
            .property("created_at", crate::openapi::date_time())
            .property("updated_at", crate::openapi::date_time());
        let own = ["id", "campaign_id", "position", "created_at", "updated_at"].into_iter().fold(own, |own, name| own.required(name));
        crate::openapi::into_schema(crate::openapi::extended(<StageDefinition as utoipa::PartialSchema>::schema(), own.build()))
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Stage {
    fn schemas(schemas: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)>) {
        <StageDefinition as utoipa::ToSchema>::schemas(schemas);
    }
}

/// An email as it goes out (`POST /email/preview` shows one): the subject,
/// the HTML body and its text/plain alternative.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RenderedEmail {
    pub subject: String,
    pub html: String,
    pub text: String,
}

/// A test email from the stage editor (`POST /email/test`): the stage's
/// draft email rendered for `contact` (a sample one if left out), exactly
/// as a send of the stage renders it, and sent to the one address `to`
/// through the integration the stage would send through — its own
/// `integration_id`, else its agent's channel `agent_channel` (Email
/// Communication).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"to": "me@example.com", "integration_id": "int_smtp", "email_subject": "Your invoice {{parameters.invoice}}", "email_template": "Hello {{name}}, {{parameters.amount_due}} is due."})))]
#[serde(deny_unknown_fields)]
pub struct EmailTest {
    /// The one address to send to: no display name, no list.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 254, example = "me@example.com"))]
    pub to: String,
    pub email_subject: String,
    pub email_template: String,
    #[serde(default)]
    pub email_input_type: EmailInputType,
    /// The contact to render for; a sample one if left out.
    #[serde(default, deserialize_with = "crate::objects::optional_object", skip_serializing_if = "Option::is_none")]
    pub contact: Option<crate::Contact>,
    /// The stage's SMTP integration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integration_id: Option<String>,
    /// The stage's agent, whose channel `agent_channel` names the
    /// integration when the stage has none of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_channel: Option<String>,
}

/// A test email the SMTP server accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EmailTestSent {
    /// The address it went to.
    pub to: String,
    /// Its subject, rendered.
    pub subject: String,
    /// The integration it went through.
    pub integration_id: String,
    /// Its `Message-ID` header, to find it in the recipient's mailbox.
    pub message_id: String,
}

/// The label recorded on a communication that got the stage's default.
pub const DEFAULT_LABEL: &str = "default";

/// Weights are percentages of contacts taken from the default.
pub const TOTAL_WEIGHT: u32 = 100;

impl StageDefinition {
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
