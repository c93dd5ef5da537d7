//! The host side of `wit/http.wit`: outbound requests restricted to an
//! allowlist, with a deadline for the whole exchange (redirects included)
//! and a cap on the response body. Every request, redirects included,
//! also goes through the service's egress policy (`stratagem_outbound::
//! egress`), as integrations' requests do: an allowlist cannot name the
//! service's private neighbours unless the operator allows private
//! endpoints.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use stratagem_outbound::EgressPolicy;
use tokio::time::Instant;
use url::Url;

use crate::bindings::http::{HttpError, Request, Response};

const MAX_REDIRECTS: usize = 5;
const METHODS: [&str; 6] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"];
/// Headers the transport owns; letting a guest set them would let it
/// smuggle requests or address another virtual host.
const RESERVED_HEADERS: [&str; 6] = [
    "host",
    "connection",
    "content-length",
    "transfer-encoding",
    "upgrade",
    "proxy-authorization",
];

/// Which hosts a strategy may call and how long and how much it may wait.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpPolicy {
    /// Host names (`api.example.com`), optionally with a port
    /// (`127.0.0.1:8080`) or a leading wildcard (`*.example.com`).
    /// Empty: no outbound HTTP at all.
    pub allowed_hosts: Vec<String>,
    pub timeout: Duration,
    pub max_response_bytes: u64,
}

impl Default for HttpPolicy {
    fn default() -> Self {
        Self {
            allowed_hosts: Vec::new(),
            timeout: Duration::from_secs(10),
            max_response_bytes: 1 << 20,
        }
    }
}

impl HttpPolicy {
    fn allows(&self, url: &Url) -> Result<(), HttpError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(HttpError::Denied(format!(
                "scheme `{}` is not allowed; use http or https",
                url.scheme()
            )));
        }
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        let with_port = url.port().map(|port| format!("{host}:{port}"));
        let allowed = self.allowed_hosts.iter().any(|entry| {
            let entry = entry.to_ascii_lowercase();
            match entry.strip_prefix("*.") {
                Some(suffix) => host.ends_with(&format!(".{suffix}")),
                None => entry == host || Some(&entry) == with_port.as_ref(),
            }
        });
        if allowed {
            Ok(())
        } else if self.allowed_hosts.is_empty() {
            Err(HttpError::Denied(format!(
                "host `{host}` is not allowed: the campaign's HTTP allowlist is empty; add the host under Settings > External APIs"
            )))
        } else {
            Err(HttpError::Denied(format!(
                "host `{}` is not on the campaign's HTTP allowlist ({}); add it under Settings > External APIs",
                with_port.unwrap_or(host),
                self.allowed_hosts.join(", ")
            )))
        }
    }
}

/// An integration's credential: the header the host adds to a strategy's
/// requests under `base_url` (`http.get(url, auth="crm")`). The strategy
/// never sees `value`.
#[derive(Clone)]
pub struct Credential {
    pub base_url: Url,
    pub header: String,
    pub value: String,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential").field("base_url", &self.base_url.as_str()).field("header", &self.header).finish_non_exhaustive()
    }
}

impl Credential {
    /// Whether `url` is under the base URL: same scheme, host and port,
    /// and a path at or below the base's.
    fn covers(&self, url: &Url) -> bool {
        let base = &self.base_url;
        let base_path = base.path().trim_end_matches('/');
        let path = url.path();
        url.scheme() == base.scheme()
            && url.host_str().map(str::to_ascii_lowercase) == base.host_str().map(str::to_ascii_lowercase)
            && url.port_or_known_default() == base.port_or_known_default()
            && (path == base_path || path.starts_with(&format!("{base_path}/")))
    }

    /// What the response must not repeat: the value, and its token after a
    /// scheme (`Bearer <token>`) when that is long enough to be the secret.
    fn secrets(&self) -> Vec<&[u8]> {
        let mut secrets = vec![self.value.as_bytes()];
        if let Some((_, token)) = self.value.split_once(' ') {
            if token.trim().len() >= 8 {
                secrets.push(token.trim().as_bytes());
            }
        }
        secrets
    }
}

/// Where `fetch-with-auth` finds credentials by integration name: the
/// invoking tenant's integrations, and nobody else's.
pub trait Credentials: Send + Sync {
    /// The credential of the integration named `integration`, or why there
    /// is none (it says what to fix).
    fn credential<'a>(&'a self, integration: &'a str) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Credential, String>> + Send + 'a>>;
}

/// The client strategies' requests go out through, and the policy its
/// resolver applies (checked again for addresses written in a URL, which
/// are not resolved).
#[derive(Clone)]
pub(crate) struct HttpClient {
    client: reqwest::Client,
    egress: EgressPolicy,
}

impl HttpClient {
    pub(crate) fn new(egress: EgressPolicy) -> Result<Self, reqwest::Error> {
        Ok(Self { client: egress.client_builder().build()?, egress })
    }
}

/// Sends `request`, following redirects to allowed hosts only; with a
/// `credential`, its header goes with every request under its base URL.
pub(crate) async fn fetch(
    http: &HttpClient,
    policy: &HttpPolicy,
    request: Request,
    credential: Option<(&str, &Credential)>,
) -> Result<Response, HttpError> {
    let mut method = request.method.to_ascii_uppercase();
    if !METHODS.contains(&method.as_str()) {
        return Err(HttpError::InvalidRequest(format!(
            "method `{}` is not one of {}",
            request.method,
            METHODS.join(", ")
        )));
    }
    let mut url = Url::parse(&request.url)
        .map_err(|error| HttpError::InvalidRequest(format!("url `{}`: {error}", request.url)))?;
    let mut headers = reqwest::header::HeaderMap::new();
    for (name, value) in &request.headers {
        if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
            return Err(HttpError::InvalidRequest(format!(
                "header `{name}` is set by the platform and cannot be given"
            )));
        }
        let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| HttpError::InvalidRequest(format!("header name `{name}` is invalid")))?;
        let value = reqwest::header::HeaderValue::from_str(value)
            .map_err(|_| HttpError::InvalidRequest(format!("header `{name}` has an invalid value")))?;
        headers.append(name, value);
    }
    let authorization = match credential {
        None => None,
        Some((name, credential)) => {
            if !credential.covers(&url) {
                return Err(HttpError::Denied(format!(
                    "auth `{name}` is for requests under {}; this one goes to {}",
                    credential.base_url,
                    url_without_query(&url)
                )));
            }
            let header = reqwest::header::HeaderName::from_bytes(credential.header.as_bytes()).map_err(|_| {
                HttpError::Denied(format!("auth `{name}`: its header `{}` is not a valid header name; fix it under Integrations", credential.header))
            })?;
            if headers.contains_key(&header) {
                return Err(HttpError::InvalidRequest(format!(
                    "header `{}` is added from integration `{name}`; leave it out of the request",
                    credential.header
                )));
            }
            let mut value = reqwest::header::HeaderValue::from_str(&credential.value).map_err(|_| {
                HttpError::Denied(format!("auth `{name}`: its header value is not a valid header value; fix it under Integrations"))
            })?;
            value.set_sensitive(true);
            Some((credential, header, value))
        }
    };
    let mut body = request.body;
    let deadline = Instant::now() + policy.timeout;
    let timeout = || HttpError::Timeout(policy.timeout.as_millis().min(u32::MAX as u128) as u32);

    for _ in 0..=MAX_REDIRECTS {
        policy.allows(&url)?;
        http.egress.check_endpoint(url.as_str()).map_err(HttpError::Denied)?;
        let mut outgoing = http
            .client
            .request(
                reqwest::Method::from_bytes(method.as_bytes())
                    .map_err(|_| HttpError::InvalidRequest(format!("method `{method}` is invalid")))?,
                url.clone(),
            )
            .headers(headers.clone());
        // Never to a redirect's target off the integration's base URL.
        if let Some((credential, header, value)) = &authorization {
            if credential.covers(&url) {
                outgoing = outgoing.header(header.clone(), value.clone());
            }
        }
        if let Some(bytes) = &body {
            outgoing = outgoing.body(bytes.clone());
        }
        let mut reply = tokio::time::timeout_at(deadline, outgoing.send())
            .await
            .map_err(|_| timeout())?
            .map_err(transport_error)?;

        if reply.status().is_redirection() {
            if let Some(location) = reply.headers().get(reqwest::header::LOCATION) {
                let location = location.to_str().unwrap_or_default();
                url = url.join(location).map_err(|error| {
                    HttpError::Transport(format!("redirect to invalid location `{location}`: {error}"))
                })?;
                let status = reply.status().as_u16();
                if status == 303 || ((status == 301 || status == 302) && method == "POST") {
                    method = "GET".into();
                    body = None;
                }
                continue;
            }
        }

        let cap = policy.max_response_bytes;
        if reply.content_length().is_some_and(|length| length > cap) {
            return Err(HttpError::TooLarge(cap));
        }
        let status = reply.status().as_u16();
        let secrets = authorization.as_ref().map(|(credential, _, _)| credential.secrets()).unwrap_or_default();
        let response_headers = reply
            .headers()
            .iter()
            .map(|(name, value)| {
                (name.as_str().to_owned(), String::from_utf8_lossy(&redact(value.as_bytes().to_vec(), &secrets)).into_owned())
            })
            .collect();
        let mut received = Vec::new();
        loop {
            let chunk = tokio::time::timeout_at(deadline, reply.chunk())
                .await
                .map_err(|_| timeout())?
                .map_err(transport_error)?;
            let Some(chunk) = chunk else { break };
            if received.len() as u64 + chunk.len() as u64 > cap {
                return Err(HttpError::TooLarge(cap));
            }
            received.extend_from_slice(&chunk);
        }
        return Ok(Response { status, headers: response_headers, body: redact(received, &secrets) });
    }
    Err(HttpError::Transport(format!("more than {MAX_REDIRECTS} redirects")))
}

/// `bytes` with every occurrence of each secret replaced by `[redacted]`:
/// a server that echoes the request's headers does not hand the
/// credential to the strategy.
fn redact(bytes: Vec<u8>, secrets: &[&[u8]]) -> Vec<u8> {
    let mut bytes = bytes;
    for secret in secrets.iter().filter(|secret| !secret.is_empty()) {
        if !bytes.windows(secret.len()).any(|window| window == *secret) {
            continue;
        }
        let mut redacted = Vec::with_capacity(bytes.len());
        let mut at = 0;
        while at < bytes.len() {
            if bytes[at..].starts_with(secret) {
                redacted.extend_from_slice(b"[redacted]");
                at += secret.len();
            } else {
                redacted.push(bytes[at]);
                at += 1;
            }
        }
        bytes = redacted;
    }
    bytes
}

/// A URL as an error may show it: its query may carry data.
fn url_without_query(url: &Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

fn transport_error(error: reqwest::Error) -> HttpError {
    // The chain holds the useful part (e.g. "connection refused").
    let mut message = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        message = format!("{message}: {cause}");
        source = cause.source();
    }
    HttpError::Transport(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(hosts: &[&str]) -> HttpPolicy {
        HttpPolicy { allowed_hosts: hosts.iter().map(|h| h.to_string()).collect(), ..Default::default() }
    }

    fn url(text: &str) -> Url {
        Url::parse(text).expect("test url parses")
    }

    #[test]
    fn works_when_host_matches_exactly_or_by_wildcard() {
        let policy = policy(&["api.example.com", "*.crm.io", "127.0.0.1:8080"]);
        assert!(policy.allows(&url("https://API.example.com/x")).is_ok());
        assert!(policy.allows(&url("https://eu.crm.io/x")).is_ok());
        assert!(policy.allows(&url("http://127.0.0.1:8080/x")).is_ok());
    }

    #[test]
    fn works_when_a_credential_covers_only_urls_under_its_base() {
        let credential = Credential { base_url: url("https://crm.example.com/v1/"), header: "Authorization".into(), value: "Bearer s3cr3t-token".into() };
        for covered in ["https://crm.example.com/v1", "https://CRM.example.com/v1/accounts/42?x=1", "https://crm.example.com:443/v1/a"] {
            assert!(credential.covers(&url(covered)), "{covered}");
        }
        for other in ["http://crm.example.com/v1/a", "https://crm.example.com/v2/a", "https://crm.example.com/v10", "https://crm.example.com.evil.io/v1/a", "https://crm.example.com:8443/v1/a"] {
            assert!(!credential.covers(&url(other)), "{other}");
        }
    }

    #[test]
    fn works_when_a_repeated_secret_is_redacted() {
        let credential = Credential { base_url: url("https://crm.example.com/"), header: "Authorization".into(), value: "Bearer s3cr3t-token".into() };
        let echoed = br#"{"authorization": "Bearer s3cr3t-token", "token": "s3cr3t-token", "other": "s3cr3t"}"#.to_vec();
        let redacted = String::from_utf8(redact(echoed, &credential.secrets())).expect("utf-8");
        assert_eq!(redacted, r#"{"authorization": "[redacted]", "token": "[redacted]", "other": "s3cr3t"}"#);
    }

    #[test]
    fn errors_when_host_is_not_allowed() {
        let policy = policy(&["api.example.com", "*.crm.io"]);
        for denied in ["https://example.com", "https://crm.io", "https://api.example.com.evil.io", "http://127.0.0.1:9999"] {
            assert!(matches!(policy.allows(&url(denied)), Err(HttpError::Denied(_))), "{denied}");
        }
        assert!(matches!(policy.allows(&url("file:///etc/passwd")), Err(HttpError::Denied(m)) if m.contains("scheme")));
    }
}
