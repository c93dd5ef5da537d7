//! The RFC 9457 problem document every API error is: the service writes
//! it, the web app reads it and shows each part next to what caused it.

use serde::{Deserialize, Serialize};

use crate::FieldError;

/// `errors` (422) names every invalid field; `line` and `column` point
/// into a body or file; `allowed` (409) lists the statuses a campaign can
/// move to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema, utoipa::ToResponse))]
#[cfg_attr(feature = "openapi", response(description = "RFC 9457 problem", content_type = "application/problem+json"))]
pub struct Problem {
    /// `/problems/<slug>`.
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub title: String,
    /// The HTTP status; 0 on the client when the request did not reach the
    /// service.
    #[serde(default)]
    pub status: u16,
    #[serde(default)]
    pub detail: String,
    /// Where in an uploaded file or request body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<u64>,
    /// For a 409 on a status change: the statuses allowed next.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed: Option<Vec<String>>,
    /// For a 409 on a status change to CONFIGURED or RUNNING: every reason
    /// the campaign is not ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blockers: Option<Vec<crate::Blocker>>,
    /// For a 422: every field's problem, so a form can show each under its
    /// input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
    /// For a `quota-exceeded`: which quota, the use, what was asked for and
    /// the limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<crate::quota::QuotaExceeded>,
}

impl Problem {
    /// The messages of one field (`settings.email_subject`,
    /// `alternatives[0].weight`…).
    pub fn field(&self, name: &str) -> Vec<String> {
        self.errors.iter().flatten().filter(|e| e.field == name).map(|e| e.message.clone()).collect()
    }
}
