//! Outbound HTTP: allowlist, redirects, size cap, timeout, and the
//! credentials of integrations (`auth=`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use stratagem_runtime::{Credential, Credentials, EgressPolicy, HttpPolicy, Runtime};

use crate::support::{http_server, load_with, new_runtime, options, run_probe, runtime_with_egress, PROBE};

async fn fetch(url: String, policy: HttpPolicy) -> serde_json::Value {
    fetch_on(new_runtime(), url, policy).await
}

async fn fetch_on(runtime: Arc<Runtime>, url: String, policy: HttpPolicy) -> serde_json::Value {
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

/// One integration's credential, or why there is none.
struct Integration(Result<Credential, String>);

impl Credentials for Integration {
    fn credential<'a>(&'a self, _name: &'a str) -> Pin<Box<dyn Future<Output = Result<Credential, String>> + Send + 'a>> {
        Box::pin(async move { self.0.clone() })
    }
}

const SECRET: &str = "Bearer s3cr3t-crm-token";

fn crm(base_url: &str) -> Option<Arc<dyn Credentials>> {
    let credential = Credential { base_url: base_url.parse().expect("url"), header: "Authorization".into(), value: SECRET.into() };
    Some(Arc::new(Integration(Ok(credential))))
}

/// The probe's `http` case with `auth="crm"` and `headers`.
async fn fetch_with_auth(url: String, credentials: Option<Arc<dyn Credentials>>, policy: HttpPolicy, headers: serde_json::Value) -> serde_json::Value {
    let probe = load_with(&new_runtime(), PROBE).await;
    let mut options = options();
    options.http = policy;
    options.credentials = credentials;
    let parameters = json!({"case": "http", "url": url, "auth": "crm", "headers": headers});
    let contact = run_probe(&probe, parameters, &options).await.result.expect("ok").expect("contact");
    serde_json::Value::Object(contact.internal_data)
}

#[tokio::test]
async fn works_when_the_host_adds_an_integrations_header_the_strategy_never_sees() {
    let server = http_server().await;
    let data = fetch_with_auth(format!("http://{server}/echo/v1/accounts"), crm(&format!("http://{server}/echo/")), allow(&server), json!(null)).await;
    assert_eq!(data["status"], 200, "{data}");
    // The server got the header (its echo is in lower case); the echo
    // reaches the strategy with the token redacted.
    let echoed = data["body"].as_str().expect("body");
    assert!(echoed.contains("authorization: bearer [redacted]"), "{echoed}");
    assert!(!echoed.to_ascii_lowercase().contains("s3cr3t"), "{echoed}");
}

#[tokio::test]
async fn works_when_a_redirect_off_the_base_url_goes_without_the_header() {
    let server = http_server().await;
    let port = server.rsplit(':').next().expect("port");
    let url = format!("http://{server}/redirect?to=http://localhost:{port}/echo/elsewhere");
    let policy = HttpPolicy { allowed_hosts: vec![server.clone(), format!("localhost:{port}")], ..HttpPolicy::default() };
    let data = fetch_with_auth(url, crm(&format!("http://{server}/")), policy, json!(null)).await;
    let echoed = data["body"].as_str().unwrap_or_else(|| panic!("{data}"));
    assert!(echoed.starts_with("get /echo/elsewhere"), "{echoed}");
    assert!(!echoed.contains("authorization"), "the credential stayed on its origin: {echoed}");
}

#[tokio::test]
async fn errors_when_the_url_is_outside_the_integrations_base_url() {
    let server = http_server().await;
    let data = fetch_with_auth(format!("http://{server}/other/path?token=1"), crm(&format!("http://{server}/echo/")), allow(&server), json!(null)).await;
    assert_eq!(data["error"], format!("HttpDenied: request denied: auth `crm` is for requests under http://{server}/echo/; this one goes to http://{server}/other/path"));
}

#[tokio::test]
async fn errors_when_the_strategy_sets_the_integrations_header_itself() {
    let server = http_server().await;
    let headers = json!({"Authorization": "Bearer mine"});
    let data = fetch_with_auth(format!("http://{server}/echo"), crm(&format!("http://{server}/")), allow(&server), headers).await;
    assert_eq!(data["error"], "HttpInvalidRequest: header `Authorization` is added from integration `crm`; leave it out of the request");
}

#[tokio::test]
async fn errors_when_the_integration_is_unknown_or_the_run_has_no_credentials() {
    let server = http_server().await;
    let missing: Option<Arc<dyn Credentials>> = Some(Arc::new(Integration(Err("no HTTP_API integration is named `crm`".into()))));
    let data = fetch_with_auth(format!("http://{server}/echo"), missing, allow(&server), json!(null)).await;
    assert_eq!(data["error"], "HttpDenied: request denied: auth `crm`: no HTTP_API integration is named `crm`");
    let data = fetch_with_auth(format!("http://{server}/echo"), None, allow(&server), json!(null)).await;
    assert!(data["error"].as_str().is_some_and(|e| e.starts_with("HttpDenied: request denied: auth `crm`: integration credentials are added by the service")), "{data}");
}
