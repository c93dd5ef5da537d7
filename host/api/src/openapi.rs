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
            "description": "Campaigns whose logic is written as Python strategies. Every error is an RFC 9457 problem document (application/problem+json) with `detail`, and `line`/`column` for bodies and files. Another tenant's ids answer 404. A key of a disabled tenant gets 403 (`/problems/tenant-disabled`), of a deleted one 401."
        },
        "servers": [{"url": "/api"}],
        "security": [{"apiKey": []}],
        "paths": {
            "/keys": {
                "get": op("List the tenant's API keys (secrets are never returned)", "keys", None, "200"),
                "post": op("Create an API key; the secret is in this response only", "keys", Some("NewKey"), "201")
            },
            "/keys/{id}": {"delete": {
                "summary": "Revoke an API key. The tenant's last active key cannot be revoked (409 `/problems/last-api-key`): create another key first",
                "tags": ["keys"],
                "responses": {"204": {"description": "Revoked"}, "401": {"$ref": "#/components/responses/Problem"}, "404": {"$ref": "#/components/responses/Problem"}, "409": {"$ref": "#/components/responses/Problem"}}
            }},
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
            "/campaigns/{id}/strategies/component": {
                "post": {
                    "summary": "Upload a prebuilt strategy component (body is the .wasm, at most 64 MiB) built against wit/; it is checked against the contract and compiled in the background",
                    "tags": ["strategies"],
                    "parameters": [
                        {"name": "name", "in": "query", "required": true, "schema": {"type": "string"}},
                        {"name": "type", "in": "query", "required": true, "schema": {"enum": ["DATA_LOAD", "AGGREGATION", "CONTACT_ANSWER"]}}
                    ],
                    "requestBody": {"content": {"application/wasm": {}}},
                    "responses": {"202": {"description": "The strategy, building"}, "400": {"$ref": "#/components/responses/Problem"}, "413": {"$ref": "#/components/responses/Problem"}}
                }
            },
            "/strategies/{id}/component": {
                "put": {
                    "summary": "Edit with a prebuilt component: a new version",
                    "tags": ["strategies"],
                    "parameters": [{"name": "name", "in": "query", "schema": {"type": "string"}}],
                    "requestBody": {"content": {"application/wasm": {}}},
                    "responses": {"202": {"description": "The strategy, building"}, "400": {"$ref": "#/components/responses/Problem"}, "413": {"$ref": "#/components/responses/Problem"}}
                }
            },
            "/strategies/{id}": {
                "get": op("Read a strategy: latest version's code, build status and error, active version", "strategies", None, "200"),
                "put": op("Edit: upload a new version", "strategies", Some("StrategySource"), "202"),
                "delete": op("Delete a strategy and its versions", "strategies", None, "204")
            },
            "/campaigns/{id}/imports": {
                "post": {
                    "summary": format!("Import contacts from CSV or JSON Lines (body is the file); runs DATA_LOAD per row. 422 with line/column for a file that cannot be read at all; 429 when the node already has {} imports in progress.", crate::contacts::IMPORTS_AT_ONCE),
                    "tags": ["contacts"],
                    "parameters": [
                        {"name": "format", "in": "query", "schema": {"enum": ["csv", "jsonl"]}},
                        {"name": "file_name", "in": "query", "schema": {"type": "string"}}
                    ],
                    "requestBody": {"content": {"text/csv": {}, "application/x-ndjson": {}}},
                    "responses": {"202": {"description": "The import job"}, "408": {"$ref": "#/components/responses/Problem"}, "413": {"$ref": "#/components/responses/Problem"}, "422": {"$ref": "#/components/responses/Problem"}, "429": {"$ref": "#/components/responses/Problem"}}
                }
            },
            "/imports/{id}": {"get": op("Import job: progress and report (accepted, updated, rejected with line and reason, strategy errors with traceback). The counts are of committed rows; `status` is running, done or interrupted (its server stopped, or an error): then `interrupted_reason` and `detail` say why and what was written", "contacts", None, "200")},
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
            "/campaigns/{id}/simulate": {"post": op(&format!("Dry run: the campaign's stages and active strategies in virtual time over the contact file in the body (CSV or JSON Lines, as for imports), every channel simulated, contacts answering by persona (`?personas=NO_RESPONSE=35,PAID=20`, `?days=30`, `?start=` RFC 3339). Runs in a throwaway database: nothing is sent, the campaign is unchanged. Returns the timeline and final outcome distribution. Limits: {}; 429 when one is already running", crate::simulations::describe()), "campaigns", None, "200")},
            "/campaigns/{id}/contacts/export": {"get": op(&format!("Download contacts as CSV (cells starting with = + - @ are escaped) or `?format=jsonl`, read in one snapshot; 429 when {} exports are already in progress on the node", crate::contacts::EXPORTS_AT_ONCE), "contacts", None, "200")},
            "/campaigns/{id}/contacts/{object_id}": {"get": op("Contact detail: parameters, results, communications, last strategy error, and `sessions` (per started communication: channel, A/B label, session_results such as OutcomeStatus and FailureDetail, ended_at, and `messages`: the conversation transcript with role AGENT or CONTACT), and `result_view` (360 View > Results: ResultFlag, ResultDatetime, then each campaign result field with code, name, description and value)", "contacts", None, "200")},
            "/email/preview": {"post": op("Render an email template as a contact gets it: {email_subject, email_template, email_input_type DEFAULT|HTML, contact?} → {subject, html, text}. Placeholders: {{name}}, {{email}}, {{phone}}, {{object_id}}, {{external_id}}, {{current_stage}}, {{parameters.KEY}}, {{results.KEY}}; without a contact, a sample one shows [KEY] for parameters. 422 gives the line and column of a bad placeholder", "stages", None, "200")},
            "/campaigns/{id}/analytics": {
                "get": op("The campaign's YAML analytics file, parsed: depth_days and metrics (404 when none is uploaded)", "analytics", None, "200"),
                "put": {
                    "summary": "Upload the YAML analytics file (body is the file, UTF-8, at most 256 KiB). 422 lists every problem in `errors` with line and column; a rejected file leaves the previous one in place. Format: examples/analytics/debt-collection.yaml",
                    "tags": ["analytics"],
                    "requestBody": {"content": {"application/yaml": {}}},
                    "responses": {"200": {"description": "The parsed definition"}, "422": {"$ref": "#/components/responses/Problem"}}
                }
            },
            "/campaigns/{id}/analytics/overview": {"get": op("Metrics overview. total_contacts: the campaign's contacts. processed_contacts: contacts with a final result or with a communication whose session ended (including MISSED). completed_contacts: ResultFlag true or false. successful_contacts: ResultFlag true. completion_rate = completed / total; success_rate = successful / completed (0 when the divisor is 0). by_stage: contacts per current stage with how many are successful. by_alternative: sent communications per stage and A/B label (`default` for the stage's own settings) with how many belong to successful contacts", "analytics", None, "200")},
            "/campaigns/{id}/analytics/distribution": {
                "get": {
                    "summary": "Stage or Status Distribution by Period: the campaign's communications counted by stage name (by=stage) or status (by=status), bucketed by the local day, week (from Monday) or month of their start in the time zone `tz`",
                    "tags": ["analytics"],
                    "parameters": [
                        {"name": "by", "in": "query", "required": true, "schema": {"enum": ["stage", "status"]}},
                        {"name": "period", "in": "query", "schema": {"enum": ["day", "week", "month"], "default": "day"}},
                        {"name": "from", "in": "query", "schema": {"type": "string", "format": "date"}, "description": "default: 29 days before `to`"},
                        {"name": "to", "in": "query", "schema": {"type": "string", "format": "date"}, "description": "default: today in `tz`; inclusive"},
                        {"name": "tz", "in": "query", "schema": {"type": "string", "default": "UTC"}, "description": "IANA time zone, e.g. Europe/Berlin"}
                    ],
                    "responses": {"200": {"description": "{by, period, tz, from, to, buckets: [{start, counts: {key: n}}]}; at most 400 buckets"}, "400": {"$ref": "#/components/responses/Problem"}}
                }
            },
            "/campaigns/{id}/analytics/yaml": {"get": op("Download the YAML analytics file as uploaded", "analytics", None, "200")},
            "/campaigns/{id}/analysis/runs": {
                "post": {
                    "summary": "Start a Deep Analysis run over the conversations (sessions with a transcript) that ended within the YAML's depth_days. RECALCULATE computes every metric of the current YAML, replacing earlier values as it goes; CONTINUE computes only the (session, metric) pairs without a value, i.e. metrics new in an updated YAML and sessions a stopped run left (a stored error counts as computed; RECALCULATE asks again). The engine works it in batches: one LLM call per session with all its pending metrics; an invalid answer is stored as that metric's error and the run goes on; an LLM that is down or slow (no answer within the engine's lease, at most 60 s) sets `last_error` and the session is asked again after a pause of up to 10 s, nothing lost. A run with nothing to compute is DONE at once. 409 while a run is in progress; 422 without a YAML analytics file or an LLM integration, saying how to set them up",
                    "tags": ["analysis"],
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/AnalysisStart"}}}},
                    "responses": {"202": {"description": "The run", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/AnalysisRun"}}}}, "400": {"$ref": "#/components/responses/Problem"}, "404": {"$ref": "#/components/responses/Problem"}, "409": {"$ref": "#/components/responses/Problem"}, "422": {"$ref": "#/components/responses/Problem"}}
                }
            },
            "/campaigns/{id}/analysis/runs/latest": {"get": op("The campaign's most recent Deep Analysis run (AnalysisRun); 404 when it never had one", "analysis", None, "200")},
            "/campaigns/{id}/analysis/runs/{run_id}/stop": {"post": op("Stop a run in progress: status STOPPED, no further batch starts and the batch in flight writes nothing; values written so far stay. 409 when the run is not in progress", "analysis", None, "200")},
            "/campaigns/{id}/analysis/results": {"get": op("Deep Analysis results over the stored values of the current YAML's metrics: {metrics: [{code, name, description, type (and scale | categories | range), display, sessions (valid answers), errors (invalid or failed answers), unanswered (the conversation does not tell), values: {answer as text: sessions}, mean (number and scale: mean answer; boolean: share of true; category: null)}]}; metrics is empty without a YAML file", "analysis", None, "200")},
            "/campaigns/{id}/analysis/sessions/{communication_id}": {"get": op("One session's Deep Analysis values for a contact's 360 view, in the YAML's order: [{metric, value (null when the conversation does not tell or on error), error, computed_at}]; 404 when the session is not the campaign's", "analysis", None, "200")},
            "/tasks": {"get": op("Open operator tasks of HUMAN stages (oldest first); `?campaign=` filters", "tasks", None, "200")},
            "/tasks/{id}/claim": {"post": op("Claim a task as an operator: {\"operator\": \"ann\"}; 409 names who holds it", "tasks", Some("TaskClaim"), "200")},
            "/tasks/{id}/outcome": {"post": op("Record the outcome: {\"outcome\": \"PROMISE_TO_PAY\", \"results\": {…}} ends the session (OutcomeStatus = outcome) and AGGREGATION runs", "tasks", Some("TaskOutcome"), "204")},
            "/campaigns/{id}/stages": {
                "get": op("List the campaign's stages in order", "stages", None, "200"),
                "post": op("Add a stage. Channel settings are checked per channel (required and allowed fields); 422 lists every invalid field in `errors`", "stages", Some("Stage"), "201")
            },
            "/stages/{id}": {
                "get": op("Read a stage", "stages", None, "200"),
                "put": op("Replace a stage's definition", "stages", Some("Stage"), "200"),
                "delete": op("Delete a stage", "stages", None, "204")
            },
            "/agents": {
                "get": op("List AI agents; `?status=RUNNING` filters", "agents", None, "200"),
                "post": op("Create an AI agent", "agents", Some("Agent"), "201")
            },
            "/agents/{id}": {
                "get": op("Read an agent", "agents", None, "200"),
                "put": op("Replace an agent's definition", "agents", Some("Agent"), "200"),
                "delete": op("Delete an agent (409 while a stage uses it)", "agents", None, "204")
            },
            "/integrations": {
                "get": op("List integrations: settings and the names of the secrets that are set, never their values", "integrations", None, "200"),
                "post": op("Create an integration; settings and secrets are checked per kind", "integrations", Some("Integration"), "201")
            },
            "/integrations/{id}": {
                "get": op("Read an integration (secret names only)", "integrations", None, "200"),
                "put": op("Update name and settings; secrets sent replace the stored ones, secrets left out are kept", "integrations", Some("IntegrationUpdate"), "200"),
                "delete": op("Delete an integration (409 while a stage or agent uses it)", "integrations", None, "204")
            }
        },
        "components": {
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer", "description": "stg_… key from `stratagem tenant create`, `stratagem tenant key create` or POST /keys; the scheme is matched in any letter case"}},
            "responses": {"Problem": {"description": "RFC 9457 problem", "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}},
            "schemas": {
                "Problem": {"type": "object", "properties": {
                    "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"}, "detail": {"type": "string"},
                    "line": {"type": "integer"}, "column": {"type": "integer"}, "allowed": {"type": "array", "items": {"type": "string"}},
                    "errors": {"type": "array", "description": "422: every invalid field", "items": {"type": "object", "properties": {"field": {"type": "string"}, "message": {"type": "string"}}}}}},
                "NewKey": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}, "additionalProperties": false},
                "Campaign": {"type": "object", "required": ["name"], "additionalProperties": false, "properties": {
                    "name": {"type": "string"}, "description": {"type": "string"},
                    "llm_integration_id": {"type": ["string", "null"], "description": "An LLM integration: the OpenAI-compatible endpoint agents, result extraction and Deep Analysis use"},
                    "llm_model": {"type": ["string", "null"], "description": "The model on that endpoint; the integration's default_model if null"},
                    "result_fields": {"type": "array", "items": {"type": "object", "required": ["code", "name"], "properties": {"code": {"type": "string"}, "name": {"type": "string"}, "description": {"type": "string"}}}}}},
                "StatusChange": {"type": "object", "required": ["status"], "additionalProperties": false, "properties": {
                    "status": {"enum": ["CREATED", "CONFIGURED", "RUNNING", "STOPPED", "FINISHED", "ERROR"]}, "reason": {"type": "string"}}},
                "StrategySource": {"type": "object", "properties": {
                    "source": {"type": "string", "description": "Python source of one file"}, "file_name": {"type": "string", "default": "strategy.py"},
                    "files": {"type": "object", "additionalProperties": {"type": "string"}}, "entry": {"type": "string"}, "name": {"type": "string"}}},
                "ChannelSettings": {"type": "object", "additionalProperties": false, "description": "Which fields a channel requires and takes: EMAIL_NOTIFICATION integration_id*, email_subject*, email_template*, email_input_type; EMAIL_COMMUNICATION (agent*) email_subject*, email_template*, integration_id, agent_channel, email_input_type; HUMAN agent_role; INFOBIP (agent*) integration_id, agent_channel, start_phrase; MESSAGEBIRD_WHATSAPP (agent*) project_id*, version*, start_state*, integration_id; MESSAGEBIRD_WEBHOOK (agent*) integration_id, agent_channel; WHATSAPP start_state*, template_name*, integration_id; MOBILE_PUSH none (the agent needs a push integration); TELEGRAM (agent*) integration_id, agent_channel, start_phrase; SIP (agent*) integration_id; TWILIO (agent*) start_state*, integration_id; NO_COMMUNICATION none and no agent; SIMULATED none.", "properties": {
                    "integration_id": {"type": "string"}, "agent_channel": {"type": "string"}, "agent_role": {"type": "string"},
                    "email_subject": {"type": "string"}, "email_input_type": {"enum": ["DEFAULT", "HTML"]}, "email_template": {"type": "string"},
                    "start_phrase": {"type": "string"}, "start_state": {"type": "string"}, "project_id": {"type": "string"}, "version": {"type": "string"}, "template_name": {"type": "string"}}},
                "Channel": {"enum": ["EMAIL_NOTIFICATION", "EMAIL_COMMUNICATION", "HUMAN", "INFOBIP", "MESSAGEBIRD_WHATSAPP", "MESSAGEBIRD_WEBHOOK", "WHATSAPP", "MOBILE_PUSH", "TELEGRAM", "SIP", "TWILIO", "NO_COMMUNICATION", "SIMULATED"]},
                "Stage": {"type": "object", "required": ["name", "channel"], "additionalProperties": false, "properties": {
                    "name": {"type": "string", "description": "Unique in the campaign; strategies plan communications by stage name"}, "description": {"type": "string"},
                    "channel": {"$ref": "#/components/schemas/Channel"}, "agent_id": {"type": ["string", "null"]},
                    "settings": {"$ref": "#/components/schemas/ChannelSettings"},
                    "alternatives": {"type": "array", "maxItems": 10, "description": "A/B alternatives: each takes `weight` percent of the contacts (chosen per contact, stably); weights add up to at most 100, the rest get the default", "items": {
                        "type": "object", "required": ["label", "weight", "channel"], "additionalProperties": false, "properties": {
                            "label": {"type": "string"}, "weight": {"type": "integer", "minimum": 1, "maximum": 100},
                            "channel": {"$ref": "#/components/schemas/Channel"}, "agent_id": {"type": ["string", "null"]}, "settings": {"$ref": "#/components/schemas/ChannelSettings"}}}}}},
                "Agent": {"type": "object", "required": ["name"], "additionalProperties": false, "properties": {
                    "name": {"type": "string"}, "description": {"type": "string"}, "instructions": {"type": "string", "description": "System prompt"},
                    "llm_model": {"type": ["string", "null"]}, "status": {"enum": ["RUNNING", "STOPPED"]},
                    "channels": {"type": "array", "items": {"type": "object", "required": ["name", "integration_id"], "properties": {"name": {"type": "string"}, "integration_id": {"type": "string"}}}},
                    "push_integration_id": {"type": ["string", "null"], "description": "FCM integration for Mobile Push stages"}}},
                "Integration": {"type": "object", "required": ["kind", "name"], "additionalProperties": false, "description": "Settings (readable) and secrets (write-only) per kind, * required: SMTP host*, port*, from_address*, username, tls / password; TELEGRAM bot_username, api_base_url / bot_token*, webhook_secret; WHATSAPP_META phone_number_id*, business_account_id, api_base_url / access_token*, app_secret*; MESSAGEBIRD workspace_id*, channel_id*, api_base_url / access_key*, signing_key; INFOBIP api_base_url*, sender* / api_key*; TWILIO account_sid*, from_number*, api_base_url / auth_token*; SIP api_base_url*, caller_id*, trunk / api_key*; FCM project_id*, api_base_url / service_account_json*; LLM api_base_url*, default_model / api_key.", "properties": {
                    "kind": {"enum": ["SMTP", "TELEGRAM", "WHATSAPP_META", "MESSAGEBIRD", "INFOBIP", "TWILIO", "SIP", "FCM", "LLM"]}, "name": {"type": "string"},
                    "settings": {"type": "object"}, "secrets": {"type": "object", "additionalProperties": {"type": "string"}}}},
                "IntegrationUpdate": {"type": "object", "required": ["name"], "additionalProperties": false, "properties": {
                    "name": {"type": "string"}, "settings": {"type": "object"}, "secrets": {"type": "object", "description": "Only the secrets to change"}}},
                "AnalysisStart": {"type": "object", "required": ["mode"], "additionalProperties": false, "properties": {"mode": {"enum": ["RECALCULATE", "CONTINUE"]}}},
                "AnalysisRun": {"type": "object", "properties": {
                    "id": {"type": "string"}, "mode": {"enum": ["RECALCULATE", "CONTINUE"]}, "status": {"enum": ["PROGRESS", "DONE", "STOPPED"]},
                    "metrics": {"type": "array", "items": {"type": "string"}, "description": "Codes of the metrics the run computes"},
                    "total": {"type": "integer", "description": "Values to compute: one per session and metric"},
                    "done": {"type": "integer", "description": "Values written, errors included"}, "failed": {"type": "integer", "description": "Of those, errors"},
                    "last_error": {"type": ["string", "null"], "description": "Why the last batch could not finish (LLM down, slow, no LLM); cleared by one that does"},
                    "created_at": {"type": "string", "format": "date-time"}, "finished_at": {"type": ["string", "null"], "format": "date-time"}}},
                "TaskClaim": {"type": "object", "required": ["operator"], "additionalProperties": false, "properties": {"operator": {"type": "string"}}},
                "TaskOutcome": {"type": "object", "required": ["outcome"], "additionalProperties": false, "properties": {
                    "outcome": {"type": "string", "description": "letters, digits, _; becomes OutcomeStatus"}, "results": {"type": "object"}}},
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
