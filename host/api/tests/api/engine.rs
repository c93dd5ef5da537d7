//! A RUNNING campaign runs: due communications go out through their
//! stage's channel (SIMULATED here) exactly once, missed windows become
//! MISSED, AGGREGATION decides what comes next, results are kept, and the
//! campaign finishes when every contact has a final result.

use std::time::Duration;

use serde_json::{json, Value};

use crate::both_backends;
use crate::support::{App, Background, Backend, Client};

both_backends!(
    works_when_a_running_campaign_reaches_every_contact_and_finishes,
    works_when_a_campaign_that_is_not_running_sends_nothing,
    works_when_a_node_dies_between_sending_and_recording,
    works_when_sends_keep_within_the_channel_rate_limit,
    works_when_operators_work_the_human_task_queue,
    errors_when_the_aggregation_strategy_cannot_run,
    errors_when_the_aggregation_strategy_failed_to_build,
    errors_when_the_strategy_fails_for_most_contacts,
    works_when_two_sessions_of_one_contact_end_together,
    works_when_a_busy_node_ticks_again_at_once,
    works_when_an_open_ended_window_passes,
    works_when_one_node_runs_several_tick_loops,
    works_when_another_node_claims_a_communication_the_strategy_changed,
);

async fn setup(client: &Client) -> String {
    setup_with(client, json!({"name": "1. First contact", "channel": "SIMULATED", "alternatives": [{"label": "B", "weight": 50, "channel": "SIMULATED"}]})).await
}

/// The simulated campaign with `first` as its first stage.
async fn setup_with(client: &Client, first: Value) -> String {
    let campaign = client
        .post("/campaigns", json!({"name": "Simulated collections", "result_fields": [{"code": "OutcomeStatus", "name": "Outcome"}]}))
        .await;
    let campaign = campaign.body["id"].as_str().expect("id").to_owned();
    for stage in [first, json!({"name": "2. Retry", "channel": "SIMULATED"})] {
        assert_eq!(client.post(&format!("/campaigns/{campaign}/stages"), stage).await.status, 201);
    }
    client.strategy(&campaign, "DATA_LOAD", "examples/simulated/data_load.py").await;
    client.strategy(&campaign, "AGGREGATION", "examples/simulated/aggregation.py").await;
    let past = (chrono::Utc::now() - chrono::Duration::hours(5)).format("%Y-%m-%dT%H:%M:%S");
    let csv = format!(
        "object_id,external_id,name,email,phone,persona,contact_after\n\
         P1,U1,Paula Payer,p@example.com,+1,paid,\n\
         R1,U2,Rex Refuser,r@example.com,+2,refused,\n\
         N1,U3,Nora Nobody,n@example.com,+3,no_response,\n\
         M1,U4,Max Missed,m@example.com,+4,paid,{past}\n"
    );
    let job = client.upload(&format!("/campaigns/{campaign}/imports"), "text/csv", csv.into_bytes()).await;
    let job = client.wait_for_import(job.body["id"].as_str().expect("job")).await;
    assert_eq!(job["accepted"], 4, "{job}");
    campaign
}

async fn wait_for_status(client: &Client, campaign: &str, status: &str) -> Value {
    for _ in 0..600 {
        let reply = client.get(&format!("/campaigns/{campaign}")).await;
        if reply.body["status"] == status {
            return reply.body;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("campaign {campaign} never became {status}")
}

async fn contact(client: &Client, campaign: &str, object_id: &str) -> Value {
    client.get(&format!("/campaigns/{campaign}/contacts/{object_id}")).await.body
}

fn statuses(contact: &Value) -> Vec<&str> {
    contact["communications"].as_array().expect("communications").iter().map(|c| c["status"]["status"].as_str().expect("status")).collect()
}

async fn works_when_a_running_campaign_reaches_every_contact_and_finishes(backend: Backend) {
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    let campaign = setup(&client).await;
    for status in ["CONFIGURED", "RUNNING"] {
        let reply = client.post(&format!("/campaigns/{campaign}/status"), json!({"status": status})).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
    }
    wait_for_status(&client, &campaign, "FINISHED").await;

    let paid = contact(&client, &campaign, "P1").await;
    assert_eq!((paid["current_stage"].as_str(), paid["result_flag"].as_bool()), (Some("Paid"), Some(true)), "{paid}");
    assert!(paid["result_datetime"].is_string(), "ResultDatetime is set with the flag: {paid}");
    assert_eq!(paid["results"]["OutcomeStatus"], "PAID", "custom result field filled from session_results: {paid}");
    assert_eq!(statuses(&paid), ["COMPLETED"]);
    let label = paid["communications"][0]["alternative"].as_str().expect("A/B label recorded");
    assert!(label == "default" || label == "B", "{label}");

    let refused = contact(&client, &campaign, "R1").await;
    assert_eq!((refused["current_stage"].as_str(), refused["result_flag"].as_bool()), (Some("Refused"), Some(false)));

    let nobody = contact(&client, &campaign, "N1").await;
    assert_eq!((nobody["current_stage"].as_str(), nobody["result_flag"].as_bool()), (Some("Unreachable"), Some(false)));
    assert_eq!(statuses(&nobody), ["COMPLETED", "COMPLETED"], "retried once: {nobody}");

    // Its window passed before the campaign ran: MISSED, never sent, then retried.
    let missed = contact(&client, &campaign, "M1").await;
    assert_eq!(statuses(&missed), ["MISSED", "COMPLETED"], "{missed}");
    assert_eq!(missed["result_flag"], true);

    // Exactly one send per communication that was started.
    let tenant = app.store.tenants().authenticate(&client.key).await.expect("auth").expect("tenant");
    assert_eq!(app.store.dispatch().count_sends(&tenant, &campaign).await.expect("sends"), 5);
    let list = client.get(&format!("/campaigns/{campaign}/contacts")).await;
    assert_eq!(list.body["total"], 4);
    // The table's Outcome (the last session's OutcomeStatus here: no
    // strategy set `results["Outcome"]`) and what was sent and planned.
    let rows: Vec<(&str, &str, i64, i64)> = list.body["contacts"]
        .as_array()
        .expect("contacts")
        .iter()
        .map(|c| (c["object_id"].as_str().expect("id"), c["outcome"].as_str().unwrap_or("-"), c["sent_count"].as_i64().expect("sent"), c["planned_count"].as_i64().expect("planned")))
        .collect();
    assert_eq!(rows, [("M1", "PAID", 1, 0), ("N1", "NO_RESPONSE", 2, 0), ("P1", "PAID", 1, 0), ("R1", "REFUSED", 1, 0)], "{}", list.text);

    // The analytics panel over the finished campaign.
    let overview = client.get(&format!("/campaigns/{campaign}/analytics/overview")).await.body;
    let counts: Vec<i64> = ["total_contacts", "processed_contacts", "completed_contacts", "successful_contacts"]
        .iter()
        .map(|name| overview[name].as_i64().expect("count"))
        .collect();
    assert_eq!(counts, [4, 4, 4, 2], "{overview}");
    assert_eq!((overview["completion_rate"].as_f64(), overview["success_rate"].as_f64()), (Some(1.0), Some(0.5)));
    assert_eq!(overview["by_stage"][0], json!({"stage": "Paid", "contacts": 2, "successful": 2}), "{overview}");
    let first_contact: i64 = overview["by_alternative"]
        .as_array()
        .expect("by_alternative")
        .iter()
        .filter(|row| row["stage"] == "1. First contact")
        .map(|row| row["communications"].as_i64().expect("n"))
        .sum();
    assert_eq!(first_contact, 3, "M1's first communication was missed, never sent: {overview}");

    let from = (chrono::Utc::now() - chrono::Duration::days(1)).format("%Y-%m-%d");
    let by_status = client.get(&format!("/campaigns/{campaign}/analytics/distribution?by=status&period=week&from={from}&tz=UTC")).await;
    assert_eq!(by_status.status, 200, "{}", by_status.text);
    let mut totals = std::collections::BTreeMap::new();
    for bucket in by_status.body["buckets"].as_array().expect("buckets") {
        for (status, n) in bucket["counts"].as_object().expect("counts") {
            *totals.entry(status.clone()).or_insert(0) += n.as_i64().expect("n");
        }
    }
    assert_eq!(totals, std::collections::BTreeMap::from([("COMPLETED".to_owned(), 5), ("MISSED".to_owned(), 1)]), "{}", by_status.text);
}

async fn works_when_a_campaign_that_is_not_running_sends_nothing(backend: Backend) {
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    let campaign = setup(&client).await;
    // The engine ticks every 50 ms; a CONFIGURED campaign must stay untouched.
    client.post(&format!("/campaigns/{campaign}/status"), json!({"status": "CONFIGURED"})).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let paid = contact(&client, &campaign, "P1").await;
    assert_eq!(statuses(&paid), ["PLANNED"], "{paid}");
    let tenant = app.store.tenants().authenticate(&client.key).await.expect("auth").expect("tenant");
    assert_eq!(app.store.dispatch().count_sends(&tenant, &campaign).await.expect("sends"), 0);
    // Running it resumes the work.
    client.post(&format!("/campaigns/{campaign}/status"), json!({"status": "RUNNING"})).await;
    wait_for_status(&client, &campaign, "FINISHED").await;
}

/// A node claimed a communication, sent it, and died before recording how
/// its session ended. Another node retries the send under the same
/// idempotency key: the contact is not reached twice, and the outcome of
/// the first send is the one that counts.
async fn works_when_a_node_dies_between_sending_and_recording(backend: Backend) {
    let dead = App::start_with(backend, Background::Off).await;
    let client = dead.tenant("Acme").await;
    let campaign = setup(&client).await;
    for status in ["CONFIGURED", "RUNNING"] {
        client.post(&format!("/campaigns/{campaign}/status"), json!({"status": status})).await;
    }
    let tenant = dead.store.tenants().authenticate(&client.key).await.expect("auth").expect("tenant");
    // What the dead node did: claim everything due with a lease that has
    // run out by now, and send to R1 (whose persona would refuse) — the
    // provider answered PAID, and that answer was recorded.
    let now = chrono::Utc::now();
    let claimed = dead
        .store
        .dispatch().claim_due_communications(now, chrono::Duration::hours(24), now - chrono::Duration::seconds(1), 100)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 3, "P1, R1 and N1 are due; M1's window has passed");
    let r1 = dead.store.contacts().contact(&tenant, &campaign, "R1").await.expect("R1");
    let sent = claimed.iter().find(|c| c.contact_id == r1.id).expect("R1 claimed");
    let mut answer = stratagem_domain::JsonMap::new();
    answer.insert("OutcomeStatus".into(), "PAID".into());
    dead.store.dispatch().record_send(&tenant, &sent.id, "SIMULATED", &answer, now).await.expect("send recorded");

    let survivor = dead.second_node().await;
    let client = survivor.client_for(&client);
    wait_for_status(&client, &campaign, "FINISHED").await;
    let refused = contact(&client, &campaign, "R1").await;
    assert_eq!((refused["current_stage"].as_str(), refused["result_flag"].as_bool()), (Some("Paid"), Some(true)), "{refused}");
    assert_eq!(statuses(&refused), ["COMPLETED"]);
    assert_eq!(survivor.store.dispatch().count_sends(&tenant, &campaign).await.expect("sends"), 5, "no communication was sent twice");
}

/// With SIMULATED limited to 2 sends a second, no second of the send log
/// holds more than 2 sends, and every contact is still reached.
async fn works_when_sends_keep_within_the_channel_rate_limit(backend: Backend) {
    let limits = stratagem_engine::RateLimits::parse("SIMULATED=2").expect("limits");
    let app = App::start_limited(backend, Background::On, limits).await;
    let client = app.tenant("Acme").await;
    let campaign = setup(&client).await;
    for status in ["CONFIGURED", "RUNNING"] {
        client.post(&format!("/campaigns/{campaign}/status"), json!({"status": status})).await;
    }
    wait_for_status(&client, &campaign, "FINISHED").await;
    let tenant = app.store.tenants().authenticate(&client.key).await.expect("auth").expect("tenant");
    assert_eq!(app.store.dispatch().count_sends(&tenant, &campaign).await.expect("sends"), 5);
    let busiest = app.store.dispatch().busiest_send_second(&tenant).await.expect("send log");
    assert!(busiest <= 2, "{busiest} sends in one second; the limit is 2");
}

/// A HUMAN first stage: each due contact becomes an operator task; the
/// operator's outcome ends the session and AGGREGATION goes on from there.
async fn works_when_operators_work_the_human_task_queue(backend: Backend) {
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    let intruder = app.tenant("Intruder").await;
    let campaign = setup_with(&client, json!({"name": "1. First contact", "channel": "HUMAN", "settings": {"agent_role": "Collector"}})).await;
    for status in ["CONFIGURED", "RUNNING"] {
        client.post(&format!("/campaigns/{campaign}/status"), json!({"status": status})).await;
    }
    // P1, R1 and N1 are due now; M1's window passed (MISSED, then retried on the simulated stage).
    let mut tasks = Value::Null;
    for _ in 0..600 {
        tasks = client.get(&format!("/tasks?campaign={campaign}")).await.body;
        if tasks.as_array().is_some_and(|list| list.len() == 3) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ids: std::collections::HashMap<String, String> = tasks
        .as_array()
        .expect("tasks")
        .iter()
        .map(|task| (task["object_id"].as_str().expect("object id").to_owned(), task["id"].as_str().expect("id").to_owned()))
        .collect();
    assert_eq!(ids.len(), 3, "{tasks}");
    assert_eq!(intruder.get("/tasks").await.body, json!([]));

    let claimed = client.post(&format!("/tasks/{}/claim", ids["P1"]), json!({"operator": "ann"})).await;
    assert_eq!((claimed.status, claimed.body["claimed_by"].as_str()), (200, Some("ann")), "{}", claimed.text);
    let detail = client.post(&format!("/tasks/{}/claim", ids["P1"]), json!({"operator": "bob"})).await.problem(409);
    assert_eq!(detail, "the task is claimed by `ann`");
    intruder.post(&format!("/tasks/{}/outcome", ids["P1"]), json!({"outcome": "PAID"})).await.problem(404);
    let detail = client.post(&format!("/tasks/{}/outcome", ids["P1"]), json!({"outcome": "paid now!"})).await.problem(400);
    assert!(detail.starts_with("outcome `paid now!` must be letters"), "{detail}");

    for (object_id, outcome) in [("P1", "PAID"), ("R1", "REFUSED"), ("N1", "NO_RESPONSE")] {
        let reply = client.post(&format!("/tasks/{}/outcome", ids[object_id]), json!({"outcome": outcome, "results": {"note": "called"}})).await;
        assert_eq!(reply.status, 204, "{}", reply.text);
    }
    client.post(&format!("/tasks/{}/outcome", ids["P1"]), json!({"outcome": "PAID"})).await.problem(404);
    wait_for_status(&client, &campaign, "FINISHED").await;
    let paid = contact(&client, &campaign, "P1").await;
    assert_eq!((paid["current_stage"].as_str(), paid["result_flag"].as_bool()), (Some("Paid"), Some(true)), "{paid}");
    let nobody = contact(&client, &campaign, "N1").await;
    assert_eq!(nobody["current_stage"], "Unreachable", "the simulated retry answered as its persona: {nobody}");
}

/// An active AGGREGATION version that does not fit the contract (stored by
/// hand here, as a bad release or a corrupted row would leave it) stops the
/// campaign with the reason, instead of running it without its strategy.
async fn errors_when_the_aggregation_strategy_cannot_run(backend: Backend) {
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    let campaign = setup(&client).await;
    let tenant = app.store.tenants().authenticate(&client.key).await.expect("auth").expect("tenant");
    let empty_component = b"\0asm\x0d\0\x01\0".to_vec();
    let lease = chrono::Utc::now() + chrono::Duration::hours(1);
    let input = stratagem_store::VersionInput::Component(&empty_component);
    let (id, version) = app
        .store
        .strategies().add_strategy_version(&tenant, &campaign, "broken", stratagem_domain::StrategyType::Aggregation, input, stratagem_store::VersionStart::Leased(lease))
        .await
        .expect("version");
    app.store.strategies().finish_strategy_build(&id, version, Ok((&empty_component, "not-a-real-hash"))).await.expect("ready");
    for status in ["CONFIGURED", "RUNNING"] {
        client.post(&format!("/campaigns/{campaign}/status"), json!({"status": status})).await;
    }
    let stopped = wait_for_status(&client, &campaign, "ERROR").await;
    let reason = stopped["error_reason"].as_str().expect("reason");
    assert!(reason.starts_with("the AGGREGATION strategy cannot run:"), "{reason}");
    let paid = contact(&client, &campaign, "P1").await;
    assert!(paid["result_flag"].is_null(), "nothing was decided without the strategy: {paid}");
}

/// A campaign whose only AGGREGATION failed to build stops with the build
/// error as its reason, instead of deciding its sessions as if it had no
/// strategy; nothing is sent.
/// A strategy uploaded while the campaign runs that fails to build stops
/// the campaign (a campaign cannot be started with one: readiness).
async fn errors_when_the_aggregation_strategy_failed_to_build(backend: Backend) {
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    let campaign = client.campaign("Broken build").await;
    assert_eq!(client.post(&format!("/campaigns/{campaign}/stages"), json!({"name": "1. First contact", "channel": "SIMULATED"})).await.status, 201);
    client.strategy(&campaign, "DATA_LOAD", "examples/simulated/data_load.py").await;
    let soon = (chrono::Utc::now() + chrono::Duration::seconds(3)).format("%Y-%m-%dT%H:%M:%S");
    let csv = format!("object_id,external_id,name,email,phone,persona,contact_after\nP1,U1,Paula Payer,p@example.com,+1,paid,{soon}\n");
    let job = client.upload(&format!("/campaigns/{campaign}/imports"), "text/csv", csv.into_bytes()).await;
    assert_eq!(client.wait_for_import(job.body["id"].as_str().expect("job")).await["accepted"], 1);
    for status in ["CONFIGURED", "RUNNING"] {
        assert_eq!(client.post(&format!("/campaigns/{campaign}/status"), json!({"status": status})).await.status, 200);
    }
    // Uploaded meanwhile, before the first send is due; its build failed.
    let tenant = app.store.tenants().authenticate(&client.key).await.expect("auth").expect("tenant");
    let sources = std::collections::BTreeMap::from([("broken.py".to_owned(), "async def run(contact, session_results, logger, **kwargs)\n".to_owned())]);
    let input = stratagem_store::VersionInput::Source { entry: "broken.py", sources: &sources };
    let lease = chrono::Utc::now() + chrono::Duration::minutes(5);
    let (broken, version) = app.store.strategies()
        .add_strategy_version(&tenant, &campaign, "broken", stratagem_domain::StrategyType::Aggregation, input, stratagem_store::VersionStart::Leased(lease)).await.expect("version");
    let error = stratagem_domain::strategy::BuildError {
        kind: stratagem_domain::strategy::BuildErrorKind::Python,
        detail: "broken.py, line 1: SyntaxError: expected ':'".into(),
        python: Some(stratagem_domain::strategy::PythonBuildError {
            type_name: "SyntaxError".into(), message: "expected ':'".into(), file: Some("broken.py".into()),
            line: Some(1), column: Some(56), source: None,
        }),
    };
    app.store.strategies().finish_strategy_build(&broken, version, Err(error)).await.expect("failed");

    let stopped = wait_for_status(&client, &campaign, "ERROR").await;
    let reason = stopped["error_reason"].as_str().expect("reason");
    assert!(reason.starts_with("the AGGREGATION strategy failed to build: broken.py, line 1, column 56: SyntaxError"), "{reason}");
    assert!(reason.ends_with("upload a fixed version and configure the campaign again"), "{reason}");
    assert_eq!(app.store.dispatch().count_sends(&tenant, &campaign).await.expect("sends"), 0);
    let paid = contact(&client, &campaign, "P1").await;
    assert!(paid["result_flag"].is_null(), "nothing was decided without the strategy: {paid}");
}

/// Three tick loops on one node, in small batches, share the work as
/// nodes do: every contact is reached exactly once and decided.
async fn works_when_one_node_runs_several_tick_loops(backend: Backend) {
    let app = App::start_with(backend, Background::Off).await;
    let client = app.tenant("Acme").await;
    let mut csv = String::from("object_id,external_id,name,email,phone,persona\n");
    for n in 0..12 {
        csv.push_str(&format!("C{n},U{n},Contact {n},c{n}@example.com,+{n},{}\n", if n % 2 == 0 { "paid" } else { "refused" }));
    }
    let ((load_file, data_load), (aggregation_file, aggregation)) = (simulated_example("DATA_LOAD"), simulated_example("AGGREGATION"));
    let campaign = running_simulated_campaign(&client, "Loops", (load_file, &data_load), (aggregation_file, &aggregation), &csv).await;
    let ticking = spawn_engine(&app, stratagem_engine::EngineConfig { batch: 2, loops: 3, ..crate::support::TEST_ENGINE });
    wait_for_status(&client, &campaign, "FINISHED").await;
    ticking.abort();
    for n in 0..12 {
        let decided = contact(&client, &campaign, &format!("C{n}")).await;
        let expected = if n % 2 == 0 { ("Paid", true) } else { ("Refused", false) };
        assert_eq!((decided["current_stage"].as_str(), decided["result_flag"].as_bool()), (Some(expected.0), Some(expected.1)), "{decided}");
        assert_eq!(statuses(&decided), ["COMPLETED"], "{decided}");
    }
    let tenant = app.store.tenants().authenticate(&client.key).await.expect("auth").expect("tenant");
    assert_eq!(app.store.dispatch().count_sends(&tenant, &campaign).await.expect("sends"), 12);
}

/// DATA_LOAD planning one communication without an end date (the default
/// window, 24 hours here), started `hours_ago`.
const OPEN_ENDED_DATA_LOAD: &str = r#"
from stratagem import Communication, Contact, datetime, timedelta


async def run(contact: Contact, existing_contact: Contact | None, logger, **kwargs) -> Contact:
    start = datetime.now() - timedelta(hours=int(contact.parameters["hours_ago"]))
    contact.communications.append(Communication(name="First contact", stage_name="1. First contact", start_date=start))
    return contact
"#;

/// AGGREGATION that keeps the session's outcome and decides the contact.
const OUTCOME_AGGREGATION: &str = r#"
from stratagem import Contact


async def run(contact: Contact, session_results: dict | None, logger, **kwargs) -> Contact:
    contact.results["outcome"] = (session_results or {}).get("OutcomeStatus")
    contact.result_flag = True
    return contact
"#;

/// A communication planned without an end date has the default window: one
/// that started 30 hours ago is MISSED, one that started an hour ago is sent.
async fn works_when_an_open_ended_window_passes(backend: Backend) {
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    let csv = "object_id,external_id,name,email,phone,persona,hours_ago\n\
               OLD,U1,Olga Old,o@example.com,+1,paid,30\n\
               NEW,U2,Ned New,n@example.com,+2,paid,1\n";
    let campaign =
        running_simulated_campaign(&client, "Open-ended", ("open_ended.py", OPEN_ENDED_DATA_LOAD), ("outcome.py", OUTCOME_AGGREGATION), csv).await;
    wait_for_status(&client, &campaign, "FINISHED").await;
    let old = contact(&client, &campaign, "OLD").await;
    assert_eq!((statuses(&old), old["results"]["outcome"].as_str()), (vec!["MISSED"], Some("MISSED")), "{old}");
    let new = contact(&client, &campaign, "NEW").await;
    assert_eq!((statuses(&new), new["results"]["outcome"].as_str()), (vec!["COMPLETED"], Some("PAID")), "{new}");
    let tenant = app.store.tenants().authenticate(&client.key).await.expect("auth").expect("tenant");
    assert_eq!(app.store.dispatch().count_sends(&tenant, &campaign).await.expect("sends"), 1, "the missed one was never sent");
}

/// AGGREGATION that raises for contacts whose `breaks` parameter is `yes`.
const FRAGILE_AGGREGATION: &str = r#"
from stratagem import CommunicationStatus, Contact


async def run(contact: Contact, session_results: dict | None, logger, **kwargs) -> Contact:
    if contact.parameters.get("breaks") == "yes":
        raise ValueError(f"cannot handle {contact.object_id}")
    for comm in contact.communications:
        if comm.flagged:
            comm.status.status = CommunicationStatus.COMPLETED
    contact.current_stage = "Done"
    contact.result_flag = True
    return contact
"#;

/// The simulated demo's strategy of `kind` under examples/simulated, as
/// (file name, source).
fn simulated_example(kind: &str) -> (&'static str, String) {
    let name = if kind == "DATA_LOAD" { "data_load.py" } else { "aggregation.py" };
    (name, crate::support::repo_file(&format!("examples/simulated/{name}")))
}

/// A RUNNING campaign named `name`: one SIMULATED stage, DATA_LOAD and
/// AGGREGATION given as (file name, source), and every row of `csv`
/// imported.
async fn running_simulated_campaign(client: &Client, name: &str, data_load: (&str, &str), aggregation: (&str, &str), csv: &str) -> String {
    let campaign = client.campaign(name).await;
    assert_eq!(client.post(&format!("/campaigns/{campaign}/stages"), json!({"name": "1. First contact", "channel": "SIMULATED"})).await.status, 201);
    client.strategy_source(&campaign, "DATA_LOAD", data_load.0, data_load.1).await;
    client.strategy_source(&campaign, "AGGREGATION", aggregation.0, aggregation.1).await;
    let job = client.upload(&format!("/campaigns/{campaign}/imports"), "text/csv", csv.as_bytes().to_vec()).await;
    let rows = csv.lines().count() - 1;
    assert_eq!(client.wait_for_import(job.body["id"].as_str().expect("job")).await["accepted"], rows);
    for status in ["CONFIGURED", "RUNNING"] {
        assert_eq!(client.post(&format!("/campaigns/{campaign}/status"), json!({"status": status})).await.status, 200);
    }
    campaign
}

/// Runs an engine with `config` on the node's database until aborted.
fn spawn_engine(app: &App, config: stratagem_engine::EngineConfig) -> tokio::task::JoinHandle<()> {
    let strategies = std::sync::Arc::new(stratagem_engine::StrategyService::new(crate::support::runtime(), crate::support::builder()));
    let engine = stratagem_engine::Engine::new(app.store.clone(), strategies, std::sync::Arc::new(stratagem_runtime::SystemClock), config);
    std::sync::Arc::new(engine).spawn(stratagem_engine::CancellationToken::new())
}

/// A running campaign of 12 contacts of which `breaking` make AGGREGATION fail.
async fn fragile_campaign(client: &Client, breaking: usize) -> String {
    let mut csv = String::from("object_id,external_id,name,email,phone,breaks\n");
    for n in 0..12 {
        csv.push_str(&format!("C{n},U{n},Contact {n},c{n}@example.com,+{n},{}\n", if n < breaking { "yes" } else { "no" }));
    }
    let (file, data_load) = simulated_example("DATA_LOAD");
    running_simulated_campaign(client, &format!("{breaking} breaking"), (file, &data_load), ("fragile.py", FRAGILE_AGGREGATION), &csv).await
}

async fn errors_when_the_strategy_fails_for_most_contacts(backend: Backend) {
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    let most = fragile_campaign(&client, 8).await;
    let few = fragile_campaign(&client, 3).await;

    let stopped = wait_for_status(&client, &most, "ERROR").await;
    let reason = stopped["error_reason"].as_str().expect("reason");
    assert!(reason.contains("failed for 8 of its 12 processed contacts"), "{reason}");
    let broken = contact(&client, &most, "C0").await;
    assert_eq!(broken["last_error"]["hook"], "AGGREGATION", "the traceback stays on the contact: {broken}");
    assert!(broken["last_error"]["message"].as_str().expect("message").contains("cannot handle C0"), "{broken}");
    // The history keeps each run: DATA_LOAD's, then the failed AGGREGATION's.
    let runs = broken["invocations"].as_array().expect("invocations");
    let failed = runs.iter().find(|run| run["hook"] == "AGGREGATION").expect("the AGGREGATION run is kept");
    assert_eq!((failed["outcome"].as_str(), failed["replayable"].as_bool()), (Some("exception"), Some(true)), "{failed}");
    assert!(failed["message"].as_str().expect("message").contains("cannot handle C0"), "{failed}");
    assert_eq!(broken["last_error"]["invocation_id"], failed["id"], "the error names its invocation");
    assert!(runs.iter().any(|run| run["hook"] == "DATA_LOAD" && run["outcome"] == "ok"), "{broken}");

    // A few failing contacts are the contacts' problem, not the campaign's:
    // it runs on, and those contacts keep their error for a retry.
    for _ in 0..300 {
        let overview = client.get(&format!("/campaigns/{few}/analytics/overview")).await.body;
        if overview["processed_contacts"] == 12 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let running = client.get(&format!("/campaigns/{few}")).await.body;
    assert_eq!((running["status"].as_str(), running["error_reason"].as_str()), (Some("RUNNING"), None), "{running}");
    let decided = contact(&client, &few, "C5").await;
    assert_eq!(decided["result_flag"], true);
    assert!(decided["invocations"].as_array().expect("invocations").iter().any(|run| run["hook"] == "AGGREGATION" && run["outcome"] == "ok"), "{decided}");
    assert!(contact(&client, &few, "C1").await["last_error"].is_object());
}

/// DATA_LOAD planning two communications due at once, so one tick sends
/// both and their sessions end in the same batch.
const TWICE_DATA_LOAD: &str = r#"
from stratagem import Communication, Contact, datetime, timedelta


async def run(contact: Contact, existing_contact: Contact | None, logger, **kwargs) -> Contact:
    now = datetime.now()
    for name in ("Morning", "Evening"):
        contact.communications.append(
            Communication(name=name, stage_name="1. First contact", start_date=now - timedelta(minutes=1), end_date=now + timedelta(hours=2))
        )
    return contact
"#;

/// AGGREGATION counting the contact's sessions; the second one decides.
const COUNTING_AGGREGATION: &str = r#"
from stratagem import CommunicationStatus, Contact


async def run(contact: Contact, session_results: dict | None, logger, **kwargs) -> Contact:
    for comm in contact.communications:
        if comm.flagged:
            comm.status.status = CommunicationStatus.COMPLETED
    contact.internal_data["sessions"] = contact.internal_data.get("sessions", 0) + 1
    if contact.internal_data["sessions"] == 2:
        contact.result_flag = True
    return contact
"#;

/// Both AGGREGATION runs start from one revision of the contact; the batch
/// applies the first, and the second runs again on what the first wrote,
/// so neither outcome is lost.
async fn works_when_two_sessions_of_one_contact_end_together(backend: Backend) {
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    let csv = "object_id,external_id,name,email,phone\nT1,U1,Tess Twice,t@example.com,+1\nT2,U2,Tom Twice,u@example.com,+2\n";
    let campaign = running_simulated_campaign(&client, "Twice", ("twice.py", TWICE_DATA_LOAD), ("counting.py", COUNTING_AGGREGATION), csv).await;
    wait_for_status(&client, &campaign, "FINISHED").await;
    for object_id in ["T1", "T2"] {
        let twice = contact(&client, &campaign, object_id).await;
        assert_eq!(twice["internal_data"]["sessions"], 2, "both sessions were aggregated: {twice}");
        assert_eq!(statuses(&twice), ["COMPLETED", "COMPLETED"], "{twice}");
    }
    let tenant = app.store.tenants().authenticate(&client.key).await.expect("auth").expect("tenant");
    assert_eq!(app.store.dispatch().count_sends(&tenant, &campaign).await.expect("sends"), 4);
}

/// A tick read the contact; then another node's tick claimed the contact's
/// other communication, which this tick's AGGREGATION changed. The outcome
/// is not written over the claim (that would put the communication back
/// to PLANNED, to be sent again); it is left to run again on what is there.
async fn works_when_another_node_claims_a_communication_the_strategy_changed(backend: Backend) {
    let app = App::start_with(backend, Background::Off).await;
    let client = app.tenant("Acme").await;
    let csv = "object_id,external_id,name,email,phone\nT1,U1,Tess Twice,t@example.com,+1\n";
    let campaign = running_simulated_campaign(&client, "Claimed meanwhile", ("twice.py", TWICE_DATA_LOAD), ("counting.py", COUNTING_AGGREGATION), csv).await;
    let tenant = app.store.tenants().authenticate(&client.key).await.expect("auth").expect("tenant");
    let now = chrono::Utc::now();
    let claim = || app.store.dispatch().claim_due_communications(now, chrono::Duration::hours(24), now + chrono::Duration::minutes(5), 1);
    let mine = claim().await.expect("claim").pop().expect("one claimed");
    let seen = app.store.dispatch().contact_at_revision(&tenant, &mine.contact_id).await.expect("contact");
    let theirs = claim().await.expect("claim").pop().expect("the other claimed");
    assert_ne!(mine.id, theirs.id);

    let mut changed = seen.stored.contact.clone();
    let later = changed.communications.iter_mut().find(|c| c.id.as_deref() == Some(theirs.id.as_str())).expect("theirs");
    assert_eq!(later.status.status, stratagem_domain::CommunicationStatus::Planned, "the strategy saw it planned");
    later.end_date = Some(now + chrono::Duration::hours(3));
    let outcome = stratagem_store::SessionOutcome {
        tenant_id: tenant.clone(),
        contact_id: mine.contact_id.clone(),
        revision: seen.revision,
        contact: changed,
        seen_communications: seen.stored.contact.communications.clone(),
        communication_id: mine.id.clone(),
        last_error: None,
        start: None,
        invocation: None,
    };
    assert_eq!(app.store.dispatch().apply_session_outcomes(&[outcome], now).await.expect("apply"), [false], "not applied over the claim");
    let tess = contact(&client, &campaign, "T1").await;
    let claimed = tess["communications"].as_array().expect("communications").iter().find(|c| c["id"] == theirs.id.as_str()).expect("theirs");
    assert_eq!(claimed["status"]["status"], "IN_PROGRESS", "still the other node's: {tess}");
    assert_eq!(claimed["end_date"], json!(theirs.communication.end_date), "{tess}");
    assert_eq!(tess["internal_data"], json!({}), "nothing of the outcome was written: {tess}");
}

/// A tick that sent or aggregated a full batch is followed at once by the
/// next, not after the tick interval: with batches of 2 and an hour between
/// idle ticks, 7 contacts are still all reached and the campaign finishes.
async fn works_when_a_busy_node_ticks_again_at_once(backend: Backend) {
    let app = App::start_with(backend, Background::Off).await;
    let client = app.tenant("Acme").await;
    let mut csv = String::from("object_id,external_id,name,email,phone,persona\n");
    for n in 0..7 {
        csv.push_str(&format!("C{n},U{n},Contact {n},c{n}@example.com,+{n},paid\n"));
    }
    let ((load_file, data_load), (aggregation_file, aggregation)) = (simulated_example("DATA_LOAD"), simulated_example("AGGREGATION"));
    let campaign = running_simulated_campaign(&client, "Busy", (load_file, &data_load), (aggregation_file, &aggregation), &csv).await;
    let ticking = spawn_engine(&app, stratagem_engine::EngineConfig { batch: 2, tick_every: Duration::from_secs(3600), ..crate::support::TEST_ENGINE });
    wait_for_status(&client, &campaign, "FINISHED").await;
    ticking.abort();
    let tenant = app.store.tenants().authenticate(&client.key).await.expect("auth").expect("tenant");
    assert_eq!(app.store.dispatch().count_sends(&tenant, &campaign).await.expect("sends"), 7);
}
