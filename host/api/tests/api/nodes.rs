//! Two `serve` nodes on one PostgreSQL database: whatever one node
//! accepts, the other serves, and races between them have one winner.

use serde_json::json;

use crate::support::{App, Backend};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn works_when_two_nodes_share_one_postgresql_database() {
    let first = App::start(Backend::Postgres).await;
    let second = first.second_node().await;
    let on_first = first.tenant("Acme").await;
    let on_second = second.client_for(&on_first);

    // A strategy uploaded through one node builds and is active on both.
    let campaign = on_first.campaign("Collections").await;
    let stage = on_second.post(&format!("/campaigns/{campaign}/stages"), json!({"name": "First Contact", "channel": "SIMULATED"})).await;
    assert_eq!(stage.status, 201, "{}", stage.text);
    let strategy = on_first.strategy(&campaign, "DATA_LOAD", "examples/spec/data_load.py").await;
    assert_eq!(on_second.get(&format!("/strategies/{}", strategy["id"].as_str().expect("id"))).await.body["active_version"], 1);

    // Each node imports half of the same contacts at once; the overlap is
    // updated, never duplicated.
    let csv = |range: std::ops::Range<u32>| {
        let mut text = "object_id,external_id,name,email,phone\n".to_owned();
        for i in range {
            text.push_str(&format!("C{i},U{i},Person {i},p{i}@example.com,+1{i}\n"));
        }
        text.into_bytes()
    };
    let path = format!("/campaigns/{campaign}/imports");
    let (a, b) = tokio::join!(on_first.upload(&path, "text/csv", csv(0..600)), on_second.upload(&path, "text/csv", csv(400..1000)));
    let (a, b) = tokio::join!(
        on_first.wait_for_import(a.body["id"].as_str().expect("job")),
        on_second.wait_for_import(b.body["id"].as_str().expect("job"))
    );
    assert_eq!(a["rejected"].as_i64().unwrap_or(-1) + b["rejected"].as_i64().unwrap_or(-1), 0, "{a}\n{b}");
    assert_eq!(a["accepted"].as_i64().unwrap_or(0) + a["updated"].as_i64().unwrap_or(0), 600, "{a}");
    assert_eq!(b["accepted"].as_i64().unwrap_or(0) + b["updated"].as_i64().unwrap_or(0), 600, "{b}");
    assert_eq!(on_second.get(&format!("/campaigns/{campaign}/contacts")).await.body["total"], 1000);
    let contact = on_first.get(&format!("/campaigns/{campaign}/contacts/C500")).await;
    assert_eq!(contact.body["current_stage"], "First Contact");

    // Both nodes try the same status change; exactly one wins.
    on_first.post(&format!("/campaigns/{campaign}/status"), json!({"status": "CONFIGURED"})).await;
    let change = json!({"status": "RUNNING"});
    let status_path = format!("/campaigns/{campaign}/status");
    let (x, y) = tokio::join!(on_first.post(&status_path, change.clone()), on_second.post(&status_path, change));
    let mut codes = [x.status, y.status];
    codes.sort();
    assert_eq!(codes, [200, 409], "{}\n{}", x.text, y.text);

    // Secrets sealed by one node open on the other (same deployment key).
    let integration = on_second.post("/integrations", json!({"kind": "TELEGRAM", "name": "Bot", "secrets": {"bot_token": "1:A"}})).await;
    let tenant = first.store.tenants().authenticate(&on_first.key).await.expect("auth").expect("tenant");
    let secrets = first.store.integrations().integration_secrets(&tenant, integration.body["id"].as_str().expect("id")).await.expect("opens");
    assert_eq!(secrets["bot_token"], "1:A");
}
