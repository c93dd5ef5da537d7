//! Outbound HTTP: allowlist, redirects, size cap, timeout.

use std::time::Duration;

use serde_json::json;
use stratagem_runtime::{EgressPolicy, HttpPolicy, Runtime};

use crate::support::{http_server, load_with, new_runtime, options, run_probe, runtime_with_egress, PROBE};

async fn fetch(url: String, policy: HttpPolicy) -> serde_json::Value {
    fetch_on(new_runtime(), url, policy).await
}

async fn fetch_on(runtime: std::sync::Arc<Runtime>, url: String, policy: HttpPolicy) -> serde_json::Value {
    let probe = load_with(&runtime, PROBE).await;
    let mut options = options();
    options.http = policy;
    let contact = run_probe(&probe, json!({"case": "http", "url": url}), &options).await.result.expect("ok").expect("contact");
    serde_json::Value::Object(contact.internal_data)
}

fn allow(host: &str) -> HttpPolicy {
    HttpPolicy { allowed_hosts: vec![host.into()], ..HttpPolicy::default() }
}

#[tokio::test]
async fn works_when_the_host_is_on_the_allowlist() {
    let server = http_server().await;
    let data = fetch(format!("http://{server}/ok"), allow(&server)).await;
    assert_eq!((&data["status"], &data["body"]), (&json!(200), &json!("{\"balance\": 42}")));
}

#[tokio::test]
async fn works_when_the_allowlist_names_a_private_address_and_private_endpoints_are_allowed() {
    let server = http_server().await;
    let allowed = runtime_with_egress(EgressPolicy { allow_private_endpoints: true });
    let data = fetch_on(allowed, format!("http://{server}/ok"), allow(&server)).await;
    assert_eq!((&data["status"], &data["body"]), (&json!(200), &json!("{\"balance\": 42}")));
}

#[tokio::test]
async fn errors_when_the_allowlist_names_a_private_address_and_private_endpoints_are_not_allowed() {
    let server = http_server().await;
    let guarded = runtime_with_egress(EgressPolicy { allow_private_endpoints: false });
    let data = fetch_on(guarded.clone(), format!("http://{server}/ok"), allow(&server)).await;
    assert_eq!(
        data["error"],
        "HttpDenied: request denied: `127.0.0.1` is a private or local address, which integrations and strategies may not reach; \
         use the endpoint's public address (an operator can allow private endpoints with --allow-private-endpoints)"
    );
    // So is `localhost`, by name.
    let port = server.rsplit(':').next().expect("port");
    let data = fetch_on(guarded, format!("http://localhost:{port}/ok"), allow(&format!("localhost:{port}"))).await;
    assert!(data["error"].as_str().is_some_and(|error| error.starts_with("HttpDenied: request denied: `localhost` is a private")), "{data}");
}

#[tokio::test]
async fn errors_when_there_is_no_allowlist() {
    let server = http_server().await;
    let data = fetch(format!("http://{server}/ok"), HttpPolicy::default()).await;
    assert_eq!(data["error"], "HttpDenied: request denied: host `127.0.0.1` is not allowed: the campaign's HTTP allowlist is empty; add the host under Settings > External APIs");
}

#[tokio::test]
async fn errors_when_the_host_is_not_on_the_allowlist() {
    let server = http_server().await;
    let data = fetch(format!("http://{server}/ok"), allow("api.example.com")).await;
    assert_eq!(data["error"], format!("HttpDenied: request denied: host `{server}` is not on the campaign's HTTP allowlist (api.example.com); add it under Settings > External APIs"));
}

#[tokio::test]
async fn errors_when_a_redirect_leaves_the_allowlist() {
    let server = http_server().await;
    let port = server.rsplit(':').next().expect("port");
    let url = format!("http://{server}/redirect?to=http://localhost:{port}/ok");
    let data = fetch(url, allow(&server)).await;
    assert_eq!(data["error"], format!("HttpDenied: request denied: host `localhost:{port}` is not on the campaign's HTTP allowlist ({server}); add it under Settings > External APIs"));
}

#[tokio::test]
async fn errors_when_the_response_exceeds_the_cap() {
    let server = http_server().await;
    let policy = HttpPolicy { max_response_bytes: 1 << 20, ..allow(&server) };
    let data = fetch(format!("http://{server}/big"), policy).await;
    assert_eq!(data["error"], "HttpTooLarge: response body larger than 1048576 bytes");
}

#[tokio::test]
async fn errors_when_the_server_is_slower_than_the_http_timeout() {
    let server = http_server().await;
    let policy = HttpPolicy { timeout: Duration::from_millis(200), ..allow(&server) };
    let data = fetch(format!("http://{server}/slow"), policy).await;
    assert_eq!(data["error"], "HttpTimeout: no response within 200 ms");
}
