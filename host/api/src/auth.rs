//! `Authorization: Bearer stg_…` → the caller's tenant.

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;

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
        .and_then(|value| value.strip_prefix("Bearer "))
        .ok_or(ApiError::Unauthorized)?;
    let tenant = state.store.authenticate(presented.trim()).await?.ok_or(ApiError::Unauthorized)?;
    request.extensions_mut().insert(Tenant(tenant));
    Ok(next.run(request).await)
}
