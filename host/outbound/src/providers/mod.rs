//! Messaging, voice and push providers: how text reaches a contact through
//! a provider's public HTTP API, and how the provider's webhooks come back
//! (verified, then parsed into [`InboundEvent`]s). One module per provider;
//! each speaks exactly the request its provider documents. Base URLs come
//! from the integration's `api_base_url` setting, so tests point them at a
//! local server.
//!
//! A provider knows nothing of campaigns or sessions: the engine decides
//! what to say and which session an inbound event belongs to.
//!
//! Errors follow one rule for every provider: a 4xx answer (except 429)
//! is [`ProviderError::Rejected`] with the provider's own error text;
//! 5xx, 429 and failures to reach the provider are
//! [`ProviderError::Unavailable`] and retried; a request the provider may
//! have carried out without its answer arriving (the connection broke or
//! timed out after the request went, an unreadable 2xx answer) is
//! [`ProviderError::InDoubt`]: retried under the same key by providers
//! that take one ([`Provider::resends_by_key`]), IN_DOUBT for the others;
//! missing settings or contact data are [`ProviderError::Misconfigured`],
//! naming what to set where.
//!
//! Webhooks come back to `POST {public URL}/webhooks/{integration id}`
//! ([`Outbound::webhook_url`]); each provider verifies them its own way, and a
//! provider that signs nothing (Infobip) is verified by a shared secret
//! the integration holds.

mod email_conversation;
mod fcm;
mod infobip;
mod messagebird;
mod sip;
mod telegram;
mod twilio;
mod whatsapp_meta;

pub use messagebird::bird_signature;
pub use twilio::twilio_signature;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use stratagem_domain::integration::IntegrationKind;
use stratagem_domain::stage::ChannelSettings;
use stratagem_domain::{Channel, Contact, JsonMap};

/// An integration with its secrets, as a provider needs it.
#[derive(Debug, Clone)]
pub struct Account {
    pub id: String,
    pub kind: IntegrationKind,
    pub settings: JsonMap,
    pub secrets: JsonMap,
}

impl Account {
    pub fn setting(&self, name: &str) -> Option<&str> {
        self.settings.get(name).and_then(|value| value.as_str()).filter(|text| !text.is_empty())
    }

    pub fn secret(&self, name: &str) -> Option<&str> {
        self.secrets.get(name).and_then(|value| value.as_str()).filter(|text| !text.is_empty())
    }
}

/// One message or call to place.
pub struct Outbound<'a> {
    /// The provider's idempotency key where it takes one; unique per
    /// message (the communication id for the first, the answered inbound
    /// message's id for a reply).
    pub idempotency_key: &'a str,
    pub account: &'a Account,
    pub channel: Channel,
    /// The stage's channel-specific fields (template name, start state, …).
    pub stage: &'a ChannelSettings,
    pub contact: &'a Contact,
    /// What the agent says.
    pub text: &'a str,
    /// Where the contact answered from, for a reply in an open session;
    /// `None` for the first message (the provider takes the contact's phone,
    /// email or the `telegram_chat_id` parameter).
    pub address: Option<&'a str>,
    /// Where the provider posts this integration's webhooks
    /// ([`crate::OutboundConfig::webhook_url`]).
    pub webhook_url: &'a str,
    /// Values of the provider template's variables, by name (the
    /// communication's `template_variables` parameter); empty for replies.
    pub variables: &'a JsonMap,
    /// Which addresses a provider that connects by itself (SMTP) may
    /// reach; HTTP providers get it through their client.
    pub egress: crate::EgressPolicy,
}

/// A template variable's value as text: strings as they are, other JSON
/// values as JSON.
fn variable_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// What the provider accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// The provider's id of the message or call; status callbacks name it.
    pub provider_ref: String,
    /// Where the contact's answers will come from (chat id, phone number in
    /// E.164, email address), as inbound events will name it.
    pub address: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProviderError {
    /// The provider refused the request for good (bad number, template not
    /// approved, blocked by the user): the communication fails.
    #[error("{provider} refused the message: {detail}")]
    Rejected { provider: &'static str, detail: String },
    /// The provider could not be reached or answered 5xx/429: retried.
    #[error("{provider} is unavailable: {detail}")]
    Unavailable { provider: &'static str, detail: String },
    /// The request went out and its answer was lost: the provider may have
    /// carried it out.
    #[error("{provider} may have taken the message: {detail}")]
    InDoubt { provider: &'static str, detail: String },
    /// The integration or the contact lacks what this provider needs.
    #[error("{0}")]
    Misconfigured(String),
}

/// A webhook call as it arrived.
pub struct WebhookRequest<'a> {
    /// The public URL the provider called, scheme to query, as the provider
    /// signed it (Twilio signs the URL).
    pub url: &'a str,
    /// Header names in lower case.
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

impl WebhookRequest<'_> {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value.as_str())
    }
}

/// Why a webhook call is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WebhookError {
    /// Missing or wrong signature or secret token: 401.
    #[error("{0}")]
    Unauthorized(String),
    /// Signed correctly but not a payload this provider sends: 400.
    #[error("{0}")]
    Malformed(String),
}

/// How a call or one-way message ended, from a status callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallOutcome {
    Delivered,
    Answered,
    NoAnswer,
    Busy,
    Failed(String),
}

/// What a webhook told us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboundEvent {
    /// The contact wrote `text` from `address`.
    Message { address: String, text: String, provider_message_id: String },
    /// A message or call the provider accepted earlier reached a final state.
    Status { provider_ref: String, outcome: CallOutcome },
}

pub type DeliverFuture<'a> = Pin<Box<dyn Future<Output = Result<Delivered, ProviderError>> + Send + 'a>>;

pub trait Provider: Send + Sync {
    fn deliver<'a>(&'a self, http: &'a reqwest::Client, outbound: &'a Outbound<'a>) -> DeliverFuture<'a>;

    /// Whether the engine sends a first message again, under the same
    /// idempotency key, when it does not know whether the last attempt
    /// reached the provider (its node died before recording the answer,
    /// or the answer was lost). `false` for providers that take no key
    /// (SMTP, Telegram, Meta's WhatsApp, FCM, and SIP gateways, whose
    /// trunks place a repeated call twice):
    /// the engine then announces each send, committed, before the call,
    /// and a send whose outcome is unknown ends IN_DOUBT instead.
    fn resends_by_key(&self) -> bool {
        true
    }

    /// Verifies the call's signature with the account's secrets, then
    /// parses it. Providers that sign nothing are verified by a shared
    /// secret in the webhook URL or a header.
    fn receive(&self, account: &Account, request: &WebhookRequest<'_>) -> Result<Vec<InboundEvent>, WebhookError>;

    /// Whether the provider calls webhooks at all (its integration then
    /// shows the URL to register).
    fn sends_webhooks(&self) -> bool {
        true
    }

    /// What to answer a verified webhook call. Most providers only read
    /// the status; Twilio reads TwiML from the answer to a speech result.
    fn reply(&self, accepted: usize) -> WebhookReply {
        WebhookReply { content_type: "application/json", body: serde_json::json!({ "accepted": accepted }).to_string() }
    }

    /// A GET the provider sends to confirm a new webhook URL (Meta's
    /// `hub.challenge`): `Some` answers it, `None` means this provider sends
    /// no such request.
    fn handshake(&self, _account: &Account, _query: &[(String, String)]) -> Option<Result<String, WebhookError>> {
        None
    }
}

/// The body of the answer to a webhook call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookReply {
    pub content_type: &'static str,
    pub body: String,
}

/// The provider adapter of an integration kind; `None` for LLM, which is
/// for agents. SMTP here carries Email Communication conversations; Email
/// Notification has its own one-way channel.
pub fn provider(kind: IntegrationKind) -> Option<&'static dyn Provider> {
    static FCM: fcm::Fcm = fcm::Fcm::new();
    Some(match kind {
        IntegrationKind::Telegram => &telegram::Telegram,
        IntegrationKind::WhatsappMeta => &whatsapp_meta::WhatsappMeta,
        IntegrationKind::MessageBird => &messagebird::MessageBird,
        IntegrationKind::Infobip => &infobip::Infobip,
        IntegrationKind::Twilio => &twilio::Twilio,
        IntegrationKind::Sip => &sip::Sip,
        IntegrationKind::Fcm => &FCM,
        IntegrationKind::Smtp => &email_conversation::EmailConversation,
        IntegrationKind::Llm | IntegrationKind::HttpApi => return None,
    })
}

/// How long one provider request may take before it counts as unavailable.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The integration's `api_base_url`, or the provider's public endpoint.
fn base_url<'a>(account: &'a Account, default: &'a str) -> &'a str {
    account.setting("api_base_url").unwrap_or(default).trim_end_matches('/')
}

fn required_setting<'a>(account: &'a Account, name: &str) -> Result<&'a str, ProviderError> {
    account.setting(name).ok_or_else(|| {
        ProviderError::Misconfigured(format!(
            "integration {} ({}) has no `{name}`: set settings.{name} on the integration",
            account.id,
            account.kind.as_str()
        ))
    })
}

fn required_secret<'a>(account: &'a Account, name: &str) -> Result<&'a str, ProviderError> {
    account.secret(name).ok_or_else(|| {
        ProviderError::Misconfigured(format!(
            "integration {} ({}) has no secret `{name}`: set secrets.{name} on the integration",
            account.id,
            account.kind.as_str()
        ))
    })
}

/// The contact's phone number, for providers that address phones.
fn contact_phone<'a>(outbound: &'a Outbound<'a>) -> Result<&'a str, ProviderError> {
    match outbound.address {
        Some(address) if !address.trim().is_empty() => Ok(address),
        _ if !outbound.contact.phone.trim().is_empty() => Ok(outbound.contact.phone.trim()),
        _ => Err(ProviderError::Misconfigured(format!(
            "contact {} has no phone number: import it with a `phone` column",
            outbound.contact.object_id
        ))),
    }
}

/// Sends the request and returns the 2xx body as JSON, classifying every
/// failure by the rule of this module.
async fn send(provider: &'static str, request: reqwest::RequestBuilder) -> Result<serde_json::Value, ProviderError> {
    let response = request.timeout(REQUEST_TIMEOUT).send().await.map_err(|error| {
        let detail = error.to_string();
        // Refused or unreachable: the request never left. Anything later
        // (a timeout, a broken connection) may follow its arrival.
        if error.is_connect() || error.is_builder() {
            ProviderError::Unavailable { provider, detail }
        } else {
            ProviderError::InDoubt { provider, detail }
        }
    })?;
    let status = response.status();
    let text = response.text().await.map_err(|error| {
        let detail = format!("answered {status}, then: {error}");
        if status.is_success() { ProviderError::InDoubt { provider, detail } } else { ProviderError::Unavailable { provider, detail } }
    })?;
    if status.is_success() {
        return serde_json::from_str(&text).map_err(|error| ProviderError::InDoubt {
            provider,
            detail: format!("answered {status} with a body that is not JSON ({error}): {}", clip(&text)),
        });
    }
    let detail = format!("{status}: {}", error_text(&text));
    if status.is_client_error() && status != reqwest::StatusCode::TOO_MANY_REQUESTS {
        Err(ProviderError::Rejected { provider, detail })
    } else {
        Err(ProviderError::Unavailable { provider, detail })
    }
}

/// The human part of a provider's error body: the common JSON shapes
/// (`error.message`, `description`, `message`, Infobip's `requestError`),
/// else the body itself.
fn error_text(body: &str) -> String {
    let Ok(json) = serde_json::from_str::<serde_json::Value>(body) else {
        return clip(body);
    };
    let candidates = [
        json.pointer("/error/message"),
        json.pointer("/error/error_data/details"),
        json.get("description"),
        json.get("message"),
        json.pointer("/requestError/serviceException/text"),
        json.pointer("/requestError/policyException/text"),
        json.get("error_description"),
        json.get("error"),
    ];
    let found = candidates.into_iter().flatten().find_map(|value| value.as_str()).map(clip);
    found.unwrap_or_else(|| clip(body))
}

fn clip(text: &str) -> String {
    let text = text.trim();
    match text.char_indices().nth(500) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// A string field of a provider's 2xx answer that must be there (the
/// provider took the request, so without it the send is in doubt).
fn answer_field(provider: &'static str, answer: &serde_json::Value, pointer: &str) -> Result<String, ProviderError> {
    match answer.pointer(pointer) {
        Some(serde_json::Value::String(text)) if !text.is_empty() => Ok(text.clone()),
        Some(serde_json::Value::Number(number)) => Ok(number.to_string()),
        _ => Err(ProviderError::InDoubt { provider, detail: format!("the answer has no `{pointer}`: {}", clip(&answer.to_string())) }),
    }
}

fn hmac(algorithm: ring::hmac::Algorithm, key: &[u8], data: &[u8]) -> Vec<u8> {
    ring::hmac::sign(&ring::hmac::Key::new(algorithm, key), data).as_ref().to_vec()
}

/// Constant-time equality: a forger learns nothing from how long a wrong
/// signature takes to refuse.
fn same(expected: &[u8], given: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    expected.len() == given.len() && bool::from(expected.ct_eq(given))
}

/// `sha256=<hex HMAC-SHA256(key, body)>`, as Meta signs and the SIP
/// contract of this service asks.
fn verify_sha256_header(provider: &str, header: &str, signature: Option<&str>, key: &str, body: &[u8]) -> Result<(), WebhookError> {
    let Some(signature) = signature else {
        return Err(WebhookError::Unauthorized(format!("{provider} webhook without the {header} header")));
    };
    let given = signature.trim().strip_prefix("sha256=").and_then(|hex_digest| hex::decode(hex_digest).ok());
    match given {
        Some(given) if same(&hmac(ring::hmac::HMAC_SHA256, key.as_bytes(), body), &given) => Ok(()),
        _ => Err(WebhookError::Unauthorized(format!("{provider} webhook with a wrong {header} signature"))),
    }
}

/// The account's webhook secret, or a 401 telling the admin to set it.
fn webhook_secret<'a>(account: &'a Account, name: &str, provider: &str) -> Result<&'a str, WebhookError> {
    account.secret(name).ok_or_else(|| {
        WebhookError::Unauthorized(format!(
            "integration {} has no secret `{name}`, so its {provider} webhooks cannot be verified and all are refused: set secrets.{name} on the integration",
            account.id
        ))
    })
}

fn json_body(provider: &str, body: &[u8]) -> Result<serde_json::Value, WebhookError> {
    serde_json::from_slice(body).map_err(|error| WebhookError::Malformed(format!("{provider} webhook body is not JSON: {error}")))
}

/// The query parameters of a URL, decoded.
fn query_pairs(url: &str) -> Vec<(String, String)> {
    let query = url.split_once('?').map(|(_, query)| query).unwrap_or_default();
    let query = query.split('#').next().unwrap_or_default();
    url::form_urlencoded::parse(query.as_bytes()).into_owned().collect()
}
