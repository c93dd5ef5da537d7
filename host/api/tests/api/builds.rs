//! Prebuilt components uploaded through the API, and builds taken over
//! when the node that accepted them stopped.

use std::collections::BTreeMap;

use serde_json::json;
use stratagem_domain::strategy::{BuildError, BuildErrorKind};
use stratagem_domain::StrategyType;
use stratagem_runtime::StrategySource;
use stratagem_store::{BuildClaim, VersionInput};

use crate::both_backends;
use crate::support::{builder, repo_file, App, Background, Backend, Tuning};

both_backends!(
    works_when_a_prebuilt_component_is_uploaded_and_runs,
    errors_when_the_uploaded_component_is_not_one_or_breaks_the_contract,
    works_when_a_build_left_by_a_stopped_node_is_taken_over,
    errors_when_a_build_was_interrupted_too_often,
    works_when_queued_builds_show_their_position_and_each_tenant_gets_its_share,
    works_when_a_new_version_cancels_the_build_it_replaces,
    works_when_loaded_strategies_are_bounded_and_deleted_ones_are_dropped,
    works_when_a_replaced_version_gives_up_its_component,
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
    let tenant = app.store.tenants().authenticate(&client.key).await.expect("auth").expect("tenant");
    let campaign = client.campaign("Collections").await;
    let sources = BTreeMap::from([("data_load.py".to_owned(), repo_file("examples/spec/data_load.py"))]);
    let input = VersionInput::Source { entry: "data_load.py", sources: &sources };
    let expired = chrono::Utc::now() - chrono::Duration::seconds(1);
    let (id, _) = app.store.strategies().add_strategy_version(&tenant, &campaign, "Orphan", StrategyType::DataLoad, input, stratagem_store::VersionStart::Leased(expired)).await.expect("version");

    let built = client.wait_for_build(&id).await;
    assert_eq!(built["latest"]["status"], "ready", "{built}");
    assert_eq!(built["active_version"], 1);
}

async fn errors_when_a_build_was_interrupted_too_often(backend: Backend) {
    let app = App::start_with(backend, Background::Off).await;
    let client = app.tenant("Acme").await;
    let tenant = app.store.tenants().authenticate(&client.key).await.expect("auth").expect("tenant");
    let campaign = client.campaign("Collections").await;
    let sources = BTreeMap::from([("data_load.py".to_owned(), "x = 1\n".to_owned())]);
    let input = VersionInput::Source { entry: "data_load.py", sources: &sources };
    let long_ago = chrono::Utc::now() - chrono::Duration::hours(1);
    let (id, _) = app.store.strategies().add_strategy_version(&tenant, &campaign, "Crashy", StrategyType::DataLoad, input, stratagem_store::VersionStart::Leased(long_ago)).await.expect("version");
    // Two more nodes took it over and died too (each claim leaves the lease expired).
    for attempt in 2..=3 {
        let job = app.store.strategies().claim_next_build(BuildClaim::Stale, chrono::Utc::now(), long_ago, 1).await.expect("claim").expect("a stale build");
        assert_eq!(job.attempts, attempt);
    }
    let node = app.second_node().await; // sweeps: the fourth attempt is refused
    let built = node.client_for(&client).wait_for_build(&id).await;
    assert_eq!(built["latest"]["status"], "failed", "{built}");
    assert!(built["latest"]["error"]["detail"].as_str().expect("detail").starts_with("the build was interrupted 3 times"), "{built}");
}

/// Builds wait in one queue with a position; a tenant that already runs
/// its share of builds is passed over for the next tenant's build.
async fn works_when_queued_builds_show_their_position_and_each_tenant_gets_its_share(backend: Backend) {
    let app = App::start_with(backend, Background::Off).await; // no worker: the test claims
    let (acme, globex) = (app.tenant("Acme").await, app.tenant("Globex").await);
    let acme_tenant = app.store.tenants().authenticate(&acme.key).await.expect("auth").expect("tenant");
    let globex_tenant = app.store.tenants().authenticate(&globex.key).await.expect("auth").expect("tenant");
    let (acme_campaign, globex_campaign) = (acme.campaign("Collections").await, globex.campaign("Sales").await);
    let sources = BTreeMap::from([("main.py".to_owned(), repo_file("examples/spec/data_load.py"))]);
    let queue = |tenant: String, campaign: String, name: &'static str, kind: StrategyType| {
        let (store, sources) = (app.store.clone(), sources.clone());
        async move {
            let input = VersionInput::Source { entry: "main.py", sources: &sources };
            store.strategies().add_strategy_version(&tenant, &campaign, name, kind, input, stratagem_store::VersionStart::Queued).await.expect("queued").0
        }
    };
    let acme_load = queue(acme_tenant.clone(), acme_campaign.clone(), "Load", StrategyType::DataLoad).await;
    let acme_aggregation = queue(acme_tenant.clone(), acme_campaign.clone(), "Aggregate", StrategyType::Aggregation).await;
    let globex_load = queue(globex_tenant.clone(), globex_campaign.clone(), "Load", StrategyType::DataLoad).await;

    let position = |client: &crate::support::Client, id: String| {
        let client = client.clone();
        async move { client.get(&format!("/strategies/{id}")).await.body["latest"]["queue_position"].clone() }
    };
    assert_eq!(position(&acme, acme_load.clone()).await, 1);
    assert_eq!(position(&acme, acme_aggregation.clone()).await, 2);
    assert_eq!(position(&globex, globex_load.clone()).await, 3);

    let now = chrono::Utc::now();
    let until = now + chrono::Duration::minutes(5);
    let claim = || app.store.strategies().claim_next_build(BuildClaim::Queued, now, until, 1);
    let first = claim().await.expect("claim").expect("a queued build");
    assert_eq!(first.strategy_id, acme_load, "the oldest build goes first");
    let second = claim().await.expect("claim").expect("a queued build");
    assert_eq!(second.strategy_id, globex_load, "Acme holds its share, so Globex's build goes next");
    assert!(claim().await.expect("claim").is_none(), "Acme's second build waits for its first");
    assert_eq!(position(&acme, acme_aggregation.clone()).await, 1);
    assert_eq!(position(&acme, acme_load.clone()).await, serde_json::Value::Null, "a running build has no position");
    // Where each build is, for the user watching it.
    let phase = |id: String| {
        let client = acme.clone();
        async move { client.get(&format!("/strategies/{id}")).await.body["latest"]["phase"].clone() }
    };
    assert_eq!((phase(acme_aggregation.clone()).await, phase(acme_load.clone()).await), (json!("queued"), json!("building")));
    app.store.strategies().mark_compiling(&first.strategy_id, first.version, chrono::Utc::now()).await.expect("compiling");
    assert_eq!(phase(acme_load.clone()).await, "compiling");

    app.store.strategies().finish_strategy_build(&first.strategy_id, first.version, Err(BuildError::new(BuildErrorKind::Internal, "test"))).await.expect("finished");
    assert_eq!(phase(acme_load.clone()).await, serde_json::Value::Null, "a finished build has no phase");
    let third = claim().await.expect("claim").expect("Acme's share is free again");
    assert_eq!(third.strategy_id, acme_aggregation);
}

/// Editing a strategy while its build runs stops that build: only the
/// newest version can become active.
async fn works_when_a_new_version_cancels_the_build_it_replaces(backend: Backend) {
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    let campaign = client.campaign("Collections").await;
    // A build that would take a while: its top-level code sleeps.
    let slow = format!("import time\ntime.sleep(600)  # {}\n", uuid::Uuid::new_v4());
    let reply = client.post(&format!("/campaigns/{campaign}/strategies"), json!({"name": "Load", "type": "DATA_LOAD", "source": slow})).await;
    assert_eq!(reply.status, 202, "{}", reply.text);
    let id = reply.body["id"].as_str().expect("id").to_owned();

    let edit = client.send(reqwest::Method::PUT, &format!("/strategies/{id}"), Some(json!({"source": repo_file("examples/spec/data_load.py")}))).await;
    assert_eq!(edit.status, 202, "{}", edit.text);
    assert_eq!(edit.body["latest"]["version"], 2);
    let built = client.wait_for_build(&id).await;
    assert_eq!(built["latest"]["status"], "ready", "{built}");
    assert_eq!(built["active_version"], 2);

    let tenant = app.store.tenants().authenticate(&client.key).await.expect("auth").expect("tenant");
    let state = app.store.strategies().strategy_state(&tenant, &campaign, StrategyType::DataLoad).await.expect("state");
    assert!(matches!(state, Some(stratagem_store::StrategyState::Ready(_))), "{state:?}");
    // Nothing is left to build: the cancelled version is never claimed.
    let now = chrono::Utc::now();
    let leftover = app.store.strategies().claim_next_build(BuildClaim::Queued, now, now, 10).await.expect("claim");
    assert!(leftover.is_none());
}

/// A node keeps a bounded amount of compiled strategy code in memory, and
/// a deleted strategy's code leaves memory and disk.
async fn works_when_loaded_strategies_are_bounded_and_deleted_ones_are_dropped(backend: Backend) {
    let tuning = Tuning { own_runtime: true, max_loaded_bytes: Some(1), ..Tuning::default() };
    let app = App::start_tuned(backend, tuning).await;
    let client = app.tenant("Acme").await;
    let campaign = client.campaign("Collections").await;
    let (mut ids, mut hashes) = (Vec::new(), Vec::new());
    for (kind, file) in [("DATA_LOAD", "examples/spec/data_load.py"), ("CONTACT_ANSWER", "examples/spec/contact_answer.py")] {
        let component = builder().build(&StrategySource::single("main.py", repo_file(file))).await.expect("builds");
        let hash = stratagem_runtime::content_hash(&component);
        seed_artifact(&app, &hash);
        hashes.push(hash);
        let path = format!("/campaigns/{campaign}/strategies/component?name={kind}&type={kind}");
        let reply = client.upload(&path, "application/wasm", component).await;
        assert_eq!(reply.status, 202, "{}", reply.text);
        let id = reply.body["id"].as_str().expect("id").to_owned();
        assert_eq!(client.wait_for_build(&id).await["latest"]["status"], "ready");
        ids.push(id);
    }
    let artifacts = || {
        let names: Vec<String> = std::fs::read_dir(&app.artifact_dir)
            .map(|dir| dir.filter_map(Result::ok).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        hashes.iter().filter(|hash| names.iter().any(|name| name.starts_with(hash.as_str()) && name.ends_with(".cwasm"))).count()
    };
    let (loaded, bytes) = app.strategies.loaded_usage();
    assert_eq!(loaded, 1, "over its budget the node keeps only the most recently used strategy ({bytes} bytes)");
    assert_eq!(artifacts(), 2, "both compiled artifacts are on disk");

    // The evicted one loads again when it is needed: an import runs DATA_LOAD.
    let job = client.upload(&format!("/campaigns/{campaign}/imports"), "text/csv", CSV.into()).await;
    let job = client.wait_for_import(job.body["id"].as_str().expect("job")).await;
    assert_eq!(job["accepted"], 1, "{job}");
    assert_eq!(app.strategies.loaded_usage().0, 1);

    for id in &ids {
        assert_eq!(client.send(reqwest::Method::DELETE, &format!("/strategies/{id}"), None).await.status, 204);
    }
    assert_eq!(app.strategies.loaded_usage(), (0, 0), "deleted strategies leave memory");
    assert_eq!(artifacts(), 0, "and their compiled code leaves the disk");
}

/// Copies the shared runtime's compiled code for a component, when it has
/// it, into the node's own cache: compiling it again would only add time.
fn seed_artifact(app: &App, hash: &str) {
    std::fs::create_dir_all(&app.artifact_dir).expect("artifact dir");
    for entry in std::fs::read_dir(crate::support::artifact_dir()).into_iter().flatten().filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(hash) && name.ends_with(".cwasm") {
            let _ = std::fs::copy(entry.path(), app.artifact_dir.join(&name));
        }
    }
}

/// Only the newest ready version can run: the components of older ones
/// are dropped from the database when a newer one is ready.
async fn works_when_a_replaced_version_gives_up_its_component(backend: Backend) {
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    let campaign = client.campaign("Collections").await;
    // Sources of its own: the replaced version's compiled code is dropped.
    let first = client.strategy_source(&campaign, "DATA_LOAD", "data_load.py", &(repo_file("examples/spec/data_load.py") + "\n# v1\n")).await;
    let id = first["id"].as_str().expect("id").to_owned();
    let edit = client.send(reqwest::Method::PUT, &format!("/strategies/{id}"), Some(json!({"source": repo_file("examples/spec/data_load.py") + "\n# v2\n"}))).await;
    assert_eq!(edit.status, 202, "{}", edit.text);
    assert_eq!(client.wait_for_build(&id).await["active_version"], 2);
    let tenant = app.store.tenants().authenticate(&client.key).await.expect("auth").expect("tenant");
    let kept = app.store.strategies().runnable_component_hashes(&[first_hash(&app, &id, 1).await, first_hash(&app, &id, 2).await]).await.expect("hashes");
    assert_eq!(kept.len(), 1, "only version 2 keeps its component: {kept:?}");
    assert!(matches!(app.store.strategies().strategy_state(&tenant, &campaign, StrategyType::DataLoad).await.expect("state"), Some(stratagem_store::StrategyState::Ready(_))));
}

async fn first_hash(app: &App, strategy_id: &str, version: i64) -> String {
    app.store.strategies().component_hash(strategy_id, version).await.expect("read").expect("a built version")
}
