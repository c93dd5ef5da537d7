//! Real `stratagem serve` processes on one PostgreSQL database: one is
//! killed with SIGKILL in the middle of a campaign and restarted, the other
//! keeps working. Nothing is lost and nothing is sent twice — not even an
//! email, whose server takes no idempotency key, when the node dies after
//! the server has the message and before it records the send. Stopped with
//! SIGTERM instead, a node waits for that answer and records the send.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn stratagem(database: &str, data_dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_stratagem"));
    command.current_dir(repo()).env("DATABASE_URL", database).env("STRATAGEM_DATA_DIR", data_dir);
    // One deployment: every node seals secrets with the same key.
    command.env("STRATAGEM_SECRETS_KEY", "11".repeat(32));
    // The test's SMTP server listens on 127.0.0.1.
    command.env("STRATAGEM_ALLOW_PRIVATE_ENDPOINTS", "1");
    if std::env::var_os("STRATAGEM_COMPONENTIZE_PY").is_none() {
        command.env("STRATAGEM_COMPONENTIZE_PY", repo().join(".venv/bin/componentize-py"));
    }
    command
}

/// A serving node and its base URL, read from its start-up line.
struct Node {
    child: Child,
    base: String,
}

impl Node {
    fn start(database: &str, data_dir: &Path) -> Node {
        Node::start_with(database, data_dir, &[])
    }

    fn start_with(database: &str, data_dir: &Path, env: &[(&str, &str)]) -> Node {
        let mut child = stratagem(database, data_dir)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("STRATAGEM_ENGINE_TICK_MS", "20")
            .env("STRATAGEM_ENGINE_LEASE_SECS", "2")
            .envs(env.iter().copied())
            .stderr(Stdio::piped())
            .spawn()
            .expect("serve starts");
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(stderr).lines();
        let base = loop {
            let line = lines.next().expect("serve prints its address").expect("line");
            if let Some(rest) = line.strip_prefix("stratagem serving on ") {
                break rest.split_whitespace().next().expect("url").to_owned();
            }
        };
        // Keep draining its log so the pipe never fills.
        std::thread::spawn(move || for _ in lines {});
        Node { child, base }
    }

    fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }

    /// Sends SIGTERM; the process is then reaped by [`Node::exited`].
    fn terminate(&self) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().expect("kill").success());
    }

    /// Its exit status once it has ended (`None` while it runs).
    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().expect("wait")
    }

    /// Waits for it to end, a minute at most; `why` says what it waits on.
    fn wait_for_exit(&mut self, why: &str) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.exited() {
                return status;
            }
            assert!(Instant::now() < deadline, "serve still runs a minute after {why}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Api<'a> {
    http: reqwest::blocking::Client,
    key: &'a str,
}

impl Api<'_> {
    fn call(&self, node: &Node, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.http.request(method, format!("{}/api{path}", node.base)).bearer_auth(self.key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let reply = request.send().expect("request");
        let status = reply.status();
        let body: Value = reply.json().expect("json");
        assert!(status.is_success(), "{path}: {status} {body}");
        body
    }

    fn wait_until(&self, node: &Node, path: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let body = self.call(node, reqwest::Method::GET, path, None);
            if done(&body) {
                return body;
            }
            assert!(Instant::now() < deadline, "{path} never reached the expected state: {body}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn psql(database: &str, sql: &str) -> String {
    let output = Command::new("psql").args([database, "-Atc", sql]).output().expect("psql");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// A fresh PostgreSQL database for one test; dropped by [`drop_database`].
fn create_database(test: &str) -> (String, String) {
    let server = std::env::var("STRATAGEM_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
    let name = format!("stratagem_test_{test}_{}", std::process::id());
    let _ = Command::new("dropdb").args(["-h", "127.0.0.1", "-U", "postgres", "--if-exists", &name]).status();
    assert!(Command::new("createdb").args(["-h", "127.0.0.1", "-U", "postgres", &name]).status().expect("createdb").success());
    (format!("{server}/{name}"), name)
}

fn drop_database(name: &str) {
    let _ = Command::new("dropdb").args(["-h", "127.0.0.1", "-U", "postgres", name]).status();
}

/// The API key of a new tenant, created with the CLI.
fn tenant_key(database: &str, data_dir: &Path) -> String {
    let created = stratagem(database, data_dir).args(["tenant", "create", "Acme"]).output().expect("tenant create");
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    let stdout = String::from_utf8_lossy(&created.stdout).into_owned();
    stdout.lines().find_map(|line| line.strip_prefix("api key: ")).expect("key printed").to_owned()
}

/// A RUNNING campaign with `stages`, the simulated demo's strategies
/// (built, and read on `reader`) and the contacts of `csv`.
fn running_campaign(api: &Api<'_>, node: &Node, reader: &Node, stages: &[Value], csv: String) -> String {
    let campaign = api.call(node, reqwest::Method::POST, "/campaigns", Some(json!({"name": "Kill test"})));
    let campaign = campaign["id"].as_str().expect("id").to_owned();
    for stage in stages {
        api.call(node, reqwest::Method::POST, &format!("/campaigns/{campaign}/stages"), Some(stage.clone()));
    }
    for (kind, file) in [("DATA_LOAD", "examples/simulated/data_load.py"), ("AGGREGATION", "examples/simulated/aggregation.py")] {
        let source = std::fs::read_to_string(repo().join(file)).expect("strategy");
        let body = json!({"name": file, "type": kind, "source": source});
        let strategy = api.call(node, reqwest::Method::POST, &format!("/campaigns/{campaign}/strategies"), Some(body));
        let id = strategy["id"].as_str().expect("id").to_owned();
        let built = api.wait_until(reader, &format!("/strategies/{id}"), |view| view["latest"]["status"] != "building");
        assert_eq!(built["latest"]["status"], "ready", "{built}");
    }
    let rows = csv.lines().count() - 1;
    let job: Value = api
        .http
        .post(format!("{}/api/campaigns/{campaign}/imports", node.base))
        .bearer_auth(api.key)
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .expect("import")
        .json()
        .expect("job");
    let job = job["id"].as_str().expect("job id").to_owned();
    let job = api.wait_until(node, &format!("/imports/{job}"), |job| !["queued", "running"].contains(&job["status"].as_str().unwrap_or_default()));
    assert_eq!(job["accepted"].as_u64(), Some(rows as u64), "{job}");
    for status in ["CONFIGURED", "RUNNING"] {
        api.call(node, reqwest::Method::POST, &format!("/campaigns/{campaign}/status"), Some(json!({"status": status})));
    }
    campaign
}

#[test]
fn works_when_a_node_is_killed_mid_campaign_and_restarted() {
    let (database, name) = create_database("nodes");
    let dirs = [tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir")];
    let key = tenant_key(&database, dirs[0].path());
    let api = Api { http: reqwest::blocking::Client::new(), key: &key };

    let doomed = Node::start(&database, dirs[0].path());
    let survivor = Node::start(&database, dirs[1].path());
    let stages: Vec<Value> = ["1. First contact", "2. Retry"].iter().map(|stage| json!({"name": stage, "channel": "SIMULATED"})).collect();
    // Half pay at once; half answer nothing first, then pay: 3000 sends.
    let mut csv = String::from("object_id,external_id,name,email,phone,persona\n");
    for index in 0..2000 {
        let persona = if index % 2 == 0 { "PAID" } else { "NO_RESPONSE>PAID" };
        csv.push_str(&format!("C{index},U{index},Person {index},p{index}@example.com,+1{index},{persona}\n"));
    }
    let campaign = running_campaign(&api, &doomed, &survivor, &stages, csv);
    // Kill one node as soon as the campaign is under way, then bring it back.
    api.wait_until(&survivor, &format!("/campaigns/{campaign}/analytics/overview"), |o| o["processed_contacts"].as_i64() > Some(0));
    doomed.kill();
    let restarted = Node::start(&database, dirs[0].path());
    let finished = api.wait_until(&restarted, &format!("/campaigns/{campaign}"), |c| c["status"] != "RUNNING");
    assert_eq!(finished["status"], "FINISHED", "{finished}");

    let overview = api.call(&survivor, reqwest::Method::GET, &format!("/campaigns/{campaign}/analytics/overview"), None);
    assert_eq!((overview["completed_contacts"].as_i64(), overview["successful_contacts"].as_i64()), (Some(2000), Some(2000)), "{overview}");
    let started = psql(&database, "SELECT COUNT(*) FROM communications WHERE session_ended_at IS NOT NULL AND status <> 'MISSED'");
    let sends = psql(&database, "SELECT COUNT(*) FROM channel_sends");
    assert_eq!((started.as_str(), sends.as_str()), ("3000", "3000"), "one send per started communication");
    let pending = psql(&database, "SELECT COUNT(*) FROM communications WHERE aggregated_at IS NULL");
    assert_eq!(pending, "0", "every session applied");
    drop((restarted, survivor));
    drop_database(&name);
}

/// An SMTP server on threads that keeps every message it gets (counted
/// when its end arrives, before it answers). When the `hold_at`-th message
/// arrives it says so on `held` and answers nothing more, on any
/// connection, until `release` is set: the node that sent it is waiting
/// for an answer, its send not recorded, and can be killed right there.
struct Sink {
    port: u16,
    messages: Arc<Mutex<Vec<String>>>,
    held: mpsc::Receiver<()>,
    holding: Arc<AtomicBool>,
}

impl Sink {
    fn start(hold_at: usize) -> Sink {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        let messages = Arc::new(Mutex::new(Vec::new()));
        let holding = Arc::new(AtomicBool::new(false));
        let (tell, held) = mpsc::channel();
        let (kept, hold) = (messages.clone(), holding.clone());
        std::thread::spawn(move || {
            for socket in listener.incoming().flatten() {
                let (kept, hold, tell) = (kept.clone(), hold.clone(), tell.clone());
                std::thread::spawn(move || Sink::serve(socket, &kept, &hold, &tell, hold_at));
            }
        });
        Sink { port, messages, held, holding }
    }

    fn serve(socket: TcpStream, kept: &Mutex<Vec<String>>, holding: &AtomicBool, tell: &mpsc::Sender<()>, hold_at: usize) {
        let Ok(reading) = socket.try_clone() else { return };
        let mut writer = socket;
        let mut answer = |text: &[u8]| {
            while holding.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(10));
            }
            writer.write_all(text).is_ok()
        };
        if !answer(b"220 sink ESMTP\r\n") {
            return;
        }
        let mut data: Option<String> = None;
        for line in BufReader::new(reading).lines() {
            let Ok(line) = line else { return };
            if let Some(body) = data.as_mut() {
                if line != "." {
                    body.push_str(&line);
                    body.push('\n');
                    continue;
                }
                let mut messages = kept.lock().expect("lock");
                messages.push(data.take().unwrap_or_default());
                if messages.len() == hold_at {
                    holding.store(true, Ordering::SeqCst);
                    let _ = tell.send(());
                }
                drop(messages);
                if !answer(b"250 queued\r\n") {
                    return;
                }
                continue;
            }
            let verb = line.to_ascii_uppercase();
            let reply: &[u8] = if verb.starts_with("EHLO") || verb.starts_with("HELO") {
                b"250-sink\r\n250 8BITMIME\r\n"
            } else if verb.starts_with("DATA") {
                data = Some(String::new());
                b"354 go ahead\r\n"
            } else if verb.starts_with("QUIT") {
                answer(b"221 bye\r\n");
                return;
            } else {
                b"250 OK\r\n"
            };
            if !answer(reply) {
                return;
            }
        }
    }

    /// The communication id of each message it got (its Message-ID).
    fn communications(&self) -> Vec<String> {
        let messages = self.messages.lock().expect("lock");
        messages
            .iter()
            .map(|message| {
                let id = message.lines().find_map(|line| line.strip_prefix("Message-ID: <")).expect("Message-ID");
                id.split('@').next().expect("id").to_owned()
            })
            .collect()
    }
}

/// A RUNNING campaign on `node` that emails 20 paying contacts through
/// `sink` (then a SIMULATED retry stage).
fn emailing_campaign(api: &Api<'_>, node: &Node, sink: &Sink) -> String {
    let mail = json!({"kind": "SMTP", "name": "Sink", "settings": {"host": "127.0.0.1", "port": sink.port, "from_address": "billing@example.com", "tls": "none"}});
    let mail = api.call(node, reqwest::Method::POST, "/integrations", Some(mail));
    let stages = [
        json!({"name": "1. First contact", "channel": "EMAIL_NOTIFICATION", "settings": {
            "integration_id": mail["id"], "email_subject": "Invoice {{object_id}}", "email_template": "Dear {{name}}, please pay."}}),
        json!({"name": "2. Retry", "channel": "SIMULATED"}),
    ];
    let mut csv = String::from("object_id,external_id,name,email,phone,persona\n");
    for index in 0..20 {
        csv.push_str(&format!("C{index},U{index},Person {index},p{index}@example.com,+1{index},PAID\n"));
    }
    running_campaign(api, node, node, &stages, csv)
}

/// Emails on SMTP, which takes no idempotency key. The only node running
/// is killed (SIGKILL) when the server has its fifth message and before
/// the node has the server's answer, so before it can record the send.
/// Two nodes then finish the campaign: no message reaches the server
/// twice, and the communications whose sends the dead node left without
/// an outcome are IN_DOUBT, through the API too.
#[test]
fn works_when_a_node_is_killed_between_an_emails_send_and_its_record() {
    let (database, name) = create_database("in_doubt");
    let dirs = [tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir")];
    let key = tenant_key(&database, dirs[0].path());
    let api = Api { http: reqwest::blocking::Client::new(), key: &key };
    let sink = Sink::start(5);

    let doomed = Node::start(&database, dirs[0].path());
    let campaign = emailing_campaign(&api, &doomed, &sink);

    sink.held.recv_timeout(Duration::from_secs(180)).expect("the fifth email arrives");
    doomed.kill();
    sink.holding.store(false, Ordering::SeqCst);
    let held = sink.communications()[4].clone();
    let restarted = Node::start(&database, dirs[0].path());
    let survivor = Node::start(&database, dirs[1].path());
    let finished = api.wait_until(&survivor, &format!("/campaigns/{campaign}"), |c| c["status"] != "RUNNING");
    assert_eq!(finished["status"], "FINISHED", "{finished}");

    let received = sink.communications();
    let mut once = received.clone();
    once.sort();
    once.dedup();
    assert_eq!(once.len(), received.len(), "no email reached the server twice: {received:?}");
    let rows = psql(&database, "SELECT id || ' ' || status FROM communications WHERE stage_name = '1. First contact' ORDER BY id");
    let statuses: Vec<(&str, &str)> = rows.lines().map(|line| line.split_once(' ').expect("id status")).collect();
    assert_eq!(statuses.len(), 20, "{rows}");
    for (id, status) in &statuses {
        let got = received.iter().filter(|sent| sent == id).count();
        match *status {
            "COMPLETED" => assert_eq!(got, 1, "{id} went out once"),
            "IN_DOUBT" => assert!(got <= 1, "{id} is not sent again"),
            other => panic!("{id} is {other}: {rows}"),
        }
    }
    assert!(statuses.contains(&(held.as_str(), "IN_DOUBT")), "the email the node died sending is in doubt: {rows}");

    let object_id = psql(&database, &format!("SELECT c.object_id FROM contacts c JOIN communications m ON m.contact_id = c.id WHERE m.id = '{held}'"));
    let contact = api.call(&survivor, reqwest::Method::GET, &format!("/campaigns/{campaign}/contacts/{object_id}"), None);
    let first = contact["communications"].as_array().expect("communications").iter().find(|c| c["id"] == held.as_str()).expect("held");
    assert_eq!(first["status"]["status"], "IN_DOUBT", "{contact}");
    let session = contact["sessions"].as_array().expect("sessions").iter().find(|s| s["communication_id"] == held.as_str()).expect("session");
    assert_eq!(session["session_results"]["OutcomeStatus"], "IN_DOUBT", "{contact}");
    drop((restarted, survivor));
    drop_database(&name);
}

/// The same moment as above — the server has the fifth email and has not
/// answered — but the node gets SIGTERM: it stops claiming work and waits
/// for the answers of the sends in flight, records them, and exits 0. After
/// the restart the campaign finishes with every email sent exactly once
/// and none IN_DOUBT.
#[test]
fn works_when_a_node_gets_sigterm_while_an_email_is_in_flight() {
    let (database, name) = create_database("sigterm");
    let dir = tempfile::tempdir().expect("dir");
    let key = tenant_key(&database, dir.path());
    let api = Api { http: reqwest::blocking::Client::new(), key: &key };
    let sink = Sink::start(5);

    let mut stopping = Node::start(&database, dir.path());
    let campaign = emailing_campaign(&api, &stopping, &sink);

    sink.held.recv_timeout(Duration::from_secs(180)).expect("the fifth email arrives");
    stopping.terminate();
    // The node waits for the server's answer rather than leave the send in doubt.
    std::thread::sleep(Duration::from_secs(2));
    assert!(stopping.exited().is_none(), "serve exited with a send in flight");
    let refused = api.http.get(format!("{}/api/campaigns", stopping.base)).bearer_auth(&key).send();
    assert!(refused.is_err(), "no new connection is accepted while stopping");
    sink.holding.store(false, Ordering::SeqCst);
    let status = stopping.wait_for_exit("its sends were answered");
    assert!(status.success(), "{status}");
    let before_restart = sink.communications();
    let recorded = psql(&database, "SELECT COUNT(*) FROM channel_sends WHERE channel = 'EMAIL_NOTIFICATION' AND outcome IS NOT NULL");
    assert_eq!(recorded, before_restart.len().to_string(), "every email the server took is recorded: {before_restart:?}");

    let restarted = Node::start(&database, dir.path());
    let finished = api.wait_until(&restarted, &format!("/campaigns/{campaign}"), |c| c["status"] != "RUNNING");
    assert_eq!(finished["status"], "FINISHED", "{finished}");
    let mut received = sink.communications();
    received.sort();
    let rows = psql(&database, "SELECT id || ' ' || status FROM communications WHERE stage_name = '1. First contact' ORDER BY id");
    let statuses: Vec<(&str, &str)> = rows.lines().map(|line| line.split_once(' ').expect("id status")).collect();
    let ids: Vec<String> = statuses.iter().map(|(id, _)| (*id).to_owned()).collect();
    assert_eq!(received, ids, "each of the 20 emails reached the server exactly once");
    assert!(statuses.iter().all(|(_, status)| *status == "COMPLETED"), "none in doubt: {rows}");
    drop(restarted);
    drop_database(&name);
}

/// The shutdown grace is a bound: a send whose server never answers does
/// not keep a stopping node alive. With a 2 s grace the node exits while
/// the fifth email waits for its answer; as after a crash, that send's
/// communication becomes IN_DOUBT and is never repeated.
#[test]
fn errors_when_a_send_outlasts_the_shutdown_grace() {
    let (database, name) = create_database("grace");
    let dir = tempfile::tempdir().expect("dir");
    let key = tenant_key(&database, dir.path());
    let api = Api { http: reqwest::blocking::Client::new(), key: &key };
    let sink = Sink::start(5);

    let mut stopping = Node::start_with(&database, dir.path(), &[("STRATAGEM_SHUTDOWN_GRACE_SECS", "2")]);
    let campaign = emailing_campaign(&api, &stopping, &sink);
    sink.held.recv_timeout(Duration::from_secs(180)).expect("the fifth email arrives");
    stopping.terminate();
    let status = stopping.wait_for_exit("its 2 s shutdown grace ended");
    assert!(status.success(), "{status}");
    sink.holding.store(false, Ordering::SeqCst);
    let held = sink.communications()[4].clone();

    let restarted = Node::start(&database, dir.path());
    let finished = api.wait_until(&restarted, &format!("/campaigns/{campaign}"), |c| c["status"] != "RUNNING");
    assert_eq!(finished["status"], "FINISHED", "{finished}");
    let received = sink.communications();
    assert_eq!(received.iter().filter(|id| **id == held).count(), 1, "the email cut short is not sent again: {received:?}");
    let status = psql(&database, &format!("SELECT status FROM communications WHERE id = '{held}'"));
    assert_eq!(status, "IN_DOUBT");
    drop(restarted);
    drop_database(&name);
}
