//! Campaigns: create, list (filter by status), read, update settings and
//! result fields, and move through the status machine.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use stratagem_domain::{Campaign, CampaignStatus, FieldError, IntegrationKind, ResultField};
use stratagem_store::{NewCampaign, StoreError};
use stratagem_types::Readiness;

use crate::auth::Tenant;
use crate::problem::{ApiError, ApiResult, Problem};
use crate::{AppState, Body, Query};

#[derive(utoipa::OpenApi)]
#[openapi(paths(list, create, read, replace, update, set_status, readiness))]
pub(crate) struct Api;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/campaigns", get(list).post(create))
        .route("/campaigns/{id}", get(read).put(replace).patch(update))
        .route("/campaigns/{id}/status", post(set_status))
        .route("/campaigns/{id}/readiness", get(readiness))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"name": "Overdue invoices, November", "description": "Reminders before the second notice", "result_fields": [{"code": "PromiseDate", "name": "Promised payment date"}]}))]
#[serde(deny_unknown_fields)]
struct CampaignBody {
    #[schema(schema_with = crate::openapi::name_200)]
    name: String,
    #[serde(default)]
    description: String,
    /// An LLM integration: the OpenAI-compatible endpoint agents, result
    /// extraction and Deep Analysis use.
    #[serde(default)]
    llm_integration_id: Option<String>,
    /// The model on that endpoint; the integration's default_model if null.
    #[serde(default)]
    llm_model: Option<String>,
    #[serde(default, deserialize_with = "stratagem_domain::objects::objects")]
    result_fields: Vec<ResultField>,
    /// The hosts its strategies may call over HTTP: `api.example.com`,
    /// `api.example.com:8443` or `*.example.com` (at most 50). Empty: none.
    #[serde(default)]
    http_allowlist: Vec<String>,
}

impl CampaignBody {
    /// Names and result-field codes are what users see and strategies use.
    fn validate(self) -> ApiResult<NewCampaign> {
        if !stratagem_domain::is_valid_name(&self.name, 200) {
            return Err(ApiError::BadRequest("name must have 1 to 200 characters, not only white space".into()));
        }
        let name = self.name.trim().to_owned();
        let mut codes = std::collections::HashSet::new();
        for (index, field) in self.result_fields.iter().enumerate() {
            let valid = !field.code.is_empty()
                && field.code.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !matches!(field.code.as_str(), "ResultFlag" | "ResultDatetime");
            if !valid {
                return Err(ApiError::BadRequest(format!(
                    "result_fields[{index}].code `{}` must be letters, digits or _ and not a default field (ResultFlag, ResultDatetime)",
                    field.code
                )));
            }
            if !codes.insert(field.code.clone()) {
                return Err(ApiError::Invalid(vec![FieldError::new(
                    format!("result_fields[{index}].code"),
                    format!("`{}` is defined twice", field.code),
                )]));
            }
        }
        let llm_integration_id = self.llm_integration_id.filter(|id| !id.trim().is_empty());
        let http_allowlist = stratagem_domain::allowlist::parse(&self.http_allowlist).map_err(ApiError::Invalid)?;
        Ok(NewCampaign {
            name,
            description: self.description,
            llm_integration_id,
            llm_model: self.llm_model,
            result_fields: self.result_fields,
            http_allowlist,
        })
    }
}

/// The campaign's LLM must be one of the tenant's LLM integrations.
async fn check_llm(state: &AppState, tenant: &str, campaign: &NewCampaign) -> ApiResult<()> {
    let Some(id) = &campaign.llm_integration_id else { return Ok(()) };
    let problem = match state.store.integrations().integration(tenant, id).await {
        Ok(integration) if integration.kind == IntegrationKind::Llm => return Ok(()),
        Ok(integration) => format!("integration `{id}` is a {} integration; choose one of kind LLM", integration.kind.as_str()),
        Err(StoreError::NotFound(_)) => format!("there is no integration `{id}`; create an LLM integration first"),
        Err(other) => return Err(other.into()),
    };
    Err(ApiError::Invalid(vec![FieldError::new("llm_integration_id", problem)]))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// only campaigns in this status
    #[param(value_type = Option<CampaignStatus>)]
    status: Option<String>,
}

fn parse_status(text: &str) -> ApiResult<CampaignStatus> {
    CampaignStatus::parse(&text.to_ascii_uppercase()).ok_or_else(|| {
        let all: Vec<&str> = CampaignStatus::ALL.iter().map(|s| s.as_str()).collect();
        ApiError::BadRequest(format!("unknown status `{text}`; one of {}", all.join(", ")))
    })
}

#[utoipa::path(get, path = "/campaigns", operation_id = "listCampaigns", tag = "campaigns", summary = "List campaigns",
    params(ListQuery), responses((status = 200, description = "The campaigns", body = Vec<Campaign>)))]
async fn list(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Query(query): Query<ListQuery>,
) -> ApiResult<Json<Vec<Campaign>>> {
    let status = query.status.as_deref().map(parse_status).transpose()?;
    Ok(Json(state.campaigns.list(&tenant, status).await?))
}

#[utoipa::path(post, path = "/campaigns", operation_id = "createCampaign", tag = "campaigns", summary = "Create a campaign (status CREATED)",
    request_body = CampaignBody,
    responses((status = 201, description = "The campaign", body = Campaign), (status = 400, response = Problem), (status = 422, response = Problem)))]
async fn create(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Body(body): Body<CampaignBody>,
) -> ApiResult<(StatusCode, Json<Campaign>)> {
    let campaign = body.validate()?;
    check_llm(&state, &tenant, &campaign).await?;
    Ok((StatusCode::CREATED, Json(state.store.campaigns().create_campaign(&tenant, campaign, state.quotas).await?)))
}

#[utoipa::path(get, path = "/campaigns/{id}", operation_id = "readCampaign", tag = "campaigns", summary = "Read a campaign",
    responses((status = 200, description = "The campaign", body = Campaign), (status = 404, response = Problem)))]
async fn read(State(state): State<AppState>, Tenant(tenant): Tenant, Path(id): Path<String>) -> ApiResult<Json<Campaign>> {
    Ok(Json(state.campaigns.campaign(&tenant, &id).await?))
}

/// The fields of a campaign's settings that a request sent: PATCH changes
/// these, PUT must send them all. Null only clears the LLM ones.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"description": "Reminders before the second notice", "llm_model": null}))]
#[serde(deny_unknown_fields)]
struct CampaignChanges {
    #[serde(default, deserialize_with = "sent")]
    #[schema(schema_with = crate::openapi::name_200)]
    name: Option<String>,
    #[serde(default, deserialize_with = "sent")]
    #[schema(value_type = String)]
    description: Option<String>,
    /// An LLM integration, or null for none.
    #[serde(default, deserialize_with = "sent_or_null")]
    #[schema(value_type = Option<String>)]
    llm_integration_id: Option<Option<String>>,
    /// A model of that endpoint, or null for its default_model.
    #[serde(default, deserialize_with = "sent_or_null")]
    #[schema(value_type = Option<String>)]
    llm_model: Option<Option<String>>,
    #[serde(default, deserialize_with = "sent_objects")]
    #[schema(value_type = Vec<ResultField>)]
    result_fields: Option<Vec<ResultField>>,
    /// The hosts its strategies may call over HTTP.
    #[serde(default, deserialize_with = "sent_hosts")]
    #[schema(value_type = Vec<String>)]
    http_allowlist: Option<Vec<String>>,
}

/// PUT's body in the OpenAPI document: every field of [`CampaignChanges`],
/// required (the handler names each one left out).
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"name": "Overdue invoices, November", "description": "", "llm_integration_id": null, "llm_model": null, "result_fields": [], "http_allowlist": ["api.example-crm.com"]}))]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct CampaignReplace {
    #[schema(schema_with = crate::openapi::name_200)]
    name: String,
    description: String,
    #[schema(required = true)]
    llm_integration_id: Option<String>,
    #[schema(required = true)]
    llm_model: Option<String>,
    result_fields: Vec<ResultField>,
    http_allowlist: Vec<String>,
}

/// A field that was sent; null is not a value for it.
fn sent<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    String::deserialize(deserializer).map(Some)
}

/// A field that was sent, null or not.
fn sent_or_null<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(deserializer).map(Some)
}

fn sent_objects<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Vec<ResultField>>, D::Error> {
    stratagem_domain::objects::objects(deserializer).map(Some)
}

fn sent_hosts<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Vec<String>>, D::Error> {
    Vec::<String>::deserialize(deserializer).map(Some)
}

impl CampaignChanges {
    /// The fields a PUT left out: it replaces the settings, so leaving one
    /// out would clear it without saying so.
    fn missing(&self) -> Vec<FieldError> {
        let sent = [
            ("name", self.name.is_some()),
            ("description", self.description.is_some()),
            ("llm_integration_id", self.llm_integration_id.is_some()),
            ("llm_model", self.llm_model.is_some()),
            ("result_fields", self.result_fields.is_some()),
            ("http_allowlist", self.http_allowlist.is_some()),
        ];
        sent.into_iter()
            .filter(|(_, sent)| !sent)
            .map(|(field, _)| {
                FieldError::new(field, "is required: PUT replaces every setting (send null to clear an LLM setting), or use PATCH to change some")
            })
            .collect()
    }

    /// The campaign's settings with these changes.
    fn apply(self, current: Campaign) -> CampaignBody {
        CampaignBody {
            name: self.name.unwrap_or(current.name),
            description: self.description.unwrap_or(current.description),
            llm_integration_id: self.llm_integration_id.unwrap_or(current.llm_integration_id),
            llm_model: self.llm_model.unwrap_or(current.llm_model),
            result_fields: self.result_fields.unwrap_or(current.result_fields),
            http_allowlist: self.http_allowlist.unwrap_or(current.http_allowlist),
        }
    }
}

#[utoipa::path(put, path = "/campaigns/{id}", operation_id = "replaceCampaign", tag = "campaigns",
    summary = "Replace name, description, LLM, result fields and HTTP allowlist: every field is required (422 names the missing ones; null clears an LLM setting); validated as on create",
    request_body = CampaignReplace,
    responses((status = 200, description = "The campaign", body = Campaign), (status = 400, response = Problem), (status = 404, response = Problem), (status = 422, response = Problem)))]
async fn replace(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
    Body(changes): Body<CampaignChanges>,
) -> ApiResult<Json<Campaign>> {
    state.store.campaigns().campaign(&tenant, &id).await?;
    let missing = changes.missing();
    if !missing.is_empty() {
        return Err(ApiError::Invalid(missing));
    }
    save(&state, &tenant, &id, changes).await
}

#[utoipa::path(patch, path = "/campaigns/{id}", operation_id = "updateCampaign", tag = "campaigns",
    summary = "Change some of name, description, LLM, result fields and HTTP allowlist: the fields sent change, the others stay; validated as on create",
    request_body = CampaignChanges,
    responses((status = 200, description = "The campaign", body = Campaign), (status = 400, response = Problem), (status = 404, response = Problem), (status = 422, response = Problem)))]
async fn update(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
    Body(changes): Body<CampaignChanges>,
) -> ApiResult<Json<Campaign>> {
    save(&state, &tenant, &id, changes).await
}

async fn save(state: &AppState, tenant: &str, id: &str, changes: CampaignChanges) -> ApiResult<Json<Campaign>> {
    let current = state.store.campaigns().campaign(tenant, id).await?;
    let changes = changes.apply(current).validate()?;
    check_llm(state, tenant, &changes).await?;
    Ok(Json(state.store.campaigns().update_campaign(tenant, id, changes).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusBody {
    status: String,
    #[serde(default)]
    reason: Option<String>,
}

/// `StatusChange` in the document: written out, because its rule (ERROR
/// needs a reason) joins two fields, which a derive cannot say.
impl utoipa::PartialSchema for StatusBody {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Type};
        let reason = ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::SchemaType::from_iter([Type::String, Type::Null]))
            .description(Some("why: required (not empty) for ERROR"));
        let object = ObjectBuilder::new()
            .property("status", utoipa::openapi::Ref::from_schema_name("CampaignStatus"))
            .required("status")
            .property("reason", reason)
            .additional_properties(Some(AdditionalProperties::FreeForm(false)))
            .examples([json!({"status": "ERROR", "reason": "the contact file had the wrong amounts"})])
            .build();
        let object = stratagem_domain::openapi::with_keyword(object, "if", json!({"properties": {"status": {"const": "ERROR"}}}));
        let object = stratagem_domain::openapi::with_keyword(
            object,
            "then",
            json!({"required": ["reason"], "properties": {"reason": {"type": "string", "minLength": 1}}}),
        );
        stratagem_domain::openapi::into_schema(object)
    }
}

impl utoipa::ToSchema for StatusBody {
    fn name() -> std::borrow::Cow<'static, str> {
        "StatusChange".into()
    }

    fn schemas(schemas: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)>) {
        schemas.push(("CampaignStatus".into(), <CampaignStatus as utoipa::PartialSchema>::schema()));
    }
}

#[utoipa::path(post, path = "/campaigns/{id}/status", operation_id = "setCampaignStatus", tag = "campaigns",
    summary = "Move through CREATED → CONFIGURED → RUNNING ⇄ STOPPED → FINISHED (or ERROR with a reason); 409 names the allowed statuses in `allowed`, or — to CONFIGURED or RUNNING — every reason the campaign is not ready in `blockers` (as GET /campaigns/{id}/readiness)",
    request_body = StatusBody,
    responses((status = 200, description = "The campaign", body = Campaign), (status = 400, response = Problem), (status = 404, response = Problem), (status = 409, response = Problem)))]
async fn set_status(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
    Body(body): Body<StatusBody>,
) -> ApiResult<Json<Campaign>> {
    let next = parse_status(&body.status)?;
    if next == CampaignStatus::Error && body.reason.as_deref().is_none_or(str::is_empty) {
        return Err(ApiError::BadRequest("ERROR needs a reason".into()));
    }
    Ok(Json(state.campaigns.set_status(&tenant, &id, next, body.reason.as_deref()).await?))
}

#[utoipa::path(get, path = "/campaigns/{id}/readiness", operation_id = "readCampaignReadiness", tag = "campaigns",
    summary = "Whether the campaign can become CONFIGURED and RUNNING, and every reason it cannot yet: stages, their channels' integrations and agents, strategy builds, contacts",
    responses((status = 200, description = "The checklist", body = Readiness), (status = 404, response = Problem)))]
async fn readiness(State(state): State<AppState>, Tenant(tenant): Tenant, Path(id): Path<String>) -> ApiResult<Json<Readiness>> {
    Ok(Json(state.campaigns.readiness(&tenant, &id).await?))
}
