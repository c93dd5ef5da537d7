//! Every error is an RFC 9457 problem-details document: one variant, one
//! status. Internal errors are logged and never leak their detail.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use stratagem_domain::contact_file::FileError;
pub(crate) use stratagem_domain::problem::Problem;
use stratagem_domain::FieldError;
use stratagem_services::campaigns::CampaignError;
use stratagem_services::dry_run::DryRunError;
use stratagem_services::email::EmailTestError;
use stratagem_services::exports::ExportError;
use stratagem_services::imports::ImportError;
use stratagem_services::strategies::StrategyError;
use stratagem_store::StoreError;

/// A position in an uploaded file or request body.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Position {
    pub line: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{detail}")]
    InvalidBody { detail: String, position: Option<Position> },
    #[error("a valid API key is required: send `Authorization: Bearer stg_…`")]
    Unauthorized,
    /// A valid key whose tenant the operator disabled.
    #[error("the tenant of this API key is disabled: its data is kept, but its keys are refused until the platform's operator enables it again")]
    TenantDisabled,
    /// A scrape of `/metrics` without the operator's metrics token.
    #[error("/metrics needs `Authorization: Bearer <token>` with the metrics token the operator set (STRATAGEM_METRICS_TOKEN)")]
    MetricsTokenRequired,
    /// A provider webhook whose signature or secret does not verify.
    #[error("{0}")]
    WebhookRefused(String),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{detail}")]
    Conflict { detail: String, allowed: Option<Vec<String>> },
    /// A status change to CONFIGURED or RUNNING of a campaign that cannot
    /// run yet: every reason, machine-readable.
    #[error("{detail}")]
    CampaignNotReady { detail: String, blockers: Vec<stratagem_types::Blocker> },
    /// Revoking the tenant's only active key would lock it out.
    #[error("this is the tenant's last active API key: revoking it would lock the tenant out of the API. Create another key first (POST /api/keys), switch to it, then revoke this one")]
    LastApiKey,
    #[error("the body is larger than {limit_bytes} bytes")]
    TooLarge { limit_bytes: u64 },
    #[error("{detail}")]
    InvalidFile { detail: String, position: Option<Position> },
    /// The request is well-formed but the resource lacks something it
    /// needs first; the detail says what to set up.
    #[error("{0}")]
    NotReady(String),
    /// Every problem with the body's fields at once, so a form can show
    /// each next to its input.
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<FieldError>),
    /// The node is at its limit for this kind of work; retry later.
    #[error("{0}")]
    Busy(String),
    /// Writing would take the tenant past a quota the operator set.
    #[error("{0}")]
    QuotaExceeded(stratagem_domain::quota::QuotaExceeded),
    /// This API key sent more requests than its rate allows.
    #[error("this API key sent more than {per_second} requests per second (bursts of up to {} allowed); retry after {retry_after_secs} s, and pace the client", per_second * 2)]
    RateLimited { per_second: u32, retry_after_secs: u64 },
    /// The tenant sent as many test emails as a minute allows.
    #[error("{detail}")]
    TestEmailsLimited { detail: String, retry_after_secs: u64 },
    /// An SMTP server answered a refusal: nothing was sent.
    #[error("{0}")]
    SmtpRefused(String),
    /// An SMTP server could not be reached: nothing was sent.
    #[error("{0}")]
    SmtpUnreachable(String),
    /// An SMTP server had the whole message, then its answer was lost.
    #[error("{0}")]
    SmtpInDoubt(String),
    /// The request body stopped arriving, or took longer than its limit.
    #[error("{0}")]
    RequestTimeout(String),
    /// This node cannot serve now (its database is down or has another
    /// release's schema); the detail says what to do.
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad-request", "Bad request"),
            ApiError::InvalidBody { .. } => (StatusCode::BAD_REQUEST, "invalid-body", "The request body is invalid"),
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized"),
            ApiError::TenantDisabled => (StatusCode::FORBIDDEN, "tenant-disabled", "The tenant is disabled"),
            ApiError::MetricsTokenRequired => (StatusCode::UNAUTHORIZED, "metrics-token-required", "The metrics token is required"),
            ApiError::WebhookRefused(_) => (StatusCode::UNAUTHORIZED, "webhook-refused", "The webhook does not verify"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not-found", "Not found"),
            ApiError::Conflict { .. } => (StatusCode::CONFLICT, "conflict", "Conflict with the current state"),
            ApiError::CampaignNotReady { .. } => (StatusCode::CONFLICT, "campaign-not-ready", "The campaign is not ready"),
            ApiError::LastApiKey => (StatusCode::CONFLICT, "last-api-key", "The last API key cannot be revoked"),
            ApiError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "too-large", "Payload too large"),
            ApiError::InvalidFile { .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, "invalid-file", "The uploaded file cannot be imported")
            }
            ApiError::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid-fields", "Some fields are invalid"),
            ApiError::NotReady(_) => (StatusCode::UNPROCESSABLE_ENTITY, "not-ready", "Something must be set up first"),
            ApiError::Busy(_) => (StatusCode::TOO_MANY_REQUESTS, "busy", "Too many requests"),
            ApiError::QuotaExceeded(_) => (StatusCode::FORBIDDEN, "quota-exceeded", "A quota of the tenant would be exceeded"),
            ApiError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate-limited", "Too many requests from this API key"),
            ApiError::TestEmailsLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "test-emails-limited", "Too many test emails"),
            ApiError::SmtpRefused(_) => (StatusCode::UNPROCESSABLE_ENTITY, "smtp-refused", "The SMTP server refused the email"),
            ApiError::SmtpUnreachable(_) => (StatusCode::BAD_GATEWAY, "smtp-unreachable", "The SMTP server could not be reached"),
            ApiError::SmtpInDoubt(_) => (StatusCode::BAD_GATEWAY, "smtp-in-doubt", "The SMTP server may have the email"),
            ApiError::RequestTimeout(_) => (StatusCode::REQUEST_TIMEOUT, "request-timeout", "The request took too long"),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable", "The service is not ready"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal", "Internal server error"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(detail) = &self {
            tracing::error!(%detail, "internal error");
        }
        let (status, slug, title) = self.parts();
        let position = match &self {
            ApiError::InvalidBody { position, .. } | ApiError::InvalidFile { position, .. } => position.clone(),
            // The first error of an uploaded file, for clients that show one.
            ApiError::Invalid(errors) => errors
                .first()
                .and_then(|e| Some(Position { line: e.line? as u64, column: e.column.map(|c| c as u64) })),
            _ => None,
        };
        let allowed = match &self {
            ApiError::Conflict { allowed, .. } => allowed.as_deref(),
            _ => None,
        };
        let kind = format!("/problems/{slug}");
        let body = Problem {
            kind,
            title: title.to_owned(),
            status: status.as_u16(),
            detail: self.to_string(),
            line: position.as_ref().map(|p| p.line),
            column: position.as_ref().and_then(|p| p.column),
            allowed: allowed.map(<[String]>::to_vec),
            errors: match &self {
                ApiError::Invalid(errors) => Some(errors.clone()),
                _ => None,
            },
            blockers: match &self {
                ApiError::CampaignNotReady { blockers, .. } => Some(blockers.clone()),
                _ => None,
            },
            quota: match &self {
                ApiError::QuotaExceeded(exceeded) => Some(exceeded.clone()),
                _ => None,
            },
        };
        let json = serde_json::to_vec(&body).unwrap_or_default();
        let mut response = (status, [(header::CONTENT_TYPE, "application/problem+json")], json).into_response();
        if let ApiError::RateLimited { retry_after_secs, .. } | ApiError::TestEmailsLimited { retry_after_secs, .. } = &self {
            response.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from(*retry_after_secs));
        }
        if let ApiError::RequestTimeout(_) = &self {
            // The rest of the body may still arrive; this connection cannot
            // carry another request.
            response.headers_mut().insert(header::CONNECTION, header::HeaderValue::from_static("close"));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound(what) => ApiError::NotFound(what),
            StoreError::Conflict(detail) => ApiError::Conflict { detail, allowed: None },
            StoreError::LastApiKey => ApiError::LastApiKey,
            StoreError::QuotaExceeded(exceeded) => ApiError::QuotaExceeded(exceeded),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<CampaignError> for ApiError {
    fn from(error: CampaignError) -> Self {
        let detail = error.to_string();
        match error {
            CampaignError::NotReady { blockers, .. } => ApiError::CampaignNotReady { detail, blockers },
            CampaignError::Transition { detail, allowed } => ApiError::Conflict { detail, allowed: Some(allowed) },
            CampaignError::Store(error) => error.into(),
        }
    }
}

impl From<FileError> for ApiError {
    /// A contact file that cannot be read: where, when the reader knows.
    fn from(error: FileError) -> Self {
        let position = match &error {
            FileError::NotUtf8 { line, column } => Some(Position { line: *line, column: Some(*column) }),
            FileError::Malformed { line, column, .. } => Some(Position { line: *line, column: *column }),
            _ => None,
        };
        match error {
            FileError::TooLarge { limit_bytes } => ApiError::TooLarge { limit_bytes },
            other => ApiError::InvalidFile { detail: other.to_string(), position },
        }
    }
}

impl From<ImportError> for ApiError {
    fn from(error: ImportError) -> Self {
        match error {
            ImportError::TooManyWaiting => ApiError::Busy(error.to_string()),
            ImportError::ShuttingDown => ApiError::Unavailable(error.to_string()),
            ImportError::CampaignFinished | ImportError::StrategyFailed(_) => ApiError::Conflict { detail: error.to_string(), allowed: None },
            ImportError::UnknownFormat(_) => ApiError::BadRequest(error.to_string()),
            ImportError::File(error) => error.into(),
            ImportError::Store(error) => error.into(),
            ImportError::Spool(_) => ApiError::Unavailable(error.to_string()),
            ImportError::Internal(detail) => ApiError::Internal(detail),
        }
    }
}

impl From<ExportError> for ApiError {
    fn from(error: ExportError) -> Self {
        match error {
            ExportError::Busy => ApiError::Busy(error.to_string()),
            ExportError::UnknownFormat(_) => ApiError::BadRequest(error.to_string()),
            ExportError::Store(error) => error.into(),
            ExportError::Spool(_) => ApiError::Internal(error.to_string()),
        }
    }
}

impl From<StrategyError> for ApiError {
    fn from(error: StrategyError) -> Self {
        match error {
            StrategyError::InvalidName => ApiError::BadRequest(error.to_string()),
            StrategyError::TypeChanged { .. } => ApiError::Conflict { detail: error.to_string(), allowed: None },
            StrategyError::NoToolchain(_) => ApiError::Unavailable(error.to_string()),
            StrategyError::Store(error) => error.into(),
        }
    }
}

impl From<DryRunError> for ApiError {
    fn from(error: DryRunError) -> Self {
        match error {
            DryRunError::Busy | DryRunError::TimedOut => ApiError::Busy(error.to_string()),
            // The query is well-formed; what it says is not a mix of personas.
            DryRunError::Personas(detail) => ApiError::Invalid(vec![FieldError::new("personas", detail)]),
            DryRunError::Days | DryRunError::UnknownFormat(_) => ApiError::BadRequest(error.to_string()),
            DryRunError::File(error) => error.into(),
            DryRunError::TooManyContacts(_) => ApiError::InvalidFile { detail: error.to_string(), position: None },
            DryRunError::StrategyCannotRun { .. } | DryRunError::NoDataLoad => ApiError::Conflict { detail: error.to_string(), allowed: None },
            DryRunError::Store(error) => error.into(),
            DryRunError::Engine(_) | DryRunError::Internal(_) => ApiError::Internal(error.to_string()),
        }
    }
}

impl From<EmailTestError> for ApiError {
    fn from(error: EmailTestError) -> Self {
        match error {
            EmailTestError::Invalid(errors) => ApiError::Invalid(errors),
            EmailTestError::Limited { retry_after, .. } => {
                let retry_after_secs = retry_after.as_secs_f64().ceil().max(1.0) as u64;
                ApiError::TestEmailsLimited { detail: error.to_string(), retry_after_secs }
            }
            EmailTestError::Refused(detail) => ApiError::SmtpRefused(detail),
            EmailTestError::Unreachable(detail) => ApiError::SmtpUnreachable(detail),
            EmailTestError::InDoubt(detail) => ApiError::SmtpInDoubt(detail),
            EmailTestError::Store(error) => error.into(),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::JsonDataError(error) => json_error(&error.body_text()),
            JsonRejection::JsonSyntaxError(error) => json_error(&error.body_text()),
            JsonRejection::MissingJsonContentType(_) => {
                ApiError::BadRequest("send the body as JSON with `Content-Type: application/json`".into())
            }
            JsonRejection::BytesRejection(error) => body_error(&error, crate::JSON_LIMIT_BYTES),
            other => ApiError::BadRequest(other.body_text()),
        }
    }
}

/// Why a request body could not be read: longer than `limit_bytes`, a
/// pause longer than the server allows (`server::ConnectionLimits`), or a
/// client that went away mid-body.
pub(crate) fn body_error(error: &(dyn std::error::Error + 'static), limit_bytes: usize) -> ApiError {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if error.is::<http_body_util::LengthLimitError>() {
            return ApiError::TooLarge { limit_bytes: limit_bytes as u64 };
        }
        if error.is::<tower_http::timeout::TimeoutError>() {
            return ApiError::RequestTimeout(
                "the request body stopped arriving: send it without long pauses, or check the connection".into(),
            );
        }
        cause = error.source();
    }
    ApiError::BadRequest(format!("the request body could not be read: {error}"))
}

/// The whole request body, at most `limit_bytes`, arrived within
/// `deadline`: for bodies whose sender could otherwise keep trickling them
/// within the idle limit. `late` says what took too long, and how to fix it.
pub(crate) async fn read_body_within(
    body: axum::body::Body,
    limit_bytes: usize,
    deadline: std::time::Duration,
    late: impl FnOnce() -> String,
) -> Result<axum::body::Bytes, ApiError> {
    tokio::time::timeout(deadline, axum::body::to_bytes(body, limit_bytes))
        .await
        .map_err(|_| ApiError::RequestTimeout(late()))?
        .map_err(|error| body_error(&error, limit_bytes))
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::BadRequest(format!("invalid query string: {}", rejection.body_text()))
    }
}

/// serde_json's messages end in "at line L column C": lift that out.
fn json_error(text: &str) -> ApiError {
    let detail = text
        .trim_start_matches("Failed to deserialize the JSON body into the target type: ")
        .trim_start_matches("Failed to parse the request body as JSON: ");
    let (message, position) = match detail.rsplit_once(" at line ") {
        Some((message, place)) => {
            let mut numbers = place.split(" column ").map(|n| n.trim().parse::<u64>().ok());
            match (numbers.next().flatten(), numbers.next().flatten()) {
                (Some(line), column) => (message, Some(Position { line, column })),
                _ => (detail, None),
            }
        }
        None => (detail, None),
    };
    let detail = match &position {
        Some(Position { line, column: Some(column) }) => format!("line {line}, column {column}: {message}"),
        Some(Position { line, column: None }) => format!("line {line}: {message}"),
        None => message.to_owned(),
    };
    ApiError::InvalidBody { detail, position }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// `Ok` when there are no field errors.
pub fn check(errors: Vec<FieldError>) -> ApiResult<()> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Invalid(errors))
    }
}
