//! The OpenAPI 3.1 document (public) and an interactive page that reads it
//! and sends requests with the caller's key.
//!
//! The document is generated (utoipa): each module's handlers carry
//! `#[utoipa::path]` with their operation id, statuses and body types, and
//! the request and response types derive `ToSchema`, so a field added to a
//! type is in the document. `document` adds what every operation shares:
//! the `{parameter}`s of its path, 401/403 for a key that is not accepted,
//! 408/413 for a body, 400 for a query.
//!
//! The document is exact, so that standard tools can test the API with it:
//! every route of the `/api` router is an operation (a test compares the
//! two), every status a handler can answer is listed, and the request
//! schemas refuse what the service refuses — a blank name, a fractional
//! weight, ERROR without a reason, a field no type has. What a schema cannot
//! say (a reference to an agent that does not exist, a setting a channel
//! requires, two alternatives with one label) is a 422 naming the field.
//! `make test` runs schemathesis against the running service with it
//! (host/api/tests/schemathesis).

use axum::response::Html;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::{OpenApi, PartialSchema, ToResponse, ToSchema};

use crate::problem::Problem;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/openapi.json", get(openapi_json)).route("/docs", get(docs_page))
}

/// This document
#[utoipa::path(get, path = "/openapi.json", operation_id = "openApiDocument", tag = "docs", security(()),
    responses((status = 200, description = "The OpenAPI 3.1 document", body = Object)))]
async fn openapi_json() -> Json<Value> {
    Json(document())
}

/// A page that lists the operations and sends requests with a key
#[utoipa::path(get, path = "/docs", operation_id = "docsPage", tag = "docs", security(()),
    responses((status = 200, description = "HTML", content_type = "text/html", body = String)))]
async fn docs_page() -> Html<&'static str> {
    Html(PAGE)
}

#[derive(OpenApi)]
#[openapi(paths(openapi_json, docs_page))]
struct Docs;

/// Every module's operations.
fn operations() -> utoipa::openapi::OpenApi {
    let mut api = Docs::openapi();
    for module in [
        crate::keys::Api::openapi(),
        crate::campaigns::Api::openapi(),
        crate::strategies::Api::openapi(),
        crate::invocations::Api::openapi(),
        crate::contacts::Api::openapi(),
        crate::simulations::Api::openapi(),
        crate::stages::Api::openapi(),
        crate::analytics::Api::openapi(),
        crate::deep_analysis::Api::openapi(),
        crate::tasks::Api::openapi(),
        crate::usage::Api::openapi(),
        crate::agents::Api::openapi(),
        crate::integrations::Api::openapi(),
    ] {
        api.merge(module);
    }
    api
}

/// A name of at most 200 characters (see `stratagem_domain::openapi::name`).
pub(crate) fn name_200() -> ObjectBuilder {
    stratagem_domain::openapi::name_200()
}

/// The `?format=` of a contact file, as imports read it.
pub(crate) fn file_format() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(["csv", "jsonl", "ndjson", "json"]))
        .description(Some("detected from the content type, file name and body when left out"))
}

/// Every `{name}` of a path: a required path parameter.
fn path_parameters(path: &str) -> Vec<Value> {
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string", "minLength": 1}}))
        .collect()
}

/// Adds what every operation shares to one its handler describes.
fn complete(path: &str, operation: &mut Value) {
    // `security(())` on a handler: no API key (the document and its page).
    let public = operation["security"] == json!([{}]);
    let mut parameters = path_parameters(path);
    parameters.extend(operation["parameters"].as_array().cloned().unwrap_or_default());
    let has_query = parameters.iter().any(|parameter| parameter["in"] == "query");
    let has_body = operation.get("requestBody").is_some();
    let object = operation.as_object_mut().expect("an operation");
    match parameters.is_empty() {
        true => object.remove("parameters"),
        false => object.insert("parameters".into(), Value::Array(parameters)),
    };
    let mut shared = Vec::new();
    if public {
        object.insert("security".into(), json!([]));
    } else {
        // Every call with a key: 401 for a key that is not one (or a
        // deleted tenant's), 403 for a disabled tenant's, 429 past the
        // key's rate.
        shared.extend(["401", "403", "429"]);
    }
    if has_body {
        object["requestBody"]["required"] = json!(true);
        // A contact file is bytes the service reads and checks itself (422
        // with line and column): any body fits the schema of its media type.
        if let Some(content) = object["requestBody"]["content"].as_object_mut() {
            for name in ["text/csv", "application/x-ndjson"] {
                if let Some(media) = content.get_mut(name) {
                    media["schema"] = json!({});
                }
            }
        }
        // Every body can be too large or too slow.
        shared.extend(["408", "413"]);
    }
    // A query parameter the handler does not know is a 400.
    if has_query {
        shared.push("400");
    }
    let responses = object.entry("responses").or_insert_with(|| json!({}));
    for status in shared {
        responses[status] = json!({"$ref": "#/components/responses/Problem"});
    }
}

pub fn document() -> Value {
    let mut api = operations();
    let components = api.components.get_or_insert_with(Default::default);
    let (name, response) = <Problem as ToResponse>::response();
    components.responses.insert(name.into(), response);
    // The derive inlines the schema; the response refers to it instead,
    // so the document states it once.
    components.schemas.insert(<Problem as ToSchema>::name().into(), <Problem as PartialSchema>::schema());
    let mut referenced = Vec::new();
    <Problem as ToSchema>::schemas(&mut referenced);
    components.schemas.extend(referenced);
    let mut generated = serde_json::to_value(&api).expect("the document serializes");
    generated["components"]["responses"]["Problem"]["content"]["application/problem+json"]["schema"] =
        json!({"$ref": "#/components/schemas/Problem"});
    let mut paths = generated["paths"].take();
    for (path, item) in paths.as_object_mut().expect("paths") {
        for operation in item.as_object_mut().expect("a path item").values_mut() {
            complete(path, operation);
        }
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Stratagem API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Campaigns whose logic is written as Python strategies. Every error is an RFC 9457 problem document (application/problem+json) with `detail`, and `line`/`column` for bodies and files. 400: the request does not match this document (unknown fields and query parameters included); 422: it does, but names something that does not exist or breaks a rule a schema cannot state (the problem's `errors` name each field). Another tenant's ids answer 404. A key of a disabled tenant gets 403 (`/problems/tenant-disabled`), of a deleted one 401. Provider webhooks (POST /webhooks/{integration_id}) are outside this document: providers sign them instead of sending a key."
        },
        "servers": [{"url": "/api"}],
        "security": [{"apiKey": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer", "description": "stg_… key from `stratagem tenant create` or POST /keys"}},
            "responses": generated["components"]["responses"].take(),
            "schemas": generated["components"]["schemas"].take(),
        }
    })
}

const PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Stratagem API</title>
<style>
body{font:15px/1.45 system-ui,sans-serif;margin:0 auto;max-width:980px;padding:16px;color:#1d2330}
h1{font-size:22px} .op{border:1px solid #d5dae3;border-radius:8px;margin:10px 0;padding:10px}
.m{display:inline-block;min-width:60px;font-weight:600} .get{color:#1565c0}.post{color:#2e7d32}.put{color:#ef6c00}.delete{color:#c62828}
textarea,input{font:13px monospace;width:100%;box-sizing:border-box} pre{background:#f4f6f9;padding:8px;overflow:auto;max-height:320px}
button{padding:4px 12px}
</style></head><body>
<h1>Stratagem API</h1>
<p>Key: <input id="key" type="password" placeholder="stg_…" autocomplete="off"> <small>Kept in this tab only. The raw document is at <a href="/api/openapi.json">/api/openapi.json</a>.</small></p>
<div id="ops"></div>
<script>
const keyInput = document.getElementById('key');
keyInput.value = sessionStorage.getItem('stratagem-key') || '';
keyInput.onchange = () => sessionStorage.setItem('stratagem-key', keyInput.value);
fetch('/api/openapi.json').then(r => r.json()).then(doc => {
  const root = document.getElementById('ops');
  for (const [path, methods] of Object.entries(doc.paths)) for (const [method, op] of Object.entries(methods)) {
    const box = document.createElement('div'); box.className = 'op';
    const params = [...path.matchAll(/\{(\w+)\}/g)].map(m => m[1]);
    box.innerHTML = `<div><span class="m ${method}">${method.toUpperCase()}</span> <code>${path}</code></div><div></div>`;
    box.children[1].textContent = op.summary;
    const form = document.createElement('div');
    const inputs = {};
    for (const p of [...params, 'query']) { const i = document.createElement('input'); i.placeholder = p === 'query' ? 'query string, e.g. status=RUNNING' : p; inputs[p] = i; form.appendChild(i); }
    const body = document.createElement('textarea'); body.rows = 4; body.placeholder = 'request body';
    if (method !== 'get' && method !== 'delete') form.appendChild(body);
    const send = document.createElement('button'); send.textContent = 'Send'; form.appendChild(send);
    const out = document.createElement('pre'); form.appendChild(out);
    send.onclick = async () => {
      let url = '/api' + path.replace(/\{(\w+)\}/g, (_, p) => encodeURIComponent(inputs[p].value));
      if (inputs.query.value) url += '?' + inputs.query.value;
      const headers = {Authorization: 'Bearer ' + keyInput.value};
      if (body.value && path.endsWith('/imports')) headers['Content-Type'] = 'text/csv';
      else if (body.value) headers['Content-Type'] = 'application/json';
      const reply = await fetch(url, {method: method.toUpperCase(), headers, body: body.value || undefined});
      out.textContent = reply.status + ' ' + reply.statusText + '\n' + await reply.text();
    };
    box.appendChild(form); root.appendChild(box);
  }
});
</script></body></html>"#;

#[cfg(test)]
mod tests {
    use super::*;

    /// `(path, method)` of every route the `/api` router registers, read
    /// from the modules' `router()` functions.
    fn routes() -> Vec<(String, String)> {
        let sources = [
            include_str!("keys.rs"),
            include_str!("campaigns.rs"),
            include_str!("strategies.rs"),
            include_str!("invocations.rs"),
            include_str!("contacts.rs"),
            include_str!("stages.rs"),
            include_str!("agents.rs"),
            include_str!("integrations.rs"),
            include_str!("analytics.rs"),
            include_str!("deep_analysis.rs"),
            include_str!("tasks.rs"),
            include_str!("usage.rs"),
            include_str!("simulations.rs"),
            include_str!("openapi.rs"),
        ];
        let mut routes = Vec::new();
        for source in sources {
            let router = &source[source.find("pub fn router()").expect("a router function")..];
            let router = &router[..router.find("\n}\n").expect("its end")];
            for call in router.split(".route(").skip(1) {
                let path = call.trim_start().strip_prefix('"').and_then(|rest| rest.split('"').next()).expect("a literal path");
                for method in ["get", "post", "put", "delete", "patch"] {
                    let registered = call.match_indices(&format!("{method}(")).any(|(at, _)| {
                        !call[..at].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
                    });
                    if registered {
                        routes.push((path.to_owned(), method.to_owned()));
                    }
                }
            }
        }
        routes.sort();
        routes
    }

    #[test]
    fn works_when_every_route_is_an_operation_and_every_operation_a_route() {
        let document = document();
        let mut operations: Vec<(String, String)> = document["paths"]
            .as_object()
            .expect("paths")
            .iter()
            .flat_map(|(path, item)| item.as_object().expect("path item").keys().map(|method| (path.clone(), method.clone())))
            .collect();
        operations.sort();
        let routes = routes();
        assert!(routes.len() > 40, "the routes were read: {routes:?}");
        assert_eq!(operations, routes);
    }

    #[test]
    fn works_when_every_path_parameter_is_declared() {
        let document = document();
        for (path, item) in document["paths"].as_object().expect("paths") {
            let expected: Vec<&str> = path.split('/').filter_map(|s| s.strip_prefix('{')?.strip_suffix('}')).collect();
            for (method, operation) in item.as_object().expect("path item") {
                let declared: Vec<&str> = operation["parameters"]
                    .as_array()
                    .map(|parameters| parameters.iter().filter(|p| p["in"] == "path").filter_map(|p| p["name"].as_str()).collect())
                    .unwrap_or_default();
                assert_eq!(declared, expected, "{method} {path}");
                assert!(operation["operationId"].is_string(), "{method} {path}");
            }
        }
    }

    #[test]
    fn works_when_every_schema_reference_resolves() {
        let document = document();
        let text = document.to_string();
        for reference in text.split("\"$ref\":\"").skip(1).map(|rest| rest.split('"').next().expect("a reference")) {
            let pointer = reference.strip_prefix('#').expect("a local reference");
            assert!(document.pointer(pointer).is_some(), "{reference} resolves");
        }
    }

    /// The request types a client starts from, each with an example.
    const WITH_EXAMPLES: &[&str] = &[
        "CampaignBody", "StatusChange", "StrategyUpload", "StrategyEdit", "StageDefinition", "AgentDefinition",
        "NewIntegration", "IntegrationUpdate", "Contact", "EmailPreview", "EmailTest", "TaskOutcome", "NewKey",
    ];

    fn examples(schema: &Value) -> Vec<Value> {
        let mut found: Vec<Value> = schema["examples"].as_array().cloned().unwrap_or_default();
        found.extend(schema.get("example").cloned());
        found
    }

    fn validator(document: &Value, name: &str) -> jsonschema::Validator {
        let schema = json!({"$ref": format!("#/components/schemas/{name}"), "components": document["components"]});
        jsonschema::draft202012::new(&schema).expect("a valid JSON Schema")
    }

    #[test]
    fn works_when_every_example_validates_against_its_schema() {
        let document = document();
        let schemas = document["components"]["schemas"].as_object().expect("schemas");
        for name in WITH_EXAMPLES {
            assert!(!examples(&schemas[*name]).is_empty(), "{name} has an example");
        }
        let mut checked = 0;
        for (name, schema) in schemas {
            let validator = validator(&document, name);
            for example in examples(schema) {
                let errors: Vec<String> = validator.iter_errors(&example).map(|error| error.to_string()).collect();
                assert!(errors.is_empty(), "the example of {name} validates: {errors:?}");
                // The schemas refuse what the service refuses: a field no type has.
                let mut unknown = example.clone();
                unknown["no_such_field"] = json!(1);
                assert!(!validator.is_valid(&unknown), "{name} refuses an unknown field");
                checked += 1;
            }
        }
        assert!(checked >= WITH_EXAMPLES.len());
    }

    #[test]
    fn works_when_the_schemas_refuse_what_the_service_refuses() {
        let document = document();
        let refused = [
            ("NewKey", json!({"name": " \u{3000}\t"})),
            ("CampaignBody", json!({"name": "A", "result_fields": [{"code": "ResultFlag", "name": "x"}]})),
            ("CampaignBody", json!({"name": "A", "result_fields": [{"code": "a-b", "name": "x"}]})),
            ("StatusChange", json!({"status": "ERROR"})),
            ("StatusChange", json!({"status": "ERROR", "reason": ""})),
            ("StrategyUpload", json!({"name": "s", "type": "DATA_LOAD"})),
            ("StrategyUpload", json!({"name": "s", "type": "DATA_LOAD", "source": "x", "files": {"a.py": ""}, "entry": "a.py"})),
            ("StageDefinition", json!({"name": "s", "channel": "SIMULATED", "alternatives": [{"label": "a", "weight": 1.5, "channel": "SIMULATED"}]})),
            ("TaskOutcome", json!({"outcome": "PAID", "results": {"OutcomeStatus": "x"}})),
            ("EmailTest", json!({"to": "", "email_subject": "Hi", "email_template": "Hello"})),
            ("EmailTest", json!({"to": "me@example.com", "email_subject": "Hi", "email_template": "Hello", "cc": "evil@example.com"})),
        ];
        for (name, body) in refused {
            assert!(!validator(&document, name).is_valid(&body), "{name} refuses {body}");
        }
        let accepted = [
            ("StatusChange", json!({"status": "ERROR", "reason": "bad data"})),
            ("StatusChange", json!({"status": "RUNNING"})),
            ("StrategyUpload", json!({"name": "s", "type": "DATA_LOAD", "files": {"a.py": ""}, "entry": "a.py"})),
            ("StrategyEdit", json!({"name": null, "source": "x"})),
        ];
        for (name, body) in accepted {
            let errors: Vec<String> = validator(&document, name).iter_errors(&body).map(|error| error.to_string()).collect();
            assert!(errors.is_empty(), "{name} accepts {body}: {errors:?}");
        }
    }

    #[test]
    fn works_when_operation_ids_are_unique_and_statuses_documented() {
        let document = document();
        let mut ids = std::collections::HashSet::new();
        for (path, item) in document["paths"].as_object().expect("paths") {
            for (method, operation) in item.as_object().expect("path item") {
                assert!(ids.insert(operation["operationId"].as_str().expect("an id").to_owned()), "{method} {path}");
                let responses = operation["responses"].as_object().expect("responses");
                assert!(responses.keys().any(|status| status.starts_with('2')), "{method} {path} has a success");
                let public = operation["security"] == json!([]);
                assert_eq!(responses.contains_key("401") && responses.contains_key("403"), !public, "{method} {path}");
                for (status, response) in responses {
                    if !status.starts_with('2') {
                        assert_eq!(response, &json!({"$ref": "#/components/responses/Problem"}), "{method} {path} {status}");
                    }
                }
            }
        }
        assert_eq!(
            document["components"]["responses"]["Problem"]["content"]["application/problem+json"]["schema"],
            json!({"$ref": "#/components/schemas/Problem"})
        );
    }

    fn query_parameter<'a>(document: &'a Value, path: &str, method: &str, name: &str) -> &'a Value {
        document["paths"][path][method]["parameters"]
            .as_array()
            .and_then(|parameters| parameters.iter().find(|parameter| parameter["name"] == name && parameter["in"] == "query"))
            .unwrap_or_else(|| panic!("{method} {path} has ?{name}"))
    }

    #[test]
    fn works_when_literal_limits_are_the_constants() {
        let document = document();
        // Attribute arguments must be literals: these are compared here.
        let upload_name = query_parameter(&document, "/campaigns/{id}/strategies/component", "post", "name");
        assert_eq!(upload_name["required"], true);
        let name = serde_json::to_value(stratagem_domain::openapi::name_200().build()).expect("a schema");
        for keyword in ["type", "minLength", "maxLength", "pattern"] {
            assert_eq!(upload_name["schema"][keyword], name[keyword], "{keyword}");
        }
        assert_eq!(query_parameter(&document, "/campaigns/{id}/strategies/component", "post", "type")["required"], true);
        assert_ne!(query_parameter(&document, "/strategies/{id}/component", "put", "name")["required"], true);
        let days = query_parameter(&document, "/campaigns/{id}/simulate", "post", "days");
        assert_eq!(days["schema"]["maximum"], json!(stratagem_services::dry_run::MAX_DAYS));
        let by = query_parameter(&document, "/campaigns/{id}/analytics/distribution", "get", "by");
        assert_eq!(by["required"], true, "{by}");
        let limit = query_parameter(&document, "/campaigns/{id}/contacts", "get", "limit");
        assert_eq!((limit["schema"]["minimum"].clone(), limit["schema"]["maximum"].clone()), (json!(1), json!(1000)));
    }

    #[test]
    fn works_when_the_domain_enums_are_their_names() {
        use stratagem_domain::{CampaignStatus, Channel, CommunicationStatus, IntegrationKind};
        let document = document();
        let schemas = &document["components"]["schemas"];
        let names = |all: Vec<&str>| json!(all);
        assert_eq!(schemas["CampaignStatus"]["enum"], names(CampaignStatus::ALL.iter().map(|s| s.as_str()).collect()));
        assert_eq!(schemas["Channel"]["enum"], names(Channel::ALL.iter().map(|s| s.as_str()).collect()));
        assert_eq!(schemas["IntegrationKind"]["enum"], names(IntegrationKind::ALL.iter().map(|s| s.as_str()).collect()));
        assert_eq!(schemas["CommunicationStatus"]["enum"], names(CommunicationStatus::ALL.iter().map(|s| s.as_str()).collect()));
    }
}
