//! Email Notification stages: the template rendered per contact, a live
//! preview, a test email from the stage editor, and delivery over SMTP to
//! a local server that records what it was sent (and refuses one
//! recipient, as a real server would, and hangs up on another once it has
//! the message). A send whose outcome is lost — its node died between the
//! server's acceptance and the record, or the server never answered —
//! ends IN_DOUBT and is never sent again.

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
    works_when_a_test_email_arrives_as_the_stage_would_send_it,
    errors_when_the_smtp_server_does_not_take_a_test_email,
    errors_when_a_test_email_goes_through_an_integration_not_the_tenants_or_not_smtp,
    errors_when_a_test_email_names_a_bad_address_or_placeholder,
    errors_with_429_when_a_tenant_sends_more_test_emails_than_a_minute_allows,
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

/// An SMTP integration of the client's tenant for the server on `port`.
async fn smtp_integration(client: &Client, port: u16) -> String {
    let integration = client
        .post("/integrations", json!({"kind": "SMTP", "name": "Local mail", "settings": {"host": "127.0.0.1", "port": port, "from_address": "billing@example.com", "tls": "none"}}))
        .await;
    assert_eq!(integration.status, 201, "{}", integration.text);
    integration.body["id"].as_str().expect("id").to_owned()
}

/// A message as a mail client reads it: quoted-printable parts decoded
/// (soft line breaks joined, `=XX` bytes restored).
fn decoded(message: &str) -> String {
    let joined = message.replace("=\n", "");
    let mut bytes = Vec::new();
    let mut rest = joined.as_bytes();
    while let Some((&byte, tail)) = rest.split_first() {
        let hex = tail.get(..2).and_then(|pair| std::str::from_utf8(pair).ok()).and_then(|pair| u8::from_str_radix(pair, 16).ok());
        match (byte, hex) {
            (b'=', Some(value)) => {
                bytes.push(value);
                rest = &tail[2..];
            }
            _ => {
                bytes.push(byte);
                rest = tail;
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The header `name` of a message as the server got it.
fn header<'m>(message: &'m str, name: &str) -> Option<&'m str> {
    message.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(": "))
}

/// The stage's draft, rendered for the chosen contact, arrives at the one
/// address asked for — from the integration's address, as a send of the
/// stage would make it; without a contact, for the sample one; through an
/// Email Communication stage's agent channel too. Line breaks in the
/// subject or a contact's values never become headers of their own.
async fn works_when_a_test_email_arrives_as_the_stage_would_send_it(backend: Backend) {
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    let (port, received) = smtp_server().await;
    let integration = smtp_integration(&client, port).await;
    let ann = json!({"object_id": "C1", "external_id": "U1", "name": "Ann Able", "email": "ann@example.com", "parameters": {"amount_due": "250.00"}});
    let draft = |to: &str| {
        json!({"to": to, "integration_id": integration, "email_subject": "Invoice {{object_id}} for {{name}}",
               "email_template": "Dear {{name}},\n\nplease pay {{parameters.amount_due}}."})
    };
    let mut test = draft(" me@example.com ");
    test["contact"] = ann.clone();
    let reply = client.post("/email/test", test).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body["to"], "me@example.com", "the address as typed, trimmed");
    assert_eq!(reply.body["subject"], "Invoice C1 for Ann Able");
    assert_eq!(reply.body["integration_id"], integration.as_str());
    let message_id = reply.body["message_id"].as_str().expect("message id").to_owned();
    assert!(message_id.starts_with("<test-") && message_id.ends_with("@stratagem>"), "{message_id}");

    let messages = received.lock().expect("lock").clone();
    assert_eq!(messages.len(), 1, "{messages:?}");
    let message = &messages[0];
    assert_eq!(header(message, "Subject"), Some("Invoice C1 for Ann Able"), "{message}");
    assert_eq!(header(message, "To"), Some("me@example.com"), "to the address asked for, not the contact's: {message}");
    assert_eq!(header(message, "From"), Some("billing@example.com"), "{message}");
    assert_eq!(header(message, "Message-ID"), Some(message_id.as_str()), "{message}");
    let read = decoded(message);
    assert!(read.contains("Dear Ann Able,\n\nplease pay 250.00."), "the text part: {message}");
    let preview = client
        .post("/email/preview", json!({"email_subject": "Invoice {{object_id}} for {{name}}", "email_template": "Dear {{name}},\n\nplease pay {{parameters.amount_due}}.", "contact": ann}))
        .await;
    let html = preview.body["html"].as_str().expect("html");
    assert_eq!(html, "<!doctype html><html><body><p>Dear Ann Able,</p><p>please pay 250.00.</p></body></html>");
    assert!(read.contains(html), "the HTML part is the preview's: {message}");

    // No contact: the preview's sample one.
    let reply = client.post("/email/test", draft("me@example.com")).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body["subject"], "Invoice CONTRACT-123 for John Smith");
    let sample = received.lock().expect("lock")[1].clone();
    assert!(decoded(&sample).contains("Dear John Smith,\n\nplease pay [amount_due]."), "{sample}");

    // Email Communication: the integration of the stage's agent channel.
    let agent = client.post("/agents", json!({"name": "Mailer", "channels": [{"name": "mail", "integration_id": integration}]})).await;
    assert_eq!(agent.status, 201, "{}", agent.text);
    let reply = client
        .post("/email/test", json!({"to": "me@example.com", "agent_id": agent.body["id"], "agent_channel": "mail",
            "email_subject": "Hi {{name}}\r\nBcc: evil@example.com", "email_template": "<p>Hi</p>", "email_input_type": "HTML",
            "contact": {"object_id": "C2", "external_id": "U2", "name": "Eve\r\nCc: evil@example.com"}}))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let injected = received.lock().expect("lock")[2].clone();
    assert!(
        !injected.lines().any(|line| line.starts_with("Bcc:") || line.starts_with("Cc:")),
        "line breaks in the subject and the contact's name start no header: {injected}"
    );
    assert_eq!(header(&injected, "Subject"), Some("Hi Eve  Cc: evil@example.com  Bcc: evil@example.com"), "{injected}");
    assert_eq!(received.lock().expect("lock").len(), 3);
}

/// A test email the server refuses (the recipient), cannot be reached for,
/// or may have taken is a problem saying so and what to do — never "sent".
async fn errors_when_the_smtp_server_does_not_take_a_test_email(backend: Backend) {
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    let (port, received) = smtp_server().await;
    let integration = smtp_integration(&client, port).await;
    let test = |to: &str, integration: &str| {
        json!({"to": to, "integration_id": integration, "email_subject": "Hi {{name}}", "email_template": "Hello"})
    };
    let reply = client.post("/email/test", test("bounce@example.com", &integration)).await;
    let detail = reply.problem(422);
    assert_eq!(reply.body["type"], "/problems/smtp-refused", "{}", reply.text);
    assert!(detail.starts_with("the SMTP server of integration `Local mail` refused the recipient bounce@example.com, so nothing was sent"), "{detail}");
    assert!(detail.contains("no such user") && detail.contains("Check the address, or send the test to another one"), "{detail}");
    assert!(received.lock().expect("lock").is_empty());

    // The server had the message and hung up before answering: it may arrive.
    let reply = client.post("/email/test", test("vanish@example.com", &integration)).await;
    let detail = reply.problem(502);
    assert_eq!(reply.body["type"], "/problems/smtp-in-doubt", "{}", reply.text);
    assert!(detail.contains("had the whole message, then its answer was lost") && detail.contains("It may still arrive at vanish@example.com"), "{detail}");

    // Nothing listens on the integration's port.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind").local_addr().expect("address").port();
    let nowhere = smtp_integration(&client, closed).await;
    let reply = client.post("/email/test", test("me@example.com", &nowhere)).await;
    let detail = reply.problem(502);
    assert_eq!(reply.body["type"], "/problems/smtp-unreachable", "{}", reply.text);
    assert!(detail.starts_with("the SMTP server of integration `Local mail` could not be reached, so nothing was sent"), "{detail}");
    assert!(detail.contains(&format!("127.0.0.1:{closed}")) && detail.contains("Check the integration's host, port and TLS setting"), "{detail}");
}

/// Another tenant's integration or agent is not found (and nothing is
/// sent through it); the tenant's own integration of another kind is
/// named as the field to change.
async fn errors_when_a_test_email_goes_through_an_integration_not_the_tenants_or_not_smtp(backend: Backend) {
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    let other = app.tenant("Other").await;
    let (port, received) = smtp_server().await;
    let theirs = smtp_integration(&other, port).await;
    let test = json!({"to": "me@example.com", "integration_id": theirs, "email_subject": "Hi", "email_template": "Hello"});
    let reply = client.post("/email/test", test.clone()).await;
    assert_eq!(reply.problem(404), "integration not found");
    let their_agent = other.post("/agents", json!({"name": "Mailer", "channels": [{"name": "mail", "integration_id": theirs}]})).await;
    assert_eq!(their_agent.status, 201, "{}", their_agent.text);
    let reply = client
        .post("/email/test", json!({"to": "me@example.com", "agent_id": their_agent.body["id"], "agent_channel": "mail", "email_subject": "Hi", "email_template": "Hello"}))
        .await;
    assert_eq!(reply.problem(404), "agent not found");
    assert!(received.lock().expect("lock").is_empty(), "nothing went through another tenant's integration");
    assert_eq!(other.post("/email/test", test).await.status, 200, "its own tenant may use it");

    let bot = client.post("/integrations", json!({"kind": "TELEGRAM", "name": "Support bot", "secrets": {"bot_token": "123:ABC"}})).await;
    assert_eq!(bot.status, 201, "{}", bot.text);
    let reply = client.post("/email/test", json!({"to": "me@example.com", "integration_id": bot.body["id"], "email_subject": "Hi", "email_template": "Hello"})).await;
    reply.problem(422);
    assert_eq!(reply.body["errors"], json!([{"field": "integration_id",
        "message": "integration `Support bot` is TELEGRAM, which does not send email: choose an SMTP integration"}]));
    let reply = client.post("/email/test", json!({"to": "me@example.com", "email_subject": "Hi", "email_template": "Hello"})).await;
    reply.problem(422);
    assert_eq!(reply.body["errors"][0]["field"], "integration_id", "{}", reply.text);
    assert!(reply.body["errors"][0]["message"].as_str().expect("message").starts_with("choose the SMTP integration to send the test through"), "{}", reply.text);
    assert_eq!(received.lock().expect("lock").len(), 1, "only the other tenant's own test");
}

/// A recipient that is not exactly one address, alone on its line, is a
/// 422 naming `to`; a bad placeholder is named with its line and column,
/// as the preview does; every such field at once, and nothing is sent.
async fn errors_when_a_test_email_names_a_bad_address_or_placeholder(backend: Backend) {
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    let (port, received) = smtp_server().await;
    let integration = smtp_integration(&client, port).await;
    for (to, says) in [
        ("", "enter the email address to send to"),
        ("not-an-address", "is not an email address"),
        ("me@example.com\r\nBcc: evil@example.com", "must be one address on one line"),
        ("me@example.com\nevil@example.com", "must be one address on one line"),
        ("me@example.com, evil@example.com", "must be one address: send to one recipient at a time"),
        ("Me <me@example.com>", "without a display name"),
    ] {
        let reply = client.post("/email/test", json!({"to": to, "integration_id": integration, "email_subject": "Hi", "email_template": "Hello"})).await;
        reply.problem(422);
        assert_eq!(reply.body["type"], "/problems/invalid-fields", "{to:?}: {}", reply.text);
        assert_eq!(reply.body["errors"][0]["field"], "to", "{to:?}: {}", reply.text);
        assert!(reply.body["errors"][0]["message"].as_str().expect("message").contains(says), "{to:?}: {}", reply.text);
    }
    let reply = client
        .post("/email/test", json!({"to": "nobody", "integration_id": integration, "email_subject": "Hi", "email_template": "Dear\n {{nmae}}"}))
        .await;
    reply.problem(422);
    let errors = reply.body["errors"].as_array().expect("errors");
    let fields: Vec<&str> = errors.iter().map(|e| e["field"].as_str().expect("field")).collect();
    assert_eq!(fields, ["to", "email_template"], "{}", reply.text);
    assert_eq!((errors[1]["line"].as_i64(), errors[1]["column"].as_i64()), (Some(2), Some(2)), "{}", reply.text);
    assert!(errors[1]["message"].as_str().expect("message").contains("unknown placeholder `{{nmae}}`"), "{}", reply.text);
    let reply = client.post("/email/test", json!({"to": "me@example.com", "integration_id": integration, "email_subject": "Hi", "email_template": "x", "cc": "evil@example.com"})).await;
    reply.problem(400);
    assert!(received.lock().expect("lock").is_empty(), "nothing was sent");
}

/// Five test emails a minute per tenant: all five go out, the sixth is
/// 429 with Retry-After (and is not sent), while another tenant still
/// sends its own.
async fn errors_with_429_when_a_tenant_sends_more_test_emails_than_a_minute_allows(backend: Backend) {
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    let other = app.tenant("Other").await;
    let (port, received) = smtp_server().await;
    let integration = smtp_integration(&client, port).await;
    let test = json!({"to": "me@example.com", "integration_id": integration, "email_subject": "Hi", "email_template": "Hello"});
    for sent in 1..=stratagem_services::email::TEST_EMAILS_PER_MINUTE {
        let reply = client.post("/email/test", test.clone()).await;
        assert_eq!(reply.status, 200, "test email {sent}: {}", reply.text);
    }
    assert_eq!(received.lock().expect("lock").len(), 5);
    let refused = client.http.post(format!("{}/api/email/test", app.base)).bearer_auth(&client.key).json(&test).send().await.expect("request");
    assert_eq!(refused.status(), 429);
    let wait: u64 = refused.headers()["retry-after"].to_str().expect("text").parse().expect("seconds");
    assert!((1..=12).contains(&wait), "one test email comes back every 12 s: {wait}");
    let problem: serde_json::Value = refused.json().await.expect("problem");
    assert_eq!(problem["type"], "/problems/test-emails-limited");
    assert!(problem["detail"].as_str().expect("detail").starts_with("this tenant sent 5 test emails within a minute, the most allowed; send the next one in "), "{problem}");
    assert_eq!(received.lock().expect("lock").len(), 5, "the refused one was not sent");

    let (other_port, other_received) = smtp_server().await;
    let theirs = smtp_integration(&other, other_port).await;
    let reply = other.post("/email/test", json!({"to": "me@example.com", "integration_id": theirs, "email_subject": "Hi", "email_template": "Hello"})).await;
    assert_eq!(reply.status, 200, "another tenant is not held back: {}", reply.text);
    assert_eq!(other_received.lock().expect("lock").len(), 1);
}
