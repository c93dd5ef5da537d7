//! The campaign's LLM: an OpenAI-compatible chat-completions endpoint
//! (`POST {api_base_url}/chat/completions`), reached through an LLM
//! integration. Agents speak through it, session results are extracted
//! with it and Deep Analysis asks it about transcripts.
//!
//! Whatever the endpoint does — refuse, hang, answer garbage — comes back
//! as an [`LlmError`] that says which, so the caller can record it per
//! session and go on.

use std::time::Duration;

use serde_json::{json, Value};

use crate::providers::Account;

/// Longest wait for one completion.
pub const TIMEOUT: Duration = Duration::from_secs(60);
/// Largest answer read from the endpoint.
const MAX_RESPONSE_BYTES: usize = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    /// `system`, `user` or `assistant`.
    pub role: &'static str,
    pub content: String,
}

impl ChatMessage {
    pub fn system(content: impl Into<String>) -> Self {
        Self { role: "system", content: content.into() }
    }
    pub fn user(content: impl Into<String>) -> Self {
        Self { role: "user", content: content.into() }
    }
    pub fn assistant(content: impl Into<String>) -> Self {
        Self { role: "assistant", content: content.into() }
    }
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum LlmError {
    #[error("the campaign has no LLM: choose an LLM integration in Settings > LLM Settings")]
    NotConfigured,
    #[error("the LLM endpoint {url} cannot be reached: {detail}")]
    Unreachable { url: String, detail: String },
    #[error("the LLM endpoint {url} did not answer within {seconds} s")]
    Timeout { url: String, seconds: u64 },
    #[error("the LLM endpoint {url} answered HTTP {status}: {detail}")]
    Status { url: String, status: u16, detail: String },
    #[error("the LLM endpoint {url} answered something that is not a chat completion: {detail}")]
    Garbage { url: String, detail: String },
}

impl LlmError {
    /// Whether trying again later may help (the endpoint is down or busy),
    /// as opposed to an answer that will not change.
    pub fn is_transient(&self) -> bool {
        match self {
            LlmError::Unreachable { .. } | LlmError::Timeout { .. } => true,
            LlmError::Status { status, .. } => *status == 429 || *status >= 500,
            LlmError::NotConfigured | LlmError::Garbage { .. } => false,
        }
    }
}

/// Told the tokens each answer used (the provider's `usage.total_tokens`),
/// for the tenant's usage.
pub trait TokenMeter: Send + Sync {
    fn used(&self, tokens: u64) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>>;
}

/// One endpoint and model.
#[derive(Clone)]
pub struct Llm {
    url: String,
    api_key: Option<String>,
    model: String,
    timeout: Duration,
    meter: Option<std::sync::Arc<dyn TokenMeter>>,
}

impl std::fmt::Debug for Llm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Llm").field("url", &self.url).field("model", &self.model).finish_non_exhaustive()
    }
}

impl Llm {
    /// The LLM of an LLM integration; `model` overrides its
    /// `default_model` (the campaign's or the agent's choice).
    pub fn new(account: &Account, model: Option<&str>) -> Self {
        let base = account.setting("api_base_url").unwrap_or_default().trim_end_matches('/');
        Self {
            url: format!("{base}/chat/completions"),
            api_key: account.secret("api_key").map(str::to_owned),
            model: model.filter(|m| !m.trim().is_empty()).or(account.setting("default_model")).unwrap_or("gpt-4o-mini").to_owned(),
            timeout: TIMEOUT,
            meter: None,
        }
    }

    /// Counts the tokens of every answer with `meter`.
    pub fn with_meter(mut self, meter: std::sync::Arc<dyn TokenMeter>) -> Self {
        self.meter = Some(meter);
        self
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn model(&self) -> &str {
        &self.model
    }

    /// The assistant's answer to `messages`.
    pub async fn complete(&self, http: &reqwest::Client, messages: &[ChatMessage], json_answer: bool) -> Result<String, LlmError> {
        let mut body = json!({
            "model": self.model,
            "messages": messages.iter().map(|m| json!({"role": m.role, "content": m.content})).collect::<Vec<_>>(),
            "temperature": 0,
        });
        if json_answer {
            body["response_format"] = json!({"type": "json_object"});
        }
        let mut request = http.post(&self.url).timeout(self.timeout).json(&body);
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key);
        }
        let url = self.url.clone();
        let response = request.send().await.map_err(|error| self.transport_error(error))?;
        let status = response.status().as_u16();
        let bytes = read_capped(response).await.map_err(|error| self.transport_error(error))?;
        if !(200..300).contains(&status) {
            let detail = String::from_utf8_lossy(&bytes[..bytes.len().min(300)]).trim().to_owned();
            return Err(LlmError::Status { url, status, detail });
        }
        let garbage = |detail: String| LlmError::Garbage { url: self.url.clone(), detail };
        let value: Value = serde_json::from_slice(&bytes).map_err(|error| garbage(format!("not JSON ({error})")))?;
        if let (Some(meter), Some(tokens)) = (&self.meter, value["usage"]["total_tokens"].as_u64()) {
            meter.used(tokens).await;
        }
        value["choices"][0]["message"]["content"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| garbage("no choices[0].message.content".into()))
    }

    /// Asks for a JSON object and parses it.
    pub async fn complete_json(&self, http: &reqwest::Client, messages: &[ChatMessage]) -> Result<serde_json::Map<String, Value>, LlmError> {
        let answer = self.complete(http, messages, true).await?;
        parse_json_object(&answer).ok_or_else(|| LlmError::Garbage {
            url: self.url.clone(),
            detail: format!("expected a JSON object, got `{}`", answer.chars().take(200).collect::<String>()),
        })
    }

    fn transport_error(&self, error: reqwest::Error) -> LlmError {
        if error.is_timeout() {
            LlmError::Timeout { url: self.url.clone(), seconds: self.timeout.as_secs() }
        } else {
            LlmError::Unreachable { url: self.url.clone(), detail: error.to_string() }
        }
    }
}

async fn read_capped(mut response: reqwest::Response) -> Result<Vec<u8>, reqwest::Error> {
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        bytes.extend_from_slice(&chunk);
        if bytes.len() > MAX_RESPONSE_BYTES {
            bytes.truncate(MAX_RESPONSE_BYTES);
            break;
        }
    }
    Ok(bytes)
}

/// A JSON object from a model's answer, also when the model wrapped it in
/// a Markdown code fence or added words around it.
pub fn parse_json_object(answer: &str) -> Option<serde_json::Map<String, Value>> {
    let trimmed = answer.trim();
    if let Ok(Value::Object(object)) = serde_json::from_str(trimmed) {
        return Some(object);
    }
    let start = trimmed.find('{')?;
    let end = trimmed.rfind('}')?;
    match serde_json::from_str(trimmed.get(start..=end)?) {
        Ok(Value::Object(object)) => Some(object),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn works_when_the_answer_is_fenced_or_wrapped() {
        let fenced = "```json\n{\"reply\": \"Hi\", \"end_session\": false}\n```";
        assert_eq!(parse_json_object(fenced).expect("fenced")["reply"], "Hi");
        assert_eq!(parse_json_object("Sure! {\"a\": 1} Hope it helps")
            .expect("wrapped")["a"], 1);
    }

    #[test]
    fn errors_when_the_answer_has_no_object() {
        assert_eq!(parse_json_object("I cannot help with that"), None);
        assert_eq!(parse_json_object("[1, 2]"), None);
        assert_eq!(parse_json_object("{not json}"), None);
    }

    #[test]
    fn works_when_classifying_what_may_pass() {
        let status = |status| LlmError::Status { url: String::new(), status, detail: String::new() };
        assert!(status(503).is_transient() && status(429).is_transient());
        assert!(!status(401).is_transient());
        assert!(!LlmError::Garbage { url: String::new(), detail: String::new() }.is_transient());
    }
}
