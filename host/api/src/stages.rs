//! Stages of a campaign: channel, agent, channel-specific settings and A/B
//! alternatives, validated per channel as the spec lists them.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use stratagem_domain::stage::EmailInputType;
use stratagem_domain::template::{self, RenderedEmail};
use stratagem_domain::{Contact, Stage, StageDefinition, StageValidation};
use stratagem_types::stage::{EmailTest, EmailTestSent};

use crate::auth::Tenant;
use crate::problem::{check, ApiError, ApiResult, Problem};
use crate::{AppState, Body, Query};

#[derive(utoipa::OpenApi)]
#[openapi(paths(preview, send_test, list, create, read, update, remove))]
pub(crate) struct Api;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/campaigns/{id}/stages", get(list).post(create))
        .route("/stages/{id}", get(read).put(update).delete(remove))
        .route("/email/preview", axum::routing::post(preview))
        .route("/email/test", axum::routing::post(send_test))
}

/// An email as a contact would get it. Without a `contact`, a sample one
/// whose parameters and results show their own names.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = EmailPreview, example = json!({"email_subject": "Your invoice {{parameters.invoice}}", "email_template": "Hello {{name}}, {{parameters.amount_due}} is due."}))]
#[serde(deny_unknown_fields)]
struct PreviewBody {
    email_subject: String,
    email_template: String,
    #[serde(default)]
    email_input_type: EmailInputType,
    /// the contact to render for; a sample one if left out
    #[serde(default, deserialize_with = "stratagem_domain::objects::optional_object")]
    contact: Option<Contact>,
}

#[utoipa::path(post, path = "/email/preview", operation_id = "previewEmail", tag = "stages",
    summary = "Render an email template as a contact gets it → {subject, html, text}. Placeholders: {{name}}, {{email}}, {{phone}}, {{object_id}}, {{external_id}}, {{current_stage}}, {{parameters.KEY}}, {{results.KEY}}; without a contact, a sample one shows [KEY] for parameters. 422 gives the line and column of a bad placeholder",
    request_body = PreviewBody,
    responses((status = 200, description = "The rendered email", body = RenderedEmail), (status = 400, response = Problem), (status = 422, response = Problem)))]
async fn preview(Tenant(_): Tenant, Body(body): Body<PreviewBody>) -> ApiResult<Json<RenderedEmail>> {
    let as_field = template::field_error;
    let contact = match body.contact {
        Some(contact) => contact,
        None => template::sample_contact(&body.email_subject, &body.email_template)
            .map_err(|(field, error)| ApiError::Invalid(vec![as_field(field, error)]))?,
    };
    template::render_email(&body.email_subject, &body.email_template, body.email_input_type, &contact)
        .map(Json)
        .map_err(|(field, error)| ApiError::Invalid(vec![as_field(field, error)]))
}

#[utoipa::path(post, path = "/email/test", operation_id = "sendTestEmail", tag = "stages",
    summary = "Send a stage's draft email to one address, rendered as the preview shows it (for `contact`, else a sample one) and sent as the stage sends it: through its SMTP integration (`integration_id`, or the channel `agent_channel` of the agent `agent_id`). 200 once the SMTP server accepted it. 404: the integration or agent is not the tenant's. 422 names a bad field (`to`, a placeholder with its line and column, an integration that is not SMTP), or is `/problems/smtp-refused` when the server refused the login, sender, recipient or message; 502 `/problems/smtp-unreachable` when it could not be reached, `/problems/smtp-in-doubt` when its answer was lost after it had the message. 429 `/problems/test-emails-limited` (with Retry-After) past a few test emails a minute per tenant",
    request_body = EmailTest,
    responses((status = 200, description = "The SMTP server accepted the email", body = EmailTestSent), (status = 400, response = Problem), (status = 404, response = Problem),
        (status = 422, response = Problem), (status = 502, response = Problem)))]
async fn send_test(State(state): State<AppState>, Tenant(tenant): Tenant, Body(test): Body<EmailTest>) -> ApiResult<Json<EmailTestSent>> {
    Ok(Json(state.emails.send_test(&tenant, test).await?))
}

/// The definition's own rules, then its references: agents, their
/// channels and integrations must be the tenant's and fit the channel.
async fn validate(state: &AppState, tenant: &str, definition: &StageDefinition) -> ApiResult<()> {
    check(definition.validate())?;
    check(state.campaigns.check_stage(tenant, definition).await?)
}

#[utoipa::path(get, path = "/campaigns/{id}/stages", operation_id = "listStages", tag = "stages", summary = "List the campaign's stages in order",
    responses((status = 200, description = "The stages", body = Vec<Stage>), (status = 404, response = Problem)))]
async fn list(State(state): State<AppState>, Tenant(tenant): Tenant, Path(campaign): Path<String>) -> ApiResult<Json<Vec<Stage>>> {
    Ok(Json(state.store.stages().list_stages(&tenant, &campaign).await?))
}

#[utoipa::path(post, path = "/campaigns/{id}/stages", operation_id = "createStage", tag = "stages",
    summary = "Add a stage. Channel settings are checked per channel (required and allowed fields); 422 lists every invalid field in `errors`; 409 when the campaign has a stage of that name",
    request_body = StageDefinition,
    responses((status = 201, description = "The stage", body = Stage), (status = 400, response = Problem), (status = 404, response = Problem), (status = 409, response = Problem), (status = 422, response = Problem)))]
async fn create(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(campaign): Path<String>,
    Body(definition): Body<StageDefinition>,
) -> ApiResult<(StatusCode, Json<Stage>)> {
    state.store.campaigns().campaign(&tenant, &campaign).await?;
    validate(&state, &tenant, &definition).await?;
    Ok((StatusCode::CREATED, Json(state.store.stages().create_stage(&tenant, &campaign, &definition).await?)))
}

#[utoipa::path(get, path = "/stages/{id}", operation_id = "readStage", tag = "stages", summary = "Read a stage",
    responses((status = 200, description = "The stage", body = Stage), (status = 404, response = Problem)))]
async fn read(State(state): State<AppState>, Tenant(tenant): Tenant, Path(id): Path<String>) -> ApiResult<Json<Stage>> {
    Ok(Json(state.store.stages().stage(&tenant, &id).await?))
}

#[utoipa::path(put, path = "/stages/{id}", operation_id = "updateStage", tag = "stages",
    summary = "Replace a stage's definition; validated as on create (409 when another stage of the campaign has the name)",
    request_body = StageDefinition,
    responses((status = 200, description = "The stage", body = Stage), (status = 400, response = Problem), (status = 404, response = Problem), (status = 409, response = Problem), (status = 422, response = Problem)))]
async fn update(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
    Body(definition): Body<StageDefinition>,
) -> ApiResult<Json<Stage>> {
    state.store.stages().stage(&tenant, &id).await?;
    validate(&state, &tenant, &definition).await?;
    Ok(Json(state.store.stages().update_stage(&tenant, &id, &definition).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct DeleteQuery {
    /// cancel the communications still planned on the stage (otherwise they refuse the delete)
    #[serde(default)]
    cancel_planned: bool,
}

#[utoipa::path(delete, path = "/stages/{id}", operation_id = "deleteStage", tag = "stages",
    summary = "Delete a stage; 409 while communications are planned on it (unless ?cancel_planned=true, which cancels them) or in progress",
    params(DeleteQuery),
    responses((status = 204, description = "Deleted"), (status = 400, response = Problem), (status = 404, response = Problem), (status = 409, response = Problem)))]
async fn remove(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
    Query(query): Query<DeleteQuery>,
) -> ApiResult<StatusCode> {
    state.store.stages().delete_stage(&tenant, &id, query.cancel_planned).await?;
    Ok(StatusCode::NO_CONTENT)
}
