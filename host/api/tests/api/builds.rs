//! Prebuilt components uploaded through the API, and builds taken over
//! when the node that accepted them stopped.

use std::collections::BTreeMap;

use serde_json::json;
use stratagem_domain::StrategyType;
use stratagem_runtime::StrategySource;
use stratagem_store::VersionInput;

use crate::both_backends;
use crate::support::{builder, repo_file, App, Background, Backend};

both_backends!(
    works_when_a_prebuilt_component_is_uploaded_and_runs,
    errors_when_the_uploaded_component_is_not_one_or_breaks_the_contract,
    works_when_a_build_left_by_a_stopped_node_is_taken_over,
    errors_when_a_build_was_interrupted_too_often,
);

const CSV: &str = "object_id,external_id,name,email,phone\n123,U1,John Doe,john@example.com,+1\n";

async fn works_when_a_prebuilt_component_is_uploaded_and_runs(backend: Backend) {
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    let campaign = client.campaign("Collections").await;
    let source = StrategySource::single("data_load.py", repo_file("examples/spec/data_load.py"));
    let component = builder().build(&source).await.expect("the spec strategy builds");

    let reply = client
        .upload(&format!("/campaigns/{campaign}/strategies/component?name=Prebuilt&type=DATA_LOAD"), "application/wasm", component)
        .await;
    assert_eq!(reply.status, 202, "{}", reply.text);
    assert_eq!(reply.body["latest"]["origin"], "component");
    let built = client.wait_for_build(reply.body["id"].as_str().expect("id")).await;
    assert_eq!(built["latest"]["status"], "ready", "{built}");
    assert_eq!(built["active_version"], 1);

    let job = client.upload(&format!("/campaigns/{campaign}/imports"), "text/csv", CSV.into()).await;
    let job = client.wait_for_import(job.body["id"].as_str().expect("job")).await;
    assert_eq!(job["accepted"], 1, "{job}");
    let contact = client.get(&format!("/campaigns/{campaign}/contacts/123")).await;
    assert_eq!(contact.body["current_stage"], "First Contact", "the prebuilt strategy ran: {}", contact.text);
}

async fn errors_when_the_uploaded_component_is_not_one_or_breaks_the_contract(backend: Backend) {
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    let campaign = client.campaign("Collections").await;
    let path = format!("/campaigns/{campaign}/strategies/component?name=Bad&type=DATA_LOAD");

    let detail = client.upload(&path, "application/wasm", b"print('hi')".to_vec()).await.problem(422);
    assert!(detail.starts_with("the body is not a WebAssembly component"), "{detail}");
    // A core module is WebAssembly, but not a component.
    let core_module = b"\0asm\x01\0\0\0".to_vec();
    client.upload(&path, "application/wasm", core_module).await.problem(422);
    let detail = client.upload(&format!("/campaigns/{campaign}/strategies/component?name=Bad"), "application/wasm", vec![0; 8]).await.problem(400);
    assert!(detail.contains("?type="), "{detail}");
    assert_eq!(client.get(&format!("/campaigns/{campaign}/strategies")).await.body, json!([]), "nothing stored");

    // An empty component is well formed but exports none of the hooks.
    let empty_component = b"\0asm\x0d\0\x01\0".to_vec();
    let reply = client.upload(&path, "application/wasm", empty_component).await;
    assert_eq!(reply.status, 202, "{}", reply.text);
    let built = client.wait_for_build(reply.body["id"].as_str().expect("id")).await;
    assert_eq!(built["latest"]["status"], "failed", "{built}");
    assert_eq!(built["latest"]["error"]["kind"], "contract", "{built}");
    assert!(built["latest"]["error"]["detail"].as_str().expect("detail").contains("stratagem:strategy contract"), "{built}");

    let reply = app.announce_body(&client.key, "POST", &path, "application/wasm", stratagem_api::COMPONENT_LIMIT_BYTES + 1).await;
    assert!(reply.starts_with("http/1.1 413") && reply.contains("larger than 67108864 bytes"), "{reply}");
}

/// A version left `building` with an expired lease is what a node that
/// died mid-build leaves behind.
async fn works_when_a_build_left_by_a_stopped_node_is_taken_over(backend: Backend) {
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    let tenant = app.store.authenticate(&client.key).await.expect("auth").expect("tenant");
    let campaign = client.campaign("Collections").await;
    let sources = BTreeMap::from([("data_load.py".to_owned(), repo_file("examples/spec/data_load.py"))]);
    let input = VersionInput::Source { entry: "data_load.py", sources: &sources };
    let expired = chrono::Utc::now() - chrono::Duration::seconds(1);
    let (id, _) = app.store.add_strategy_version(&tenant, &campaign, "Orphan", StrategyType::DataLoad, input, expired).await.expect("version");

    let built = client.wait_for_build(&id).await;
    assert_eq!(built["latest"]["status"], "ready", "{built}");
    assert_eq!(built["active_version"], 1);
}

async fn errors_when_a_build_was_interrupted_too_often(backend: Backend) {
    let app = App::start_with(backend, Background::Off).await;
    let client = app.tenant("Acme").await;
    let tenant = app.store.authenticate(&client.key).await.expect("auth").expect("tenant");
    let campaign = client.campaign("Collections").await;
    let sources = BTreeMap::from([("data_load.py".to_owned(), "x = 1\n".to_owned())]);
    let input = VersionInput::Source { entry: "data_load.py", sources: &sources };
    let long_ago = chrono::Utc::now() - chrono::Duration::hours(1);
    let (id, _) = app.store.add_strategy_version(&tenant, &campaign, "Crashy", StrategyType::DataLoad, input, long_ago).await.expect("version");
    // Two more nodes took it over and died too (each claim leaves the lease expired).
    for attempt in 2..=3 {
        let job = app.store.claim_stale_build(chrono::Utc::now(), long_ago).await.expect("claim").expect("a stale build");
        assert_eq!(job.attempts, attempt);
    }
    let node = app.second_node().await; // sweeps: the fourth attempt is refused
    let built = node.client_for(&client).wait_for_build(&id).await;
    assert_eq!(built["latest"]["status"], "failed", "{built}");
    assert!(built["latest"]["error"]["detail"].as_str().expect("detail").starts_with("the build was interrupted 3 times"), "{built}");
}
