//! Strategies: upload Python source (one file or a small package) with a
//! type; the build runs in the background and its status (building, ready,
//! failed with file, line and column) is on the strategy. Editing uploads a
//! new version; the newest READY version is the active one. A prebuilt
//! component can be uploaded instead of source.
//!
//! Uploads, edits and deletes are `stratagem_services::strategies`; builds
//! go through the engine's queue (`host/engine/src/builds.rs`): a queued
//! build shows its position, and an upload cancels the build of the
//! version it replaces.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::{Json, Router};
use serde::Deserialize;
use stratagem_domain::{FieldError, StrategyType};
use stratagem_runtime::StrategySource;
use stratagem_services::strategies::VersionSource;
use stratagem_store::StrategyView;

use crate::auth::Tenant;
use crate::problem::{body_error, ApiError, ApiResult, Problem};
use crate::{AppState, Body, Query, COMPONENT_LIMIT_BYTES};

#[derive(utoipa::OpenApi)]
#[openapi(paths(list, upload, upload_component, read, edit, remove, edit_component))]
pub(crate) struct Api;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/campaigns/{id}/strategies", get(list).post(upload))
        .route("/strategies/{id}", get(read).put(edit).delete(remove))
        .route(
            "/campaigns/{id}/strategies/component",
            post(upload_component).layer(axum::extract::DefaultBodyLimit::max(COMPONENT_LIMIT_BYTES)),
        )
        .route(
            "/strategies/{id}/component",
            put(edit_component).layer(axum::extract::DefaultBodyLimit::max(COMPONENT_LIMIT_BYTES)),
        )
}

/// Either `source` (with an optional `file_name`, default `strategy.py`)
/// or `files` with an `entry`.
/// Sources: `source` (with `file_name`) or `files` with an `entry`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct SourceBody {
    /// Python source of one file
    #[serde(default)]
    source: Option<String>,
    /// its name; strategy.py if left out
    #[serde(default)]
    file_name: Option<String>,
    /// module path (e.g. pkg/util.py) → source
    #[serde(default)]
    files: Option<BTreeMap<String, String>>,
    /// the main file among `files`
    #[serde(default)]
    entry: Option<String>,
}

/// The schema of a body with sources (`SourceBody`, flattened) and its own
/// fields: exactly one of `source` and `files` (with `entry`), which a
/// derive cannot say.
fn with_sources(own: utoipa::openapi::schema::ObjectBuilder, example: serde_json::Value) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    let mut object = stratagem_domain::openapi::extended(<SourceBody as utoipa::PartialSchema>::schema(), own.build());
    object.additional_properties = Some(Box::new(utoipa::openapi::schema::AdditionalProperties::FreeForm(false)));
    object.examples = vec![example];
    let one_source = serde_json::json!([
        {"required": ["source"], "properties": {"source": {"type": "string"}, "files": {"type": "null"}}},
        {"required": ["files", "entry"], "properties": {"files": {"type": "object"}, "entry": {"type": "string"}, "source": {"type": "null"}}}
    ]);
    stratagem_domain::openapi::into_schema(stratagem_domain::openapi::with_keyword(object, "oneOf", one_source))
}

impl SourceBody {
    fn into_source(self) -> ApiResult<StrategySource> {
        let (source, field) = match (self.source, self.files) {
            (Some(text), None) => (StrategySource::single(self.file_name.unwrap_or_else(|| "strategy.py".into()), text), "file_name"),
            (None, Some(files)) => {
                let entry = self.entry.ok_or_else(|| ApiError::BadRequest("`files` needs an `entry` naming the main file".into()))?;
                (StrategySource { entry, files }, "files")
            }
            _ => return Err(ApiError::BadRequest("give either `source` or `files`, not both or neither".into())),
        };
        // Well-formed, but not sources that can be built (a file name that
        // is not a module path, an entry not among the files, too large):
        // 422 on the field.
        source.validate().map_err(|error| ApiError::Invalid(vec![FieldError::new(field, error.to_string())]))?;
        Ok(source)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UploadBody {
    name: String,
    #[serde(rename = "type")]
    kind: StrategyType,
    #[serde(flatten)]
    source: SourceBody,
}

impl utoipa::PartialSchema for UploadBody {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        let own = utoipa::openapi::schema::ObjectBuilder::new()
            .property("name", stratagem_domain::openapi::name_200())
            .property("type", utoipa::openapi::Ref::from_schema_name("StrategyType"))
            .required("name")
            .required("type");
        let example = serde_json::json!({"name": "Load contacts", "type": "DATA_LOAD", "files": {
            "app.py": "from stratagem import Contact\nfrom helpers import clean\n\nasync def run(contact: Contact, existing_contact, logger, **kwargs):\n    contact.name = clean(contact.name)\n    return contact\n",
            "helpers.py": "def clean(name):\n    return name.strip().title()\n"}, "entry": "app.py"});
        with_sources(own, example)
    }
}

impl utoipa::ToSchema for UploadBody {
    fn name() -> std::borrow::Cow<'static, str> {
        "StrategyUpload".into()
    }

    fn schemas(schemas: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)>) {
        schemas.push(("StrategyType".into(), <StrategyType as utoipa::PartialSchema>::schema()));
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EditBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(flatten)]
    source: SourceBody,
}

impl utoipa::PartialSchema for EditBody {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        let own = utoipa::openapi::schema::ObjectBuilder::new().property("name", stratagem_domain::openapi::optional_name_200());
        let example = serde_json::json!({"source": "async def run(contact, existing_contact, logger, **kwargs):\n    return contact\n", "file_name": "load.py"});
        with_sources(own, example)
    }
}

impl utoipa::ToSchema for EditBody {
    fn name() -> std::borrow::Cow<'static, str> {
        "StrategyEdit".into()
    }
}

#[utoipa::path(get, path = "/campaigns/{id}/strategies", operation_id = "listStrategies", tag = "strategies", summary = "List the campaign's strategies",
    responses((status = 200, description = "The strategies", body = Vec<Object>), (status = 404, response = Problem)))]
async fn list(State(state): State<AppState>, Tenant(tenant): Tenant, Path(campaign): Path<String>) -> ApiResult<Json<Vec<StrategyView>>> {
    Ok(Json(state.store.strategies().list_strategies(&tenant, &campaign).await?))
}

#[utoipa::path(post, path = "/campaigns/{id}/strategies", operation_id = "uploadStrategy", tag = "strategies",
    summary = "Upload a strategy; it builds in the background (status building → ready | failed with line). 422 when the sources cannot be built: an entry that is not among the files, a file name that is not a module path, sources over the size limit. 503 when this server has no Python toolchain (the problem says so; prebuilt components are still accepted)",
    request_body = UploadBody,
    responses((status = 202, description = "The strategy, building", body = Object), (status = 400, response = Problem), (status = 404, response = Problem), (status = 409, response = Problem), (status = 422, response = Problem), (status = 503, response = Problem)))]
async fn upload(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(campaign): Path<String>,
    Body(body): Body<UploadBody>,
) -> ApiResult<(StatusCode, Json<StrategyView>)> {
    let source = body.source.into_source()?;
    let view = state.strategy_catalog.upload(&tenant, &campaign, &body.name, body.kind, VersionSource::Python(&source)).await?;
    Ok((StatusCode::ACCEPTED, Json(view)))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ComponentQuery {
    #[param(schema_with = crate::openapi::name_200)]
    name: Option<String>,
    /// must be the strategy's own type
    #[serde(rename = "type")]
    kind: Option<StrategyType>,
}

/// The body must look like a component before anything is stored; the
/// contract check and compilation happen in the background build.
fn component_bytes(body: Result<Bytes, BytesRejection>) -> ApiResult<Bytes> {
    let bytes = body.map_err(|rejection| body_error(&rejection, COMPONENT_LIMIT_BYTES))?;
    // A component's preamble: `\0asm`, then version 0x0d and layer 1.
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" || bytes[6..8] != [1, 0] {
        return Err(ApiError::InvalidFile {
            detail: "the body is not a WebAssembly component (build one with `stratagem strategy build` or componentize-py against wit/)"
                .into(),
            position: None,
        });
    }
    Ok(bytes)
}

#[utoipa::path(post, path = "/campaigns/{id}/strategies/component", operation_id = "uploadStrategyComponent", tag = "strategies",
    summary = "Upload a prebuilt strategy component (the body is the .wasm, at most 64 MiB) built against wit/; it is checked against the contract and compiled in the background. 422 when the body is not a WebAssembly component",
    // Both required here; `ComponentQuery` has them optional for edits. The
    // pattern is `stratagem_domain::openapi::name`'s (a test compares them).
    params(("name" = String, Query, min_length = 1, max_length = 200, pattern = "[^\\u0009-\\u000D\\u0020\\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028-\\u2029\\u202F\\u205F\\u3000]", description = "1 to 200 characters, not only white space; stored trimmed"),
        ("type" = StrategyType, Query)),
    request_body(content = String, content_type = "application/octet-stream", description = "the .wasm component"),
    responses((status = 202, description = "The strategy, building", body = Object), (status = 404, response = Problem), (status = 409, response = Problem), (status = 422, response = Problem)))]
async fn upload_component(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(campaign): Path<String>,
    Query(query): Query<ComponentQuery>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<(StatusCode, Json<StrategyView>)> {
    let kind = query.kind.ok_or_else(|| ApiError::BadRequest("give the strategy type: `?type=DATA_LOAD|AGGREGATION|CONTACT_ANSWER`".into()))?;
    let name = query.name.as_deref().ok_or_else(|| ApiError::BadRequest("give the strategy a name: `?name=…`".into()))?;
    let bytes = component_bytes(body)?;
    let view = state.strategy_catalog.upload(&tenant, &campaign, name, kind, VersionSource::Component(&bytes)).await?;
    Ok((StatusCode::ACCEPTED, Json(view)))
}

#[utoipa::path(put, path = "/strategies/{id}/component", operation_id = "editStrategyComponent", tag = "strategies",
    summary = "Edit with a prebuilt component: a new version. 409 when `type` is not the strategy's", params(ComponentQuery),
    request_body(content = String, content_type = "application/octet-stream", description = "the .wasm component"),
    responses((status = 202, description = "The strategy, building", body = Object), (status = 404, response = Problem), (status = 409, response = Problem), (status = 422, response = Problem)))]
async fn edit_component(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
    Query(query): Query<ComponentQuery>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<(StatusCode, Json<StrategyView>)> {
    let bytes = component_bytes(body)?;
    let source = VersionSource::Component(&bytes);
    let view = state.strategy_catalog.edit(&tenant, &id, query.name.as_deref(), query.kind, source).await?;
    Ok((StatusCode::ACCEPTED, Json(view)))
}

#[utoipa::path(get, path = "/strategies/{id}", operation_id = "readStrategy", tag = "strategies",
    summary = "Read a strategy: latest version's code, build status and error, active version",
    responses((status = 200, description = "The strategy", body = Object), (status = 404, response = Problem)))]
async fn read(State(state): State<AppState>, Tenant(tenant): Tenant, Path(id): Path<String>) -> ApiResult<Json<StrategyView>> {
    Ok(Json(state.store.strategies().strategy(&tenant, &id).await?))
}

#[utoipa::path(put, path = "/strategies/{id}", operation_id = "editStrategy", tag = "strategies",
    summary = "Edit: upload a new version (and rename it with `name`); validated as on upload, 503 as on upload", request_body = EditBody,
    responses((status = 202, description = "The strategy, building", body = Object), (status = 400, response = Problem), (status = 404, response = Problem), (status = 409, response = Problem), (status = 422, response = Problem), (status = 503, response = Problem)))]
async fn edit(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
    Body(body): Body<EditBody>,
) -> ApiResult<(StatusCode, Json<StrategyView>)> {
    let source = body.source.into_source()?;
    let view = state.strategy_catalog.edit(&tenant, &id, body.name.as_deref(), None, VersionSource::Python(&source)).await?;
    Ok((StatusCode::ACCEPTED, Json(view)))
}

#[utoipa::path(delete, path = "/strategies/{id}", operation_id = "deleteStrategy", tag = "strategies", summary = "Delete a strategy and its versions",
    responses((status = 204, description = "Deleted"), (status = 404, response = Problem)))]
async fn remove(State(state): State<AppState>, Tenant(tenant): Tenant, Path(id): Path<String>) -> ApiResult<StatusCode> {
    state.strategy_catalog.remove(&tenant, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
