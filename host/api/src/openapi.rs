//! The OpenAPI 3.1 document (public) and an interactive page that reads it
//! and sends requests with the caller's key.

use axum::response::Html;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/openapi.json", get(|| async { Json(document()) })).route("/docs", get(|| async { Html(PAGE) }))
}

fn op(summary: &str, tag: &str, body: Option<&str>, ok: &str) -> Value {
    let mut operation = json!({
        "summary": summary,
        "tags": [tag],
        "responses": {
            ok: {"description": "Success"},
            "400": {"$ref": "#/components/responses/Problem"},
            "401": {"$ref": "#/components/responses/Problem"},
            "404": {"$ref": "#/components/responses/Problem"},
        }
    });
    if let Some(schema) = body {
        operation["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}});
    }
    operation
}

pub fn document() -> Value {
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Stratagem API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Campaigns whose logic is written as Python strategies. Every error is an RFC 9457 problem document (application/problem+json) with `detail`, and `line`/`column` for bodies and files. Another tenant's ids answer 404."
        },
        "servers": [{"url": "/api"}],
        "security": [{"apiKey": []}],
        "paths": {
            "/keys": {
                "get": op("List the tenant's API keys (secrets are never returned)", "keys", None, "200"),
                "post": op("Create an API key; the secret is in this response only", "keys", Some("NewKey"), "201")
            },
            "/keys/{id}": {"delete": op("Revoke an API key", "keys", None, "204")},
            "/campaigns": {
                "get": op("List campaigns; `?status=RUNNING` filters", "campaigns", None, "200"),
                "post": op("Create a campaign (status CREATED)", "campaigns", Some("Campaign"), "201")
            },
            "/campaigns/{id}": {
                "get": op("Read a campaign", "campaigns", None, "200"),
                "put": op("Update name, description, LLM and result fields", "campaigns", Some("Campaign"), "200")
            },
            "/campaigns/{id}/status": {
                "post": op("Move through CREATED → CONFIGURED → RUNNING ⇄ STOPPED → FINISHED (or ERROR with a reason); 409 names the allowed statuses", "campaigns", Some("StatusChange"), "200")
            },
            "/campaigns/{id}/strategies": {
                "get": op("List the campaign's strategies", "strategies", None, "200"),
                "post": op("Upload a strategy; it builds in the background (status building → ready | failed with line)", "strategies", Some("StrategyUpload"), "202")
            },
            "/strategies/{id}": {
                "get": op("Read a strategy: latest version's code, build status and error, active version", "strategies", None, "200"),
                "put": op("Edit: upload a new version", "strategies", Some("StrategySource"), "202"),
                "delete": op("Delete a strategy and its versions", "strategies", None, "204")
            },
            "/campaigns/{id}/imports": {
                "post": {
                    "summary": "Import contacts from CSV or JSON Lines (body is the file); runs DATA_LOAD per row. 422 with line/column for a file that cannot be read at all.",
                    "tags": ["contacts"],
                    "parameters": [
                        {"name": "format", "in": "query", "schema": {"enum": ["csv", "jsonl"]}},
                        {"name": "file_name", "in": "query", "schema": {"type": "string"}}
                    ],
                    "requestBody": {"content": {"text/csv": {}, "application/x-ndjson": {}}},
                    "responses": {"202": {"description": "The import job"}, "413": {"$ref": "#/components/responses/Problem"}, "422": {"$ref": "#/components/responses/Problem"}}
                }
            },
            "/imports/{id}": {"get": op("Import job: progress and report (accepted, updated, rejected with line and reason, strategy errors with traceback)", "contacts", None, "200")},
            "/campaigns/{id}/contacts": {
                "get": {
                    "summary": "Contacts with current stage, communication count and outcome",
                    "tags": ["contacts"],
                    "parameters": [
                        {"name": "stage", "in": "query", "schema": {"type": "string"}},
                        {"name": "q", "in": "query", "description": "substring of object id, external id, name, email or phone", "schema": {"type": "string"}},
                        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 50}},
                        {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0, "default": 0}}
                    ],
                    "responses": {"200": {"description": "A page of contacts"}}
                }
            },
            "/campaigns/{id}/contacts/export": {"get": op("Download contacts as CSV (cells starting with = + - @ are escaped) or `?format=jsonl`", "contacts", None, "200")},
            "/campaigns/{id}/contacts/{object_id}": {"get": op("Contact detail: parameters, results, communications, last strategy error", "contacts", None, "200")}
        },
        "components": {
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer", "description": "stg_… key from `stratagem tenant create` or POST /keys"}},
            "responses": {"Problem": {"description": "RFC 9457 problem", "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}},
            "schemas": {
                "Problem": {"type": "object", "properties": {
                    "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"}, "detail": {"type": "string"},
                    "line": {"type": "integer"}, "column": {"type": "integer"}, "allowed": {"type": "array", "items": {"type": "string"}}}},
                "NewKey": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}, "additionalProperties": false},
                "Campaign": {"type": "object", "required": ["name"], "additionalProperties": false, "properties": {
                    "name": {"type": "string"}, "description": {"type": "string"}, "llm_model": {"type": ["string", "null"]},
                    "result_fields": {"type": "array", "items": {"type": "object", "required": ["code", "name"], "properties": {"code": {"type": "string"}, "name": {"type": "string"}, "description": {"type": "string"}}}}}},
                "StatusChange": {"type": "object", "required": ["status"], "additionalProperties": false, "properties": {
                    "status": {"enum": ["CREATED", "CONFIGURED", "RUNNING", "STOPPED", "FINISHED", "ERROR"]}, "reason": {"type": "string"}}},
                "StrategySource": {"type": "object", "properties": {
                    "source": {"type": "string", "description": "Python source of one file"}, "file_name": {"type": "string", "default": "strategy.py"},
                    "files": {"type": "object", "additionalProperties": {"type": "string"}}, "entry": {"type": "string"}, "name": {"type": "string"}}},
                "StrategyUpload": {"allOf": [{"$ref": "#/components/schemas/StrategySource"}, {"type": "object", "required": ["name", "type"], "properties": {
                    "name": {"type": "string"}, "type": {"enum": ["DATA_LOAD", "AGGREGATION", "CONTACT_ANSWER"]}}}]}
            }
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
