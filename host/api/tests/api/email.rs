//! Email Notification stages: the template rendered per contact, a live
//! preview, and delivery over SMTP to a local server that records what it
//! was sent (and refuses one recipient, as a real server would, and hangs
//! up on another once it has the message). A send whose outcome is lost —
//! its node died between the server's acceptance and the record, or the
//! server never answered — ends IN_DOUBT and is never sent again.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use stratagem_store::SendClaim;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::both_backends;
use crate::support::{App, Background, Backend, Client};

both_backends!(
    works_when_an_email_stage_delivers_over_smtp,
    works_when_previewing_an_email_template,
    works_when_an_email_in_doubt_is_never_sent_again,
);

/// A minimal SMTP server: accepts every message but those to
/// `bounce@example.com`, which it refuses at RCPT with 550. A message to
/// `vanish@example.com` it keeps and then hangs up without answering, so
/// the sender cannot know it was taken.
pub async fn smtp_server() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    let received = Arc::new(Mutex::new(Vec::new()));
    let messages = received.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let messages = messages.clone();
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut lines = BufReader::new(read).lines();
                write.write_all(b"220 fake ESMTP\r\n").await.ok();
                let mut data: Option<String> = None;
                let mut vanish = false;
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Some(body) = data.as_mut() {
                        if line == "." {
                            messages.lock().expect("lock").push(data.take().unwrap_or_default());
                            if vanish {
                                break;
                            }
                            write.write_all(b"250 queued\r\n").await.ok();
                        } else {
                            body.push_str(&line);
                            body.push('\n');
                        }
                        continue;
                    }
                    let verb = line.to_ascii_uppercase();
                    let reply: &[u8] = if verb.starts_with("EHLO") || verb.starts_with("HELO") {
                        b"250-fake\r\n250 8BITMIME\r\n"
                    } else if verb.starts_with("RCPT") && verb.contains("BOUNCE@") {
                        b"550 no such user\r\n"
                    } else if verb.starts_with("RCPT") && verb.contains("VANISH@") {
                        vanish = true;
                        b"250 OK\r\n"
                    } else if verb.starts_with("DATA") {
                        data = Some(String::new());
                        b"354 go ahead\r\n"
                    } else if verb.starts_with("QUIT") {
                        write.write_all(b"221 bye\r\n").await.ok();
                        break;
                    } else {
                        b"250 OK\r\n"
                    };
                    write.write_all(reply).await.ok();
                }
            });
        }
    });
    (port, received)
}

/// A RUNNING campaign whose first stage emails through the SMTP server on
/// `port` (then "2. Retry", SIMULATED; the simulated demo's strategies),
/// with the contacts of `csv` imported.
async fn email_campaign(client: &Client, port: u16, csv: &str) -> String {
    let integration = client
        .post("/integrations", json!({"kind": "SMTP", "name": "Local mail", "settings": {"host": "127.0.0.1", "port": port, "from_address": "billing@example.com", "tls": "none"}}))
        .await;
    assert_eq!(integration.status, 201, "{}", integration.text);
    let campaign = client.campaign("Email campaign").await;
    for stage in [
        json!({"name": "1. First contact", "channel": "EMAIL_NOTIFICATION", "settings": {
            "integration_id": integration.body["id"], "email_subject": "Invoice {{object_id}}",
            "email_template": "Dear {{name}},\n\nplease pay {{parameters.amount_due}}."}}),
        json!({"name": "2. Retry", "channel": "SIMULATED"}),
    ] {
        let reply = client.post(&format!("/campaigns/{campaign}/stages"), stage).await;
        assert_eq!(reply.status, 201, "{}", reply.text);
    }
    client.strategy(&campaign, "DATA_LOAD", "examples/simulated/data_load.py").await;
    client.strategy(&campaign, "AGGREGATION", "examples/simulated/aggregation.py").await;
    let job = client.upload(&format!("/campaigns/{campaign}/imports"), "text/csv", csv.as_bytes().to_vec()).await;
    let job = client.wait_for_import(job.body["id"].as_str().expect("job")).await;
    assert_eq!(job["accepted"].as_u64(), Some(csv.lines().count() as u64 - 1), "{job}");
    for status in ["CONFIGURED", "RUNNING"] {
        client.post(&format!("/campaigns/{campaign}/status"), json!({"status": status})).await;
    }
    campaign
}

async fn wait_until_finished(client: &Client, campaign: &str) {
    for _ in 0..600 {
        if client.get(&format!("/campaigns/{campaign}")).await.body["status"] == "FINISHED" {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("campaign {campaign} did not finish: {}", client.get(&format!("/campaigns/{campaign}")).await.text);
}

async fn works_when_an_email_stage_delivers_over_smtp(backend: Backend) {
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    let (port, received) = smtp_server().await;
    let csv = "object_id,external_id,name,email,phone,amount_due,persona\n\
               C1,U1,Ann Able,ann@example.com,+1,250.00,paid\n\
               C2,U2,Bob Bounce,bounce@example.com,+2,80.00,paid\n";
    let campaign = email_campaign(&client, port, csv).await;
    wait_until_finished(&client, &campaign).await;

    let messages = received.lock().expect("lock").clone();
    assert_eq!(messages.len(), 1, "one message accepted, the bounce refused: {messages:?}");
    let message = &messages[0];
    assert!(message.contains("Subject: Invoice C1"), "{message}");
    assert!(message.contains("Dear Ann Able,") && message.contains("please pay 250.00."), "{message}");
    let ann = client.get(&format!("/campaigns/{campaign}/contacts/C1")).await.body;
    let first = ann["communications"][0]["id"].as_str().expect("id");
    assert!(message.contains(&format!("Message-ID: <{first}@stratagem>")), "the communication id is the Message-ID: {message}");
    assert_eq!(ann["sessions"][0]["channel"], "EMAIL_NOTIFICATION");
    assert_eq!(ann["sessions"][0]["session_results"]["OutcomeStatus"], "DELIVERED");

    let bob = client.get(&format!("/campaigns/{campaign}/contacts/C2")).await.body;
    assert_eq!(bob["sessions"][0]["session_results"]["OutcomeStatus"], "FAILED", "{bob}");
    let detail = bob["sessions"][0]["session_results"]["FailureDetail"].as_str().expect("detail");
    assert!(detail.contains("no such user"), "the server's answer is kept: {detail}");
    assert_eq!(bob["current_stage"], "Paid", "AGGREGATION retried on the next stage: {bob}");
}

async fn works_when_previewing_an_email_template(backend: Backend) {
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    let reply = client
        .post("/email/preview", json!({"email_subject": "Hi {{name}}", "email_template": "<p>{{name}} owes {{parameters.amount}}</p>", "email_input_type": "HTML"}))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body["subject"], "Hi John Smith");
    assert_eq!(reply.body["html"], "<p>John Smith owes [amount]</p>");
    assert_eq!(reply.body["text"], "John Smith owes [amount]", "the text/plain alternative is the HTML's text, not its markup");
    let contact = json!({"object_id": "1", "external_id": "2", "name": "<Eve>", "parameters": {"amount": "9"}});
    let reply = client
        .post("/email/preview", json!({"email_subject": "x", "email_template": "<b>{{name}}</b> {{parameters.amount}}", "email_input_type": "HTML", "contact": contact}))
        .await;
    assert_eq!(reply.body["html"], "<b>&lt;Eve&gt;</b> 9", "values are escaped in HTML");
    let reply = client.post("/email/preview", json!({"email_subject": "x", "email_template": "Dear\n {{nmae}}"})).await;
    reply.problem(422);
    assert_eq!(reply.body["errors"][0]["field"], "email_template");
    assert_eq!((reply.body["errors"][0]["line"].as_i64(), reply.body["errors"][0]["column"].as_i64()), (Some(2), Some(2)));
}

/// A node claimed three emails and died having announced C1's send (the
/// network call may have happened) and recorded no outcome. Another node
/// never sends C1 again: it ends IN_DOUBT, visible in the contact's
/// history and counted in the status distribution, and AGGREGATION gets
/// `{"OutcomeStatus": "IN_DOUBT"}` (the demo strategy retries on the
/// simulated stage; its attempt to mark it COMPLETED is not applied). C3's
/// server takes the message and hangs up: IN_DOUBT too, sent once. C2 goes
/// out as usual.
async fn works_when_an_email_in_doubt_is_never_sent_again(backend: Backend) {
    let dead = App::start_with(backend, Background::Off).await;
    let client = dead.tenant("Acme").await;
    let (port, received) = smtp_server().await;
    let csv = "object_id,external_id,name,email,phone,amount_due,persona\n\
               C1,U1,Ann Able,ann@example.com,+1,250.00,paid\n\
               C2,U2,Cy Clear,cy@example.com,+2,80.00,paid\n\
               C3,U3,Val Vanish,vanish@example.com,+3,30.00,paid\n";
    let campaign = email_campaign(&client, port, csv).await;
    let tenant = dead.store.tenants().authenticate(&client.key).await.expect("auth").expect("tenant");
    let now = chrono::Utc::now();
    let claimed = dead
        .store
        .dispatch().claim_due_communications(now, chrono::Duration::hours(24), now - chrono::Duration::seconds(1), 100)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 3, "{claimed:?}");
    let ann = dead.store.contacts().contact(&tenant, &campaign, "C1").await.expect("C1");
    let announced = &claimed.iter().find(|c| c.contact_id == ann.id).expect("C1 claimed").id;
    let long_ago = now - chrono::Duration::minutes(1);
    let first = dead.store.dispatch().begin_send(&tenant, announced, "EMAIL_NOTIFICATION", long_ago).await.expect("announce");
    assert_eq!(first, SendClaim::Granted);
    let again = dead.store.dispatch().begin_send(&tenant, announced, "EMAIL_NOTIFICATION", now).await.expect("announce again");
    assert_eq!(again, SendClaim::Pending, "only the attempt that announced a send makes it");

    let survivor = dead.second_node().await;
    let client = survivor.client_for(&client);
    wait_until_finished(&client, &campaign).await;

    let messages = received.lock().expect("lock").clone();
    let mut recipients: Vec<&str> = messages
        .iter()
        .map(|m| {
            let to = m.lines().find_map(|line| line.strip_prefix("To: ")).expect("To header");
            to.rsplit_once('<').and_then(|(_, address)| address.strip_suffix('>')).expect("address")
        })
        .collect();
    recipients.sort();
    assert_eq!(recipients, ["cy@example.com", "vanish@example.com"], "C1 is never sent, the others once: {messages:?}");

    let contact = |object_id: &'static str| {
        let client = client.clone();
        let campaign = campaign.clone();
        async move { client.get(&format!("/campaigns/{campaign}/contacts/{object_id}")).await.body }
    };
    for (object_id, detail) in [("C1", "the node sending it stopped"), ("C3", "had the message, then")] {
        let body = contact(object_id).await;
        let first = &body["communications"][0];
        assert_eq!(first["status"]["status"], "IN_DOUBT", "{body}");
        assert!(first["status"]["detail"].as_str().is_some_and(|d| d.contains(detail)), "{body}");
        let session = &body["sessions"][0];
        assert_eq!((session["channel"].as_str(), session["session_results"]["OutcomeStatus"].as_str()), (Some("EMAIL_NOTIFICATION"), Some("IN_DOUBT")), "{body}");
        assert!(session["session_results"]["InDoubtDetail"].as_str().is_some_and(|d| d.contains(detail)), "{body}");
        assert_eq!(body["current_stage"], "Paid", "AGGREGATION decided, on the retry stage: {body}");
    }
    let cy = contact("C2").await;
    assert_eq!(cy["communications"][0]["status"]["status"], "COMPLETED", "{cy}");
    assert_eq!(cy["sessions"][0]["session_results"]["OutcomeStatus"], "DELIVERED", "{cy}");

    let from = (chrono::Utc::now() - chrono::Duration::days(1)).format("%Y-%m-%d");
    let by_status = client.get(&format!("/campaigns/{campaign}/analytics/distribution?by=status&period=week&from={from}&tz=UTC")).await;
    assert_eq!(by_status.status, 200, "{}", by_status.text);
    let mut totals = std::collections::BTreeMap::new();
    for bucket in by_status.body["buckets"].as_array().expect("buckets") {
        for (status, n) in bucket["counts"].as_object().expect("counts") {
            *totals.entry(status.clone()).or_insert(0) += n.as_i64().expect("n");
        }
    }
    let expected = std::collections::BTreeMap::from([("COMPLETED".to_owned(), 4), ("IN_DOUBT".to_owned(), 2)]);
    assert_eq!(totals, expected, "C2's email and the three retries; C1's and C3's emails: {}", by_status.text);
    let pool = crate::rollups::pool(&survivor).await;
    crate::rollups::assert_exact(&survivor, &pool, &tenant, &campaign).await;
}
