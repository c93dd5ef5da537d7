//! Real `stratagem serve` processes on one PostgreSQL database: one is
//! killed with SIGKILL in the middle of a campaign and restarted, the other
//! keeps working. Nothing is lost and nothing is sent twice.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
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
        let mut child = stratagem(database, data_dir)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("STRATAGEM_ENGINE_TICK_MS", "20")
            .env("STRATAGEM_ENGINE_LEASE_SECS", "2")
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

#[test]
fn works_when_a_node_is_killed_mid_campaign_and_restarted() {
    let server = std::env::var("STRATAGEM_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
    let name = format!("stratagem_test_nodes_{}", std::process::id());
    let _ = Command::new("dropdb").args(["-h", "127.0.0.1", "-U", "postgres", "--if-exists", &name]).status();
    assert!(Command::new("createdb").args(["-h", "127.0.0.1", "-U", "postgres", &name]).status().expect("createdb").success());
    let database = format!("{server}/{name}");
    let dirs = [tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir")];

    let created = stratagem(&database, dirs[0].path()).args(["tenant", "create", "Acme"]).output().expect("tenant create");
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    let stdout = String::from_utf8_lossy(&created.stdout).into_owned();
    let key = stdout.lines().find_map(|line| line.strip_prefix("api key: ")).expect("key printed").to_owned();
    let api = Api { http: reqwest::blocking::Client::new(), key: &key };

    let doomed = Node::start(&database, dirs[0].path());
    let survivor = Node::start(&database, dirs[1].path());
    let campaign = api.call(&doomed, reqwest::Method::POST, "/campaigns", Some(json!({"name": "Kill test"})));
    let campaign = campaign["id"].as_str().expect("id").to_owned();
    for stage in ["1. First contact", "2. Retry"] {
        api.call(&doomed, reqwest::Method::POST, &format!("/campaigns/{campaign}/stages"), Some(json!({"name": stage, "channel": "SIMULATED"})));
    }
    for (kind, file) in [("DATA_LOAD", "examples/simulated/data_load.py"), ("AGGREGATION", "examples/simulated/aggregation.py")] {
        let source = std::fs::read_to_string(repo().join(file)).expect("strategy");
        let body = json!({"name": file, "type": kind, "source": source});
        let strategy = api.call(&doomed, reqwest::Method::POST, &format!("/campaigns/{campaign}/strategies"), Some(body));
        let id = strategy["id"].as_str().expect("id").to_owned();
        let built = api.wait_until(&survivor, &format!("/strategies/{id}"), |view| view["latest"]["status"] != "building");
        assert_eq!(built["latest"]["status"], "ready", "{built}");
    }
    // Half pay at once; half answer nothing first, then pay: 3000 sends.
    let mut csv = String::from("object_id,external_id,name,email,phone,persona\n");
    for index in 0..2000 {
        let persona = if index % 2 == 0 { "PAID" } else { "NO_RESPONSE>PAID" };
        csv.push_str(&format!("C{index},U{index},Person {index},p{index}@example.com,+1{index},{persona}\n"));
    }
    let job: Value = api
        .http
        .post(format!("{}/api/campaigns/{campaign}/imports", doomed.base))
        .bearer_auth(&key)
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .expect("import")
        .json()
        .expect("job");
    let job = job["id"].as_str().expect("job id").to_owned();
    let job = api.wait_until(&doomed, &format!("/imports/{job}"), |job| job["status"] != "running");
    assert_eq!(job["accepted"], 2000, "{job}");

    for status in ["CONFIGURED", "RUNNING"] {
        api.call(&doomed, reqwest::Method::POST, &format!("/campaigns/{campaign}/status"), Some(json!({"status": status})));
    }
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
    let _ = Command::new("dropdb").args(["-h", "127.0.0.1", "-U", "postgres", &name]).status();
}
