//! Every channel an integration carries (Telegram, WhatsApp, MessageBird,
//! Infobip, Twilio, SIP, Mobile Push, Email Communication): the opening
//! goes out through the provider client of the channel's integration kind
//! (`stratagem_outbound::providers`), recorded under the communication id,
//! and — for a conversational channel (`Channel::is_conversational`) — a
//! session opens at the contact's address; the others end `DELIVERED`.
//! What happens in an open session is [`crate::conversations`].

use chrono::{DateTime, Utc};
use serde_json::Value;
use stratagem_domain::stage::ChannelSettings;
use stratagem_domain::{Agent, Channel, JsonMap, Message, MessageRole};
use stratagem_outbound::llm::ChatMessage;
use stratagem_outbound::providers::{self, Account, Delivered, Outbound, ProviderError};
use stratagem_outbound::OutboundConfig;
use stratagem_runtime::Clock;
use stratagem_store::{Conversation, SendClaim, Store, StoreError};

use super::{ChannelAdapter, ChannelContext, Send, SendFuture, Sent};
use crate::conversations::{agent, agent_prompt, campaign_llm};
use crate::failure;

pub struct ProviderChannel {
    store: Store,
    clock: std::sync::Arc<dyn Clock>,
    http: reqwest::Client,
    outbound: OutboundConfig,
}

impl ChannelAdapter for ProviderChannel {
    fn send<'a>(&'a self, send: &'a Send<'a>) -> SendFuture<'a> {
        Box::pin(async move { Ok(self.start(send).await?) })
    }
}

impl ProviderChannel {
    pub fn new(context: ChannelContext) -> Self {
        let ChannelContext { store, clock, http, outbound } = context;
        Self { store, clock, http, outbound }
    }

    /// Starts a claimed communication on a provider channel. A provider
    /// that cannot take it for now has it retried later with the same
    /// idempotency key while the window is open (`Sent::RetryLater`). A
    /// provider that takes no key has the send announced first
    /// (`Dispatch::begin_send`): one whose outcome is lost ends IN_DOUBT
    /// and is never sent again.
    async fn start(&self, send: &Send<'_>) -> Result<Sent, StoreError> {
        let (communication_id, tenant_id, contact, label, channel, settings) =
            (send.idempotency_key, send.tenant_id, send.contact, send.label, send.channel, send.settings);
        let end = |outcome: JsonMap| async move {
            self.store.dispatch().end_session(communication_id, Some(label), channel.as_str(), &outcome, self.clock.now()).await?;
            Ok(Sent::Written)
        };
        let agent = agent(&self.store, tenant_id, send.agent_id).await?;
        let account = match self.account(tenant_id, channel, settings, agent.as_ref()).await? {
            Ok(account) => account,
            Err(problem) => return end(failure(problem)).await,
        };
        let Some(provider) = providers::provider(account.kind) else {
            return end(failure(format!("{} has no provider adapter", account.kind.as_str()))).await;
        };
        // A send recorded before a crash is not repeated.
        let (delivered, send_began) = match self.store.dispatch().recorded_send(tenant_id, communication_id).await? {
            Some(recorded) => {
                let text = |key: &str| recorded.get(key).and_then(Value::as_str).unwrap_or_default().to_owned();
                let delivered = Delivered { provider_ref: text("provider_ref"), address: text("address") };
                let began = DateTime::parse_from_rfc3339(&text("began_at")).map(|at| at.with_timezone(&Utc));
                (delivered, began.unwrap_or_else(|_| self.clock.now()))
            }
            None => {
                let opening = match self.opening(send, agent.as_ref()).await? {
                    Ok(text) => text,
                    Err(problem) => return end(failure(problem)).await,
                };
                let outbound = Outbound {
                    idempotency_key: communication_id,
                    account: &account,
                    channel,
                    stage: settings,
                    contact,
                    text: &opening,
                    address: None,
                    webhook_url: &self.outbound.webhook_url(&account.id),
                    variables: send.template_variables(),
                    egress: self.outbound.egress(),
                };
                let by_key = provider.resends_by_key();
                // Committed before the network call: a node that dies from
                // here on leaves the send announced, and it is not repeated.
                // Another attempt's send is its to record (or to leave in
                // doubt): this claim lets it be.
                if !by_key && self.store.dispatch().begin_send(tenant_id, communication_id, channel.as_str(), self.clock.now()).await? != SendClaim::Granted {
                    return Ok(Sent::InFlight);
                }
                // The contact may answer before the session below is
                // written; such answers are kept from this instant on.
                let send_began = self.clock.now();
                let delivered = match provider.deliver(&self.http, &outbound).await {
                    Ok(delivered) => delivered,
                    Err(ProviderError::InDoubt { provider, detail }) if !by_key => {
                        let detail = format!("{provider} may have taken the message: {detail}");
                        tracing::warn!(%detail, communication_id, "send in doubt; it is not repeated");
                        self.store.dispatch().end_in_doubt(communication_id, Some(label), channel.as_str(), &detail, self.clock.now()).await?;
                        return Ok(Sent::Written);
                    }
                    Err(error @ (ProviderError::Unavailable { .. } | ProviderError::InDoubt { .. })) => {
                        if !by_key {
                            self.store.dispatch().abandon_send(tenant_id, communication_id).await?;
                        }
                        tracing::warn!(%error, communication_id, "provider unavailable; the send is retried later");
                        return Ok(Sent::RetryLater(error.to_string()));
                    }
                    Err(error) => {
                        if !by_key {
                            self.store.dispatch().abandon_send(tenant_id, communication_id).await?;
                        }
                        return end(failure(error.to_string())).await;
                    }
                };
                let mut record = JsonMap::new();
                record.insert("provider_ref".into(), delivered.provider_ref.clone().into());
                record.insert("address".into(), delivered.address.clone().into());
                record.insert("began_at".into(), send_began.to_rfc3339().into());
                self.store.dispatch().record_send(tenant_id, communication_id, channel.as_str(), &record, self.clock.now()).await?;
                let message = Message { role: MessageRole::Agent, content: opening, sent_at: send_began, communication_id: None };
                let key = format!("opening:{communication_id}");
                self.store.conversations().append_message(tenant_id, communication_id, Some(&account.id), &message, Some(&key)).await?;
                (delivered, send_began)
            }
        };
        if !channel.is_conversational() {
            let mut outcome = JsonMap::new();
            outcome.insert("OutcomeStatus".into(), "DELIVERED".into());
            return end(outcome).await;
        }
        let conversation = Conversation {
            integration_id: &account.id,
            agent_id: agent.as_ref().map(|agent| agent.id.as_str()),
            address: &delivered.address,
            provider_ref: &delivered.provider_ref,
        };
        self.store.conversations().open_conversation(communication_id, label, channel.as_str(), &conversation, self.clock.now()).await?;
        // After the session is written, not in its transaction: a webhook
        // that kept an event and then found no session is then sure to be
        // seen here (see `keep_early`).
        let (address, provider_ref) = (Some(conversation.address), Some(conversation.provider_ref));
        self.store.conversations().adopt_early_inbound(tenant_id, communication_id, &account.id, address, provider_ref, send_began).await?;
        Ok(Sent::Written)
    }

    /// The account a stage's channel goes through: the stage's integration,
    /// the agent channel's, or for Mobile Push the agent's push integration.
    async fn account(&self, tenant_id: &str, channel: Channel, settings: &ChannelSettings, agent: Option<&Agent>) -> Result<Result<Account, String>, StoreError> {
        let id = stratagem_domain::stage::integration_id(channel, settings, agent.map(|agent| &agent.definition));
        let Some(id) = id else {
            return Ok(Err(format!(
                "the stage's {} channel has no integration: choose one in the stage, or an agent channel bound to one",
                channel.as_str()
            )));
        };
        let integration = match self.store.integrations().integration(tenant_id, &id).await {
            Ok(integration) => integration,
            Err(StoreError::NotFound(_)) => return Ok(Err(format!("the stage's integration `{id}` no longer exists"))),
            Err(other) => return Err(other),
        };
        if Some(integration.kind) != channel.integration_kind() {
            return Ok(Err(format!("integration `{id}` is {}, not the {} the stage's channel needs", integration.kind.as_str(), channel.as_str())));
        }
        let secrets = self.store.integrations().integration_secrets(tenant_id, &id).await?;
        Ok(Ok(Account { id, kind: integration.kind, settings: integration.settings, secrets }))
    }

    /// The agent's first words: the stage's start phrase with the contact's
    /// fields filled in, else a first message its LLM writes. (A start
    /// state names a state of the provider's flow; the provider gets it
    /// from the stage.)
    async fn opening(&self, send: &Send<'_>, agent: Option<&Agent>) -> Result<Result<String, String>, StoreError> {
        let (tenant_id, contact, settings) = (send.tenant_id, send.contact, send.settings);
        if let Some(template) = settings.email_template.as_deref().filter(|_| is_email_stage(settings)) {
            let subject = settings.email_subject.as_deref().unwrap_or_default();
            let input = settings.email_input_type.unwrap_or_default();
            return Ok(stratagem_domain::template::render_email(subject, template, input, contact)
                .map(|email| email.text)
                .map_err(|(field, error)| format!("{field}: {error}")));
        }
        if let Some(phrase) = settings.start_phrase.as_deref().filter(|p| !p.trim().is_empty()) {
            return Ok(stratagem_domain::template::render(phrase, contact, str::to_owned).map_err(|error| format!("start phrase: {error}")));
        }
        let llm = match campaign_llm(&self.store, tenant_id, send.campaign, agent, "conversation").await? {
            Ok(llm) => llm,
            Err(error) => return Ok(Err(format!("the stage has no start phrase and the agent cannot write one: {error}"))),
        };
        let mut prompt = agent_prompt(agent, send.campaign, contact, settings);
        prompt.push(ChatMessage::user("Write your first message to the contact. Answer with the message text only."));
        Ok(llm.complete(&self.http, &prompt, false).await.map(|text| text.trim().to_owned()).map_err(|error| error.to_string()))
    }

}

/// Email stages (the only ones with a subject) open with their template.
fn is_email_stage(settings: &ChannelSettings) -> bool {
    settings.email_subject.is_some()
}
