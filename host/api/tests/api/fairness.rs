//! Fair dispatch: a tenant with many due communications (or sessions
//! awaiting AGGREGATION) does not delay another tenant's few. One tick of
//! a batch of 50 serves both tenants, though all of the flood's work is
//! older than the other tenant's.

use serde_json::{json, Value};

use crate::both_backends;
use crate::support::{App, Background, Backend, Client};

both_backends!(
    works_when_a_flooding_tenant_shares_the_send_batch,
    works_when_a_flooding_tenant_shares_the_aggregation_batch,
    works_when_a_flooding_tenant_shares_the_conversation_batches
);

/// A tick's batch, well under the flood.
const BATCH: i64 = 50;
const FLOOD: usize = 300;
const FEW: usize = 3;

/// A RUNNING campaign of `contacts` contacts on the SIMULATED channel,
/// each with one communication that became due `minutes_ago`.
async fn running_campaign(client: &Client, contacts: usize, minutes_ago: i64) -> String {
    let campaign = client.campaign("Noisy neighbours").await;
    assert_eq!(client.post(&format!("/campaigns/{campaign}/stages"), json!({"name": "1. First contact", "channel": "SIMULATED"})).await.status, 201);
    client.strategy(&campaign, "DATA_LOAD", "examples/simulated/data_load.py").await;
    let due = (chrono::Utc::now() - chrono::Duration::minutes(minutes_ago)).format("%Y-%m-%dT%H:%M:%S");
    let mut csv = String::from("object_id,external_id,name,email,phone,persona,contact_after\n");
    for n in 0..contacts {
        csv.push_str(&format!("C{n},U{n},Contact {n},c{n}@example.com,+{n},paid,{due}\n"));
    }
    let job = client.upload(&format!("/campaigns/{campaign}/imports"), "text/csv", csv.into_bytes()).await;
    assert_eq!(client.wait_for_import(job.body["id"].as_str().expect("job")).await["accepted"], contacts);
    for status in ["CONFIGURED", "RUNNING"] {
        assert_eq!(client.post(&format!("/campaigns/{campaign}/status"), json!({"status": status})).await.status, 200);
    }
    campaign
}

/// The flood's campaign (due 30 minutes ago) and the few's (due a minute
/// ago), each of its own tenant: (flood tenant, client, campaign), (few …).
async fn neighbours(app: &App) -> ((String, Client, String), (String, Client, String)) {
    let (flood_tenant, flood) = app.tenant_with_id("Flood").await;
    let (few_tenant, few) = app.tenant_with_id("Few").await;
    let flood_campaign = running_campaign(&flood, FLOOD, 30).await;
    let few_campaign = running_campaign(&few, FEW, 1).await;
    ((flood_tenant, flood, flood_campaign), (few_tenant, few, few_campaign))
}

/// Every due communication of both tenants claimed, as if sent: the
/// flood's first. Returns the instant of the claim with them.
async fn all_sent_flood_first(app: &App, flood_tenant: &str) -> (chrono::DateTime<chrono::Utc>, Vec<stratagem_store::ClaimedCommunication>) {
    let now = chrono::Utc::now();
    let claimed = app
        .store
        .dispatch()
        .claim_due_communications(now, chrono::Duration::hours(24), now + chrono::Duration::minutes(5), 1000)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), FLOOD + FEW);
    let (mut floods, fews): (Vec<_>, Vec<_>) = claimed.into_iter().partition(|c| c.tenant_id == flood_tenant);
    floods.extend(fews);
    (now, floods)
}

fn statuses(contact: &Value) -> Vec<&str> {
    contact["communications"].as_array().expect("communications").iter().map(|c| c["status"]["status"].as_str().expect("status")).collect()
}

/// Oldest first across tenants, the first six ticks would have sent only
/// the flood's. Here the first tick sends the few's three, and the flood
/// gets the rest of the batch.
async fn works_when_a_flooding_tenant_shares_the_send_batch(backend: Backend) {
    let app = App::start_with(backend, Background::Off).await;
    let ((flood_tenant, _, flood_campaign), (few_tenant, few, few_campaign)) = neighbours(&app).await;
    let engine = app.engine(stratagem_engine::EngineConfig { batch: BATCH, ..crate::support::TEST_ENGINE });

    let report = engine.tick().await.expect("tick");
    assert_eq!((report.dispatched, report.aggregated), (BATCH as usize, BATCH as usize), "{report:?}");
    let few_sends = app.store.dispatch().count_sends(&few_tenant, &few_campaign).await.expect("sends");
    assert_eq!(few_sends, FEW as i64, "the few were sent in the first tick");
    let flood_sends = app.store.dispatch().count_sends(&flood_tenant, &flood_campaign).await.expect("sends");
    assert_eq!(flood_sends, BATCH - FEW as i64, "the flood had the rest of the batch");
    for n in 0..FEW {
        let contact = few.get(&format!("/campaigns/{few_campaign}/contacts/C{n}")).await.body;
        assert_eq!(statuses(&contact), ["COMPLETED"], "{contact}");
    }
}

/// Sessions that ended (a conversation's, an operator's) wait for
/// AGGREGATION: the flood's 300 ended before the few's 3, and one tick of
/// 50 aggregates the few's with 47 of the flood's.
async fn works_when_a_flooding_tenant_shares_the_aggregation_batch(backend: Backend) {
    let app = App::start_with(backend, Background::Off).await;
    let ((flood_tenant, flood, flood_campaign), (_, few, few_campaign)) = neighbours(&app).await;
    // What channels did: every communication sent, and its session ended
    // later, the flood's first.
    let (now, sent) = all_sent_flood_first(&app, &flood_tenant).await;
    let mut results = stratagem_domain::JsonMap::new();
    results.insert("OutcomeStatus".into(), "PAID".into());
    for (n, communication) in sent.iter().enumerate() {
        let ended = now + chrono::Duration::milliseconds(n as i64);
        app.store.dispatch().end_session(&communication.id, None, "SIMULATED", &results, ended).await.expect("session ended");
    }
    let engine = app.engine(stratagem_engine::EngineConfig { batch: BATCH, ..crate::support::TEST_ENGINE });

    let report = engine.tick().await.expect("tick");
    assert_eq!((report.dispatched, report.aggregated), (0, BATCH as usize), "{report:?}");
    let processed = |client: &Client, campaign: &str| {
        let (client, path) = (client.clone(), format!("/campaigns/{campaign}/analytics/overview"));
        async move { client.get(&path).await.body["processed_contacts"].as_i64().expect("processed") }
    };
    assert_eq!(processed(&few, &few_campaign).await, FEW as i64, "the few were aggregated in the first tick");
    assert_eq!(processed(&flood, &flood_campaign).await, BATCH - FEW as i64, "the flood had the rest of the batch");
    for n in 0..FEW {
        let contact = few.get(&format!("/campaigns/{few_campaign}/contacts/C{n}")).await.body;
        assert_eq!(statuses(&contact), ["COMPLETED"], "{contact}");
    }
}

/// Conversations: the flood's 300 contacts wrote before the few's 3, and
/// all of them went quiet later. A claim of 50 sessions awaiting an answer
/// takes the few's 3 with 47 of the flood's; so does a claim of 50 quiet
/// conversations to end. Both are the engine's per-tick claims.
async fn works_when_a_flooding_tenant_shares_the_conversation_batches(backend: Backend) {
    let app = App::start_with(backend, Background::Off).await;
    let ((flood_tenant, _, _), (few_tenant, _, _)) = neighbours(&app).await;
    let (now, ordered) = all_sent_flood_first(&app, &flood_tenant).await;
    let lease = now + chrono::Duration::minutes(5);
    let conversations = app.store.conversations();
    // The flood's first: each contact wrote (and later went quiet) a
    // millisecond after the one before.
    let wrote = |n: usize| now - chrono::Duration::hours(2) + chrono::Duration::milliseconds(n as i64);
    for (n, communication) in ordered.iter().enumerate() {
        let address = format!("chat-{n}");
        let opened = stratagem_store::Conversation { integration_id: "telegram", agent_id: None, address: &address, provider_ref: &address };
        let wrote = wrote(n);
        conversations.open_conversation(&communication.id, "Default", "TELEGRAM", &opened, wrote).await.expect("opened");
        conversations.await_answer(&communication.id, wrote).await.expect("awaits");
    }
    let tenants = |claimed: &[stratagem_store::OpenSession]| {
        let few = claimed.iter().filter(|s| s.tenant_id == few_tenant).count();
        (few, claimed.len() - few)
    };

    let awaiting = conversations.claim_awaiting_answers(now, lease, BATCH).await.expect("claim answers");
    assert_eq!(tenants(&awaiting), (FEW, BATCH as usize - FEW), "the few's answers first, the flood the rest");

    // Answered, then quiet for an hour: the inactivity queue.
    for (n, communication) in ordered.iter().enumerate() {
        let quiet_since = wrote(n) + chrono::Duration::hours(1);
        conversations.answered(&communication.id, wrote(n), 0, quiet_since).await.expect("answered");
    }
    let quiet = conversations.claim_inactive_sessions(now, now - chrono::Duration::minutes(30), lease, BATCH).await.expect("claim quiet");
    assert_eq!(tenants(&quiet), (FEW, BATCH as usize - FEW), "the few's quiet sessions first, the flood the rest");
}
