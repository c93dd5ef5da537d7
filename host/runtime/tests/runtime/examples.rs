//! Every strategy in examples/ runs here through the runtime API (the CLI
//! suite runs them through `stratagem strategy run` as well).

use serde_json::json;
use stratagem_domain::{CommunicationStatus, Contact, Message};
use stratagem_runtime::Hook;

use crate::support::{contact, options, strategy};

fn example_input(name: &str) -> serde_json::Value {
    let path = crate::support::repo_root().join("examples/inputs").join(name);
    serde_json::from_str(&std::fs::read_to_string(path).expect("input exists")).expect("valid json")
}

fn in_session() -> Contact {
    serde_json::from_value(example_input("contact_in_session.json")).expect("contact")
}

fn message(text: &str) -> Message {
    serde_json::from_value(json!({"content": text, "sent_at": "2026-11-26T10:00:00Z"})).expect("message")
}

async fn run(path: &str, hook: Hook) -> Option<Contact> {
    let invocation = strategy(path).await.invoke(&hook, &options()).await;
    invocation.result.unwrap_or_else(|error| panic!("{path}: {error}"))
}

#[tokio::test]
async fn works_when_the_spec_data_load_snippet_plans_the_first_contact() {
    let result = run("examples/spec/data_load.py", Hook::DataLoad { contact: contact(json!({})), existing: None }).await.expect("contact");
    assert_eq!(result.current_stage.as_deref(), Some("First Contact"));
    let comm = &result.communications[0];
    assert_eq!((comm.name.as_str(), comm.stage_name.as_str()), ("Initial Message", "First Contact"));
    assert_eq!(comm.start_date.to_rfc3339(), "2026-11-26T11:00:00+00:00");
    assert_eq!(comm.status.status, CommunicationStatus::Planned);
}

#[tokio::test]
async fn works_when_the_spec_aggregation_snippet_schedules_a_follow_up() {
    let session_results = example_input("no_response.json").as_object().cloned();
    let result = run("examples/spec/aggregation.py", Hook::Aggregation { contact: in_session(), session_results }).await.expect("contact");
    assert_eq!(result.communications[0].status.status, CommunicationStatus::Completed);
    let follow_up = &result.communications[1];
    assert_eq!((follow_up.name.as_str(), follow_up.stage_name.as_str()), ("Follow-up", "Second Attempt"));
    assert_eq!(follow_up.start_date.to_rfc3339(), "2026-11-27T10:00:00+00:00");
}

#[tokio::test]
async fn works_when_the_spec_contact_answer_snippet_detects_a_promise() {
    let hook = Hook::ContactAnswer { contact: contact(json!({})), message: message("OK, I promise to pay on Friday") };
    let result = run("examples/spec/contact_answer.py", hook).await.expect("contact");
    assert_eq!(result.current_stage.as_deref(), Some("Payment Promised"));
    assert_eq!(result.internal_data["last_message_time"], json!({"$datetime": "2026-11-26T10:00:00"}));
}

#[tokio::test]
async fn works_when_debt_collection_data_load_plans_a_business_morning_email() {
    let new = contact(json!({"amount_due": "120.50"}));
    let result = run("examples/debt-collection/data_load.py", Hook::DataLoad { contact: new.clone(), existing: None }).await.expect("contact");
    assert_eq!(result.current_stage.as_deref(), Some("1. Email reminder"));
    // 2026-11-26 is a Thursday: the next business morning is Friday 09:00.
    assert_eq!(result.communications[0].start_date.to_rfc3339(), "2026-11-27T09:00:00+00:00");
    assert_eq!(result.communications[0].parameters["amount_due"], 120.5);

    let mut reimport = new.clone();
    reimport.parameters.insert("amount_due".into(), json!("80"));
    let merged = run("examples/debt-collection/data_load.py", Hook::DataLoad { contact: reimport, existing: Some(result) }).await.expect("contact");
    assert_eq!(merged.communications.len(), 1, "history is kept, nothing planned twice");
    assert_eq!(merged.parameters["amount_due"], "80");

    let nothing_owed = run("examples/debt-collection/data_load.py", Hook::DataLoad { contact: contact(json!({"amount_due": "0"})), existing: None }).await.expect("contact");
    assert_eq!((nothing_owed.current_stage.as_deref(), nothing_owed.result_flag), (Some("Nothing owed"), Some(true)));
}

#[tokio::test]
async fn works_when_debt_collection_aggregation_follows_each_outcome() {
    let path = "examples/debt-collection/aggregation.py";
    let outcome = |value: serde_json::Value| value.as_object().cloned();

    let silent = run(path, Hook::Aggregation { contact: in_session(), session_results: outcome(example_input("no_response.json")) }).await.expect("contact");
    assert_eq!(silent.current_stage.as_deref(), Some("2. WhatsApp follow-up"));
    assert_eq!(silent.communications[1].start_date.to_rfc3339(), "2026-11-29T10:00:00+00:00");
    assert_eq!(silent.internal_data["attempts"], 2);

    let promised = run(path, Hook::Aggregation { contact: in_session(), session_results: outcome(example_input("promise_to_pay.json")) }).await.expect("contact");
    assert_eq!(promised.current_stage.as_deref(), Some("3. Payment reminder"));
    assert_eq!(promised.communications[1].start_date.to_rfc3339(), "2026-12-05T09:00:00+00:00");
    assert_eq!(promised.results["promise_date"], json!({"$date": "2026-12-05"}));

    let paid = run(path, Hook::Aggregation { contact: in_session(), session_results: outcome(json!({"OutcomeStatus": "PAID"})) }).await.expect("contact");
    assert_eq!((paid.current_stage.as_deref(), paid.result_flag), (Some("Paid"), Some(true)));

    let mut exhausted = in_session();
    exhausted.internal_data.insert("attempts".into(), json!(3));
    let unreachable = run(path, Hook::Aggregation { contact: exhausted, session_results: None }).await.expect("contact");
    assert_eq!((unreachable.current_stage.as_deref(), unreachable.result_flag), (Some("Unreachable"), Some(false)));
}

#[tokio::test]
async fn works_when_debt_collection_contact_answer_detects_promises_only() {
    let path = "examples/debt-collection/contact_answer.py";
    let unchanged = run(path, Hook::ContactAnswer { contact: contact(json!({})), message: message("How can I help you today?") }).await;
    assert_eq!(unchanged, None, "None means no change");
    let promised = run(path, Hook::ContactAnswer { contact: contact(json!({})), message: message("Noted, you'll pay by Friday.") }).await.expect("contact");
    assert_eq!(promised.current_stage.as_deref(), Some("Payment Promised"));
}

#[tokio::test]
async fn works_when_a_strategy_is_a_small_package() {
    let vip = run("examples/vip-routing", Hook::DataLoad { contact: contact(json!({"amount_due": 25000})), existing: None }).await.expect("contact");
    assert_eq!(vip.current_stage.as_deref(), Some("1. Personal call"));
    let regular = run("examples/vip-routing", Hook::DataLoad { contact: contact(json!({"amount_due": 50})), existing: None }).await.expect("contact");
    assert_eq!(regular.current_stage.as_deref(), Some("1. Email"));
}

/// Calling hours in the contact's own time zone (08:00–21:00 local); the
/// virtual clock reads 10:00 UTC on 2026-11-26.
#[tokio::test]
async fn works_when_local_hours_plans_the_first_contact_in_the_contacts_time_zone() {
    let planned = |zone: &'static str| async move {
        let contact = run("examples/local-hours/data_load.py", Hook::DataLoad { contact: contact(json!({"timezone": zone})), existing: None })
            .await
            .expect("contact");
        let first = contact.communications.first().expect("planned").clone();
        (first.start_date.to_rfc3339(), first.end_date.map(|end| end.to_rfc3339()))
    };
    let utc = |text: &str| text.parse::<chrono::DateTime<chrono::Utc>>().expect("time").to_rfc3339();
    // 04:00 in Chicago: from 08:00 local.
    assert_eq!(planned("America/Chicago").await, (utc("2026-11-26T14:00:00Z"), Some(utc("2026-11-27T03:00:00Z"))));
    // 19:00 in Tokyo, a zone read at run time: now, until 21:00 local.
    assert_eq!(planned("Asia/Tokyo").await, (utc("2026-11-26T10:00:00Z"), Some(utc("2026-11-26T12:00:00Z"))));
    // 23:00 in Auckland (summer time, UTC+13): tomorrow from 08:00 local.
    assert_eq!(planned("Pacific/Auckland").await, (utc("2026-11-26T19:00:00Z"), Some(utc("2026-11-27T08:00:00Z"))));

    let invocation = strategy("examples/local-hours/data_load.py")
        .await
        .invoke(&Hook::DataLoad { contact: contact(json!({"timezone": "Mars/Olympus_Mons"})), existing: None }, &options())
        .await;
    let error = invocation.result.expect_err("an unknown zone fails the row").to_string();
    assert!(error.contains("unknown time zone 'Mars/Olympus_Mons' in column `timezone`: use an IANA name such as America/Chicago"), "{error}");
}
