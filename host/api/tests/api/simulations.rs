//! The API's dry run: a campaign set up in the service runs in virtual
//! time over a contact file — stages on real channels reach only the
//! simulated population — and the campaign itself is left untouched.

use serde_json::json;

use crate::both_backends;
use crate::support::{App, Backend, Client};

both_backends!(
    works_when_dry_running_a_configured_campaign,
    errors_when_a_dry_run_is_given_bad_input,
    errors_when_a_second_dry_run_starts_on_a_busy_node,
);

const CONTACTS: &str = "object_id,external_id,name,email,phone,persona\n\
                        P1,U1,Paula Payer,p@example.com,+1,paid\n\
                        R1,U2,Rex Refuser,r@example.com,+2,refused\n\
                        N1,U3,Nora Nobody,n@example.com,+3,no_response\n";

/// A campaign whose first stage would email through an SMTP server that
/// does not exist: a real send could only fail.
async fn email_campaign(client: &Client) -> String {
    let smtp = client
        .post("/integrations", json!({"kind": "SMTP", "name": "Nowhere", "settings": {"host": "127.0.0.1", "port": 1, "from_address": "billing@example.com", "tls": "none"}}))
        .await;
    assert_eq!(smtp.status, 201, "{}", smtp.text);
    let campaign = client.campaign("Dry run").await;
    for stage in [
        json!({"name": "1. First contact", "channel": "EMAIL_NOTIFICATION", "settings": {"integration_id": smtp.body["id"], "email_subject": "Invoice", "email_template": "Dear {{name}}"}}),
        json!({"name": "2. Retry", "channel": "SIMULATED"}),
    ] {
        assert_eq!(client.post(&format!("/campaigns/{campaign}/stages"), stage).await.status, 201);
    }
    campaign
}

/// The email campaign with the simulated demo's strategies.
async fn strategic_campaign(client: &Client) -> String {
    let campaign = email_campaign(client).await;
    client.strategy(&campaign, "DATA_LOAD", "examples/simulated/data_load.py").await;
    client.strategy(&campaign, "AGGREGATION", "examples/simulated/aggregation.py").await;
    campaign
}

async fn works_when_dry_running_a_configured_campaign(backend: Backend) {
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    let campaign = strategic_campaign(&client).await;

    let reply = client.upload(&format!("/campaigns/{campaign}/simulate?days=10&start=2030-03-04T08:00:00Z"), "text/csv", CONTACTS.into()).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let report = reply.body;
    assert_eq!(report["campaign_status"], "FINISHED", "{report}");
    assert_eq!(report["results"], json!({"true": 1, "false": 2}), "{report}");
    assert_eq!(report["stages"], json!({"Paid": 1, "Refused": 1, "Unreachable": 1}), "{report}");
    assert_eq!(report["sends"], 4, "Nora is tried twice: {report}");
    let nora: Vec<(&str, &str)> = report["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .filter(|entry| entry["object_id"] == "N1")
        .map(|entry| (entry["stage"].as_str().expect("stage"), entry["outcome"].as_str().expect("outcome")))
        .collect();
    assert_eq!(nora, [("1. First contact", "NO_RESPONSE"), ("2. Retry", "NO_RESPONSE")]);
    assert!(report["start"].as_str().expect("start").starts_with("2030-03-04T08:00:00"), "virtual time: {report}");

    // The campaign itself: not started, no contacts, nothing sent.
    let after = client.get(&format!("/campaigns/{campaign}")).await.body;
    assert_eq!(after["status"], "CREATED");
    assert_eq!(client.get(&format!("/campaigns/{campaign}/contacts")).await.body["total"], 0);
    let tenant = app.store.tenants().authenticate(&client.key).await.expect("auth").expect("tenant");
    assert_eq!(app.store.dispatch().count_sends(&tenant, &campaign).await.expect("sends"), 0);

    // Another tenant cannot dry-run it.
    let other = app.tenant("Other").await;
    assert_eq!(other.upload(&format!("/campaigns/{campaign}/simulate"), "text/csv", CONTACTS.into()).await.status, 404);
}

async fn errors_when_a_dry_run_is_given_bad_input(backend: Backend) {
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    let campaign = email_campaign(&client).await;
    let path = format!("/campaigns/{campaign}/simulate");

    let no_strategy = client.upload(&path, "text/csv", CONTACTS.into()).await;
    assert_eq!(no_strategy.status, 409, "{}", no_strategy.text);
    assert!(no_strategy.body["detail"].as_str().expect("detail").contains("no ready DATA_LOAD strategy"), "{}", no_strategy.text);

    client.strategy(&campaign, "DATA_LOAD", "examples/simulated/data_load.py").await;
    let days = client.upload(&format!("{path}?days=0"), "text/csv", CONTACTS.into()).await;
    assert_eq!((days.status, days.body["detail"].as_str()), (400, Some("days must be from 1 to 366")));
    let personas = client.upload(&format!("{path}?personas=PAID"), "text/csv", CONTACTS.into()).await;
    assert_eq!(personas.status, 422, "{}", personas.text);
    assert!(personas.body["detail"].as_str().expect("detail").starts_with("personas: `PAID`"), "{}", personas.text);

    // A bad row is rejected with its line, as an import rejects it; the
    // others are simulated.
    let csv = "object_id,external_id,name,email,phone\nP1,U1,Paula\nP2,U2,Pia,p2@example.com,+2\nP2,U3,Pia again,p3@example.com,+3\n";
    let bad_rows = client.upload(&path, "text/csv", csv.into()).await;
    assert_eq!(bad_rows.status, 200, "{}", bad_rows.text);
    let rejected = bad_rows.body["rejected"].as_array().expect("rejected");
    assert_eq!(rejected.iter().map(|r| r["line"].as_u64().expect("line")).collect::<Vec<_>>(), [2, 4], "{}", bad_rows.text);
    let reason = rejected[1]["reason"].as_str().expect("reason");
    assert!(reason.starts_with("line 4") && !reason[4..].contains("line 4,") && reason.contains("P2"), "{reason}");
    assert_eq!(bad_rows.body["contacts"].as_array().expect("contacts").len(), 1, "{}", bad_rows.text);
    let empty = client.upload(&path, "text/csv", "object_id,external_id\n".into()).await;
    assert_eq!(empty.status, 422, "a file that cannot be read at all is still refused: {}", empty.text);

    let mut many = String::from("object_id,external_id,name,email,phone\n");
    for n in 0..5_001 {
        many.push_str(&format!("C{n},U{n},Contact {n},c{n}@example.com,+{n}\n"));
    }
    let too_many = client.upload(&path, "text/csv", many.into_bytes()).await;
    assert_eq!(too_many.status, 422, "{}", too_many.text);
    assert!(too_many.body["detail"].as_str().expect("detail").contains("at most 5000 contacts; this file has 5001"), "{}", too_many.text);
}

/// A node runs one dry run at a time: a second one started meanwhile is
/// told to come back (429), and runs once the first has finished.
async fn errors_when_a_second_dry_run_starts_on_a_busy_node(backend: Backend) {
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    let campaign = strategic_campaign(&client).await;
    let path = format!("/campaigns/{campaign}/simulate");
    let (first, second) = tokio::join!(client.upload(&path, "text/csv", CONTACTS.into()), client.upload(&path, "text/csv", CONTACTS.into()));
    let mut statuses = [first.status, second.status];
    statuses.sort();
    assert_eq!(statuses, [200, 429], "{} / {}", first.text, second.text);
    let busy = if first.status == 429 { &first } else { &second };
    assert!(busy.body["detail"].as_str().expect("detail").starts_with("a dry run is already running on this node"), "{}", busy.text);
    assert_eq!(client.upload(&path, "text/csv", CONTACTS.into()).await.status, 200, "the slot is free again");
}
