//! `GET /usage`: what the caller's tenant consumed per UTC day, for
//! billing (the operator's view of any tenant is `stratagem tenant usage`).

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{NaiveDate, Utc};
use serde::Deserialize;
use stratagem_domain::usage::{span, UsageReport};

use crate::auth::Tenant;
use crate::problem::{ApiError, ApiResult, Problem};
use crate::{AppState, Query};

#[derive(utoipa::OpenApi)]
#[openapi(paths(usage))]
pub(crate) struct Api;

pub fn router() -> Router<AppState> {
    Router::new().route("/usage", get(usage))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct UsageQuery {
    /// First UTC day (YYYY-MM-DD); 29 days before `to` if left out.
    #[param(value_type = Option<String>, format = Date)]
    from: Option<NaiveDate>,
    /// Last UTC day, included; today if left out.
    #[param(value_type = Option<String>, format = Date)]
    to: Option<NaiveDate>,
    #[param(schema_with = usage_format)]
    format: Option<String>,
}

fn usage_format() -> utoipa::openapi::schema::ObjectBuilder {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(["json", "csv"]))
        .default(Some("json".into()))
}

#[utoipa::path(get, path = "/usage", operation_id = "readUsage", tag = "usage",
    summary = "What this tenant consumed per UTC day: strategy invocations and fuel by hook, imports and their rows, messages by channel, LLM tokens by use; and its storage now. `format=csv` gives `day,metric,dimension,value` lines",
    params(UsageQuery),
    responses((status = 200, description = "The usage", content((UsageReport = "application/json"), (String = "text/csv"))), (status = 422, response = Problem)))]
async fn usage(State(state): State<AppState>, Tenant(tenant): Tenant, Query(query): Query<UsageQuery>) -> ApiResult<Response> {
    // A rule the schema cannot state: 422, naming the parameter.
    let (from, to) = span(query.from, query.to, Utc::now().date_naive())
        .map_err(|why| ApiError::Invalid(vec![stratagem_domain::FieldError::new("from", why)]))?;
    let csv = match query.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(other) => return Err(ApiError::BadRequest(format!("format `{other}` is not one of json, csv"))),
    };
    let report = state.store.usage().report(&tenant, from, to).await?;
    if !csv {
        return Ok(Json(report).into_response());
    }
    let disposition = format!("attachment; filename=\"usage-{from}-{to}.csv\"");
    Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()), (header::CONTENT_DISPOSITION, disposition)], report.to_csv()).into_response())
}
