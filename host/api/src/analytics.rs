//! The campaign analytics panel — metrics overview and distributions by
//! period in the caller's time zone — and Settings > YAML Analytics:
//! upload (validated, every error with its line and column), read back as
//! parsed metrics, and download verbatim.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate, NaiveTime, TimeZone};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use stratagem_domain::analytics::{self, AnalyticsDefinition};
use stratagem_domain::FieldError;
use stratagem_store::{DistributionKey, Overview};

use crate::auth::Tenant;
use crate::problem::{body_error, ApiError, ApiResult, Position};
use crate::{AppState, Query};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/campaigns/{id}/analytics", get(read).put(upload))
        .route("/campaigns/{id}/analytics/yaml", get(download))
        .route("/campaigns/{id}/analytics/overview", get(overview))
        .route("/campaigns/{id}/analytics/distribution", get(distribution))
}

async fn overview(State(state): State<AppState>, Tenant(tenant): Tenant, Path(campaign): Path<String>) -> ApiResult<Json<Overview>> {
    Ok(Json(state.store.campaign_overview(&tenant, &campaign).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DistributionQuery {
    by: String,
    #[serde(default)]
    period: Option<String>,
    #[serde(default)]
    from: Option<NaiveDate>,
    #[serde(default)]
    to: Option<NaiveDate>,
    #[serde(default)]
    tz: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Period {
    Day,
    Week,
    Month,
}

impl Period {
    /// The first day of the bucket holding `day` (weeks start on Monday).
    fn bucket(self, day: NaiveDate) -> NaiveDate {
        match self {
            Period::Day => day,
            Period::Week => day - chrono::Duration::days(i64::from(day.weekday().num_days_from_monday())),
            Period::Month => day.with_day(1).unwrap_or(day),
        }
    }

    fn next(self, bucket: NaiveDate) -> NaiveDate {
        match self {
            Period::Day => bucket + chrono::Duration::days(1),
            Period::Week => bucket + chrono::Duration::days(7),
            Period::Month => bucket.checked_add_months(chrono::Months::new(1)).unwrap_or(NaiveDate::MAX),
        }
    }
}

#[derive(Serialize)]
struct Bucket {
    start: NaiveDate,
    counts: BTreeMap<String, i64>,
}

#[derive(Serialize)]
struct Distribution {
    by: &'static str,
    period: &'static str,
    tz: String,
    from: NaiveDate,
    to: NaiveDate,
    buckets: Vec<Bucket>,
}

/// Most buckets one request may ask for (a year and a month of days).
const MAX_BUCKETS: usize = 400;

async fn distribution(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(campaign): Path<String>,
    Query(query): Query<DistributionQuery>,
) -> ApiResult<Json<Distribution>> {
    let (key, by) = match query.by.as_str() {
        "stage" => (DistributionKey::Stage, "stage"),
        "status" => (DistributionKey::Status, "status"),
        other => return Err(ApiError::BadRequest(format!("by=`{other}`: use by=stage or by=status"))),
    };
    let (period, period_name) = match query.period.as_deref().unwrap_or("day") {
        "day" => (Period::Day, "day"),
        "week" => (Period::Week, "week"),
        "month" => (Period::Month, "month"),
        other => return Err(ApiError::BadRequest(format!("period=`{other}`: use day, week or month"))),
    };
    let tz_name = query.tz.unwrap_or_else(|| "UTC".into());
    let tz: Tz = tz_name
        .parse()
        .map_err(|_| ApiError::BadRequest(format!("tz=`{tz_name}` is not an IANA time zone (for example Europe/Berlin or UTC)")))?;
    let today = chrono::Utc::now().with_timezone(&tz).date_naive();
    let to = query.to.unwrap_or(today);
    let from = query.from.unwrap_or(to - chrono::Duration::days(29));
    if from > to {
        return Err(ApiError::Invalid(vec![FieldError::new("from", format!("{from} is after to ({to})"))]));
    }
    let mut starts = Vec::new();
    let mut bucket = period.bucket(from);
    while bucket <= to {
        starts.push(bucket);
        if starts.len() > MAX_BUCKETS {
            return Err(ApiError::Invalid(vec![FieldError::new(
                "from",
                format!("{from} to {to} is more than {MAX_BUCKETS} {period_name}s; choose a shorter range or a longer period"),
            )]));
        }
        bucket = period.next(bucket);
    }
    // Local midnights of the range's ends, as instants.
    let local_midnight = |day: NaiveDate| {
        tz.from_local_datetime(&day.and_time(NaiveTime::MIN)).earliest().map(|time| time.with_timezone(&chrono::Utc))
    };
    let start = local_midnight(from)
        .ok_or_else(|| ApiError::Invalid(vec![FieldError::new("from", format!("{from} has no midnight in {tz_name}"))]))?;
    let end = local_midnight(to + chrono::Duration::days(1)).unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC);
    let mut buckets: Vec<Bucket> = starts.into_iter().map(|start| Bucket { start, counts: BTreeMap::new() }).collect();
    for (slot, name, count) in state.store.communication_slots(&tenant, &campaign, key, start, end).await? {
        let local_day = slot.with_timezone(&tz).date_naive();
        let first = period.bucket(local_day);
        if let Some(bucket) = buckets.iter_mut().find(|bucket| bucket.start == first) {
            *bucket.counts.entry(name).or_insert(0) += count;
        }
    }
    Ok(Json(Distribution { by, period: period_name, tz: tz_name, from, to, buckets }))
}

#[derive(Serialize)]
struct AnalyticsView {
    uploaded_at: chrono::DateTime<chrono::Utc>,
    definition: AnalyticsDefinition,
}

/// The body must be UTF-8; a bad byte is reported where it is.
fn text(body: &Bytes) -> ApiResult<&str> {
    std::str::from_utf8(body).map_err(|error| {
        let valid = &body[..error.valid_up_to()];
        let line = valid.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
        let line_start = valid.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let column = String::from_utf8_lossy(&valid[line_start..]).chars().count() as u64 + 1;
        ApiError::InvalidFile {
            detail: format!("line {line}, column {column}: the file is not UTF-8 text; save it as UTF-8"),
            position: Some(Position { line, column: Some(column) }),
        }
    })
}

fn parse(yaml: &str) -> ApiResult<AnalyticsDefinition> {
    analytics::parse(yaml).map_err(|errors| ApiError::Invalid(errors.0.into_iter().map(FieldError::from).collect()))
}

async fn upload(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(campaign): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<AnalyticsView>> {
    let body = body.map_err(|rejection| body_error(&rejection, crate::JSON_LIMIT_BYTES))?;
    state.store.campaign(&tenant, &campaign).await?;
    let yaml = text(&body)?;
    let definition = parse(yaml)?;
    let uploaded_at = state.store.set_analytics_yaml(&tenant, &campaign, yaml).await?;
    Ok(Json(AnalyticsView { uploaded_at, definition }))
}

async fn read(State(state): State<AppState>, Tenant(tenant): Tenant, Path(campaign): Path<String>) -> ApiResult<Json<AnalyticsView>> {
    let (yaml, uploaded_at) =
        state.store.analytics_yaml(&tenant, &campaign).await?.ok_or(ApiError::NotFound("YAML analytics file"))?;
    // Stored files were valid when uploaded; a stricter release may refuse
    // one, and then the user sees why instead of an empty panel.
    Ok(Json(AnalyticsView { uploaded_at, definition: parse(&yaml)? }))
}

async fn download(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(campaign): Path<String>,
) -> ApiResult<impl IntoResponse> {
    let (yaml, _) = state.store.analytics_yaml(&tenant, &campaign).await?.ok_or(ApiError::NotFound("YAML analytics file"))?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/yaml; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{campaign}-analytics.yaml\"")),
        ],
        yaml,
    ))
}
