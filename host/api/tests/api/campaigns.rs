use serde_json::{json, Value};

use crate::both_backends;
use crate::support::{App, Backend};

both_backends!(
    works_when_a_campaign_follows_its_status_machine,
    errors_when_a_transition_is_illegal_naming_the_allowed_ones,
    works_when_listing_filters_by_status,
    errors_with_line_and_column_when_the_body_is_malformed,
    errors_when_the_body_has_unknown_fields_or_wrong_types,
    errors_when_the_body_is_too_large,
    works_when_result_fields_are_updated_and_validated,
    errors_when_a_put_leaves_fields_out_while_patch_keeps_them,
    works_when_strategies_call_only_the_hosts_the_campaign_allows,
    works_when_a_strategy_calls_an_api_with_an_integrations_key_it_never_sees,
);

async fn works_when_a_campaign_follows_its_status_machine(backend: Backend) {
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    let id = client.ready_campaign("Collections Q4").await;
    for status in ["CONFIGURED", "RUNNING", "STOPPED", "RUNNING", "FINISHED"] {
        let reply = client.post(&format!("/campaigns/{id}/status"), json!({"status": status})).await;
        assert_eq!((reply.status, reply.body["status"].as_str()), (200, Some(status)), "{}", reply.text);
    }
}

async fn errors_when_a_transition_is_illegal_naming_the_allowed_ones(backend: Backend) {
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    let id = client.campaign("Collections").await;
    let reply = client.post(&format!("/campaigns/{id}/status"), json!({"status": "RUNNING"})).await;
    assert_eq!(reply.problem(409), "a CREATED campaign cannot become RUNNING; allowed: CONFIGURED");
    assert_eq!(reply.body["allowed"], json!(["CONFIGURED"]));
    let unknown = client.post(&format!("/campaigns/{id}/status"), json!({"status": "PAUSED"})).await;
    assert_eq!(unknown.problem(400), "unknown status `PAUSED`; one of CREATED, CONFIGURED, RUNNING, STOPPED, FINISHED, ERROR");
    let no_reason = client.post(&format!("/campaigns/{id}/status"), json!({"status": "ERROR"})).await;
    assert_eq!(no_reason.problem(400), "ERROR needs a reason");
    let error = client.post(&format!("/campaigns/{id}/status"), json!({"status": "ERROR", "reason": "strategy failed to build"})).await;
    assert_eq!((error.body["status"].as_str(), error.body["error_reason"].as_str()), (Some("ERROR"), Some("strategy failed to build")));
}

async fn works_when_listing_filters_by_status(backend: Backend) {
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    let running = client.ready_campaign("Running one").await;
    client.campaign("Draft").await;
    for status in ["CONFIGURED", "RUNNING"] {
        client.post(&format!("/campaigns/{running}/status"), json!({"status": status})).await;
    }
    let filtered = client.get("/campaigns?status=RUNNING").await;
    let names: Vec<&str> = filtered.body.as_array().expect("list").iter().map(|c| c["name"].as_str().expect("name")).collect();
    assert_eq!(names, ["Running one"]);
    assert_eq!(client.get("/campaigns").await.body.as_array().expect("list").len(), 2);
}

async fn errors_with_line_and_column_when_the_body_is_malformed(backend: Backend) {
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    let reply = app
        .http
        .post(format!("{}/api/campaigns", app.base))
        .bearer_auth(&client.key)
        .header("content-type", "application/json")
        .body("{\n  \"name\": \"x\",\n  \"description\": \n}")
        .send()
        .await
        .expect("request");
    assert_eq!(reply.status(), 400);
    let problem: serde_json::Value = reply.json().await.expect("json");
    assert_eq!((problem["line"].as_u64(), problem["column"].as_u64()), (Some(4), Some(1)));
    assert_eq!(problem["detail"], "line 4, column 1: description: expected value");
}

async fn errors_when_the_body_has_unknown_fields_or_wrong_types(backend: Backend) {
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    let unknown = client.post("/campaigns", json!({"name": "x", "colour": "red"})).await;
    assert!(unknown.problem(400).contains("unknown field `colour`"), "{}", unknown.text);
    let wrong = client.post("/campaigns", json!({"name": 5})).await;
    assert!(wrong.problem(400).contains("invalid type: integer `5`, expected a string"), "{}", wrong.text);
    let empty = client.post("/campaigns", json!({"name": "  "})).await;
    assert_eq!(empty.problem(400), "name must have 1 to 200 characters, not only white space");
    assert_eq!(client.get("/campaigns").await.body, json!([]), "nothing was written");
}

async fn errors_when_the_body_is_too_large(backend: Backend) {
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    let reply = app.announce_body(&client.key, "POST", "/campaigns", "application/json", 3_000_000).await;
    assert!(reply.starts_with("http/1.1 413"), "{reply}");
    assert!(reply.contains("application/problem+json") && reply.contains("larger than 1048576 bytes"), "{reply}");
    assert_eq!(client.get("/campaigns").await.status, 200, "the service keeps serving");
}

async fn works_when_result_fields_are_updated_and_validated(backend: Backend) {
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    let id = client.campaign("Collections").await;
    let fields = json!([{"code": "promise_date", "name": "Promise date", "description": "When the client promised to pay"}]);
    let updated = client
        .send(reqwest::Method::PATCH, &format!("/campaigns/{id}"), Some(json!({"name": "Collections", "llm_model": "gpt-4o-mini", "result_fields": fields})))
        .await;
    assert_eq!((updated.status, &updated.body["result_fields"], &updated.body["llm_model"]), (200, &fields, &json!("gpt-4o-mini")));
    let clash = client
        .send(reqwest::Method::PATCH, &format!("/campaigns/{id}"), Some(json!({"name": "C", "result_fields": [{"code": "ResultFlag", "name": "x"}]})))
        .await;
    assert!(clash.problem(400).contains("not a default field"), "{}", clash.text);
}

/// PUT replaces every setting, so a field left out is an error naming it,
/// not a setting silently cleared; PATCH changes only what it sends.
async fn errors_when_a_put_leaves_fields_out_while_patch_keeps_them(backend: Backend) {
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    let fields = json!([{"code": "PromiseDate", "name": "Promise date", "description": ""}]);
    let created = client.post("/campaigns", json!({"name": "Collections", "description": "Q4", "llm_model": "m1", "result_fields": fields})).await;
    let id = created.body["id"].as_str().expect("id").to_owned();
    let path = format!("/campaigns/{id}");

    let reply = client.send(reqwest::Method::PUT, &path, Some(json!({"name": "Renamed"}))).await;
    reply.problem(422);
    let missing: Vec<&str> = reply.body["errors"].as_array().expect("errors").iter().map(|e| e["field"].as_str().expect("field")).collect();
    assert_eq!(missing, ["description", "llm_integration_id", "llm_model", "result_fields", "http_allowlist"]);
    assert!(reply.body["errors"][0]["message"].as_str().expect("message").contains("use PATCH"), "{}", reply.text);
    let unchanged = client.get(&path).await.body;
    assert_eq!((unchanged["name"].as_str(), unchanged["llm_model"].as_str()), (Some("Collections"), Some("m1")));

    let patched = client.send(reqwest::Method::PATCH, &path, Some(json!({"name": "Renamed"}))).await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    assert_eq!(
        (&patched.body["name"], &patched.body["description"], &patched.body["llm_model"], &patched.body["result_fields"]),
        (&json!("Renamed"), &json!("Q4"), &json!("m1"), &fields)
    );
    let cleared = client.send(reqwest::Method::PATCH, &path, Some(json!({"llm_model": null}))).await;
    assert_eq!((cleared.status, &cleared.body["llm_model"], &cleared.body["name"]), (200, &json!(null), &json!("Renamed")));

    let replaced = client.send(reqwest::Method::PUT, &path,
        Some(json!({"name": "Final", "description": "", "llm_integration_id": null, "llm_model": null, "result_fields": [], "http_allowlist": []}))).await;
    assert_eq!(replaced.status, 200, "{}", replaced.text);
    assert_eq!((&replaced.body["description"], &replaced.body["result_fields"]), (&json!(""), &json!([])));
}

/// A CRM for the strategy to call: `/customers/{id}` answers JSON.
async fn crm() -> String {
    let app = axum::Router::new().route(
        "/customers/{id}",
        axum::routing::get(|axum::extract::Path(id): axum::extract::Path<String>| async move { axum::Json(json!({"id": id, "segment": "gold"})) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    address.to_string()
}

const CALLS_THE_CRM: &str = r#"
async def run(contact, existing_contact, logger, **kwargs):
    reply = await http.get(f"http://{contact.parameters['crm']}/customers/{contact.object_id}")
    contact.internal_data["segment"] = reply.json()["segment"]
    return contact
"#;

/// The campaign's HTTP allowlist (Settings > External APIs) is what its
/// strategies may call: checked when it is saved, applied on the next
/// import, and without it the call is refused with where to add the host.
async fn works_when_strategies_call_only_the_hosts_the_campaign_allows(backend: Backend) {
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    let crm = crm().await;
    let campaign = client.campaign("Collections").await;
    let path = format!("/campaigns/{campaign}");
    client.strategy_source(&campaign, "DATA_LOAD", "crm.py", CALLS_THE_CRM).await;
    let csv = format!("object_id,external_id,name,email,phone,crm\nC-1,U-1,Ann,a@x.io,+1,{crm}\n");
    let import = |csv: String| {
        let client = &client;
        let campaign = &campaign;
        async move {
            let reply = client.upload(&format!("/campaigns/{campaign}/imports"), "text/csv", csv.into_bytes()).await;
            assert_eq!(reply.status, 202, "{}", reply.text);
            client.wait_for_import(reply.body["id"].as_str().expect("id")).await
        }
    };

    let refused = import(csv.clone()).await;
    let message = refused["report"]["strategy_errors"][0]["message"].as_str().expect("a strategy error").to_owned();
    assert!(message.contains("host `127.0.0.1` is not allowed: the campaign's HTTP allowlist is empty; add the host under Settings > External APIs"), "{message}");

    let invalid = client.send(reqwest::Method::PATCH, &path, Some(json!({"http_allowlist": [format!("http://{crm}/customers"), "*.com"]}))).await;
    invalid.problem(422);
    let errors: Vec<(&str, &str)> =
        invalid.body["errors"].as_array().expect("errors").iter().map(|e| (e["field"].as_str().expect("field"), e["message"].as_str().expect("message"))).collect();
    let url_error = format!("`http://{crm}/customers` is a URL; write its host only: {crm}");
    assert_eq!(errors, [
        ("http_allowlist[0]", url_error.as_str()),
        ("http_allowlist[1]", "`*.com` would allow every host of `.com`; name the domain, as in *.example.com"),
    ]);
    assert_eq!(client.get(&path).await.body["http_allowlist"], json!([]), "nothing was saved");

    let saved = client.send(reqwest::Method::PATCH, &path, Some(json!({"http_allowlist": [format!(" {crm} "), "api.example.com"]}))).await;
    assert_eq!((saved.status, &saved.body["http_allowlist"]), (200, &json!([crm, "api.example.com"])), "{}", saved.text);
    let allowed = import(csv).await;
    assert_eq!((allowed["updated"].as_i64(), &allowed["report"]["strategy_errors"]), (Some(1), &json!([])), "{allowed}");
    let contact = client.get(&format!("/campaigns/{campaign}/contacts/C-1")).await;
    assert_eq!(contact.body["internal_data"]["segment"], "gold");
}

/// A CRM that wants its key in `X-Api-Key`, and echoes it back.
async fn keyed_crm() -> String {
    let app = axum::Router::new().route(
        "/v1/customers/{id}",
        axum::routing::get(|headers: axum::http::HeaderMap, axum::extract::Path(id): axum::extract::Path<String>| async move {
            let key = headers.get("x-api-key").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
            if key != "k-0123456789" {
                return (axum::http::StatusCode::UNAUTHORIZED, axum::Json(json!({"error": "bad key"})));
            }
            (axum::http::StatusCode::OK, axum::Json(json!({"id": id, "segment": "gold", "seen_key": key})))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    address.to_string()
}

const CALLS_THE_CRM_WITH_ITS_KEY: &str = r#"
async def run(contact, existing_contact, logger, **kwargs):
    reply = await http.get(f"http://{contact.parameters['crm']}/v1/customers/{contact.object_id}", auth="crm")
    logger.info(f"the CRM answered {reply.status}: {reply.text()}")
    body = reply.json()
    contact.internal_data["status"] = reply.status
    contact.internal_data["segment"] = body.get("segment")
    contact.internal_data["seen_key"] = body.get("seen_key")
    return contact
"#;

/// `http.get(url, auth="crm")`: the host adds the key of the tenant's
/// HTTP_API integration named `crm`; the strategy, its log and the API
/// never show the key, and a tenant without such an integration is told
/// what to add.
async fn works_when_a_strategy_calls_an_api_with_an_integrations_key_it_never_sees(backend: Backend) {
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    let crm = keyed_crm().await;

    let integration = |header: &str| json!({"kind": "HTTP_API", "name": "crm",
        "settings": {"base_url": format!("http://{crm}/v1"), "header": header}, "secrets": {"header_value": "k-0123456789"}});
    for (header, message) in [("Host", "`Host` is set by the platform; use e.g. Authorization or X-Api-Key"), ("X Api Key", "must be an HTTP header name (letters, digits and -), got `X Api Key`")] {
        let refused = client.post("/integrations", integration(header)).await;
        refused.problem(422);
        assert_eq!((refused.body["errors"][0]["field"].as_str(), refused.body["errors"][0]["message"].as_str()), (Some("settings.header"), Some(message)), "{}", refused.text);
    }
    let created = client.post("/integrations", integration("X-Api-Key")).await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert!(!created.text.contains("k-0123456789"), "the key is write-only: {}", created.text);

    let campaign = client.campaign("Collections").await;
    let saved = client.send(reqwest::Method::PATCH, &format!("/campaigns/{campaign}"), Some(json!({"http_allowlist": [crm]}))).await;
    assert_eq!(saved.status, 200, "{}", saved.text);
    client.strategy_source(&campaign, "DATA_LOAD", "crm.py", CALLS_THE_CRM_WITH_ITS_KEY).await;
    let csv = format!("object_id,external_id,name,email,phone,crm\nC-1,U-1,Ann,a@x.io,+1,{crm}\n");
    let reply = client.upload(&format!("/campaigns/{campaign}/imports"), "text/csv", csv.clone().into_bytes()).await;
    let job = client.wait_for_import(reply.body["id"].as_str().expect("id")).await;
    assert_eq!(job["report"]["strategy_errors"], json!([]), "{job}");
    let contact = client.get(&format!("/campaigns/{campaign}/contacts/C-1")).await.body;
    assert_eq!(contact["internal_data"]["status"], 200, "the CRM took the key: {contact}");
    assert_eq!(contact["internal_data"]["segment"], "gold");
    assert_eq!(contact["internal_data"]["seen_key"], "[redacted]", "the echoed key never reaches the strategy");
    assert!(!contact.to_string().contains("k-0123456789"), "nor the logs or any response: {contact}");
    assert_eq!(contact["invocations"][0]["http_calls"], 1, "{contact}");
    let usage = client.get("/usage").await.body;
    let calls: Vec<&Value> = usage["rows"].as_array().expect("rows").iter().filter(|row| row["metric"] == "http_calls").collect();
    assert_eq!(calls.len(), 1, "{usage}");
    assert_eq!((calls[0]["dimension"].as_str(), calls[0]["value"].as_u64()), (Some("DATA_LOAD"), Some(1)));

    // Another tenant's strategy cannot use Acme's integration.
    let other = app.tenant("Other").await;
    let theirs = other.campaign("Theirs").await;
    other.send(reqwest::Method::PATCH, &format!("/campaigns/{theirs}"), Some(json!({"http_allowlist": [crm]}))).await;
    other.strategy_source(&theirs, "DATA_LOAD", "crm.py", CALLS_THE_CRM_WITH_ITS_KEY).await;
    let reply = other.upload(&format!("/campaigns/{theirs}/imports"), "text/csv", csv.into_bytes()).await;
    let job = other.wait_for_import(reply.body["id"].as_str().expect("id")).await;
    let message = job["report"]["strategy_errors"][0]["message"].as_str().unwrap_or_else(|| panic!("{job}"));
    assert!(message.contains("auth `crm`: no HTTP_API integration is named `crm`; add one under Integrations"), "{message}");
    let usage = other.get("/usage").await.body;
    assert!(usage["rows"].as_array().expect("rows").iter().all(|row| row["metric"] != "http_calls"), "a denied request did not go out: {usage}");
}
