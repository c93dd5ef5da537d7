//! Sessions on provider channels (Telegram, WhatsApp, MessageBird, Infobip,
//! Twilio, SIP, Mobile Push).
//!
//! - **Start** ([`crate::channels::provider`]): the agent's opening — the
//!   stage's start phrase filled with the contact's fields, or, without
//!   one, a first message the agent's LLM writes — goes out through the
//!   provider. Mobile Push ends there (`DELIVERED`); the others open a
//!   session at the contact's address.
//! - **Inbound**: a verified webhook's messages are stored in the
//!   transcript (once per provider message id) and mark the session as
//!   awaiting an answer; a call's final status ends its session.
//! - **Answer**: a later tick claims the session, asks the agent's LLM for
//!   the reply, sends it (the first unanswered message's id is the
//!   idempotency key), stores it, and runs CONTACT_ANSWER on it. The agent
//!   may end the session with its reply.
//! - **End**: when the agent ends it or the contact is silent past the
//!   inactivity timeout, the LLM extracts `session_results` from the
//!   transcript (`OutcomeStatus` and the campaign's result codes) and the
//!   AGGREGATION phase takes over.
//!
//! Every step is a database state with a lease, so a node dying between
//! any two of them leaves work another node resumes.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use stratagem_domain::{Agent, Campaign, Channel, Contact, JsonMap, Message, MessageRole};
use stratagem_domain::stage::ChannelSettings;
use stratagem_runtime::Hook;
use stratagem_store::{EarlyInbound, OpenSession, Store, StoreError};

use crate::campaigns::{CampaignSetup, TickCache};
use crate::llm::{ChatMessage, Llm, LlmError};
use crate::providers::{self, Account, CallOutcome, InboundEvent, Outbound, ProviderError};
use crate::{failure, Engine, EngineError};

/// What a batch of webhook events did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct InboundReport {
    /// New messages stored (a provider's retry of one is not counted).
    pub messages: usize,
    /// Calls or messages whose final status ended their session.
    pub statuses: usize,
    /// Events that matched no open session (a late answer, a stranger, or
    /// an answer faster than the engine's record of its session): kept a
    /// day for a session about to open.
    pub unmatched: usize,
}

/// Stores what a verified webhook reported. Messages wait for the engine
/// to answer them; nothing slow happens here, so the provider gets its
/// 200 at once.
pub async fn record_inbound(
    store: &Store,
    tenant_id: &str,
    account: &Account,
    events: &[InboundEvent],
    now: DateTime<Utc>,
) -> Result<InboundReport, StoreError> {
    let mut report = InboundReport::default();
    for event in events {
        match event {
            InboundEvent::Message { address, text, provider_message_id } => {
                let Some(session) = store.conversations().session_at_address(tenant_id, &account.id, address).await? else {
                    let early = EarlyInbound::Message { address, content: text, provider_message_id };
                    match keep_early(store, tenant_id, account, &early, now).await? {
                        true => report.unmatched += 1,
                        false => report.messages += 1,
                    }
                    continue;
                };
                let message = Message { role: MessageRole::Contact, content: text.clone(), sent_at: now, communication_id: None };
                if store.conversations().append_message(tenant_id, &session, Some(&account.id), &message, Some(provider_message_id)).await? {
                    store.conversations().await_answer(&session, now).await?;
                    report.messages += 1;
                }
            }
            InboundEvent::Status { provider_ref, outcome } => {
                let status = match outcome {
                    // A delivery receipt of a conversation's first message
                    // says nothing about how the conversation ends.
                    CallOutcome::Delivered => continue,
                    CallOutcome::Answered => "ANSWERED",
                    CallOutcome::NoAnswer => "NO_ANSWER",
                    CallOutcome::Busy => "BUSY",
                    CallOutcome::Failed(_) => "FAILED",
                };
                let mut results = JsonMap::new();
                results.insert("OutcomeStatus".into(), status.into());
                if let CallOutcome::Failed(detail) = outcome {
                    results.insert("FailureDetail".into(), detail.clone().into());
                }
                let Some(session) = store.conversations().session_of_provider_ref(tenant_id, &account.id, provider_ref).await? else {
                    let early = EarlyInbound::Status { provider_ref, session_results: &results };
                    match keep_early(store, tenant_id, account, &early, now).await? {
                        true => report.unmatched += 1,
                        false => report.statuses += 1,
                    }
                    continue;
                };
                if store.conversations().end_conversation(&session, &results, now).await? {
                    report.statuses += 1;
                }
            }
        }
    }
    Ok(report)
}

/// Keeps an event no open session matched. Its session may have opened
/// between the lookup and the keeping, after it looked for kept events:
/// then the session is found now, and takes the event here. (Whichever
/// of the two looks last sees the other's write.) Returns whether the
/// event stays kept.
async fn keep_early(store: &Store, tenant_id: &str, account: &Account, event: &EarlyInbound<'_>, now: DateTime<Utc>) -> Result<bool, StoreError> {
    store.conversations().keep_early_inbound(tenant_id, &account.id, event, now).await?;
    let (address, provider_ref, session) = match *event {
        EarlyInbound::Message { address, .. } => (Some(address), None, store.conversations().session_at_address(tenant_id, &account.id, address).await?),
        EarlyInbound::Status { provider_ref, .. } => (None, Some(provider_ref), store.conversations().session_of_provider_ref(tenant_id, &account.id, provider_ref).await?),
    };
    let Some(session) = session else { return Ok(true) };
    store.conversations().adopt_early_inbound(tenant_id, &session, &account.id, address, provider_ref, now).await?;
    Ok(false)
}

/// How the agent's LLM is asked to answer, so it can also end the session.
const REPLY_FORMAT: &str = "Answer with a JSON object {\"reply\": \"<your next message to the contact>\", \"end_session\": <true when \
     the conversation has reached its end, else false>}. Write the reply in the contact's language.";

/// Outcomes the extraction may choose from; a strategy may know others.
const OUTCOMES: &str = "NO_RESPONSE, PROMISE_TO_PAY, PAID, REFUSED, CALLBACK_REQUESTED, WRONG_PERSON, OTHER";

/// The campaign's LLM as `agent` speaks through it; its tokens count in
/// the tenant's usage as `used_for` (conversation, extraction, analysis).
pub(crate) async fn campaign_llm(
    store: &Store,
    tenant_id: &str,
    campaign: &Campaign,
    agent: Option<&Agent>,
    used_for: &'static str,
) -> Result<Result<Llm, LlmError>, StoreError> {
    let Some(id) = &campaign.llm_integration_id else { return Ok(Err(LlmError::NotConfigured)) };
    let integration = match store.integrations().integration(tenant_id, id).await {
        Ok(integration) => integration,
        Err(StoreError::NotFound(_)) => return Ok(Err(LlmError::NotConfigured)),
        Err(other) => return Err(other),
    };
    let secrets = store.integrations().integration_secrets(tenant_id, id).await?;
    let account = Account { id: id.clone(), kind: integration.kind, settings: integration.settings, secrets };
    let model = agent.and_then(|agent| agent.definition.llm_model.as_deref()).or(campaign.llm_model.as_deref());
    let meter = TenantTokens { store: store.clone(), tenant_id: tenant_id.to_owned(), used_for };
    Ok(Ok(Llm::new(&account, model).with_meter(std::sync::Arc::new(meter))))
}

/// Counts a tenant's LLM tokens into its usage.
struct TenantTokens {
    store: Store,
    tenant_id: String,
    used_for: &'static str,
}

impl crate::llm::TokenMeter for TenantTokens {
    fn used(&self, tokens: u64) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            if let Err(error) = self.store.usage().add_llm_tokens(&self.tenant_id, self.used_for, tokens).await {
                tracing::warn!(%error, tenant = %self.tenant_id, tokens, "the LLM tokens used could not be counted in the tenant's usage");
            }
        })
    }
}

/// The agent a stage names, `None` when it has none or it was deleted.
pub(crate) async fn agent(store: &Store, tenant_id: &str, agent_id: Option<&str>) -> Result<Option<Agent>, StoreError> {
    match agent_id {
        None => Ok(None),
        Some(id) => match store.agents().agent(tenant_id, id).await {
            Ok(agent) => Ok(Some(agent)),
            Err(StoreError::NotFound(_)) => Ok(None),
            Err(other) => Err(other),
        },
    }
}

impl Engine {
    /// Answers claimed sessions whose contact wrote.
    pub(crate) async fn answer(&self, cache: &TickCache, session: &OpenSession) -> Result<bool, EngineError> {
        let Some(setup) = cache.get(&session.campaign_id) else {
            self.store.conversations().release_open_session(&session.communication_id).await?;
            return Ok(false);
        };
        let Some(awaiting_since) = session.awaiting_since else { return Ok(false) };
        let tenant_id = &session.tenant_id;
        let agent = agent(&self.store, tenant_id, session.agent_id.as_deref()).await?;
        let contact = self.store.dispatch().contact_at_revision(tenant_id, &session.contact_id).await?.stored.contact;
        let transcript = self.store.conversations().transcript(tenant_id, &session.communication_id).await?;
        let llm = match campaign_llm(&self.store, tenant_id, &setup.campaign, agent.as_ref(), "conversation").await? {
            Ok(llm) => llm,
            Err(error) => {
                // Nobody can answer: end the session rather than leave the contact waiting.
                let results = self.extract(setup, &contact, &transcript, None).await;
                let mut results = results.unwrap_or_else(|_| failure(error.to_string()));
                results.insert("AgentError".into(), error.to_string().into());
                self.store.conversations().end_conversation(&session.communication_id, &results, self.clock.now()).await?;
                return Ok(true);
            }
        };
        let channel = Channel::ALL.into_iter().find(|c| c.as_str() == session.channel).unwrap_or(Channel::Simulated);
        let settings = session_settings(setup, session, channel, &contact);
        let mut prompt = agent_prompt(agent.as_ref(), &setup.campaign, &contact, &settings);
        prompt[0].content.push_str("\n\n");
        prompt[0].content.push_str(REPLY_FORMAT);
        prompt.extend(transcript.iter().map(|m| match m.role {
            MessageRole::Agent => ChatMessage::assistant(m.content.clone()),
            MessageRole::Contact => ChatMessage::user(m.content.clone()),
        }));
        let (reply, end_session) = match llm.complete(&self.http, &prompt, true).await {
            Ok(answer) => parse_reply(&answer),
            Err(error) => {
                tracing::warn!(%error, communication_id = %session.communication_id, "the agent's LLM failed; retried next tick");
                self.store.conversations().release_open_session(&session.communication_id).await?;
                return Ok(false);
            }
        };
        if !reply.is_empty() && !self.send_reply(setup, session, &contact, awaiting_since, &reply).await? {
            return Ok(false);
        }
        let message = Message {
            role: MessageRole::Agent,
            content: reply.clone(),
            sent_at: self.clock.now(),
            communication_id: Some(session.communication_id.clone()),
        };
        if !reply.is_empty() {
            let key = format!("reply:{}:{}", session.communication_id, awaiting_since.timestamp_micros());
            self.store.conversations().append_message(tenant_id, &session.communication_id, session.integration_id.as_deref(), &message, Some(&key)).await?;
            self.on_agent_answer(setup, session, &message).await?;
        }
        let contact_messages_seen = transcript.iter().filter(|m| m.role == MessageRole::Contact).count();
        self.store.conversations().answered(&session.communication_id, awaiting_since, contact_messages_seen, self.clock.now()).await?;
        if end_session {
            let mut transcript = transcript;
            transcript.push(message);
            self.end_with_extraction(setup, session, &transcript).await?;
        }
        Ok(true)
    }

    /// Sends the agent's reply; `false` when the provider is down (the
    /// session is released and answered next tick).
    async fn send_reply(
        &self,
        setup: &CampaignSetup,
        session: &OpenSession,
        contact: &Contact,
        awaiting_since: DateTime<Utc>,
        reply: &str,
    ) -> Result<bool, EngineError> {
        let Some(setup_channel) = Channel::ALL.into_iter().find(|c| c.as_str() == session.channel) else { return Ok(false) };
        let Some(integration_id) = &session.integration_id else { return Ok(false) };
        let integration = self.store.integrations().integration(&session.tenant_id, integration_id).await?;
        let secrets = self.store.integrations().integration_secrets(&session.tenant_id, integration_id).await?;
        let account = Account { id: integration_id.clone(), kind: integration.kind, settings: integration.settings, secrets };
        let Some(provider) = providers::provider(account.kind) else { return Ok(false) };
        let key = format!("{}-{}", session.communication_id, awaiting_since.timestamp_micros());
        let settings = session_settings(setup, session, setup_channel, contact);
        let outbound = Outbound {
            idempotency_key: &key,
            account: &account,
            channel: setup_channel,
            stage: &settings,
            contact,
            text: reply,
            address: session.address.as_deref(),
            webhook_url: &self.config.outbound.webhook_url(integration_id),
            variables: &JsonMap::new(),
            egress: self.config.outbound.egress(),
        };
        match provider.deliver(&self.http, &outbound).await {
            Ok(_) => Ok(true),
            Err(error @ (ProviderError::Unavailable { .. } | ProviderError::InDoubt { .. })) => {
                tracing::warn!(%error, communication_id = %session.communication_id, "provider unavailable; the reply is retried next tick");
                self.store.conversations().release_open_session(&session.communication_id).await?;
                Ok(false)
            }
            Err(error) => {
                let results = failure(format!("the agent's reply could not be sent: {error}"));
                self.store.conversations().end_conversation(&session.communication_id, &results, self.clock.now()).await?;
                Ok(false)
            }
        }
    }

    /// CONTACT_ANSWER (the spec's `on_agent_answer`) on the agent's message;
    /// what it returns is applied atomically. A failure is recorded on the
    /// contact and changes nothing else.
    async fn on_agent_answer(&self, setup: &CampaignSetup, session: &OpenSession, message: &Message) -> Result<(), EngineError> {
        let Some(strategy) = &setup.contact_answer else { return Ok(()) };
        for _attempt in 0..3 {
            let at = self.store.dispatch().contact_at_revision(&session.tenant_id, &session.contact_id).await?;
            let before = &at.stored.contact;
            let options = crate::invoke_options(&self.store, &session.tenant_id, &setup.campaign, self.clock.clone());
            let hook = Hook::ContactAnswer { contact: before.clone(), message: message.clone() };
            let now = self.clock.now();
            let ran = strategy.clone().invoke_on_worker(hook.clone(), options.clone()).await;
            let invocation = crate::invocations::record(strategy, &hook, &options, &ran, None);
            // Kept whether or not what it returned is applied: it ran.
            self.store.invocations().record(std::slice::from_ref(&invocation)).await?;
            let (mut contact, last_error) = match ran.result {
                Ok(None) => return Ok(()),
                Ok(Some(mut returned)) => {
                    returned.object_id = before.object_id.clone();
                    (returned, None)
                }
                Err(error) => {
                    let detail = json!({
                        "hook": "CONTACT_ANSWER", "error": error, "message": error.to_string(),
                        "input": {"communication_id": session.communication_id, "message": message.content},
                        "invocation_id": invocation.record.id,
                    });
                    (before.clone(), Some(detail))
                }
            };
            // The session's own communication stays in progress whatever the
            // strategy did to it: the session ends through the agent or the timeout.
            for communication in &mut contact.communications {
                if communication.id.as_deref() == Some(session.communication_id.as_str()) {
                    communication.status.status = stratagem_domain::CommunicationStatus::InProgress;
                }
            }
            contact.settle_result(Some(before), now);
            if self.store.dispatch().apply_contact_answer(&session.tenant_id, &at, &contact, last_error.as_ref(), now).await? {
                return Ok(());
            }
        }
        tracing::warn!(communication_id = %session.communication_id, "CONTACT_ANSWER lost three races for the contact; skipped");
        Ok(())
    }

    /// Ends claimed sessions whose contact went quiet.
    pub(crate) async fn end_inactive(&self, cache: &TickCache, session: &OpenSession) -> Result<bool, EngineError> {
        let Some(setup) = cache.get(&session.campaign_id) else {
            self.store.conversations().release_open_session(&session.communication_id).await?;
            return Ok(false);
        };
        let transcript = self.store.conversations().transcript(&session.tenant_id, &session.communication_id).await?;
        self.end_with_extraction(setup, session, &transcript).await
    }

    async fn end_with_extraction(&self, setup: &CampaignSetup, session: &OpenSession, transcript: &[Message]) -> Result<bool, EngineError> {
        let contact = self.store.dispatch().contact_at_revision(&session.tenant_id, &session.contact_id).await?.stored.contact;
        let agent = agent(&self.store, &session.tenant_id, session.agent_id.as_deref()).await?;
        let llm = campaign_llm(&self.store, &session.tenant_id, &setup.campaign, agent.as_ref(), "extraction").await?.ok();
        match self.extract(setup, &contact, transcript, llm.as_ref()).await {
            Ok(results) => Ok(self.store.conversations().end_conversation(&session.communication_id, &results, self.clock.now()).await?),
            Err(error) if error.is_transient() => {
                tracing::warn!(%error, communication_id = %session.communication_id, "extracting session results failed; retried next tick");
                self.store.conversations().release_open_session(&session.communication_id).await?;
                Ok(false)
            }
            Err(error) => {
                let mut results = JsonMap::new();
                results.insert("OutcomeStatus".into(), "UNKNOWN".into());
                results.insert("ExtractionError".into(), error.to_string().into());
                Ok(self.store.conversations().end_conversation(&session.communication_id, &results, self.clock.now()).await?)
            }
        }
    }

    /// `session_results` of a transcript: `OutcomeStatus` and each of the
    /// campaign's result codes. A contact who never wrote is `NO_RESPONSE`
    /// without asking the LLM.
    async fn extract(&self, setup: &CampaignSetup, contact: &Contact, transcript: &[Message], llm: Option<&Llm>) -> Result<JsonMap, LlmError> {
        let mut results = JsonMap::new();
        if !transcript.iter().any(|m| m.role == MessageRole::Contact) {
            results.insert("OutcomeStatus".into(), "NO_RESPONSE".into());
            return Ok(results);
        }
        let llm = llm.ok_or(LlmError::NotConfigured)?;
        let fields: Vec<String> = setup
            .campaign
            .result_fields
            .iter()
            .map(|field| format!("- \"{}\": {} — {} (null if the conversation does not say)", field.code, field.name, field.description))
            .collect();
        let system = format!(
            "You read a conversation between an agent and a contact ({name}) and report its outcome as one JSON object with the \
             key \"OutcomeStatus\": one of {OUTCOMES} (or another short UPPER_SNAKE_CASE label if none fits){extra}{fields}",
            name = contact.name,
            extra = if fields.is_empty() { "." } else { ", and these keys:\n" },
            fields = fields.join("\n"),
        );
        let conversation: String = transcript
            .iter()
            .map(|m| format!("{}: {}\n", if m.role == MessageRole::Agent { "Agent" } else { "Contact" }, m.content))
            .collect();
        let answer = llm.complete_json(&self.http, &[ChatMessage::system(system), ChatMessage::user(conversation)]).await?;
        let outcome = answer.get("OutcomeStatus").and_then(Value::as_str).map(normalize_outcome).unwrap_or_else(|| "OTHER".into());
        results.insert("OutcomeStatus".into(), outcome.into());
        for field in &setup.campaign.result_fields {
            if let Some(value) = answer.get(&field.code).filter(|value| !value.is_null()) {
                results.insert(field.code.clone(), value.clone());
            }
        }
        Ok(results)
    }
}

/// The agent's instructions and what it knows of the contact.
pub(crate) fn agent_prompt(agent: Option<&Agent>, campaign: &Campaign, contact: &Contact, settings: &ChannelSettings) -> Vec<ChatMessage> {
    let instructions = agent.map(|agent| agent.definition.instructions.as_str()).filter(|i| !i.trim().is_empty());
    let parameters = serde_json::to_string(&contact.parameters).unwrap_or_default();
    let mut prompt = format!(
        "{}\n\nCampaign: {}. {}\nYou are talking to {} (parameters: {parameters}).",
        instructions.unwrap_or("You are a polite assistant speaking for the company."),
        campaign.name,
        campaign.description,
        contact.name,
    );
    // The stage's start state: where the agent's workflow begins.
    if let Some(state) = settings.start_state.as_deref().filter(|state| !state.trim().is_empty()) {
        prompt.push_str(&format!("\nThis conversation starts in the `{state}` state of your workflow."));
    }
    vec![ChatMessage::system(prompt)]
}

/// The stage's settings as a session's contact got them: its A/B
/// alternative's, with what its communication's `parameters` override.
fn session_settings(setup: &CampaignSetup, session: &OpenSession, channel: Channel, contact: &Contact) -> ChannelSettings {
    let stage = setup.stages.iter().find(|stage| stage.definition.name == session.stage_name);
    let settings = stage
        .map(|stage| {
            let definition = &stage.definition;
            match definition.alternatives.iter().find(|alternative| Some(&alternative.label) == session.alternative.as_ref()) {
                Some(alternative) => alternative.settings.clone(),
                None => definition.settings.clone(),
            }
        })
        .unwrap_or_default();
    let communication = contact.communications.iter().find(|c| c.id.as_deref() == Some(session.communication_id.as_str()));
    match communication {
        Some(communication) => settings.overridden_by(channel, &communication.parameters),
        None => settings,
    }
}

/// The reply and whether the agent ends the session. A model that ignores
/// the JSON format still gets its text through, and keeps the session open.
fn parse_reply(answer: &str) -> (String, bool) {
    match crate::llm::parse_json_object(answer) {
        Some(object) => {
            let reply = object.get("reply").and_then(Value::as_str).unwrap_or_default().trim().to_owned();
            (reply, object.get("end_session").and_then(Value::as_bool).unwrap_or(false))
        }
        None => (answer.trim().to_owned(), false),
    }
}

fn normalize_outcome(text: &str) -> String {
    let label: String = text.trim().chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect();
    let label = label.trim_matches('_');
    if label.is_empty() { "OTHER".into() } else { label.chars().take(64).collect() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn works_when_the_agent_answers_in_json_or_plain_text() {
        assert_eq!(parse_reply(r#"{"reply": " See you! ", "end_session": true}"#), ("See you!".into(), true));
        assert_eq!(parse_reply("Hello there"), ("Hello there".into(), false));
        assert_eq!(parse_reply(r#"{"reply": "Hi"}"#), ("Hi".into(), false));
    }

    #[test]
    fn works_when_outcomes_come_in_any_spelling() {
        assert_eq!(normalize_outcome("promise to pay"), "PROMISE_TO_PAY");
        assert_eq!(normalize_outcome(" Paid."), "PAID");
        assert_eq!(normalize_outcome("!!!"), "OTHER");
    }
}
