//! `Authorization: Bearer stg_…` → the caller's tenant, if the key is
//! valid and its tenant active: a disabled tenant's key gets 403, a deleted
//! tenant's 401 (its keys were revoked). The tenant's state is read on
//! every request, so disabling takes effect at once. Each key's requests
//! are rate-limited when the node sets a rate (`rate_limit.rs`).

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use stratagem_store::KeyCheck;

use crate::problem::ApiError;
use crate::AppState;

/// The authenticated tenant; every handler that touches data takes it.
#[derive(Debug, Clone)]
pub struct Tenant(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Tenant {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Tenant>().cloned().ok_or(ApiError::Unauthorized)
    }
}

pub async fn require_api_key(
    State(state): State<AppState>,
    mut request: axum::extract::Request,
    next: Next,
) -> Result<Response, ApiError> {
    let presented = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(bearer_token)
        .ok_or(ApiError::Unauthorized)?;
    let tenant = match state.store.tenants().check_api_key(presented).await? {
        KeyCheck::Tenant(tenant) => tenant,
        KeyCheck::TenantDisabled(_) => return Err(ApiError::TenantDisabled),
        KeyCheck::Refused => return Err(ApiError::Unauthorized),
    };
    // Counted per valid key (its public id), so unknown keys cannot fill
    // the buckets.
    if let Some(buckets) = &state.rate_limit {
        let key_id = presented.split('_').nth(1).unwrap_or_default();
        buckets.take(key_id).map_err(|wait| ApiError::RateLimited {
            per_second: buckets.per_second(),
            retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
        })?;
    }
    // Every log line of the request names its tenant.
    tracing::Span::current().record("tenant", tenant.as_str());
    request.extensions_mut().insert(Tenant(tenant));
    Ok(next.run(request).await)
}

/// The token of `Bearer <token>`. The scheme is matched in any letter case
/// (RFC 9110 §11.1: auth-schemes are case-insensitive), and any run of
/// spaces or tabs may separate it from the token or follow the token.
fn bearer_token(value: &str) -> Option<&str> {
    let blank = |c: char| c == ' ' || c == '\t';
    let (scheme, token) = value.trim_matches(blank).split_once(blank)?;
    let token = token.trim_matches(blank);
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::bearer_token;

    #[test]
    fn works_when_the_scheme_is_in_any_case_and_spaced_out() {
        for value in ["Bearer stg_a_b", "bearer stg_a_b", "BEARER stg_a_b", "bEaReR stg_a_b", "Bearer   stg_a_b", "Bearer\tstg_a_b ", " Bearer stg_a_b"] {
            assert_eq!(bearer_token(value), Some("stg_a_b"), "{value:?}");
        }
    }

    #[test]
    fn errors_when_the_scheme_or_token_is_wrong_or_missing() {
        for value in ["", "Bearer", "Bearer   ", "Basic stg_a_b", "Bearerstg_a_b", "Bearer-stg_a_b", "stg_a_b", "Token stg_a_b"] {
            assert_eq!(bearer_token(value), None, "{value:?}");
        }
    }
}
