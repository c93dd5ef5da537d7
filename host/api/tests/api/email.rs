//! Email Notification stages: the template rendered per contact, a live
//! preview, and delivery over SMTP to a local server that records what it
//! was sent (and refuses one recipient, as a real server would).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::both_backends;
use crate::support::{App, Backend};

both_backends!(works_when_an_email_stage_delivers_over_smtp, works_when_previewing_an_email_template);

/// A minimal SMTP server: accepts every message but those to
/// `bounce@example.com`, which it refuses at RCPT with 550.
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
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Some(body) = data.as_mut() {
                        if line == "." {
                            messages.lock().expect("lock").push(data.take().unwrap_or_default());
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

async fn works_when_an_email_stage_delivers_over_smtp(backend: Backend) {
    let app = App::start(backend).await;
    let client = app.tenant("Acme").await;
    let (port, received) = smtp_server().await;
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
    let csv = "object_id,external_id,name,email,phone,amount_due,persona\n\
               C1,U1,Ann Able,ann@example.com,+1,250.00,paid\n\
               C2,U2,Bob Bounce,bounce@example.com,+2,80.00,paid\n";
    let job = client.upload(&format!("/campaigns/{campaign}/imports"), "text/csv", csv.into()).await;
    client.wait_for_import(job.body["id"].as_str().expect("job")).await;
    for status in ["CONFIGURED", "RUNNING"] {
        client.post(&format!("/campaigns/{campaign}/status"), json!({"status": status})).await;
    }
    for _ in 0..300 {
        if client.get(&format!("/campaigns/{campaign}")).await.body["status"] == "FINISHED" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

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
