//! Provider webhooks: `POST /webhooks/{integration_id}` (and `GET` for
//! Meta's subscription handshake), outside the API-key auth — providers
//! prove themselves by their signature instead (see
//! `stratagem_engine::providers`).
//!
//! The integration is found by id alone; its provider verifies the call
//! with the integration's secrets, against the public URL the provider
//! called (the public URL, `--public-url`, + path + query: Twilio and Bird sign the
//! URL). Only then are the events handed to the engine, in the
//! integration's tenant.
//!
//! An unknown integration, or one that takes no webhooks (LLM), is
//! answered like a forged call: 401, so the URL space tells a prober
//! nothing. A verified-but-refused call of a known integration gets its
//! provider's specific reason (e.g. "set secrets.webhook_secret"), which
//! helps its admin; integration ids are random, so that reason reaches
//! only someone who already holds the URL.

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use stratagem_engine::providers::{self, Account, Provider, WebhookError, WebhookRequest};
use stratagem_store::StoreError;

use crate::problem::{read_body_within, ApiError};
use crate::AppState;

/// Provider payloads are small; this is far above any documented one.
pub const WEBHOOK_LIMIT_BYTES: usize = 256 << 10;

/// How long a webhook's body may take to arrive in full. A provider sends
/// its small payload at once; a body still arriving after this comes from
/// a client holding a connection open before anything has verified it
/// (the idle limit alone lets a byte every 29 s through).
pub const BODY_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);

/// What an unknown integration and a refused call of one both hear.
const REFUSED: &str = "this webhook does not verify: unknown integration, or a missing or wrong signature";

pub fn router() -> Router<AppState> {
    Router::new().route("/webhooks/{integration_id}", post(receive).get(handshake))
}

/// The integration's account and tenant, or the answer to give instead.
async fn account(state: &AppState, integration_id: &str) -> Result<(String, Account, &'static dyn Provider), ApiError> {
    let (tenant_id, integration, secrets) = match state.store.integrations().integration_account(integration_id).await {
        Ok(found) => found,
        Err(StoreError::NotFound(_)) => return Err(ApiError::WebhookRefused(REFUSED.into())),
        Err(other) => return Err(other.into()),
    };
    let provider = providers::provider(integration.kind).ok_or_else(|| ApiError::WebhookRefused(REFUSED.into()))?;
    let account = Account { id: integration.id, kind: integration.kind, settings: integration.settings, secrets };
    Ok((tenant_id, account, provider))
}

fn refused(integration_id: &str, error: WebhookError) -> ApiError {
    match error {
        WebhookError::Unauthorized(reason) => {
            tracing::warn!(integration_id, %reason, "webhook refused");
            ApiError::WebhookRefused(reason)
        }
        WebhookError::Malformed(reason) => ApiError::BadRequest(reason),
    }
}

async fn receive(State(state): State<AppState>, Path(integration_id): Path<String>, request: Request) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let body = read_body_within(body, WEBHOOK_LIMIT_BYTES, state.webhook_body_limit, || {
        format!("the webhook body took longer than {} s to arrive; send it in one go", state.webhook_body_limit.as_secs())
    })
    .await?;
    let (tenant_id, account, provider) = account(&state, &integration_id).await?;
    let url = match parts.uri.query() {
        Some(query) => format!("{}{}?{query}", state.outbound.public_url(), parts.uri.path()),
        None => format!("{}{}", state.outbound.public_url(), parts.uri.path()),
    };
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .filter_map(|(name, value)| Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned())))
        .collect();
    let webhook = WebhookRequest { url: &url, headers: &headers, body: &body };
    let events = provider.receive(&account, &webhook).map_err(|error| refused(&integration_id, error))?;
    let report = stratagem_engine::conversations::record_inbound(&state.store, &tenant_id, &account, &events, chrono::Utc::now()).await?;
    tracing::debug!(integration_id, ?report, "webhook accepted");
    let reply = provider.reply(events.len());
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, reply.content_type)], Body::from(reply.body)).into_response())
}

/// Meta confirms a webhook URL with a GET carrying `hub.challenge`, which
/// must be echoed when `hub.verify_token` is the one the admin chose.
async fn handshake(State(state): State<AppState>, Path(integration_id): Path<String>, request: Request) -> Result<Response, ApiError> {
    let query: Vec<(String, String)> =
        url::form_urlencoded::parse(request.uri().query().unwrap_or_default().as_bytes()).into_owned().collect();
    let (_, account, provider) = account(&state, &integration_id).await?;
    match provider.handshake(&account, &query) {
        Some(Ok(challenge)) => Ok((StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], challenge).into_response()),
        Some(Err(error)) => Err(refused(&integration_id, error)),
        None => Err(ApiError::WebhookRefused(REFUSED.into())),
    }
}
