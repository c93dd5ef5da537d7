//! What strategies did, kept and shown: every invocation's outcome, log
//! and usage in the contact's history, the import report's failed rows
//! naming theirs, a strategy version's error rate and median fuel, the
//! input of a failed call kept for replay, and retention.

use serde_json::{json, Value};

use crate::both_backends;
use crate::support::{App, Backend, Client};

both_backends!(
    works_when_invocations_are_kept_with_their_logs_and_usage,
    works_when_invocations_past_their_retention_are_deleted,
    errors_when_another_tenant_asks_for_an_invocation,
);

/// DATA_LOAD that logs, writes the time it saw, and fails on a negative
/// amount (line 9).
const LOGGING_DATA_LOAD: &str = r#"from datetime import datetime


async def run(contact, existing_contact, logger, **kwargs):
    logger.info(f"loading {contact.object_id}")
    amount = float(contact.parameters.get("amount", 0))
    if amount < 0:
        logger.warning("a negative amount")
        raise ValueError(f"amount must not be negative, got {amount}")
    contact.internal_data["loaded_at"] = datetime.now()
    return contact
"#;

const CSV: &str = "object_id,external_id,name,email,phone,amount\nC1,U1,Ann,a@x.io,+1,5\nC2,U2,Bob,b@x.io,+2,-3\nC3,U3,Cy,c@x.io,+3,7\n";

/// A campaign with [`LOGGING_DATA_LOAD`] and [`CSV`] imported: the
/// strategy's view and the import job.
async fn imported(client: &Client) -> (String, Value, Value) {
    let campaign = client.campaign("Collections").await;
    let strategy = client.strategy_source(&campaign, "DATA_LOAD", "strategy.py", LOGGING_DATA_LOAD).await;
    let reply = client.upload(&format!("/campaigns/{campaign}/imports"), "text/csv", CSV.as_bytes().to_vec()).await;
    assert_eq!(reply.status, 202, "{}", reply.text);
    let job = client.wait_for_import(reply.body["id"].as_str().expect("job")).await;
    assert_eq!(job["accepted"], 3, "{job}");
    (campaign, strategy, job)
}

fn messages(invocation: &Value) -> Vec<(String, String)> {
    let logs = invocation["logs"].as_array().expect("logs");
    logs.iter().map(|line| (line["level"].as_str().expect("level").to_owned(), line["message"].as_str().expect("message").to_owned())).collect()
}

async fn works_when_invocations_are_kept_with_their_logs_and_usage(backend: Backend) {
    let app = App::start(backend).await;
    let (tenant, client) = app.tenant_with_id("Acme").await;
    let (campaign, strategy, job) = imported(&client).await;
    let strategy_id = strategy["id"].as_str().expect("id");

    // The import report's failed row names its invocation, which has the
    // log, the error, the usage and what replaying it needs.
    let failure = &job["report"]["strategy_errors"][0];
    assert_eq!(failure["object_id"], "C2", "{job}");
    let id = failure["invocation_id"].as_str().expect("the failed row names its invocation");
    let failed = client.get(&format!("/invocations/{id}")).await;
    assert_eq!(failed.status, 200, "{}", failed.text);
    let failed = failed.body;
    assert_eq!(
        (failed["hook"].as_str(), failed["object_id"].as_str(), failed["outcome"].as_str(), failed["import_job_id"].as_str()),
        (Some("DATA_LOAD"), Some("C2"), Some("exception"), job["id"].as_str()),
        "{failed}"
    );
    assert_eq!(messages(&failed), [("info".to_owned(), "loading C2".to_owned()), ("warning".to_owned(), "a negative amount".to_owned())]);
    assert!(failed["message"].as_str().expect("message").contains("ValueError: amount must not be negative, got -3.0"), "{failed}");
    assert_eq!(failed["error"]["exception"]["traceback"][0]["line"], 9, "{failed}");
    for usage in ["fuel", "peak_memory_bytes", "duration_us"] {
        assert!(failed[usage].as_u64().expect("usage") > 0, "{usage}: {failed}");
    }
    assert_eq!(failed["replayable"], true);
    assert_eq!((failed["input"]["contact"]["object_id"].as_str(), failed["input"]["campaign"]["id"].as_str()), (Some("C2"), Some(campaign.as_str())));
    assert_eq!(failed["input"]["existing"], Value::Null);
    assert_eq!(failed["limits"]["fuel"], 2_000_000_000u64, "{failed}");
    assert_eq!((failed["strategy_id"].as_str(), failed["version"].as_i64()), (Some(strategy_id), Some(1)));
    assert_eq!((failed["entry"].as_str(), failed["sources"]["strategy.py"].as_str()), (Some("strategy.py"), Some(LOGGING_DATA_LOAD)));
    let active = app.store.strategies().active_component(&tenant, &campaign, stratagem_domain::StrategyType::DataLoad).await.expect("reads");
    assert_eq!(failed["component_hash"].as_str(), active.map(|(hash, _)| hash).as_deref());

    // The contact's history: its run, with what it logged, and the time it
    // saw is the time the strategy wrote.
    let ann = client.get(&format!("/campaigns/{campaign}/contacts/C1")).await.body;
    let runs = ann["invocations"].as_array().expect("invocations");
    assert_eq!(runs.len(), 1, "{ann}");
    assert_eq!((runs[0]["hook"].as_str(), runs[0]["outcome"].as_str(), runs[0]["error"].clone()), (Some("DATA_LOAD"), Some("ok"), Value::Null));
    assert_eq!(messages(&runs[0]), [("info".to_owned(), "loading C1".to_owned())]);
    let started_at: chrono::DateTime<chrono::Utc> = serde_json::from_value(runs[0]["started_at"].clone()).expect("a time");
    let loaded_at = ann["internal_data"]["loaded_at"]["$datetime"].as_str().expect("the strategy wrote the time");
    assert_eq!(loaded_at, started_at.format("%Y-%m-%dT%H:%M:%S%.6f").to_string(), "datetime.now() is the invocation's time");

    // The version: 3 runs, 1 failed, its median fuel, the newest first.
    let version = client.get(&format!("/strategies/{strategy_id}/versions/1/invocations")).await;
    assert_eq!(version.status, 200, "{}", version.text);
    let version = version.body;
    assert_eq!((version["invocations"].as_u64(), version["errors"].as_u64()), (Some(3), Some(1)), "{version}");
    assert!((version["error_rate"].as_f64().expect("rate") - 1.0 / 3.0).abs() < 1e-9);
    let recent = version["recent"].as_array().expect("recent");
    let mut fuel: Vec<u64> = recent.iter().map(|run| run["fuel"].as_u64().expect("fuel")).collect();
    fuel.sort();
    assert_eq!(version["median_fuel"].as_u64(), Some(fuel[1]), "{version}");
    let times: Vec<&str> = recent.iter().map(|run| run["started_at"].as_str().expect("time")).collect();
    assert!(times.windows(2).all(|pair| pair[0] >= pair[1]), "newest first: {times:?}");
    // A version that does not exist is not an empty one.
    client.get(&format!("/strategies/{strategy_id}/versions/2/invocations")).await.problem(404);
    client.get(&format!("/strategies/{strategy_id}/versions/latest/invocations")).await.problem(404);
}

async fn works_when_invocations_past_their_retention_are_deleted(backend: Backend) {
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    let (campaign, _, job) = imported(&client).await;
    let id = job["report"]["strategy_errors"][0]["invocation_id"].as_str().expect("invocation").to_owned();
    let runs = |body: Value| body["invocations"].as_array().map(Vec::len).unwrap_or_default();

    // Within the retention period: kept.
    let keeping = app.engine(stratagem_engine::EngineConfig { invocation_retention: chrono::Duration::days(1), ..crate::support::TEST_ENGINE });
    assert_eq!(keeping.prune_invocations().await.expect("prunes"), 0);
    assert_eq!(client.get(&format!("/invocations/{id}")).await.status, 200);

    // Past it: gone from the invocation, the contact and the version alike.
    let expiring = app.engine(stratagem_engine::EngineConfig { invocation_retention: chrono::Duration::zero(), ..crate::support::TEST_ENGINE });
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    assert_eq!(expiring.prune_invocations().await.expect("prunes"), 3);
    client.get(&format!("/invocations/{id}")).await.problem(404);
    assert_eq!(runs(client.get(&format!("/campaigns/{campaign}/contacts/C1")).await.body), 0);
    assert_eq!(client.get(&format!("/campaigns/{campaign}/contacts/C1")).await.body["object_id"], json!("C1"), "the contact stays");
}

async fn errors_when_another_tenant_asks_for_an_invocation(backend: Backend) {
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    let (_, strategy, job) = imported(&client).await;
    let id = job["report"]["strategy_errors"][0]["invocation_id"].as_str().expect("invocation").to_owned();
    let other = app.tenant("Other").await;
    other.get(&format!("/invocations/{id}")).await.problem(404);
    other.get(&format!("/strategies/{}/versions/1/invocations", strategy["id"].as_str().expect("id"))).await.problem(404);
    other.get("/invocations/inv_nonexistent").await.problem(404);
}
