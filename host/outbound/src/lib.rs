//! What the service sends out, apart from the engine that decides when:
//! the provider clients ([`providers`]: messaging, voice, push and SMTP
//! conversations, with their webhooks), plain SMTP ([`smtp`]), the
//! campaign's LLM ([`llm`]), and the one egress policy ([`egress`]) every
//! outbound connection goes through — integrations' and strategies' alike.
//!
//! Nothing here reads the environment: the operator's choices come in an
//! [`OutboundConfig`] the binary builds.

use std::borrow::Cow;

pub mod egress;
pub mod llm;
pub mod providers;
pub mod smtp;

pub use egress::EgressPolicy;

/// The operator's settings for outbound connections and webhooks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundConfig {
    /// Lets integrations and strategies reach private and local addresses
    /// (tests, on-premise endpoints on a private network).
    pub allow_private_endpoints: bool,
    /// The service's public base URL, as providers reach its webhooks.
    pub public_url: Cow<'static, str>,
}

impl OutboundConfig {
    pub const DEFAULT_PUBLIC_URL: &'static str = "http://127.0.0.1:8080";

    /// Private endpoints refused, webhooks at [`Self::DEFAULT_PUBLIC_URL`]
    /// (a `const`, for configurations that are constants).
    pub const DEFAULT: OutboundConfig =
        OutboundConfig { allow_private_endpoints: false, public_url: Cow::Borrowed(Self::DEFAULT_PUBLIC_URL) };

    /// The public base URL without a trailing slash.
    pub fn public_url(&self) -> &str {
        let url = self.public_url.trim();
        if url.is_empty() { Self::DEFAULT_PUBLIC_URL } else { url.trim_end_matches('/') }
    }

    /// Where a provider posts the webhooks of an integration.
    pub fn webhook_url(&self, integration_id: &str) -> String {
        format!("{}/webhooks/{integration_id}", self.public_url())
    }

    pub fn egress(&self) -> EgressPolicy {
        EgressPolicy { allow_private_endpoints: self.allow_private_endpoints }
    }
}

impl Default for OutboundConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn works_when_the_public_url_has_a_trailing_slash_or_is_blank() {
        let config = OutboundConfig { public_url: "https://stratagem.example.com/".into(), ..OutboundConfig::DEFAULT };
        assert_eq!(config.webhook_url("int_1"), "https://stratagem.example.com/webhooks/int_1");
        let blank = OutboundConfig { public_url: " ".into(), ..OutboundConfig::DEFAULT };
        assert_eq!(blank.webhook_url("int_1"), "http://127.0.0.1:8080/webhooks/int_1");
    }
}
