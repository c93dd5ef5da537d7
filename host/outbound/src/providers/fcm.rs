//! Mobile Push through Firebase Cloud Messaging HTTP v1:
//! `POST {base}/v1/projects/{project_id}/messages:send` with
//! `{"message": {"token": …, "notification": {"body": …}, "data": …}}` to
//! the device token in the contact's `fcm_token` parameter.
//!
//! FCM v1 takes an OAuth2 access token, obtained the way Google documents
//! for service accounts: a JWT (RS256, signed with the service account's
//! private key, `scope` firebase.messaging, `aud` its `token_uri`) is
//! exchanged at the service account's `token_uri` for a bearer token. The
//! token is cached per service account until a minute before it expires,
//! and dropped when FCM answers 401 (the request is then tried once more
//! with a new token).
//!
//! FCM takes no idempotency key; the key travels in the message's `data`
//! (`stratagem_key`) so an app can drop a duplicate. Push is one-way: FCM
//! sends no webhooks, and any call claiming to come from it is refused.

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use serde_json::{json, Value};

use super::{
    answer_field, base_url, required_secret, required_setting, send, Account, DeliverFuture, Delivered, InboundEvent,
    Outbound, Provider, ProviderError, WebhookError, WebhookRequest,
};

const NAME: &str = "FCM";
const SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";

struct CachedToken {
    /// The service account's `client_email` and `token_uri`.
    owner: (String, String),
    token: String,
    expires: Instant,
}

pub struct Fcm {
    tokens: Mutex<Vec<CachedToken>>,
}

struct ServiceAccount {
    client_email: String,
    token_uri: String,
    private_key_der: Vec<u8>,
}

fn misconfigured(account: &Account, problem: &str) -> ProviderError {
    ProviderError::Misconfigured(format!(
        "integration {}'s service_account_json {problem}: paste the JSON key file of a service account (Firebase console > Project settings > Service accounts)",
        account.id
    ))
}

fn service_account(account: &Account) -> Result<ServiceAccount, ProviderError> {
    let json = required_secret(account, "service_account_json")?;
    let parsed: Value = serde_json::from_str(json).map_err(|_| misconfigured(account, "is not JSON"))?;
    let field = |name: &str| {
        parsed.get(name).and_then(Value::as_str).filter(|text| !text.is_empty()).map(str::to_owned).ok_or_else(|| misconfigured(account, &format!("has no `{name}`")))
    };
    let pem = field("private_key")?;
    let body: String = pem.lines().map(str::trim).filter(|line| !line.starts_with("-----") && !line.is_empty()).collect();
    let private_key_der =
        base64::engine::general_purpose::STANDARD.decode(body).map_err(|_| misconfigured(account, "has a `private_key` that is not PEM"))?;
    Ok(ServiceAccount { client_email: field("client_email")?, token_uri: field("token_uri")?, private_key_der })
}

/// The signed JWT assertion Google's token endpoint exchanges.
fn assertion(account: &Account, service: &ServiceAccount, now: u64) -> Result<String, ProviderError> {
    let encode = |value: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string());
    let header = encode(&json!({ "alg": "RS256", "typ": "JWT" }));
    let claims = encode(&json!({
        "iss": service.client_email,
        "scope": SCOPE,
        "aud": service.token_uri,
        "iat": now,
        "exp": now + 3600,
    }));
    let signing_input = format!("{header}.{claims}");
    let key = ring::signature::RsaKeyPair::from_pkcs8(&service.private_key_der)
        .map_err(|error| misconfigured(account, &format!("has a `private_key` that is not an RSA PKCS#8 key ({error})")))?;
    let mut signature = vec![0; key.public().modulus_len()];
    key.sign(&ring::signature::RSA_PKCS1_SHA256, &ring::rand::SystemRandom::new(), signing_input.as_bytes(), &mut signature)
        .map_err(|_| misconfigured(account, "has a `private_key` that cannot sign"))?;
    Ok(format!("{signing_input}.{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(signature)))
}

impl Fcm {
    pub const fn new() -> Self {
        Self { tokens: Mutex::new(Vec::new()) }
    }

    fn cached(&self, owner: &(String, String)) -> Option<String> {
        let tokens = self.tokens.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        tokens.iter().find(|cached| &cached.owner == owner && cached.expires > Instant::now()).map(|cached| cached.token.clone())
    }

    fn forget(&self, owner: &(String, String)) {
        self.tokens.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).retain(|cached| &cached.owner != owner);
    }

    async fn access_token(&self, http: &reqwest::Client, account: &Account, service: &ServiceAccount) -> Result<String, ProviderError> {
        let owner = (service.client_email.clone(), service.token_uri.clone());
        if let Some(token) = self.cached(&owner) {
            return Ok(token);
        }
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|since| since.as_secs()).unwrap_or_default();
        let assertion = assertion(account, service, now)?;
        let form = [("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"), ("assertion", assertion.as_str())];
        // Nothing is sent to the contact here: a lost answer only costs a
        // retry.
        let retry = |error| match error {
            ProviderError::InDoubt { provider, detail } => ProviderError::Unavailable { provider, detail },
            other => other,
        };
        let answer = send(NAME, http.post(&service.token_uri).form(&form)).await.map_err(|error| match error {
            ProviderError::Rejected { detail, .. } => misconfigured(account, &format!("was refused by its token_uri ({detail})")),
            other => retry(other),
        })?;
        let token = answer_field(NAME, &answer, "/access_token").map_err(retry)?;
        let lifetime = answer.get("expires_in").and_then(Value::as_u64).unwrap_or(3600);
        let mut tokens = self.tokens.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        tokens.retain(|cached| cached.owner != owner && cached.expires > Instant::now());
        tokens.push(CachedToken { owner, token: token.clone(), expires: Instant::now() + Duration::from_secs(lifetime.saturating_sub(60)) });
        Ok(token)
    }
}

impl Provider for Fcm {
    /// It takes no idempotency key: a send whose outcome is unknown ends
    /// IN_DOUBT rather than writing to the contact twice.
    fn resends_by_key(&self) -> bool {
        false
    }

    fn deliver<'a>(&'a self, http: &'a reqwest::Client, outbound: &'a Outbound<'a>) -> DeliverFuture<'a> {
        Box::pin(async move {
            let account = outbound.account;
            let project = required_setting(account, "project_id")?;
            let device = outbound
                .address
                .or_else(|| outbound.contact.parameters.get("fcm_token").and_then(Value::as_str))
                .filter(|token| !token.trim().is_empty())
                .ok_or_else(|| {
                    ProviderError::Misconfigured(format!(
                        "contact {} has no device: import it with an `fcm_token` column (the app's FCM registration token)",
                        outbound.contact.object_id
                    ))
                })?;
            let service = service_account(account)?;
            let url = format!("{}/v1/projects/{project}/messages:send", base_url(account, "https://fcm.googleapis.com"));
            let body = json!({
                "message": {
                    "token": device,
                    "notification": { "body": outbound.text },
                    "data": { "stratagem_key": outbound.idempotency_key },
                }
            });
            let mut retried = false;
            loop {
                let token = self.access_token(http, account, &service).await?;
                match send(NAME, http.post(&url).bearer_auth(&token).json(&body)).await {
                    Ok(answer) => return Ok(Delivered { provider_ref: answer_field(NAME, &answer, "/name")?, address: device.to_owned() }),
                    Err(ProviderError::Rejected { detail, .. }) if detail.starts_with("401") && !retried => {
                        self.forget(&(service.client_email.clone(), service.token_uri.clone()));
                        retried = true;
                    }
                    Err(other) => return Err(other),
                }
            }
        })
    }

    fn receive(&self, _account: &Account, _request: &WebhookRequest<'_>) -> Result<Vec<InboundEvent>, WebhookError> {
        Err(WebhookError::Unauthorized("FCM sends no webhooks; nothing is accepted for this integration".into()))
    }

    fn sends_webhooks(&self) -> bool {
        false
    }
}
