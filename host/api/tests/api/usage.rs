//! `GET /usage`: what a tenant consumed per UTC day adds up to what the
//! runtime reported per invocation, counts imports, their rows and the
//! messages sent by channel, comes as CSV too, and is the tenant's own.

use std::time::Duration;

use serde_json::{json, Value};

use crate::both_backends;
use crate::support::{repo_file, App, Backend, Client};

both_backends!(
    works_when_usage_adds_up_to_the_invocations_imports_and_sends,
    errors_when_the_usage_span_is_malformed,
);

fn total(usage: &Value, metric: &str, dimension: &str) -> u64 {
    let rows = usage["rows"].as_array().expect("rows");
    rows.iter().filter(|row| row["metric"] == metric && row["dimension"] == dimension).map(|row| row["value"].as_u64().expect("value")).sum()
}

/// The fuel of every kept invocation of the campaign's strategies.
async fn reported_fuel(client: &Client, campaign: &str, kind: &str) -> (u64, u64) {
    let strategies = client.get(&format!("/campaigns/{campaign}/strategies")).await.body;
    let strategy = strategies.as_array().expect("list").iter().find(|s| s["type"] == kind).expect("strategy").clone();
    let runs = client.get(&format!("/strategies/{}/versions/1/invocations", strategy["id"].as_str().expect("id"))).await.body;
    let recent = runs["recent"].as_array().expect("recent");
    assert_eq!(runs["invocations"].as_u64(), Some(recent.len() as u64), "every invocation is listed: {runs}");
    (recent.len() as u64, recent.iter().map(|run| run["fuel"].as_u64().expect("fuel")).sum())
}

async fn works_when_usage_adds_up_to_the_invocations_imports_and_sends(backend: Backend) {
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    let campaign = client.campaign("Collections").await;
    for stage in ["1. First contact", "2. Retry"] {
        assert_eq!(client.post(&format!("/campaigns/{campaign}/stages"), json!({"name": stage, "channel": "SIMULATED"})).await.status, 201);
    }
    client.strategy(&campaign, "DATA_LOAD", "examples/simulated/data_load.py").await;
    client.strategy(&campaign, "AGGREGATION", "examples/simulated/aggregation.py").await;
    let csv = "object_id,external_id,name,email,phone,persona\nC1,U1,Ann,a@x.io,+1,PAID\nC2,U2,Bob,b@x.io,+2,PAID\nC3,U3,Cy,c@x.io,+3,PAID\nBROKEN\n";
    let job = client.upload(&format!("/campaigns/{campaign}/imports"), "text/csv", csv.as_bytes().to_vec()).await;
    assert_eq!(client.wait_for_import(job.body["id"].as_str().expect("job")).await["accepted"], 3);
    for status in ["CONFIGURED", "RUNNING"] {
        assert_eq!(client.post(&format!("/campaigns/{campaign}/status"), json!({"status": status})).await.status, 200);
    }
    let mut usage = Value::Null;
    for _ in 0..600 {
        usage = client.get("/usage").await.body;
        if total(&usage, "invocations", "AGGREGATION") == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let today = chrono::Utc::now().date_naive().to_string();
    assert_eq!(usage["to"], today.as_str(), "{usage}");
    assert!(usage["rows"].as_array().expect("rows").iter().all(|row| row["day"] == today.as_str()), "{usage}");
    for kind in ["DATA_LOAD", "AGGREGATION"] {
        let (runs, fuel) = reported_fuel(&client, &campaign, kind).await;
        assert_eq!(runs, 3, "{kind}");
        assert_eq!((total(&usage, "invocations", kind), total(&usage, "fuel", kind)), (runs, fuel), "{kind} adds up: {usage}");
    }
    assert_eq!((total(&usage, "imports", ""), total(&usage, "import_rows", "")), (1, 4), "{usage}");
    assert_eq!(total(&usage, "messages", "SIMULATED"), 3, "{usage}");
    assert_eq!(usage["storage"]["contacts"], 3);
    assert_eq!((usage["storage"]["campaigns"].as_u64(), usage["storage"]["strategy_versions"].as_u64()), (Some(1), Some(2)));
    // Sources run in the platform's component: a version keeps its sources
    // (as a bundle, JSON-escaped), not a component of its own.
    let sources = (repo_file("examples/simulated/data_load.py").len() + repo_file("examples/simulated/aggregation.py").len()) as u64;
    let stored = usage["storage"]["component_bytes"].as_u64().expect("bytes");
    assert!((sources..2 * sources).contains(&stored), "{stored} bytes for {sources} bytes of sources: {usage}");

    // The same rows as CSV.
    let reply = app.http.get(format!("{}/api/usage?format=csv", app.base)).bearer_auth(&client.key).send().await.expect("csv");
    assert_eq!(reply.headers()["content-type"], "text/csv; charset=utf-8");
    let text = reply.text().await.expect("text");
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("day,metric,dimension,value"));
    assert!(text.contains(&format!("{today},messages,SIMULATED,3\n")), "{text}");
    assert_eq!(lines.count(), usage["rows"].as_array().expect("rows").len());

    // Another tenant sees its own, nothing.
    let other = app.tenant("Other").await;
    let theirs = other.get("/usage").await.body;
    assert_eq!((theirs["rows"].clone(), theirs["storage"]["contacts"].clone()), (json!([]), json!(0)), "{theirs}");
}

async fn errors_when_the_usage_span_is_malformed(backend: Backend) {
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    let after = client.get("/usage?from=2026-03-02&to=2026-03-01").await;
    after.problem(422);
    assert_eq!((after.body["errors"][0]["field"].as_str(), after.body["errors"][0]["message"].as_str()), (Some("from"), Some("from (2026-03-02) is after to (2026-03-01)")));
    let long = client.get("/usage?from=2025-01-01&to=2026-03-01").await;
    long.problem(422);
    assert_eq!(long.body["errors"][0]["message"], "from 2025-01-01 to 2026-03-01 is more than 366 days; ask for a year or less at a time");
    client.get("/usage?from=yesterday").await.problem(400);
    let format = client.get("/usage?format=xml").await.problem(400);
    assert_eq!(format, "format `xml` is not one of json, csv");
    let year = client.get("/usage?from=2026-01-01&to=2026-12-31").await;
    assert_eq!((year.status, year.body["rows"].clone()), (200, json!([])), "{}", year.text);
}
