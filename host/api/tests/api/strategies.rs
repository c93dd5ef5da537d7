use serde_json::json;

use crate::both_backends;
use crate::support::{repo_file, App, Backend};

both_backends!(
    works_when_an_uploaded_strategy_builds_and_shows_its_code,
    errors_with_the_line_when_the_upload_does_not_build,
    errors_at_once_when_the_upload_has_a_syntax_error,
    works_when_an_edit_makes_a_new_version_and_a_failed_edit_keeps_the_active_one,
    errors_when_the_upload_is_malformed,
);

async fn works_when_an_uploaded_strategy_builds_and_shows_its_code(backend: Backend) {
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    let campaign = client.campaign("Collections").await;
    // Its own copy of the spec's strategy: deleting it drops its compiled
    // code, which other tests would otherwise compile again.
    let source = repo_file("examples/spec/data_load.py") + "\n# deleted by the strategies test\n";
    let strategy = client.strategy_source(&campaign, "DATA_LOAD", "data_load.py", &source).await;
    assert_eq!(strategy["latest"]["status"], "ready", "{strategy}");
    assert_eq!((strategy["type"].as_str(), strategy["active_version"].as_i64()), (Some("DATA_LOAD"), Some(1)));
    assert!(strategy["latest"]["sources"]["data_load.py"].as_str().expect("code").contains("first_comm = Communication("));
    let listed = client.get(&format!("/campaigns/{campaign}/strategies")).await;
    assert_eq!(listed.body.as_array().expect("list").len(), 1);
    let deleted = client.send(reqwest::Method::DELETE, &format!("/strategies/{}", strategy["id"].as_str().expect("id")), None).await;
    assert_eq!(deleted.status, 204);
    assert_eq!(client.get(&format!("/campaigns/{campaign}/strategies")).await.body, json!([]));
}

async fn errors_with_the_line_when_the_upload_does_not_build(backend: Backend) {
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    let campaign = client.campaign("Collections").await;
    let source = "async def run(contact, existing_contact, logger, **kwargs):\n    return contact +\n";
    let reply = client
        .post(&format!("/campaigns/{campaign}/strategies"), json!({"name": "broken", "type": "DATA_LOAD", "file_name": "app.py", "source": source}))
        .await;
    assert_eq!(reply.status, 202);
    let built = client.wait_for_build(reply.body["id"].as_str().expect("id")).await;
    let error = &built["latest"]["error"];
    assert_eq!(built["latest"]["status"], "failed");
    assert_eq!((error["kind"].as_str(), error["type"].as_str()), (Some("python"), Some("SyntaxError")));
    assert_eq!((error["file"].as_str(), error["line"].as_u64()), (Some("app.py"), Some(2)));
    assert_eq!(built["active_version"], json!(null));
}

/// Once the node's syntax checker is ready, an upload with a syntax error
/// is failed by the upload itself, with no build: the reply says where.
async fn errors_at_once_when_the_upload_has_a_syntax_error(backend: Backend) {
    let app = App::start(backend).await;
    assert!(app.strategies.platform().await.is_ok(), "the platform component is prepared");
    let client = app.tenant("Acme").await;
    let campaign = client.campaign("Collections").await;
    let broken = "async def run(contact, existing_contact, logger, **kwargs):\n    return contact +\n";
    let reply = client
        .post(&format!("/campaigns/{campaign}/strategies"), json!({"name": "broken", "type": "DATA_LOAD", "file_name": "app.py", "source": broken}))
        .await;
    assert_eq!(reply.status, 202, "{}", reply.text);
    let latest = &reply.body["latest"];
    assert_eq!(latest["status"], "failed", "{}", reply.text);
    let error = &latest["error"];
    assert_eq!((error["kind"].as_str(), error["type"].as_str()), (Some("python"), Some("SyntaxError")));
    assert_eq!((error["file"].as_str(), error["line"].as_u64(), error["source"].as_str()), (Some("app.py"), Some(2), Some("return contact +")));
    assert!(error["detail"].as_str().expect("detail").starts_with("app.py, line 2, column "), "{error}");
    // Fixed, it is checked and queued for its build as usual.
    let id = reply.body["id"].as_str().expect("id");
    let fixed = "async def run(contact, existing_contact, logger, **kwargs):\n    return contact\n";
    let edit = client.send(reqwest::Method::PUT, &format!("/strategies/{id}"), Some(json!({"source": fixed, "file_name": "app.py"}))).await;
    assert_eq!((edit.status, edit.body["latest"]["status"].as_str()), (202, Some("building")), "{}", edit.text);
    let built = client.wait_for_build(id).await;
    assert_eq!((built["latest"]["status"].as_str(), built["active_version"].as_i64()), (Some("ready"), Some(2)));
}

async fn works_when_an_edit_makes_a_new_version_and_a_failed_edit_keeps_the_active_one(backend: Backend) {
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    let campaign = client.campaign("Collections").await;
    let first = client.strategy(&campaign, "CONTACT_ANSWER", "examples/spec/contact_answer.py").await;
    let id = first["id"].as_str().expect("id");
    let edit = client.send(reqwest::Method::PUT, &format!("/strategies/{id}"), Some(json!({"source": "def on_agent_answer(:\n", "file_name": "a.py"}))).await;
    assert_eq!(edit.status, 202, "{}", edit.text);
    let after = client.wait_for_build(id).await;
    assert_eq!((after["latest"]["version"].as_i64(), after["latest"]["status"].as_str()), (Some(2), Some("failed")));
    assert_eq!(after["active_version"], 1, "the failed edit does not replace the running version");
    // A second upload of the same type is a new version of the same strategy.
    let again = client.strategy(&campaign, "CONTACT_ANSWER", "examples/debt-collection/contact_answer.py").await;
    assert_eq!((again["id"].as_str(), again["active_version"].as_i64()), (Some(id), Some(3)));
}

async fn errors_when_the_upload_is_malformed(backend: Backend) {
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    let campaign = client.campaign("Collections").await;
    let path = format!("/campaigns/{campaign}/strategies");
    let neither = client.post(&path, json!({"name": "x", "type": "DATA_LOAD"})).await;
    assert_eq!(neither.problem(400), "give either `source` or `files`, not both or neither");
    let kind = client.post(&path, json!({"name": "x", "type": "CLEANUP", "source": ""})).await;
    assert!(kind.problem(400).contains("unknown variant `CLEANUP`, expected one of `DATA_LOAD`, `AGGREGATION`, `CONTACT_ANSWER`"), "{}", kind.text);
    let escape = client.post(&path, json!({"name": "x", "type": "DATA_LOAD", "files": {"../x.py": ""}, "entry": "../x.py"})).await;
    assert!(escape.problem(422).contains("not a valid module path"), "{}", escape.text);
    assert_eq!(client.get(&path).await.body, json!([]), "nothing was written");
}
