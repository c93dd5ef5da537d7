//! Integrations: a tenant's credentials for a provider (SMTP server,
//! Telegram bot, Twilio account, …). Settings are readable; secrets are
//! write-only — the API says which secrets are set, never their values.

use serde::{Deserialize, Serialize};

use crate::{FieldError, JsonMap};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum IntegrationKind {
    Smtp,
    Telegram,
    WhatsappMeta,
    #[serde(rename = "MESSAGEBIRD")]
    MessageBird,
    Infobip,
    Twilio,
    Sip,
    /// Firebase Cloud Messaging (Mobile Push).
    Fcm,
    /// An OpenAI-compatible chat-completions endpoint for agents.
    Llm,
    /// A customer's own API that strategies call with its credential
    /// (`http.get(url, auth="<name>")`), which they never see.
    HttpApi,
}

/// How a setting's value is checked (and which input the web form shows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    Text,
    /// An HTTP header name a strategy's request may not otherwise carry.
    HeaderName,
    Port,
    Url,
    Email,
    OneOf(&'static [&'static str]),
}

/// One setting or secret of a kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    pub name: &'static str,
    pub value: FieldKind,
    pub required: bool,
}

const fn req(name: &'static str, value: FieldKind) -> Field {
    Field {
        name,
        value,
        required: true,
    }
}

const fn opt(name: &'static str, value: FieldKind) -> Field {
    Field {
        name,
        value,
        required: false,
    }
}

impl IntegrationKind {
    pub const ALL: [IntegrationKind; 10] = [
        Self::Smtp,
        Self::Telegram,
        Self::WhatsappMeta,
        Self::MessageBird,
        Self::Infobip,
        Self::Twilio,
        Self::Sip,
        Self::Fcm,
        Self::Llm,
        Self::HttpApi,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Smtp => "SMTP",
            Self::Telegram => "TELEGRAM",
            Self::WhatsappMeta => "WHATSAPP_META",
            Self::MessageBird => "MESSAGEBIRD",
            Self::Infobip => "INFOBIP",
            Self::Twilio => "TWILIO",
            Self::Sip => "SIP",
            Self::Fcm => "FCM",
            Self::Llm => "LLM",
            Self::HttpApi => "HTTP_API",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }

    /// Readable settings. `api_base_url` overrides the provider's public
    /// endpoint (a regional host, or a local server in tests).
    pub fn settings(self) -> &'static [Field] {
        use FieldKind::*;
        match self {
            Self::Smtp => {
                const {
                    &[
                        req("host", Text),
                        req("port", Port),
                        req("from_address", Email),
                        opt("username", Text),
                        opt("tls", OneOf(&["starttls", "tls", "none"])),
                    ]
                }
            }
            Self::Telegram => const { &[opt("bot_username", Text), opt("api_base_url", Url)] },
            Self::WhatsappMeta => {
                const {
                    &[
                        req("phone_number_id", Text),
                        opt("business_account_id", Text),
                        // The language code of the stage's template; `en` if unset.
                        opt("template_language", Text),
                        opt("api_base_url", Url),
                    ]
                }
            }
            Self::MessageBird => {
                const {
                    &[
                        req("workspace_id", Text),
                        req("channel_id", Text),
                        // The locale of the stage's Studio template; `en` if unset.
                        opt("template_locale", Text),
                        opt("api_base_url", Url),
                    ]
                }
            }
            Self::Infobip => {
                const {
                    &[
                        req("api_base_url", Url),
                        req("sender", Text),
                        // How the agent's text travels; SMS if unset.
                        opt("channel", OneOf(&["SMS", "WHATSAPP"])),
                    ]
                }
            }
            Self::Twilio => {
                const {
                    &[
                        req("account_sid", Text),
                        req("from_number", Text),
                        opt("api_base_url", Url),
                    ]
                }
            }
            Self::Sip => {
                const {
                    &[
                        req("api_base_url", Url),
                        req("caller_id", Text),
                        opt("trunk", Text),
                    ]
                }
            }
            Self::Fcm => const { &[req("project_id", Text), opt("api_base_url", Url)] },
            Self::Llm => const { &[req("api_base_url", Url), opt("default_model", Text)] },
            // Requests under `base_url` get `header` (Authorization if unset).
            Self::HttpApi => const { &[req("base_url", Url), opt("header", HeaderName)] },
        }
    }

    /// Write-only values.
    pub fn secrets(self) -> &'static [Field] {
        use FieldKind::*;
        match self {
            // webhook_secret signs inbound mail of Email Communication.
            Self::Smtp => const { &[opt("password", Text), opt("webhook_secret", Text)] },
            Self::Telegram => const { &[req("bot_token", Text), opt("webhook_secret", Text)] },
            // `verify_token` answers Meta's webhook handshake (hub.verify_token).
            Self::WhatsappMeta => const { &[req("access_token", Text), req("app_secret", Text), opt("verify_token", Text)] },
            Self::MessageBird => const { &[req("access_key", Text), opt("signing_key", Text)] },
            // Infobip signs no webhook: each must bring this secret back
            // (`?secret=` in its URL or the X-Webhook-Secret header).
            Self::Infobip => const { &[req("api_key", Text), opt("webhook_secret", Text)] },
            Self::Twilio => const { &[req("auth_token", Text)] },
            Self::Sip => const { &[req("api_key", Text)] },
            Self::Fcm => const { &[req("service_account_json", Text)] },
            Self::Llm => const { &[opt("api_key", Text)] },
            // The header's whole value, e.g. `Bearer sk_live_…`.
            Self::HttpApi => const { &[req("header_value", Text)] },
        }
    }

    /// Checks settings and secrets. `existing_secrets` are the names already
    /// stored (an update may leave a secret out to keep it).
    pub fn validate(
        self,
        settings: &JsonMap,
        secrets: &JsonMap,
        existing_secrets: &[String],
    ) -> Vec<FieldError> {
        let mut errors = Vec::new();
        check(
            self,
            "settings",
            self.settings(),
            settings,
            &[],
            &mut errors,
        );
        check(
            self,
            "secrets",
            self.secrets(),
            secrets,
            existing_secrets,
            &mut errors,
        );
        errors
    }
}

fn check(
    kind: IntegrationKind,
    group: &str,
    fields: &[Field],
    values: &JsonMap,
    already_set: &[String],
    errors: &mut Vec<FieldError>,
) {
    for (name, value) in values {
        let Some(field) = fields.iter().find(|field| field.name == name) else {
            let known: Vec<&str> = fields.iter().map(|field| field.name).collect();
            errors.push(FieldError::new(
                format!("{group}.{name}"),
                format!(
                    "is not a {group} key of {}; known: {}",
                    kind.as_str(),
                    known.join(", ")
                ),
            ));
            continue;
        };
        if let Some(problem) = check_value(field.value, value) {
            errors.push(FieldError::new(format!("{group}.{name}"), problem));
        }
    }
    for field in fields.iter().filter(|field| field.required) {
        if !values.contains_key(field.name) && !already_set.iter().any(|name| name == field.name) {
            errors.push(FieldError::new(
                format!("{group}.{}", field.name),
                format!("is required for {}", kind.as_str()),
            ));
        }
    }
}

fn check_value(kind: FieldKind, value: &serde_json::Value) -> Option<String> {
    if kind == FieldKind::Port {
        return match value.as_u64() {
            Some(1..=65535) => None,
            _ => Some(format!("must be a port number 1 to 65535, got {value}")),
        };
    }
    let Some(text) = value.as_str() else {
        return Some(format!("must be a string, got {value}"));
    };
    if text.trim().is_empty() {
        return Some("must not be blank".into());
    }
    if text.len() > 64 * 1024 {
        return Some("must be at most 64 KiB".into());
    }
    match kind {
        FieldKind::Url => match url_scheme(text) {
            Some("https" | "http") => None,
            _ => Some(format!("must be an http(s) URL, got `{text}`")),
        },
        FieldKind::Email if !looks_like_email(text) => {
            Some(format!("must be an email address, got `{text}`"))
        }
        FieldKind::HeaderName => header_name_problem(text),
        FieldKind::OneOf(choices) if !choices.contains(&text) => Some(format!(
            "must be one of {}, got `{text}`",
            choices.join(", ")
        )),
        _ => None,
    }
}

/// Why `text` cannot name the credential's header: not an HTTP token, or
/// a header the transport owns.
fn header_name_problem(text: &str) -> Option<String> {
    const TOKEN_PUNCTUATION: &str = "!#$%&'*+-.^_`|~";
    if !text.chars().all(|c| c.is_ascii_alphanumeric() || TOKEN_PUNCTUATION.contains(c)) {
        return Some(format!("must be an HTTP header name (letters, digits and -), got `{text}`"));
    }
    let reserved = ["host", "connection", "content-length", "transfer-encoding", "upgrade", "proxy-authorization", "cookie"];
    reserved
        .contains(&text.to_ascii_lowercase().as_str())
        .then(|| format!("`{text}` is set by the platform; use e.g. Authorization or X-Api-Key"))
}

fn url_scheme(text: &str) -> Option<&str> {
    let (scheme, rest) = text.split_once("://")?;
    (!rest.is_empty() && !rest.starts_with('/')).then_some(scheme)
}

fn looks_like_email(text: &str) -> bool {
    text.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty() && domain.contains('.') && !text.contains(char::is_whitespace)
    })
}

/// An integration as the API shows it: secret *names*, never values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Integration {
    pub id: String,
    pub kind: IntegrationKind,
    pub name: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub settings: JsonMap,
    /// Which secrets are set.
    pub secrets_set: Vec<String>,
    /// Where its provider posts replies, calls and delivery reports: the
    /// URL to register in the provider's console. `null` for kinds that
    /// send none (FCM, LLM, HTTP_API).
    pub webhook_url: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// `POST /api/integrations`. Settings (readable) and secrets (write-only)
/// per kind, * required: SMTP host*, port*, from_address*, username, tls /
/// password; TELEGRAM bot_username, api_base_url / bot_token*,
/// webhook_secret; WHATSAPP_META phone_number_id*, business_account_id,
/// api_base_url / access_token*, app_secret*; MESSAGEBIRD workspace_id*,
/// channel_id*, api_base_url / access_key*, signing_key; INFOBIP
/// api_base_url*, sender* / api_key*; TWILIO account_sid*, from_number*,
/// api_base_url / auth_token*; SIP api_base_url*, caller_id*, trunk /
/// api_key*; FCM project_id*, api_base_url / service_account_json*; LLM
/// api_base_url*, default_model / api_key; HTTP_API base_url*, header /
/// header_value*. 422 names each missing, unknown or invalid one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"kind": "TELEGRAM", "name": "Support bot", "settings": {"bot_username": "acme_support_bot"}, "secrets": {"bot_token": "123456:ABC-DEF"}})))]
#[serde(deny_unknown_fields)]
pub struct NewIntegration {
    pub kind: IntegrationKind,
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::name_200))]
    pub name: String,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub settings: JsonMap,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub secrets: JsonMap,
}

/// `PUT /api/integrations/{id}`. The kind cannot change: stages and agents
/// chose the integration for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"name": "Support bot (new token)", "settings": {"bot_username": "acme_support_bot"}, "secrets": {"bot_token": "654321:XYZ"}})))]
#[serde(deny_unknown_fields)]
pub struct IntegrationUpdate {
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::name_200))]
    pub name: String,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub settings: JsonMap,
    /// Secrets to set; the ones left out keep their value.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub secrets: JsonMap,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(value: serde_json::Value) -> JsonMap {
        value.as_object().expect("object").clone()
    }

    #[test]
    fn works_when_an_smtp_integration_is_complete() {
        let settings = map(
            serde_json::json!({"host": "smtp.example.com", "port": 587, "from_address": "billing@example.com", "tls": "starttls"}),
        );
        assert_eq!(
            IntegrationKind::Smtp.validate(
                &settings,
                &map(serde_json::json!({"password": "s3cret"})),
                &[]
            ),
            vec![]
        );
    }

    #[test]
    fn errors_when_settings_are_wrong_or_missing() {
        let settings = map(
            serde_json::json!({"host": "smtp.example.com", "port": 70000, "from_address": "nobody", "colour": "red"}),
        );
        let errors = IntegrationKind::Smtp.validate(&settings, &JsonMap::new(), &[]);
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            ["settings.colour", "settings.from_address", "settings.port"]
        );
        assert_eq!(
            errors[2].message,
            "must be a port number 1 to 65535, got 70000"
        );
        let errors = IntegrationKind::Twilio.validate(
            &map(serde_json::json!({"account_sid": "AC1", "from_number": "+1"})),
            &JsonMap::new(),
            &[],
        );
        assert_eq!(
            errors,
            vec![FieldError::new(
                "secrets.auth_token",
                "is required for TWILIO"
            )]
        );
    }

    #[test]
    fn works_when_an_update_keeps_a_stored_secret() {
        let settings = map(serde_json::json!({"account_sid": "AC1", "from_number": "+1"}));
        assert_eq!(
            IntegrationKind::Twilio.validate(&settings, &JsonMap::new(), &["auth_token".into()]),
            vec![]
        );
    }

    #[test]
    fn errors_when_a_url_is_not_http() {
        let settings =
            map(serde_json::json!({"api_base_url": "file:///etc/passwd", "sender": "ACME"}));
        let errors = IntegrationKind::Infobip.validate(
            &settings,
            &map(serde_json::json!({"api_key": "k"})),
            &[],
        );
        assert_eq!(
            errors,
            vec![FieldError::new(
                "settings.api_base_url",
                "must be an http(s) URL, got `file:///etc/passwd`"
            )]
        );
    }
}
