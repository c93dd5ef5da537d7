//! The OpenAPI 3.1 document (public) and an interactive page that reads it
//! and sends requests with the caller's key.
//!
//! The document is exact, so that standard tools can test the API with it:
//! every route of the `/api` router is an operation (a test compares the
//! two), every `{parameter}` of a path is declared from the path itself,
//! every status a handler can answer is listed, and the request schemas
//! refuse what the service refuses — a blank name, a fractional weight,
//! ERROR without a reason, a field no type has. What a schema cannot say
//! (a reference to an agent that does not exist, a setting a channel
//! requires, two alternatives with one label) is a 422 naming the field.
//! `make test` runs schemathesis against the running service with it
//! (host/api/tests/schemathesis).

use axum::response::Html;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Map, Value};

use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/openapi.json", get(|| async { Json(document()) })).route("/docs", get(|| async { Html(PAGE) }))
}

/// The characters `str::trim` removes (Unicode White_Space).
const WHITESPACE_RANGES: &[(char, char)] = &[
    ('\u{9}', '\u{D}'),
    ('\u{20}', '\u{20}'),
    ('\u{85}', '\u{85}'),
    ('\u{A0}', '\u{A0}'),
    ('\u{1680}', '\u{1680}'),
    ('\u{2000}', '\u{200A}'),
    ('\u{2028}', '\u{2029}'),
    ('\u{202F}', '\u{202F}'),
    ('\u{205F}', '\u{205F}'),
    ('\u{3000}', '\u{3000}'),
];

/// Those characters as the body of a regex class, in `\uXXXX` escapes
/// that ECMA-262 and Python read alike.
fn whitespace_class() -> String {
    WHITESPACE_RANGES
        .iter()
        .map(|&(low, high)| match low == high {
            true => format!("\\u{:04X}", low as u32),
            false => format!("\\u{:04X}-\\u{:04X}", low as u32, high as u32),
        })
        .collect()
}

/// A name: not blank, at most `max` characters as sent. The pattern has
/// no anchors, so every regex dialect reads it alike.
fn name(max: u32) -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": max, "pattern": format!("[^{}]", whitespace_class()),
           "description": format!("1 to {max} characters, not only white space; stored trimmed")})
}

/// A component's bytes; the content type is not checked (application/wasm
/// or application/octet-stream).
fn component() -> Value {
    json!({"type": "string", "format": "binary", "description": "the .wasm component"})
}

/// Letters, digits and `_` only, at least one.
fn code() -> Value {
    json!({"type": "string", "minLength": 1, "not": {"pattern": "[^A-Za-z0-9_]"}})
}

fn schema(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn nullable(schema: Value) -> Value {
    json!({"oneOf": [schema, {"type": "null"}]})
}

/// One operation, built up by the methods below.
struct Op(Value);

/// Request bodies: JSON, or a file in one of these media types.
enum Body {
    Json(&'static str),
    File(&'static [&'static str], Value),
}

impl Op {
    fn new(id: &str, tag: &str, summary: &str) -> Self {
        // Every call with a key: 401 for a key that is not one (or a
        // deleted tenant's), 403 for a disabled tenant's.
        Op(json!({"operationId": id, "tags": [tag], "summary": summary, "parameters": [], "responses": {
            "401": {"$ref": "#/components/responses/Problem"},
            "403": {"$ref": "#/components/responses/Problem"}
        }}))
    }

    /// No API key (the document and its page).
    fn public(mut self) -> Self {
        self.0["security"] = json!([]);
        if let Some(responses) = self.0["responses"].as_object_mut() {
            responses.remove("401");
            responses.remove("403");
        }
        self
    }

    /// The success status, its description and JSON body schema.
    fn ok(mut self, status: u16, description: &str, body: Option<Value>) -> Self {
        let mut response = json!({"description": description});
        if let Some(schema) = body {
            response["content"] = json!({"application/json": {"schema": schema}});
        }
        self.0["responses"][status.to_string()] = response;
        self
    }

    /// A success whose body is not JSON.
    fn ok_as(mut self, status: u16, description: &str, media_types: &[&str]) -> Self {
        let content: Map<String, Value> = media_types.iter().map(|m| (m.to_string(), json!({"schema": {"type": "string"}}))).collect();
        self.0["responses"][status.to_string()] = json!({"description": description, "content": content});
        self
    }

    /// Problem statuses besides 401: 400 a malformed request, 404 an id
    /// that is not the tenant's, 408 a body that stopped arriving, 409 a
    /// conflict with the current state, 413 a body over the limit, 422
    /// content the service cannot use, 429 a node at its limit.
    fn errors(mut self, statuses: &[u16]) -> Self {
        for status in statuses {
            self.0["responses"][status.to_string()] = json!({"$ref": "#/components/responses/Problem"});
        }
        self
    }

    fn body(mut self, body: Body) -> Self {
        self.0["requestBody"] = match body {
            Body::Json(name) => json!({"required": true, "content": {"application/json": {"schema": schema(name)}}}),
            Body::File(media_types, schema) => {
                let content: Map<String, Value> = media_types.iter().map(|m| (m.to_string(), json!({"schema": schema.clone()}))).collect();
                json!({"required": true, "content": content})
            }
        };
        // Every body can be too large or too slow.
        self.errors(&[408, 413])
    }

    /// A query parameter; a query the handler does not know is a 400.
    fn query(mut self, name: &str, required: bool, schema: Value, description: &str) -> Self {
        let mut parameter = json!({"name": name, "in": "query", "required": required, "schema": schema});
        if !description.is_empty() {
            parameter["description"] = json!(description);
        }
        self.0["parameters"].as_array_mut().expect("parameters").push(parameter);
        self.errors(&[400])
    }
}

/// The operations, by path and method; path parameters are added from
/// the path by `document`.
fn operations() -> Vec<(&'static str, &'static str, Op)> {
    use Body::{File, Json};
    let contact_file = || json!({"type": "string", "description": "The contact file: CSV with a header row, or JSON Lines of Contact"});
    let file_media: &'static [&'static str] = &["text/csv", "application/x-ndjson"];
    let file_format = || json!({"enum": ["csv", "jsonl", "ndjson", "json"], "description": "detected from the content type, file name and body when left out"});
    let time_zones: Vec<&str> = chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name()).collect();
    vec![
        ("/openapi.json", "get", Op::new("openApiDocument", "docs", "This document").public().ok(200, "The OpenAPI 3.1 document", Some(json!({"type": "object"})))),
        ("/docs", "get", Op::new("docsPage", "docs", "A page that lists the operations and sends requests with a key").public().ok_as(200, "HTML", &["text/html"])),
        ("/keys", "get", Op::new("listKeys", "keys", "List the tenant's API keys (secrets are never returned)").ok(200, "The keys", Some(json!({"type": "array", "items": schema("ApiKey")})))),
        ("/keys", "post", Op::new("createKey", "keys", "Create an API key; the secret is in this response only").body(Json("NewKey")).ok(201, "The key and its secret", Some(schema("CreatedKey"))).errors(&[400])),
        ("/keys/{id}", "delete", Op::new("revokeKey", "keys", "Revoke an API key. The tenant's last active key cannot be revoked (409 `/problems/last-api-key`): create another key first").ok(204, "Revoked", None).errors(&[404, 409])),
        ("/campaigns", "get", Op::new("listCampaigns", "campaigns", "List campaigns").query("status", false, schema("CampaignStatus"), "only campaigns in this status").ok(200, "The campaigns", Some(json!({"type": "array", "items": schema("Campaign")})))),
        ("/campaigns", "post", Op::new("createCampaign", "campaigns", "Create a campaign (status CREATED)").body(Json("CampaignBody")).ok(201, "The campaign", Some(schema("Campaign"))).errors(&[400, 422])),
        ("/campaigns/{id}", "get", Op::new("readCampaign", "campaigns", "Read a campaign").ok(200, "The campaign", Some(schema("Campaign"))).errors(&[404])),
        ("/campaigns/{id}", "put", Op::new("updateCampaign", "campaigns", "Update name, description, LLM and result fields; validated as on create").body(Json("CampaignBody")).ok(200, "The campaign", Some(schema("Campaign"))).errors(&[400, 404, 422])),
        ("/campaigns/{id}/status", "post", Op::new("setCampaignStatus", "campaigns", "Move through CREATED → CONFIGURED → RUNNING ⇄ STOPPED → FINISHED (or ERROR with a reason); 409 names the allowed statuses in `allowed`").body(Json("StatusChange")).ok(200, "The campaign", Some(schema("Campaign"))).errors(&[400, 404, 409])),
        ("/campaigns/{id}/strategies", "get", Op::new("listStrategies", "strategies", "List the campaign's strategies").ok(200, "The strategies", Some(json!({"type": "array", "items": {"type": "object"}}))).errors(&[404])),
        ("/campaigns/{id}/strategies", "post", Op::new("uploadStrategy", "strategies", "Upload a strategy; it builds in the background (status building → ready | failed with line). 422 when the sources cannot be built: an entry that is not among the files, a file name that is not a module path, sources over the size limit").body(Json("StrategyUpload")).ok(202, "The strategy, building", Some(json!({"type": "object"}))).errors(&[400, 404, 409, 422])),
        ("/campaigns/{id}/strategies/component", "post", Op::new("uploadStrategyComponent", "strategies", "Upload a prebuilt strategy component (the body is the .wasm, at most 64 MiB) built against wit/; it is checked against the contract and compiled in the background. 422 when the body is not a WebAssembly component")
            .query("name", true, name(200), "").query("type", true, schema("StrategyType"), "")
            .body(File(&["application/octet-stream"], component())).ok(202, "The strategy, building", Some(json!({"type": "object"}))).errors(&[404, 409, 422])),
        ("/strategies/{id}", "get", Op::new("readStrategy", "strategies", "Read a strategy: latest version's code, build status and error, active version").ok(200, "The strategy", Some(json!({"type": "object"}))).errors(&[404])),
        ("/strategies/{id}", "put", Op::new("editStrategy", "strategies", "Edit: upload a new version (and rename it with `name`); validated as on upload").body(Json("StrategyEdit")).ok(202, "The strategy, building", Some(json!({"type": "object"}))).errors(&[400, 404, 409, 422])),
        ("/strategies/{id}", "delete", Op::new("deleteStrategy", "strategies", "Delete a strategy and its versions").ok(204, "Deleted", None).errors(&[404])),
        ("/strategies/{id}/component", "put", Op::new("editStrategyComponent", "strategies", "Edit with a prebuilt component: a new version. 409 when `type` is not the strategy's")
            .query("name", false, name(200), "").query("type", false, schema("StrategyType"), "must be the strategy's own type")
            .body(File(&["application/octet-stream"], component())).ok(202, "The strategy, building", Some(json!({"type": "object"}))).errors(&[404, 409, 422])),
        ("/campaigns/{id}/imports", "post", Op::new("importContacts", "contacts", &format!("Import contacts from CSV or JSON Lines (the body is the file, at most 512 MiB); runs DATA_LOAD per row. 422 with line/column for a file that cannot be read at all; 409 when the campaign is FINISHED; 429 when the node already has {} imports in progress", stratagem_services::imports::IMPORTS_AT_ONCE))
            .query("format", false, file_format(), "").query("file_name", false, json!({"type": "string"}), "")
            .body(File(file_media, contact_file())).ok(202, "The import job", Some(json!({"type": "object"}))).errors(&[404, 409, 422, 429])),
        ("/imports/{id}", "get", Op::new("readImport", "contacts", "Import job: progress and report (accepted, updated, rejected with line and reason, strategy errors with traceback). The counts are of committed rows; `status` is running, done or interrupted (its server stopped, or an error): then `interrupted_reason` and `detail` say why and what was written").ok(200, "The import job", Some(json!({"type": "object"}))).errors(&[404])),
        ("/campaigns/{id}/contacts", "get", Op::new("listContacts", "contacts", "Contacts with current stage, communication count and outcome")
            .query("stage", false, json!({"type": "string"}), "only contacts at this stage")
            .query("q", false, json!({"type": "string"}), "substring of object id, external id, name, email or phone")
            .query("limit", false, json!({"type": "integer", "minimum": 1, "maximum": 1000, "default": 50}), "")
            .query("offset", false, json!({"type": "integer", "minimum": 0, "maximum": i64::MAX, "default": 0}), "")
            .ok(200, "A page of contacts: {total, limit, offset, contacts}", Some(json!({"type": "object", "required": ["total", "limit", "offset", "contacts"]}))).errors(&[404])),
        ("/campaigns/{id}/contacts/export", "get", Op::new("exportContacts", "contacts", &format!("Download contacts as CSV (cells starting with = + - @ are escaped) or JSON Lines, read in one snapshot; 429 when {} exports are already in progress on the node", stratagem_services::exports::EXPORTS_AT_ONCE))
            .query("format", false, json!({"enum": ["csv", "jsonl"], "default": "csv"}), "")
            .ok_as(200, "The contacts", &["text/csv", "application/x-ndjson"]).errors(&[404, 429])),
        ("/campaigns/{id}/contacts/{object_id}", "get", Op::new("readContact", "contacts", "Contact detail: parameters, results, communications, last strategy error, and `sessions` (per started communication: channel, A/B label, session_results such as OutcomeStatus and FailureDetail, ended_at, and `messages`: the conversation transcript with role AGENT or CONTACT), and `result_view` (360 View > Results: ResultFlag, ResultDatetime, then each campaign result field with code, name, description and value)").ok(200, "The contact", Some(json!({"type": "object"}))).errors(&[404])),
        ("/campaigns/{id}/simulate", "post", Op::new("simulateCampaign", "campaigns", &format!("Dry run: the campaign's stages and active strategies in virtual time over the contact file in the body (CSV or JSON Lines, as for imports), every channel simulated, contacts answering by persona. Runs in a throwaway database: nothing is sent, the campaign is unchanged. Returns the timeline and final outcome distribution. Limits: {}; 409 without a ready DATA_LOAD strategy; 422 for a file that cannot be read; 429 when a run is already going on", crate::simulations::describe()))
            .query("personas", false, json!({"type": "string"}), "outcome weights, e.g. NO_RESPONSE=35,PAID=20: OUTCOME=WEIGHT separated by commas, outcomes of letters, digits and _, whole weights, at least one above 0 (422 otherwise)")
            .query("days", false, json!({"type": "integer", "minimum": 1, "maximum": stratagem_services::dry_run::MAX_DAYS, "default": 30}), "virtual days to run")
            .query("start", false, json!({"type": "string", "format": "date-time"}), "virtual start; now by default")
            .query("format", false, file_format(), "").query("file_name", false, json!({"type": "string"}), "")
            .body(File(file_media, contact_file())).ok(200, "The simulation report", Some(json!({"type": "object"}))).errors(&[404, 409, 422, 429])),
        ("/email/preview", "post", Op::new("previewEmail", "stages", "Render an email template as a contact gets it → {subject, html, text}. Placeholders: {{name}}, {{email}}, {{phone}}, {{object_id}}, {{external_id}}, {{current_stage}}, {{parameters.KEY}}, {{results.KEY}}; without a contact, a sample one shows [KEY] for parameters. 422 gives the line and column of a bad placeholder").body(Json("EmailPreview")).ok(200, "The rendered email", Some(json!({"type": "object", "required": ["subject", "html", "text"]}))).errors(&[400, 422])),
        ("/campaigns/{id}/analytics", "get", Op::new("readAnalytics", "analytics", "The campaign's YAML analytics file, parsed: depth_days and metrics (404 when none is uploaded; 422 when the stored file no longer parses)").ok(200, "The parsed definition", Some(json!({"type": "object"}))).errors(&[404, 422])),
        ("/campaigns/{id}/analytics", "put", Op::new("uploadAnalytics", "analytics", "Upload the YAML analytics file (the body is the file, UTF-8, at most 1 MiB). 422 lists every problem in `errors` with line and column; a rejected file leaves the previous one in place. Format: examples/analytics/debt-collection.yaml")
            .body(File(&["application/yaml"], json!({"type": "string"}))).ok(200, "The parsed definition", Some(json!({"type": "object"}))).errors(&[400, 404, 422])),
        ("/campaigns/{id}/analytics/overview", "get", Op::new("analyticsOverview", "analytics", "Metrics overview. total_contacts: the campaign's contacts. processed_contacts: contacts with a final result or with a communication whose session ended (including MISSED). completed_contacts: ResultFlag true or false. successful_contacts: ResultFlag true. completion_rate = completed / total; success_rate = successful / completed (0 when the divisor is 0). by_stage: contacts per current stage with how many are successful. by_alternative: sent communications per stage and A/B label (`default` for the stage's own settings) with how many belong to successful contacts").ok(200, "The overview", Some(json!({"type": "object"}))).errors(&[404])),
        ("/campaigns/{id}/analytics/distribution", "get", Op::new("analyticsDistribution", "analytics", "Stage or Status Distribution by Period: the campaign's communications counted by stage name (by=stage) or status (by=status), bucketed by the local day, week (from Monday) or month of their start in the time zone `tz`. 422 when `from` is after `to`, or the range has more than 400 buckets")
            .query("by", true, json!({"enum": ["stage", "status"]}), "")
            .query("period", false, json!({"enum": ["day", "week", "month"], "default": "day"}), "")
            .query("from", false, json!({"type": "string", "format": "date"}), "default: 29 days before `to`")
            .query("to", false, json!({"type": "string", "format": "date"}), "default: today in `tz`; inclusive")
            .query("tz", false, json!({"enum": time_zones, "default": "UTC"}), "IANA time zone, e.g. Europe/Berlin")
            .ok(200, "{by, period, tz, from, to, buckets: [{start, counts: {key: n}}]}", Some(json!({"type": "object", "required": ["by", "period", "tz", "from", "to", "buckets"]}))).errors(&[404, 422])),
        ("/campaigns/{id}/analytics/yaml", "get", Op::new("downloadAnalytics", "analytics", "Download the YAML analytics file as uploaded").ok_as(200, "The file", &["application/yaml"]).errors(&[404])),
        ("/campaigns/{id}/analysis/runs", "post", Op::new("startAnalysis", "analysis", "Start a Deep Analysis run over the conversations (sessions with a transcript) that ended within the YAML's depth_days. RECALCULATE computes every metric of the current YAML, replacing earlier values as it goes; CONTINUE computes only the (session, metric) pairs without a value, i.e. metrics new in an updated YAML and sessions a stopped run left (a stored error counts as computed; RECALCULATE asks again). The engine works it in batches: one LLM call per session with all its pending metrics; an invalid answer is stored as that metric's error and the run goes on; an LLM that is down or slow (no answer within the engine's lease, at most 60 s) sets `last_error` and the session is asked again after a pause of up to 10 s, nothing lost. A run with nothing to compute is DONE at once. 409 while a run is in progress; 422 without a YAML analytics file or an LLM integration, saying how to set them up")
            .body(Json("AnalysisStart")).ok(202, "The run", Some(schema("AnalysisRun"))).errors(&[400, 404, 409, 422])),
        ("/campaigns/{id}/analysis/runs/latest", "get", Op::new("latestAnalysis", "analysis", "The campaign's most recent Deep Analysis run; 404 when it never had one").ok(200, "The run", Some(schema("AnalysisRun"))).errors(&[404])),
        ("/campaigns/{id}/analysis/runs/{run_id}/stop", "post", Op::new("stopAnalysis", "analysis", "Stop a run in progress: status STOPPED, no further batch starts and the batch in flight writes nothing; values written so far stay. 409 when the run is not in progress").ok(200, "The run", Some(schema("AnalysisRun"))).errors(&[404, 409])),
        ("/campaigns/{id}/analysis/results", "get", Op::new("analysisResults", "analysis", "Deep Analysis results over the stored values of the current YAML's metrics: {metrics: [{code, name, description, type (and scale | categories | range), display, sessions (valid answers), errors (invalid or failed answers), unanswered (the conversation does not tell), values: {answer as text: sessions}, mean (number and scale: mean answer; boolean: share of true; category: null)}]}; metrics is empty without a YAML file").ok(200, "The results", Some(json!({"type": "object", "required": ["metrics"]}))).errors(&[404, 422])),
        ("/campaigns/{id}/analysis/sessions/{communication_id}", "get", Op::new("sessionAnalysis", "analysis", "One session's Deep Analysis values for a contact's 360 view, in the YAML's order: [{metric, value (null when the conversation does not tell or on error), error, computed_at}]; 404 when the session is not the campaign's").ok(200, "The values", Some(json!({"type": "array"}))).errors(&[404, 422])),
        ("/tasks", "get", Op::new("listTasks", "tasks", "Open operator tasks of HUMAN stages (oldest first)").query("campaign", false, json!({"type": "string"}), "only this campaign's tasks").ok(200, "The tasks", Some(json!({"type": "array"})))),
        ("/tasks/{id}/claim", "post", Op::new("claimTask", "tasks", "Claim a task as an operator; 409 names who holds it").body(Json("TaskClaim")).ok(200, "The task", Some(json!({"type": "object"}))).errors(&[400, 404, 409])),
        ("/tasks/{id}/outcome", "post", Op::new("recordTaskOutcome", "tasks", "Record the outcome: {\"outcome\": \"PROMISE_TO_PAY\", \"results\": {…}} ends the session (OutcomeStatus = outcome) and AGGREGATION runs").body(Json("TaskOutcome")).ok(204, "Recorded", None).errors(&[400, 404, 409])),
        ("/campaigns/{id}/stages", "get", Op::new("listStages", "stages", "List the campaign's stages in order").ok(200, "The stages", Some(json!({"type": "array", "items": schema("Stage")}))).errors(&[404])),
        ("/campaigns/{id}/stages", "post", Op::new("createStage", "stages", "Add a stage. Channel settings are checked per channel (required and allowed fields); 422 lists every invalid field in `errors`; 409 when the campaign has a stage of that name").body(Json("StageDefinition")).ok(201, "The stage", Some(schema("Stage"))).errors(&[400, 404, 409, 422])),
        ("/stages/{id}", "get", Op::new("readStage", "stages", "Read a stage").ok(200, "The stage", Some(schema("Stage"))).errors(&[404])),
        ("/stages/{id}", "put", Op::new("updateStage", "stages", "Replace a stage's definition; validated as on create (409 when another stage of the campaign has the name)").body(Json("StageDefinition")).ok(200, "The stage", Some(schema("Stage"))).errors(&[400, 404, 409, 422])),
        ("/stages/{id}", "delete", Op::new("deleteStage", "stages", "Delete a stage").ok(204, "Deleted", None).errors(&[404, 409])),
        ("/agents", "get", Op::new("listAgents", "agents", "List AI agents").query("status", false, schema("AgentStatus"), "only agents in this status").ok(200, "The agents", Some(json!({"type": "array", "items": schema("Agent")})))),
        ("/agents", "post", Op::new("createAgent", "agents", "Create an AI agent; 422 names integrations that do not exist or do not fit").body(Json("AgentDefinition")).ok(201, "The agent", Some(schema("Agent"))).errors(&[400, 422])),
        ("/agents/{id}", "get", Op::new("readAgent", "agents", "Read an agent").ok(200, "The agent", Some(schema("Agent"))).errors(&[404])),
        ("/agents/{id}", "put", Op::new("updateAgent", "agents", "Replace an agent's definition; validated as on create").body(Json("AgentDefinition")).ok(200, "The agent", Some(schema("Agent"))).errors(&[400, 404, 422])),
        ("/agents/{id}", "delete", Op::new("deleteAgent", "agents", "Delete an agent (409 while a stage uses it)").ok(204, "Deleted", None).errors(&[404, 409])),
        ("/integrations", "get", Op::new("listIntegrations", "integrations", "List integrations: settings and the names of the secrets that are set, never their values").ok(200, "The integrations", Some(json!({"type": "array", "items": schema("Integration")})))),
        ("/integrations", "post", Op::new("createIntegration", "integrations", "Create an integration; settings and secrets are checked per kind (422 lists every problem)").body(Json("IntegrationCreate")).ok(201, "The integration", Some(schema("Integration"))).errors(&[400, 422])),
        ("/integrations/{id}", "get", Op::new("readIntegration", "integrations", "Read an integration (secret names only)").ok(200, "The integration", Some(schema("Integration"))).errors(&[404])),
        ("/integrations/{id}", "put", Op::new("updateIntegration", "integrations", "Update name and settings; secrets sent replace the stored ones, secrets left out are kept; validated as on create").body(Json("IntegrationUpdate")).ok(200, "The integration", Some(schema("Integration"))).errors(&[400, 404, 422])),
        ("/integrations/{id}", "delete", Op::new("deleteIntegration", "integrations", "Delete an integration (409 while a stage or agent uses it)").ok(204, "Deleted", None).errors(&[404, 409])),
    ]
}

/// Every `{name}` of a path: a required path parameter.
fn path_parameters(path: &str) -> Vec<Value> {
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string", "minLength": 1}}))
        .collect()
}

pub fn document() -> Value {
    let mut paths = Map::new();
    for (path, method, Op(mut operation)) in operations() {
        let mut parameters = path_parameters(path);
        parameters.extend(operation["parameters"].as_array().cloned().unwrap_or_default());
        if parameters.is_empty() {
            operation.as_object_mut().map(|o| o.remove("parameters"));
        } else {
            operation["parameters"] = Value::Array(parameters);
        }
        let item = paths.entry(path).or_insert_with(|| json!({}));
        item[method] = operation;
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
            "responses": {"Problem": {"description": "RFC 9457 problem", "content": {"application/problem+json": {"schema": schema("Problem")}}}},
            "schemas": schemas(),
        }
    })
}

fn names<T: Copy>(all: &[T], name: impl Fn(T) -> &'static str) -> Value {
    json!({"enum": all.iter().map(|value| name(*value)).collect::<Vec<_>>()})
}

fn schemas() -> Value {
    use stratagem_domain::{AgentStatus, CampaignStatus, Channel, CommunicationStatus, IntegrationKind, StrategyType};
    let string = || json!({"type": "string"});
    let optional_string = || json!({"type": ["string", "null"]});
    let object = || json!({"type": "object"});
    let date_time = || json!({"type": "string", "format": "date-time"});
    let optional_date_time = || json!({"type": ["string", "null"], "format": "date-time"});
    // Sources: `source` (with `file_name`) or `files` with an `entry`.
    let source_properties = json!({
        "source": {"type": ["string", "null"], "description": "Python source of one file"},
        "file_name": {"type": ["string", "null"], "description": "its name; strategy.py if left out"},
        "files": {"type": ["object", "null"], "additionalProperties": {"type": "string"}, "description": "module path (e.g. pkg/util.py) → source"},
        "entry": {"type": ["string", "null"], "description": "the main file among `files`"}
    });
    let one_source = json!([
        {"required": ["source"], "properties": {"source": {"type": "string"}, "files": {"type": "null"}}},
        {"required": ["files", "entry"], "properties": {"files": {"type": "object"}, "entry": {"type": "string"}, "source": {"type": "null"}}}
    ]);
    let with = |mut properties: Value, extra: Value| {
        for (key, value) in extra.as_object().cloned().unwrap_or_default() {
            properties[key] = value;
        }
        properties
    };
    json!({
        "Problem": {"type": "object", "required": ["type", "title", "status", "detail"], "properties": {
            "type": string(), "title": string(), "status": {"type": "integer"}, "detail": string(),
            "line": {"type": "integer"}, "column": {"type": "integer"}, "allowed": {"type": "array", "items": string()},
            "errors": {"type": "array", "description": "422: every invalid field", "items": {"type": "object", "required": ["field", "message"], "properties": {
                "field": string(), "message": string(), "line": {"type": "integer"}, "column": {"type": "integer"}}}}}},
        "NewKey": {"type": "object", "required": ["name"], "additionalProperties": false, "properties": {"name": name(200)}},
        "ApiKey": {"type": "object", "required": ["id", "name", "created_at", "revoked_at"], "properties": {
            "id": string(), "name": string(), "created_at": date_time(), "revoked_at": optional_date_time()}},
        "CreatedKey": {"type": "object", "required": ["id", "name", "created_at", "key"], "properties": {
            "id": string(), "name": string(), "created_at": date_time(), "revoked_at": optional_date_time(), "key": {"type": "string", "description": "the secret: send it as `Authorization: Bearer …`"}}},
        "CampaignStatus": names(&CampaignStatus::ALL, CampaignStatus::as_str),
        "ResultField": {"type": "object", "required": ["code", "name"], "additionalProperties": false, "properties": {
            "code": {"allOf": [code(), {"not": {"enum": ["ResultFlag", "ResultDatetime"]}}], "description": "letters, digits and _; unique in the campaign; not a default field (ResultFlag, ResultDatetime)"},
            "name": string(), "description": string()}},
        "CampaignBody": {"type": "object", "required": ["name"], "additionalProperties": false, "properties": {
            "name": name(200), "description": string(),
            "llm_integration_id": {"type": ["string", "null"], "description": "An LLM integration: the OpenAI-compatible endpoint agents, result extraction and Deep Analysis use"},
            "llm_model": {"type": ["string", "null"], "description": "The model on that endpoint; the integration's default_model if null"},
            "result_fields": {"type": "array", "items": schema("ResultField")}}},
        "Campaign": {"type": "object", "required": ["id", "name", "description", "status", "error_reason", "llm_integration_id", "llm_model", "result_fields", "created_at", "updated_at"], "properties": {
            "id": string(), "name": string(), "description": string(), "status": schema("CampaignStatus"), "error_reason": optional_string(),
            "llm_integration_id": optional_string(), "llm_model": optional_string(), "result_fields": {"type": "array", "items": schema("ResultField")},
            "created_at": date_time(), "updated_at": date_time()}},
        "StatusChange": {"type": "object", "required": ["status"], "additionalProperties": false, "properties": {
            "status": schema("CampaignStatus"), "reason": {"type": ["string", "null"], "description": "why: required (not empty) for ERROR"}},
            "if": {"properties": {"status": {"const": "ERROR"}}}, "then": {"required": ["reason"], "properties": {"reason": {"type": "string", "minLength": 1}}}},
        "StrategyType": names(&[StrategyType::DataLoad, StrategyType::Aggregation, StrategyType::ContactAnswer], StrategyType::as_str),
        "StrategyUpload": {"type": "object", "required": ["name", "type"], "additionalProperties": false,
            "properties": with(source_properties.clone(), json!({"name": name(200), "type": schema("StrategyType")})), "oneOf": one_source.clone()},
        "StrategyEdit": {"type": "object", "additionalProperties": false,
            "properties": with(source_properties, json!({"name": nullable(name(200))})), "oneOf": one_source},
        "Channel": names(&Channel::ALL, Channel::as_str),
        "EmailInputType": {"enum": ["DEFAULT", "HTML"]},
        "ChannelSettings": {"type": "object", "additionalProperties": false, "description": "Which fields a channel requires and takes (422 names a missing or foreign one): EMAIL_NOTIFICATION integration_id*, email_subject*, email_template*, email_input_type; EMAIL_COMMUNICATION (agent*) email_subject*, email_template*, integration_id, agent_channel, email_input_type; HUMAN agent_role; INFOBIP (agent*) integration_id, agent_channel, start_phrase; MESSAGEBIRD_WHATSAPP (agent*) project_id*, version*, start_state*, integration_id; MESSAGEBIRD_WEBHOOK (agent*) integration_id, agent_channel; WHATSAPP start_state*, template_name*, integration_id; MOBILE_PUSH none (the agent needs a push integration); TELEGRAM (agent*) integration_id, agent_channel, start_phrase; SIP (agent*) integration_id; TWILIO (agent*) start_state*, integration_id; NO_COMMUNICATION none and no agent; SIMULATED none.", "properties": {
            "integration_id": optional_string(), "agent_channel": optional_string(), "agent_role": optional_string(),
            "email_subject": optional_string(), "email_input_type": nullable(schema("EmailInputType")), "email_template": optional_string(),
            "start_phrase": optional_string(), "start_state": optional_string(), "project_id": optional_string(), "version": optional_string(), "template_name": optional_string()}},
        "Alternative": {"type": "object", "required": ["label", "weight", "channel"], "additionalProperties": false, "properties": {
            "label": {"allOf": [name(100)], "description": "unique in the stage, and not `default`"},
            "weight": {"type": "integer", "minimum": 1, "maximum": stratagem_domain::stage::TOTAL_WEIGHT, "description": "percent of the contacts"},
            "channel": schema("Channel"), "agent_id": optional_string(), "settings": schema("ChannelSettings")}},
        "StageDefinition": {"type": "object", "required": ["name", "channel"], "additionalProperties": false, "properties": {
            "name": {"allOf": [name(200)], "description": "Unique in the campaign; strategies plan communications by stage name"},
            "description": {"type": "string", "maxLength": 2000},
            "channel": schema("Channel"), "agent_id": optional_string(), "settings": schema("ChannelSettings"),
            "alternatives": {"type": "array", "maxItems": 10, "items": schema("Alternative"), "description": "A/B alternatives: each takes `weight` percent of the contacts (chosen per contact, stably); weights add up to at most 100, the rest get the default"}}},
        "Stage": {"type": "object", "required": ["id", "campaign_id", "position", "name", "description", "channel", "settings", "alternatives", "created_at", "updated_at"], "properties": {
            "id": string(), "campaign_id": string(), "position": {"type": "integer"}, "name": string(), "description": string(), "channel": schema("Channel"),
            "agent_id": optional_string(), "settings": object(), "alternatives": {"type": "array"}, "created_at": date_time(), "updated_at": date_time()}},
        "AgentStatus": names(&[AgentStatus::Running, AgentStatus::Stopped], AgentStatus::as_str),
        "AgentChannel": {"type": "object", "required": ["name", "integration_id"], "additionalProperties": false, "properties": {
            "name": {"allOf": [name(100)], "description": "unique in the agent"}, "integration_id": string()}},
        "AgentDefinition": {"type": "object", "required": ["name"], "additionalProperties": false, "properties": {
            "name": name(200), "description": string(), "instructions": {"type": "string", "description": "System prompt, at most 64 KiB"},
            "llm_model": optional_string(), "status": schema("AgentStatus"),
            "channels": {"type": "array", "items": schema("AgentChannel")},
            "push_integration_id": {"type": ["string", "null"], "description": "FCM integration for Mobile Push stages"}}},
        "Agent": {"type": "object", "required": ["id", "name", "status", "channels", "created_at", "updated_at"], "properties": {
            "id": string(), "name": string(), "description": string(), "instructions": string(), "llm_model": optional_string(), "status": schema("AgentStatus"),
            "channels": {"type": "array"}, "push_integration_id": optional_string(), "created_at": date_time(), "updated_at": date_time()}},
        "IntegrationKind": names(&IntegrationKind::ALL, IntegrationKind::as_str),
        "IntegrationCreate": {"type": "object", "required": ["kind", "name"], "additionalProperties": false, "description": "Settings (readable) and secrets (write-only) per kind, * required: SMTP host*, port*, from_address*, username, tls / password; TELEGRAM bot_username, api_base_url / bot_token*, webhook_secret; WHATSAPP_META phone_number_id*, business_account_id, api_base_url / access_token*, app_secret*; MESSAGEBIRD workspace_id*, channel_id*, api_base_url / access_key*, signing_key; INFOBIP api_base_url*, sender* / api_key*; TWILIO account_sid*, from_number*, api_base_url / auth_token*; SIP api_base_url*, caller_id*, trunk / api_key*; FCM project_id*, api_base_url / service_account_json*; LLM api_base_url*, default_model / api_key. 422 names each missing, unknown or invalid one.", "properties": {
            "kind": schema("IntegrationKind"), "name": name(200), "settings": object(), "secrets": object()}},
        "IntegrationUpdate": {"type": "object", "required": ["name"], "additionalProperties": false, "properties": {
            "name": name(200), "settings": object(), "secrets": {"type": "object", "description": "Only the secrets to change"}}},
        "Integration": {"type": "object", "required": ["id", "kind", "name", "settings", "secrets_set", "created_at", "updated_at"], "properties": {
            "id": string(), "kind": schema("IntegrationKind"), "name": string(), "settings": object(), "secrets_set": {"type": "array", "items": string()},
            "created_at": date_time(), "updated_at": date_time()}},
        "AnalysisStart": {"type": "object", "required": ["mode"], "additionalProperties": false, "properties": {"mode": {"enum": ["RECALCULATE", "CONTINUE"]}}},
        "AnalysisRun": {"type": "object", "properties": {
            "id": string(), "mode": {"enum": ["RECALCULATE", "CONTINUE"]}, "status": {"enum": ["PROGRESS", "DONE", "STOPPED"]},
            "metrics": {"type": "array", "items": string(), "description": "Codes of the metrics the run computes"},
            "total": {"type": "integer", "description": "Values to compute: one per session and metric"},
            "done": {"type": "integer", "description": "Values written, errors included"}, "failed": {"type": "integer", "description": "Of those, errors"},
            "last_error": {"type": ["string", "null"], "description": "Why the last batch could not finish (LLM down, slow, no LLM); cleared by one that does"},
            "created_at": date_time(), "finished_at": optional_date_time()}},
        "TaskClaim": {"type": "object", "required": ["operator"], "additionalProperties": false, "properties": {"operator": name(200)}},
        "TaskOutcome": {"type": "object", "required": ["outcome"], "additionalProperties": false, "properties": {
            "outcome": {"allOf": [code()], "description": "letters, digits and _ (upper-cased); becomes the session's OutcomeStatus"},
            "results": {"type": "object", "not": {"required": ["OutcomeStatus"]}, "description": "other session results; the outcome goes in `outcome`"}}},
        "CommunicationState": {"type": "object", "required": ["status"], "additionalProperties": false, "properties": {
            "status": names(&CommunicationStatus::ALL, CommunicationStatus::as_str), "detail": optional_string(), "updated_at": optional_date_time()}},
        "Communication": {"type": "object", "required": ["name", "stage_name", "start_date"], "additionalProperties": false, "properties": {
            "id": optional_string(), "name": string(), "stage_name": string(), "start_date": date_time(), "end_date": optional_date_time(),
            "status": schema("CommunicationState"), "flagged": {"type": "boolean"}, "alternative": optional_string(), "parameters": object()}},
        "Contact": {"type": "object", "required": ["object_id", "external_id", "name"], "additionalProperties": false, "properties": {
            "object_id": string(), "external_id": string(), "name": string(), "email": string(), "phone": string(),
            "parameters": object(), "current_stage": optional_string(), "internal_data": object(), "results": object(),
            "result_flag": {"type": ["boolean", "null"]}, "result_datetime": optional_date_time(),
            "communications": {"type": "array", "items": schema("Communication")}}},
        "EmailPreview": {"type": "object", "required": ["email_subject", "email_template"], "additionalProperties": false, "properties": {
            "email_subject": string(), "email_template": string(), "email_input_type": schema("EmailInputType"),
            "contact": {"oneOf": [schema("Contact"), {"type": "null"}], "description": "the contact to render for; a sample one if left out"}}}
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
            include_str!("contacts.rs"),
            include_str!("stages.rs"),
            include_str!("agents.rs"),
            include_str!("integrations.rs"),
            include_str!("analytics.rs"),
            include_str!("deep_analysis.rs"),
            include_str!("tasks.rs"),
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

    #[test]
    fn works_when_the_name_pattern_is_what_trim_removes() {
        let blank = |c: char| {
            WHITESPACE_RANGES.iter().any(|&(low, high)| (low..=high).contains(&c))
        };
        for c in (0..=0x10FFFF).filter_map(char::from_u32) {
            assert_eq!(blank(c), c.is_whitespace(), "U+{:04X}", c as u32);
        }
    }
}
