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

use chrono::{NaiveDate, NaiveTime, TimeZone};
use chrono_tz::Tz;
use serde::Deserialize;
use stratagem_domain::analytics::{self, AnalyticsDefinition};
use stratagem_domain::FieldError;
use stratagem_store::{DistributionKey, Overview};
use stratagem_types::analytics::{AnalyticsView, Bucket, Distribution, Period};

use crate::auth::Tenant;
use crate::problem::{body_error, ApiError, ApiResult, Position, Problem};
use crate::{AppState, Query};

#[derive(utoipa::OpenApi)]
#[openapi(paths(read, upload, overview, distribution, download))]
pub(crate) struct Api;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/campaigns/{id}/analytics", get(read).put(upload))
        .route("/campaigns/{id}/analytics/yaml", get(download))
        .route("/campaigns/{id}/analytics/overview", get(overview))
        .route("/campaigns/{id}/analytics/distribution", get(distribution))
}

#[utoipa::path(get, path = "/campaigns/{id}/analytics/overview", operation_id = "analyticsOverview", tag = "analytics",
    summary = "Metrics overview. total_contacts: the campaign's contacts. processed_contacts: contacts with a final result or with a communication whose session ended (including MISSED). completed_contacts: ResultFlag true or false. successful_contacts: ResultFlag true. completion_rate = completed / total; success_rate = successful / completed (0 when the divisor is 0). by_stage: contacts per current stage with how many are successful. by_alternative: sent communications per stage and A/B label (`default` for the stage's own settings) with how many belong to successful contacts",
    responses((status = 200, description = "The overview", body = Object), (status = 404, response = Problem)))]
async fn overview(State(state): State<AppState>, Tenant(tenant): Tenant, Path(campaign): Path<String>) -> ApiResult<Json<Overview>> {
    Ok(Json(state.store.analytics().campaign_overview(&tenant, &campaign).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct DistributionQuery {
    #[param(value_type = DistributionBy, inline)]
    by: String,
    #[serde(default)]
    #[param(schema_with = period_schema)]
    period: Option<String>,
    /// default: 29 days before `to`
    #[serde(default)]
    #[param(value_type = Option<String>, format = Date)]
    from: Option<NaiveDate>,
    /// default: today in `tz`; inclusive
    #[serde(default)]
    #[param(value_type = Option<String>, format = Date)]
    to: Option<NaiveDate>,
    /// IANA time zone, e.g. Europe/Berlin
    #[serde(default)]
    #[param(schema_with = tz_schema)]
    tz: Option<String>,
}

/// `by`'s values, for the document: the handler reads the text itself, to
/// name a wrong value in its own words.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
enum DistributionBy {
    Stage,
    Status,
    Failure,
}

fn period_schema() -> utoipa::openapi::schema::ObjectBuilder {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(["day", "week", "month"]))
        .default(Some("day".into()))
}

fn tz_schema() -> utoipa::openapi::schema::ObjectBuilder {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name())))
        .default(Some("UTC".into()))
}

/// Most buckets one request may ask for (a year and a month of days).
const MAX_BUCKETS: usize = 400;

#[utoipa::path(get, path = "/campaigns/{id}/analytics/distribution", operation_id = "analyticsDistribution", tag = "analytics",
    summary = "Stage or Status Distribution by Period: the campaign's communications counted by stage name (by=stage) or status (by=status), bucketed by the local day, week (from Monday) or month of their start in the time zone `tz`. by=failure counts the delivery failures by stage name: FAILED communications under the stage's name, IN_DOUBT ones (the send's outcome was lost; it may have reached the contact) under the stage's name followed by ` (in doubt)`. 400 for an unknown `by`, `period` or `tz`; 422 when `from` is after `to`, or the range has more than 400 buckets",
    params(DistributionQuery),
    responses((status = 200, description = "The buckets", body = Distribution), (status = 404, response = Problem), (status = 422, response = Problem)))]
async fn distribution(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(campaign): Path<String>,
    Query(query): Query<DistributionQuery>,
) -> ApiResult<Json<Distribution>> {
    let (key, by) = match query.by.as_str() {
        "stage" => (DistributionKey::Stage, "stage"),
        "status" => (DistributionKey::Status, "status"),
        "failure" => (DistributionKey::Failure, "failure"),
        other => return Err(ApiError::BadRequest(format!("by=`{other}`: use by=stage, by=status or by=failure"))),
    };
    let period_name = query.period.as_deref().unwrap_or("day");
    let period =
        Period::parse(period_name).ok_or_else(|| ApiError::BadRequest(format!("period=`{period_name}`: use day, week or month")))?;
    let period_name = period.as_str();
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
    for (slot, name, count) in state.store.analytics().communication_slots(&tenant, &campaign, key, start, end).await? {
        let local_day = slot.with_timezone(&tz).date_naive();
        let first = period.bucket(local_day);
        if let Some(bucket) = buckets.iter_mut().find(|bucket| bucket.start == first) {
            *bucket.counts.entry(name).or_insert(0) += count;
        }
    }
    Ok(Json(Distribution { by: by.into(), period: period_name.into(), tz: tz_name, from, to, buckets }))
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

#[utoipa::path(put, path = "/campaigns/{id}/analytics", operation_id = "uploadAnalytics", tag = "analytics",
    summary = "Upload the YAML analytics file (the body is the file, UTF-8, at most 1 MiB). 422 lists every problem in `errors` with line and column; a rejected file leaves the previous one in place. Format: examples/analytics/debt-collection.yaml",
    request_body(content = String, content_type = "application/yaml"),
    responses((status = 200, description = "The parsed definition", body = Object), (status = 400, response = Problem), (status = 404, response = Problem), (status = 422, response = Problem)))]
async fn upload(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(campaign): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<AnalyticsView>> {
    let body = body.map_err(|rejection| body_error(&rejection, crate::JSON_LIMIT_BYTES))?;
    state.store.campaigns().campaign(&tenant, &campaign).await?;
    let yaml = text(&body)?;
    let definition = parse(yaml)?;
    let every_minutes = definition.schedule.map(|schedule| schedule.every_minutes);
    let uploaded_at = state.store.campaigns().set_analytics_yaml(&tenant, &campaign, yaml, every_minutes).await?;
    Ok(Json(AnalyticsView { uploaded_at, definition }))
}

#[utoipa::path(get, path = "/campaigns/{id}/analytics", operation_id = "readAnalytics", tag = "analytics",
    summary = "The campaign's YAML analytics file, parsed: depth_days, schedule and metrics (404 when none is uploaded; 422 when the stored file no longer parses)",
    responses((status = 200, description = "The parsed definition", body = Object), (status = 404, response = Problem), (status = 422, response = Problem)))]
async fn read(State(state): State<AppState>, Tenant(tenant): Tenant, Path(campaign): Path<String>) -> ApiResult<Json<AnalyticsView>> {
    let (yaml, uploaded_at) =
        state.store.campaigns().analytics_yaml(&tenant, &campaign).await?.ok_or(ApiError::NotFound("YAML analytics file"))?;
    // Stored files were valid when uploaded; a stricter release may refuse
    // one, and then the user sees why instead of an empty panel.
    Ok(Json(AnalyticsView { uploaded_at, definition: parse(&yaml)? }))
}

#[utoipa::path(get, path = "/campaigns/{id}/analytics/yaml", operation_id = "downloadAnalytics", tag = "analytics",
    summary = "Download the YAML analytics file as uploaded",
    responses((status = 200, description = "The file", body = String, content_type = "application/yaml"), (status = 404, response = Problem)))]
async fn download(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(campaign): Path<String>,
) -> ApiResult<impl IntoResponse> {
    let (yaml, _) = state.store.campaigns().analytics_yaml(&tenant, &campaign).await?.ok_or(ApiError::NotFound("YAML analytics file"))?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/yaml; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{campaign}-analytics.yaml\"")),
        ],
        yaml,
    ))
}
