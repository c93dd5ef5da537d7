//! The operator's side of `stratagem`, driven as an operator would on a
//! SQLite data directory: `stratagem tenant …` (list, mint keys, disable,
//! enable, delete) against a running `stratagem serve`, and a `serve`
//! killed with SIGKILL in the middle of an import, then restarted.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `stratagem` on the SQLite database of `data_dir`.
fn command(data_dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_stratagem"));
    command.current_dir(repo()).env("STRATAGEM_DATA_DIR", data_dir).env_remove("DATABASE_URL").env_remove("STRATAGEM_SECRETS_KEY");
    command
}

fn stratagem(data_dir: &Path, args: &[&str]) -> Output {
    command(data_dir).args(args).output().expect("stratagem runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs a command that must succeed; its stdout.
fn succeeds(data_dir: &Path, args: &[&str]) -> String {
    let output = stratagem(data_dir, args);
    assert!(output.status.success(), "{args:?}: {}\n{}", text(&output.stdout), text(&output.stderr));
    text(&output.stdout)
}

/// Runs a command that must fail with exit code 2; its stderr.
fn fails(data_dir: &Path, args: &[&str]) -> String {
    let output = stratagem(data_dir, args);
    assert_eq!(output.status.code(), Some(2), "{args:?}: {}\n{}", text(&output.stdout), text(&output.stderr));
    text(&output.stderr)
}

/// The tenant id and key `tenant create` or `tenant key create` printed.
fn printed_key(stdout: &str) -> (String, String) {
    let field = |name: &str| stdout.lines().find_map(|line| line.strip_prefix(name)).unwrap_or_else(|| panic!("no `{name}` in {stdout}")).to_owned();
    (field("tenant: "), field("api key: "))
}

/// The line of `tenant list` for a tenant, split into its columns.
fn listed(data_dir: &Path, tenant: &str) -> Vec<String> {
    let list = succeeds(data_dir, &["tenant", "list"]);
    let line = list.lines().find(|line| line.starts_with(tenant)).unwrap_or_else(|| panic!("{tenant} not listed: {list}"));
    line.split_whitespace().map(str::to_owned).collect()
}

/// A serving node and its base URL, read from its start-up line.
struct Node {
    child: Child,
    base: String,
}

impl Node {
    fn start(data_dir: &Path) -> Node {
        let mut child = command(data_dir).args(["serve", "--listen", "127.0.0.1:0"]).stderr(Stdio::piped()).spawn().expect("serve starts");
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

    fn send(&self, key: &str, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = reqwest::blocking::Client::new().request(method, format!("{}/api{path}", self.base)).bearer_auth(key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let reply = request.send().expect("request");
        let status = reply.status().as_u16();
        (status, reply.json().unwrap_or(Value::Null))
    }

    fn get(&self, key: &str, path: &str) -> (u16, Value) {
        self.send(key, reqwest::Method::GET, path, None)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn works_when_the_operator_mints_keys_disables_enables_and_deletes_a_tenant() {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path();
    assert!(stratagem(data, &["tenant", "list"]).stderr.starts_with(b"no tenants yet"));
    let (acme, first_key) = printed_key(&succeeds(data, &["tenant", "create", "Acme"]));
    let (twin_a, _) = printed_key(&succeeds(data, &["tenant", "create", "Twin"]));
    let (twin_b, _) = printed_key(&succeeds(data, &["tenant", "create", "Twin"]));
    let list = succeeds(data, &["tenant", "list"]);
    assert!(list.starts_with("ID"), "{list}");
    assert_eq!(listed(data, &acme)[1..3], ["active", "1"]);
    assert_eq!(listed(data, &acme).last().map(String::as_str), Some("Acme"));

    // A new key, by name or by id; printed once, in the same form as at creation.
    let minted = succeeds(data, &["tenant", "key", "create", "Acme", "--name", "ops"]);
    let (tenant, second_key) = printed_key(&minted);
    assert_eq!(tenant, acme);
    assert_ne!(second_key, first_key);
    assert!(second_key.starts_with("stg_"));
    printed_key(&succeeds(data, &["tenant", "key", "create", &twin_a]));
    assert_eq!(listed(data, &acme)[2], "2");
    assert_eq!(listed(data, &twin_a)[2], "2");
    let ambiguous = fails(data, &["tenant", "key", "create", "Twin"]);
    assert!(ambiguous.contains(&format!("2 tenants are named `Twin`; name one by its id: {twin_a}, {twin_b}")), "{ambiguous}");
    let unknown = fails(data, &["tenant", "disable", "Nobody"]);
    assert!(unknown.contains("no tenant has the id or name `Nobody`; `stratagem tenant list` shows them"), "{unknown}");

    let node = Node::start(data);
    let keys = [&first_key, &second_key];
    for key in keys {
        assert_eq!(node.get(key, "/campaigns").0, 200);
    }
    let campaign = node.send(&first_key, reqwest::Method::POST, "/campaigns", Some(json!({"name": "Collections"}))).1;
    let campaign = campaign["id"].as_str().expect("campaign").to_owned();

    // Disabled: every key refused with 403, from the next request on.
    assert!(succeeds(data, &["tenant", "disable", "Acme"]).starts_with(&format!("disabled tenant Acme ({acme})")));
    assert_eq!(listed(data, &acme)[1], "disabled");
    for key in keys {
        let (status, problem) = node.get(key, "/campaigns");
        assert_eq!((status, problem["type"].as_str()), (403, Some("/problems/tenant-disabled")), "{problem}");
    }
    assert!(succeeds(data, &["tenant", "disable", &acme]).contains("is disabled already"));
    assert!(succeeds(data, &["tenant", "enable", &acme]).starts_with(&format!("enabled tenant Acme ({acme})")));
    for key in keys {
        assert_eq!(node.get(key, "/campaigns").0, 200);
    }

    // Deleting asks for --yes, then revokes every key; the data stays.
    let unconfirmed = fails(data, &["tenant", "delete", "Acme"]);
    assert!(unconfirmed.contains("revokes its 2 active key(s)") && unconfirmed.contains("Run again with --yes"), "{unconfirmed}");
    assert_eq!(node.get(&first_key, "/campaigns").0, 200, "nothing happened without --yes");
    let deleted = succeeds(data, &["tenant", "delete", "Acme", "--yes"]);
    assert!(deleted.starts_with(&format!("deleted tenant Acme ({acme}): 2 key(s) revoked, 0 running campaign(s)")), "{deleted}");
    for key in keys {
        let (status, problem) = node.get(key, &format!("/campaigns/{campaign}"));
        assert_eq!((status, problem["type"].as_str()), (401, Some("/problems/unauthorized")), "{problem}");
    }
    assert_eq!(listed(data, &acme)[1..3], ["deleted", "0"]);
    assert!(fails(data, &["tenant", "enable", &acme]).contains("is deleted"));
    assert!(fails(data, &["tenant", "key", "create", &acme]).contains("a deleted tenant gets no new keys"));
    assert!(fails(data, &["tenant", "delete", &acme, "--yes"]).contains("is deleted already"));
    // By name, a deleted tenant is no longer found: the name is free.
    assert!(fails(data, &["tenant", "disable", "Acme"]).contains("no tenant has the id or name `Acme`"));
}

/// SQLite is used by one process at a time, so a `serve` that starts knows
/// that any import still `running` was left by one that stopped: the job
/// reads `interrupted` from the first request on, and counts exactly the
/// rows its batches committed — not the batch in flight at the kill.
#[test]
fn works_when_serve_is_killed_mid_import_and_the_restart_interrupts_the_job() {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path();
    let (_, key) = printed_key(&succeeds(data, &["tenant", "create", "Acme"]));
    let node = Node::start(data);
    let campaign = node.send(&key, reqwest::Method::POST, "/campaigns", Some(json!({"name": "Collections"}))).1;
    let campaign = campaign["id"].as_str().expect("campaign").to_owned();
    let rows = 200_000;
    let mut csv = String::from("object_id,external_id,name,email,phone\n");
    for index in 0..rows {
        // Every thousandth row lacks its fields: rejected, and counted so.
        match index % 1000 {
            999 => csv.push_str(&format!("C{index}\n")),
            _ => csv.push_str(&format!("C{index},U{index},Person {index},p{index}@example.com,+1{index}\n")),
        }
    }
    let job: Value = reqwest::blocking::Client::new()
        .post(format!("{}/api/campaigns/{campaign}/imports", node.base))
        .bearer_auth(&key)
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .expect("import")
        .json()
        .expect("job");
    let job = job["id"].as_str().unwrap_or_else(|| panic!("no job: {job}")).to_owned();
    let path = format!("/imports/{job}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, progress) = node.get(&key, &path);
        assert_eq!(progress["status"], "running", "the import ended before it could be killed: {progress}");
        if progress["processed_rows"].as_i64() >= Some(5000) {
            break;
        }
        assert!(Instant::now() < deadline, "the import did not progress: {progress}");
        std::thread::sleep(Duration::from_millis(20));
    }
    node.kill();

    let restarted = Node::start(data);
    let (_, report) = restarted.get(&key, &path);
    assert_eq!((report["status"].as_str(), report["interrupted_reason"].as_str()), (Some("interrupted"), Some("node_stopped")), "{report}");
    let count = |field: &str| report[field].as_i64().unwrap_or(-1);
    let (processed, accepted, rejected) = (count("processed_rows"), count("accepted"), count("rejected"));
    assert!(processed >= 5000 && processed < rows, "{report}");
    assert_eq!(processed % 500, 0, "whole batches of 500 rows: {report}");
    assert_eq!((count("updated"), rejected, accepted + rejected), (0, processed / 1000, processed), "{report}");
    let (_, contacts) = restarted.get(&key, &format!("/campaigns/{campaign}/contacts?limit=1"));
    assert_eq!(contacts["total"].as_i64(), Some(accepted), "the job counts the contacts written: {report}");
    let detail = report["detail"].as_str().expect("detail");
    assert!(detail.contains(&format!("{processed} of {rows} rows were written")), "{detail}");
}
