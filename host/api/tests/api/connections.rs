//! Clients that keep the server waiting: a request head or body that stops
//! arriving, a contact file or an unauthenticated webhook body that
//! trickles in. Each limit is shortened to a couple of seconds so the test
//! sees it act.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::both_backends;
use crate::support::{App, Backend, Tuning};

const LIMIT: Duration = Duration::from_secs(2);
/// A pause well inside `LIMIT`.
const PAUSE: Duration = Duration::from_millis(300);

fn tuning() -> Tuning {
    let connections = stratagem_api::ConnectionLimits { header_read: LIMIT, body_idle: LIMIT, ..Default::default() };
    Tuning { connections, upload_limit: Some(LIMIT), webhook_body_limit: Some(LIMIT), ..Tuning::default() }
}

/// Sends `pieces` over a raw HTTP/1.1 connection with a pause after
/// each, stopping as soon as the server answers, and returns everything
/// the server sends until it closes the connection (within a generous
/// bound).
async fn exchange(base: &str, pieces: &[&str]) -> String {
    let mut stream = TcpStream::connect(base.trim_start_matches("http://")).await.expect("connect");
    let (mut reader, mut writer) = stream.split();
    let mut received = Vec::new();
    let mut chunk = [0u8; 4096];
    let writing = async {
        for piece in pieces {
            // A server that has given up on the request may close first;
            // the reading side sees it.
            let _ = writer.write_all(piece.as_bytes()).await;
            tokio::time::sleep(PAUSE).await;
        }
        std::future::pending::<()>().await
    };
    let reading = async {
        tokio::select! {
            () = writing => unreachable!(),
            read = reader.read(&mut chunk) => match read {
                Ok(read) => received.extend_from_slice(&chunk[..read]),
                Err(_) => return,
            },
        }
        while let Ok(read @ 1..) = reader.read(&mut chunk).await {
            received.extend_from_slice(&chunk[..read]);
        }
    };
    tokio::time::timeout(Duration::from_secs(20), reading).await.expect("the server closes the connection");
    String::from_utf8_lossy(&received).into_owned()
}

fn head(method: &str, path: &str, key: &str, content_type: &str, length: usize) -> String {
    format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: {content_type}\r\nContent-Length: {length}\r\n\r\n"
    )
}

both_backends!(
    closes_a_connection_whose_request_head_stalls,
    answers_408_when_a_body_stalls,
    errors_when_an_upload_outlasts_its_limit,
    errors_when_a_webhook_body_outlasts_its_limit
);

async fn closes_a_connection_whose_request_head_stalls(backend: Backend) {
    let app = App::start_tuned(backend, tuning()).await;

    // Obeyed: a head sent in pieces, each pause inside the limit, is
    // answered; the connection, left idle after the answer, is closed.
    let reply = exchange(&app.base, &["GET /healthz HTTP/1.1\r\n", "Host: test\r\n", "\r\n"]).await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.ends_with("ok"), "{reply}");

    // Violated: a head that stops half-way is closed without an answer,
    // before anything like authentication could run.
    let reply = exchange(&app.base, &["GET /api/campaigns HTTP/1.1\r\nHost: test\r\nAuthorization: Bea"]).await;
    assert_eq!(reply, "", "a stalled head gets no answer");

    // The server still answers others.
    let client = app.tenant("Acme").await;
    assert_eq!(client.get("/campaigns").await.status, 200);
}

async fn answers_408_when_a_body_stalls(backend: Backend) {
    let app = App::start_tuned(backend, tuning()).await;
    let client = app.tenant("Acme").await;
    let body = r#"{"name": "Spring collections", "description": "arrives in two pieces"}"#;
    let (first, rest) = body.split_at(20);
    let head = head("POST", "/api/campaigns", &client.key, "application/json", body.len());

    // Obeyed: a body with a pause inside the limit.
    let reply = exchange(&app.base, &[&head, first, rest]).await;
    assert!(reply.starts_with("HTTP/1.1 201"), "{reply}");
    assert!(reply.contains("Spring collections"), "{reply}");

    // Violated: the rest never comes. The problem says what happened, and
    // the connection is closed, since it cannot carry another request.
    let reply = exchange(&app.base, &[&head, first]).await.to_lowercase();
    assert!(reply.starts_with("http/1.1 408"), "{reply}");
    assert!(reply.contains("connection: close"), "{reply}");
    assert!(reply.contains("/problems/request-timeout"), "{reply}");
    assert!(reply.contains("the request body stopped arriving"), "{reply}");

    let campaigns = client.get("/campaigns").await;
    assert_eq!(campaigns.body.as_array().map(Vec::len), Some(1), "only the whole request made a campaign: {}", campaigns.body);
}

async fn errors_when_an_upload_outlasts_its_limit(backend: Backend) {
    let app = App::start_tuned(backend, tuning()).await;
    let client = app.tenant("Acme").await;
    let campaign = client.campaign("Trickle").await;
    let path = format!("/api/campaigns/{campaign}/imports");
    let rows: Vec<String> = (0..12).map(|i| format!("{i},ext-{i},Person {i},p{i}@example.com,+1555000{i:04}\n")).collect();
    let file = format!("object_id,external_id,name,email,phone\n{}", rows.concat());
    let head = head("POST", &path, &client.key, "text/csv", file.len());

    // Obeyed: a file in three pieces, all of it inside the limit.
    let third = file.len() / 3;
    let reply = exchange(&app.base, &[&head, &file[..third], &file[third..2 * third], &file[2 * third..]]).await;
    assert!(reply.starts_with("HTTP/1.1 202"), "{reply}");
    let (_, job) = reply.split_once("\r\n\r\n").expect("a body");
    let job: serde_json::Value = serde_json::from_str(job).expect("the import job");
    let done = client.wait_for_import(job["id"].as_str().expect("job id")).await;
    assert_eq!(done["accepted"], 12, "{done}");

    // Violated: a row at a time, each pause inside the idle limit, the
    // whole longer than the upload limit. Both of the node's import slots
    // are held this way; the limit frees them.
    let trickle = |base: String, head: String, file: String| async move {
        let pieces: Vec<&str> = std::iter::once(head.as_str()).chain(file.split_inclusive('\n')).collect();
        exchange(&base, &pieces).await
    };
    let trickles: Vec<_> = (0..2).map(|_| tokio::spawn(trickle(app.base.clone(), head.clone(), file.clone()))).collect();
    for trickle in trickles {
        let reply = trickle.await.expect("trickle").to_lowercase();
        assert!(reply.starts_with("http/1.1 408"), "{reply}");
        assert!(reply.contains("the file took longer than 2 s to upload"), "{reply}");
    }
    let again = client.upload(&format!("/campaigns/{campaign}/imports"), "text/csv", file.into_bytes()).await;
    assert_eq!(again.status, 202, "the slots are free again: {}", again.body);
}

/// A webhook is read before anything verifies it, so its body has a
/// deadline of its own: without one, a client could hold a connection
/// for days, a byte at a time, each pause inside the idle limit.
async fn errors_when_a_webhook_body_outlasts_its_limit(backend: Backend) {
    let app = App::start_tuned(backend, tuning()).await;
    let body = r#"{"update_id": 1, "message": {"text": "arrives slowly"}}"#;
    let head = format!("POST /webhooks/int_unknown HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n", body.len());

    // Obeyed: the body in two pieces, inside the limit, is read whole, and
    // then refused for what it is (an unknown integration).
    let (first, rest) = body.split_at(20);
    let reply = exchange(&app.base, &[&head, first, rest]).await;
    assert!(reply.starts_with("HTTP/1.1 401"), "{reply}");
    assert!(reply.contains("/problems/webhook-refused"), "{reply}");

    // Violated: a few bytes at a time, each pause inside the idle limit,
    // the whole longer than the webhook limit.
    let pieces: Vec<&str> = std::iter::once(head.as_str()).chain(body.as_bytes().chunks(4).map(|c| std::str::from_utf8(c).expect("ascii"))).collect();
    let reply = exchange(&app.base, &pieces).await.to_lowercase();
    assert!(reply.starts_with("http/1.1 408"), "{reply}");
    assert!(reply.contains("connection: close"), "{reply}");
    assert!(reply.contains("the webhook body took longer than 2 s to arrive"), "{reply}");
}
