//! The operator's side of `stratagem`, driven as an operator would on a
//! SQLite data directory: `stratagem tenant …` (list, mint keys, disable,
//! enable, delete) against a running `stratagem serve`; a `serve` killed
//! with SIGKILL, or stopped with SIGTERM, in the middle of an import, then
//! restarted; `/metrics` scraped over a campaign's life; a failed
//! invocation replayed (`strategy replay`) and the tenant's usage.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
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

/// A serving node, its base URL (read from its start-up line) and what it
/// writes on stderr after that line.
struct Node {
    child: Child,
    base: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Node {
    fn start(data_dir: &Path) -> Node {
        Node::start_with(data_dir, &[])
    }

    fn start_with(data_dir: &Path, env: &[(&str, &str)]) -> Node {
        let mut command = command(data_dir);
        command.args(["serve", "--listen", "127.0.0.1:0"]).envs(env.iter().copied());
        let mut child = command.stderr(Stdio::piped()).spawn().expect("serve starts");
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(stderr).lines();
        let base = loop {
            let line = lines.next().expect("serve prints its address").expect("line");
            if let Some(rest) = line.strip_prefix("stratagem serving on ") {
                break rest.split_whitespace().next().expect("url").to_owned();
            }
        };
        // Keep reading its log so the pipe never fills.
        let log = Arc::new(Mutex::new(Vec::new()));
        let kept = log.clone();
        std::thread::spawn(move || lines.map_while(Result::ok).for_each(|line| kept.lock().expect("log").push(line)));
        Node { child, base, log }
    }

    fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }

    /// Sends SIGTERM and waits for the process to end: its exit status and
    /// what it logged.
    fn terminate(mut self) -> (std::process::ExitStatus, String) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().expect("kill").success());
        let deadline = Instant::now() + Duration::from_secs(120);
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status;
            }
            assert!(Instant::now() < deadline, "serve still runs two minutes after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        };
        // The reader thread has the last lines once the pipe closed.
        std::thread::sleep(Duration::from_millis(200));
        let log = self.log.lock().expect("log").join("\n");
        (status, log)
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

    /// Polls `path` until `done` holds (three minutes at most).
    fn wait_until(&self, key: &str, path: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let (_, body) = self.get(key, path);
            if done(&body) {
                return body;
            }
            assert!(Instant::now() < deadline, "{path} never reached the expected state: {body}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts importing `csv`; the job's id.
    fn import(&self, key: &str, campaign: &str, csv: &str) -> String {
        let job: Value = reqwest::blocking::Client::new()
            .post(format!("{}/api/campaigns/{campaign}/imports", self.base))
            .bearer_auth(key)
            .header("content-type", "text/csv")
            .body(csv.to_owned())
            .send()
            .expect("import")
            .json()
            .expect("job");
        job["id"].as_str().unwrap_or_else(|| panic!("no job: {job}")).to_owned()
    }

    /// `GET /metrics`, with the metrics token if given: status and body.
    fn scrape(&self, token: Option<&str>) -> (u16, String) {
        let mut request = reqwest::blocking::Client::new().get(format!("{}/metrics", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let reply = request.send().expect("scrape");
        (reply.status().as_u16(), reply.text().expect("text"))
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of the series `name` whose labels include `labels`, in a
/// Prometheus text scrape (`name{a="1",b="2"} 20`).
fn sample(scrape: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape.lines().filter(|line| !line.starts_with('#')).find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        let (metric, rest) = series.split_once('{').unwrap_or((series, ""));
        let matches = metric == name && labels.iter().all(|(label, wanted)| rest.contains(&format!("{label}=\"{wanted}\"")));
        matches.then(|| value.parse().ok()).flatten()
    })
}

/// `rows` contacts of the simulated demo who pay at the first contact, and
/// one row without its fields (rejected).
fn paying_contacts(rows: usize) -> String {
    let mut csv = String::from("object_id,external_id,name,email,phone,persona\n");
    for index in 0..rows {
        csv.push_str(&format!("C{index},U{index},Person {index},p{index}@example.com,+1{index},PAID\n"));
    }
    csv.push_str("BROKEN\n");
    csv
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

/// `rows` contacts without a strategy; every thousandth row lacks its
/// fields (rejected, and counted so).
fn large_file(rows: i64) -> String {
    let mut csv = String::from("object_id,external_id,name,email,phone\n");
    for index in 0..rows {
        match index % 1000 {
            999 => csv.push_str(&format!("C{index}\n")),
            _ => csv.push_str(&format!("C{index},U{index},Person {index},p{index}@example.com,+1{index}\n")),
        }
    }
    csv
}

/// A `serve` on `data` importing `large_file(rows)` into a new campaign,
/// 5000 rows in.
struct Importing {
    node: Node,
    key: String,
    campaign: String,
    /// The import job's API path.
    path: String,
    file: String,
}

fn importing(data: &Path, rows: i64) -> Importing {
    let (_, key) = printed_key(&succeeds(data, &["tenant", "create", "Acme"]));
    let node = Node::start(data);
    let campaign = node.send(&key, reqwest::Method::POST, "/campaigns", Some(json!({"name": "Collections"}))).1;
    let campaign = campaign["id"].as_str().expect("campaign").to_owned();
    let file = large_file(rows);
    let job = node.import(&key, &campaign, &file);
    let path = format!("/imports/{job}");
    wait_for_rows(&node, &key, &path, 5000);
    Importing { node, key, campaign, path, file }
}

/// Waits until the running import at `path` has written `rows` rows.
fn wait_for_rows(node: &Node, key: &str, path: &str, rows: i64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, progress) = node.get(key, path);
        assert_eq!(progress["status"], "running", "the import ended before it could be stopped: {progress}");
        if progress["processed_rows"].as_i64() >= Some(rows) {
            return;
        }
        assert!(Instant::now() < deadline, "the import did not progress: {progress}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// SQLite is used by one process at a time, so a `serve` that starts knows
/// that any import still `running` was left by one that stopped: the job
/// reads `interrupted` from the first request on, and counts exactly the
/// rows its batches committed — not the batch in flight at the kill.
#[test]
fn works_when_serve_is_killed_mid_import_and_the_restart_interrupts_the_job() {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path();
    let rows = 200_000;
    let Importing { node, key, campaign, path, .. } = importing(data, rows);
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

/// SIGTERM in the middle of an import: the process stops taking work,
/// writes the batch in hand, closes the job `interrupted` (reason
/// `shutdown`, not a crash) and exits 0. The job counts exactly the rows
/// written, and importing the file again after the restart finishes it:
/// every row once, none lost, none duplicated.
#[test]
fn works_when_serve_is_stopped_with_sigterm_mid_import_and_the_file_imported_again_finishes_it() {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path();
    let rows = 200_000;
    let Importing { node, key, campaign, path, file } = importing(data, rows);
    let (status, log) = node.terminate();
    assert!(status.success(), "serve exits 0 after SIGTERM: {status}\n{log}");
    assert!(log.contains("stratagem stopping: no new connections") && log.contains("stratagem stopped: in-flight work finished"), "{log}");

    let restarted = Node::start(data);
    let (_, report) = restarted.get(&key, &path);
    assert_eq!((report["status"].as_str(), report["interrupted_reason"].as_str()), (Some("interrupted"), Some("shutdown")), "{report}");
    let count = |report: &Value, field: &str| report[field].as_i64().unwrap_or(-1);
    let (processed, accepted) = (count(&report, "processed_rows"), count(&report, "accepted"));
    assert!(processed >= 5000 && processed < rows, "{report}");
    assert_eq!((processed % 500, count(&report, "rejected")), (0, processed / 1000), "whole batches of 500 rows: {report}");
    let detail = report["detail"].as_str().expect("detail");
    assert!(detail.contains("the server running it was shut down") && detail.contains(&format!("{processed} of {rows} rows were written")), "{detail}");
    let (_, contacts) = restarted.get(&key, &format!("/campaigns/{campaign}/contacts?limit=1"));
    assert_eq!(contacts["total"].as_i64(), Some(accepted), "the job counts the contacts written: {report}");

    let again = restarted.import(&key, &campaign, &file);
    let done = restarted.wait_until(&key, &format!("/imports/{again}"), |job| !["queued", "running"].contains(&job["status"].as_str().unwrap_or_default()));
    assert_eq!(done["status"], "done", "{done}");
    let valid = rows - rows / 1000;
    assert_eq!((count(&done, "updated"), count(&done, "accepted")), (accepted, valid - accepted), "rows written before are updated, the rest added: {done}");
    let (_, contacts) = restarted.get(&key, &format!("/campaigns/{campaign}/contacts?limit=1"));
    assert_eq!(contacts["total"].as_i64(), Some(valid), "every valid row once");
}

/// `/metrics` as Prometheus scrapes it, over a campaign's life on two
/// processes: the first never dispatches (its engine ticks hourly), so
/// what is due waits and is counted; the second sends it.
#[test]
fn works_when_metrics_are_scraped_over_a_campaigns_life() {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path();
    let (_, key) = printed_key(&succeeds(data, &["tenant", "create", "Acme"]));
    let token = ("STRATAGEM_METRICS_TOKEN", "scrape-secret");
    let idle = Node::start_with(data, &[token, ("STRATAGEM_ENGINE_TICK_MS", "3600000")]);
    let (status, refused) = idle.scrape(None);
    assert_eq!(status, 401, "{refused}");
    assert!(refused.contains("/problems/metrics-token-required") && refused.contains("STRATAGEM_METRICS_TOKEN"), "{refused}");
    assert_eq!(idle.scrape(Some("wrong")).0, 401);

    let campaign = idle.send(&key, reqwest::Method::POST, "/campaigns", Some(json!({"name": "Collections"}))).1;
    let campaign = campaign["id"].as_str().expect("campaign").to_owned();
    for stage in ["1. First contact", "2. Retry"] {
        let stage = json!({"name": stage, "channel": "SIMULATED"});
        assert_eq!(idle.send(&key, reqwest::Method::POST, &format!("/campaigns/{campaign}/stages"), Some(stage)).0, 201);
    }
    for (kind, file) in [("DATA_LOAD", "examples/simulated/data_load.py"), ("AGGREGATION", "examples/simulated/aggregation.py")] {
        let source = std::fs::read_to_string(repo().join(file)).expect("strategy");
        let body = json!({"name": file, "type": kind, "source": source});
        let (status, strategy) = idle.send(&key, reqwest::Method::POST, &format!("/campaigns/{campaign}/strategies"), Some(body));
        assert_eq!(status, 202, "{strategy}");
        let built = idle.wait_until(&key, &format!("/strategies/{}", strategy["id"].as_str().expect("id")), |view| view["latest"]["status"] != "building");
        assert_eq!(built["latest"]["status"], "ready", "{built}");
    }
    let job = idle.import(&key, &campaign, &paying_contacts(20));
    let job = idle.wait_until(&key, &format!("/imports/{job}"), |job| !["queued", "running"].contains(&job["status"].as_str().unwrap_or_default()));
    assert_eq!((job["accepted"].as_i64(), job["rejected"].as_i64()), (Some(20), Some(1)), "{job}");
    for status in ["CONFIGURED", "RUNNING"] {
        let (code, body) = idle.send(&key, reqwest::Method::POST, &format!("/campaigns/{campaign}/status"), Some(json!({"status": status})));
        assert_eq!(code, 200, "{body}");
    }

    let (status, scrape) = idle.scrape(Some("scrape-secret"));
    assert_eq!(status, 200, "{scrape}");
    let value = |name: &str, labels: &[(&str, &str)]| sample(&scrape, name, labels).unwrap_or_else(|| panic!("no {name} {labels:?} in\n{scrape}"));
    assert_eq!(value("stratagem_import_rows_total", &[("outcome", "accepted")]), 20.0);
    assert_eq!(value("stratagem_import_rows_total", &[("outcome", "rejected")]), 1.0);
    assert_eq!(value("stratagem_strategy_invocations_total", &[("hook", "data_load"), ("outcome", "ok")]), 20.0);
    assert_eq!(value("stratagem_strategy_fuel_count", &[("hook", "data_load")]), 20.0);
    assert!(value("stratagem_strategy_fuel_sum", &[("hook", "data_load")]) > 20.0 * 1e4, "fuel is counted");
    assert_eq!(value("stratagem_strategy_duration_seconds_count", &[("hook", "data_load")]), 20.0);
    assert!(value("stratagem_strategy_fuel_bucket", &[("hook", "data_load"), ("le", "+Inf")]) == 20.0);
    let imports = [("method", "POST"), ("route", "/api/campaigns/{id}/imports"), ("status", "202")];
    assert_eq!(value("stratagem_http_requests_total", &imports), 1.0);
    assert_eq!(value("stratagem_http_requests_total", &[("route", "/metrics"), ("status", "401")]), 2.0);
    assert_eq!(value("stratagem_due_communications", &[]), 20.0, "the idle engine sent nothing");
    assert!(value("stratagem_due_oldest_age_seconds", &[]) > 0.0);
    assert_eq!((value("stratagem_strategy_builds", &[("state", "waiting")]), value("stratagem_strategy_builds", &[("state", "building")])), (0.0, 0.0));
    assert!(sample(&scrape, "stratagem_sends_total", &[]).is_none(), "nothing sent yet");
    assert!(scrape.contains("# HELP stratagem_strategy_invocations_total Strategy calls, by hook and outcome"), "{scrape}");
    assert!(!scrape.contains(&campaign) && !scrape.contains("ten_"), "no tenant or campaign in the labels");
    let (status, log) = idle.terminate();
    assert!(status.success(), "{status}\n{log}");

    let busy = Node::start_with(data, &[token, ("STRATAGEM_ENGINE_TICK_MS", "20")]);
    let finished = busy.wait_until(&key, &format!("/campaigns/{campaign}"), |c| c["status"] != "RUNNING");
    assert_eq!(finished["status"], "FINISHED", "{finished}");
    let (_, scrape) = busy.scrape(Some("scrape-secret"));
    let value = |name: &str, labels: &[(&str, &str)]| sample(&scrape, name, labels).unwrap_or_else(|| panic!("no {name} {labels:?} in\n{scrape}"));
    assert_eq!(value("stratagem_sends_total", &[("channel", "SIMULATED"), ("status", "sent")]), 20.0, "each paying contact once");
    assert!(scrape.contains("# HELP stratagem_sends_total Communications sent, by channel and status"), "{scrape}");
    assert_eq!(value("stratagem_strategy_invocations_total", &[("hook", "aggregation"), ("outcome", "ok")]), 20.0);
    assert_eq!(value("stratagem_due_communications", &[]), 0.0);
    assert_eq!(value("stratagem_due_oldest_age_seconds", &[]), 0.0);
}

/// DATA_LOAD that logs, writes the time it saw, and fails on a negative amount.
const FAILING_DATA_LOAD: &str = r#"from datetime import datetime


async def run(contact, existing_contact, logger, **kwargs):
    logger.info(f"loading {contact.object_id}")
    amount = float(contact.parameters.get("amount", 0))
    if amount < 0:
        raise ValueError(f"amount must not be negative, got {amount}")
    contact.internal_data["loaded_at"] = datetime.now()
    return contact
"#;

/// The same strategy, fixed: a negative amount is taken as nothing due.
const FIXED_DATA_LOAD: &str = r#"from datetime import datetime


async def run(contact, existing_contact, logger, **kwargs):
    amount = float(contact.parameters.get("amount", 0))
    if amount < 0:
        contact.internal_data["amount_fixed"] = True
    contact.internal_data["loaded_at"] = datetime.now()
    return contact
"#;

/// The developer's loop: an import row fails in the service; `strategy
/// replay` fetches that invocation and runs it here with the same time and
/// limits (the same error), then the edited strategy on the same input
/// (what its returned contact changes). A successful invocation in the
/// sample reproduces its returned contact; one outside it says why it
/// cannot be replayed, as does a wrong key. Then the operator reads the
/// tenant's usage (the runs and the import) and sets its quotas.
#[test]
fn works_when_a_failed_invocation_is_replayed_and_the_operator_meters_the_tenant() {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path();
    let (_, key) = printed_key(&succeeds(data, &["tenant", "create", "Acme"]));
    let node = Node::start_with(data, &[("STRATAGEM_ENGINE_TICK_MS", "3600000")]);
    let campaign = node.send(&key, reqwest::Method::POST, "/campaigns", Some(json!({"name": "Collections"}))).1;
    let campaign = campaign["id"].as_str().expect("campaign").to_owned();
    let body = json!({"name": "loader", "type": "DATA_LOAD", "file_name": "strategy.py", "source": FAILING_DATA_LOAD});
    let (status, strategy) = node.send(&key, reqwest::Method::POST, &format!("/campaigns/{campaign}/strategies"), Some(body));
    assert_eq!(status, 202, "{strategy}");
    let built = node.wait_until(&key, &format!("/strategies/{}", strategy["id"].as_str().expect("id")), |view| view["latest"]["status"] != "building");
    assert_eq!(built["latest"]["status"], "ready", "{built}");
    let csv = "object_id,external_id,name,email,phone,amount\nC1,U1,Ann,a@x.io,+1,5\nC2,U2,Bob,b@x.io,+2,-3\nC3,U3,Cy,c@x.io,+3,7\n";
    let job = node.import(&key, &campaign, csv);
    let job = node.wait_until(&key, &format!("/imports/{job}"), |job| !["queued", "running"].contains(&job["status"].as_str().unwrap_or_default()));
    let failed = job["report"]["strategy_errors"][0]["invocation_id"].as_str().unwrap_or_else(|| panic!("{job}")).to_owned();

    let cache = data.join("replay-cache");
    let replay = |id: &str, extra: &[&str]| {
        let mut args = vec!["strategy", "replay", id, "--server", &node.base, "--api-key", &key, "--cache-dir", cache.to_str().expect("path")];
        args.extend_from_slice(extra);
        stratagem(data, &args)
    };

    let unchanged = replay(&failed, &[]);
    let (stdout, stderr) = (text(&unchanged.stdout), text(&unchanged.stderr));
    assert!(unchanged.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.starts_with("reproduced: the same exception error"), "{stdout}");
    assert!(stdout.contains("ValueError: amount must not be negative, got -3.0"), "{stdout}");
    assert!(stderr.contains("loading C2"), "the strategy's log is shown: {stderr}");

    let fixed = data.join("fixed.py");
    std::fs::write(&fixed, FIXED_DATA_LOAD).expect("write");
    let edited = replay(&failed, &["--source", fixed.to_str().expect("path")]);
    let stdout = text(&edited.stdout);
    assert!(edited.status.success(), "{stdout}\n{}", text(&edited.stderr));
    let (_, kept) = node.get(&key, &format!("/invocations/{failed}"));
    let started_at: chrono::DateTime<chrono::Utc> = serde_json::from_value(kept["started_at"].clone()).expect("time");
    assert!(stdout.contains("recorded: exception error"), "{stdout}");
    assert!(stdout.contains("the edited strategy's returned contact, against the contact it was given:"), "{stdout}");
    assert!(stdout.contains("+ internal_data.amount_fixed: true"), "{stdout}");
    let loaded_at = format!("+ internal_data.loaded_at: {{\"$datetime\":\"{}\"}}", started_at.format("%Y-%m-%dT%H:%M:%S%.6f"));
    assert!(stdout.contains(&loaded_at), "the replay sees the recorded time ({loaded_at}): {stdout}");

    // Of the two successful rows, the node's first is in the sample.
    let runs: Vec<Value> = ["C1", "C3"]
        .iter()
        .map(|id| node.get(&key, &format!("/campaigns/{campaign}/contacts/{id}")).1["invocations"][0].clone())
        .collect();
    let (sampled, unsampled): (Vec<&Value>, Vec<&Value>) = runs.iter().partition(|run| run["replayable"] == true);
    assert_eq!((sampled.len(), unsampled.len()), (1, 1), "{runs:?}");
    let reproduced = replay(sampled[0]["id"].as_str().expect("id"), &[]);
    assert!(reproduced.status.success(), "{}\n{}", text(&reproduced.stdout), text(&reproduced.stderr));
    assert!(text(&reproduced.stdout).starts_with("reproduced: the same returned contact"), "{}", text(&reproduced.stdout));

    let not_kept = replay(unsampled[0]["id"].as_str().expect("id"), &[]);
    assert_eq!(not_kept.status.code(), Some(2));
    assert!(text(&not_kept.stderr).contains("kept no input"), "{}", text(&not_kept.stderr));
    let wrong_key = stratagem(data, &["strategy", "replay", &failed, "--server", &node.base, "--api-key", "stg_wrong_key"]);
    assert_eq!(wrong_key.status.code(), Some(2));
    assert!(text(&wrong_key.stderr).contains("401"), "{}", text(&wrong_key.stderr));

    // The operator's view of the tenant's usage: the three runs, the import.
    let today = chrono::Utc::now().date_naive().to_string();
    let usage = succeeds(data, &["tenant", "usage", "Acme", "--csv"]);
    assert!(usage.starts_with("day,metric,dimension,value\n"), "{usage}");
    for line in [format!("{today},invocations,DATA_LOAD,3"), format!("{today},imports,,1"), format!("{today},import_rows,,3")] {
        assert!(usage.lines().any(|l| l == line), "{line} in {usage}");
    }
    let table = succeeds(data, &["tenant", "usage", "Acme"]);
    assert!(table.contains("storage now: 1 campaign(s), 3 contact(s)"), "{table}");
    let refused = fails(data, &["tenant", "usage", "Acme", "--from", "2026-02-01", "--to", "2026-01-01"]);
    assert!(refused.contains("from (2026-02-01) is after to (2026-01-01)"), "{refused}");

    // Quotas: set, shown, and in force at the running node's next request.
    let quotas = succeeds(data, &["tenant", "quota", "Acme", "--campaigns", "1", "--contacts", "0"]);
    assert!(quotas.contains("contacts:           unlimited") && quotas.contains("campaigns:          1"), "{quotas}");
    let (status, refused) = node.send(&key, reqwest::Method::POST, "/campaigns", Some(json!({"name": "Second"})));
    assert_eq!((status, refused["quota"]["quota"].as_str()), (403, Some("campaigns")), "{refused}");
    let quotas = succeeds(data, &["tenant", "quota", "Acme", "--campaigns", "default"]);
    assert!(quotas.contains("campaigns:          the node's default"), "{quotas}");
    assert_eq!(node.send(&key, reqwest::Method::POST, "/campaigns", Some(json!({"name": "Second"}))).0, 201);
    // Today's fuel is used past a quota of 1: the next import is refused.
    let quotas = succeeds(data, &["tenant", "quota", "Acme", "--fuel-per-day", "1", "--http-calls-per-day", "5000000000", "--storage-mib", "0"]);
    assert!(quotas.contains("fuel per day:       1") && quotas.contains("HTTP calls per day: 5000000000") && quotas.contains("storage (MiB):      unlimited"), "{quotas}");
    let upload = reqwest::blocking::Client::new()
        .post(format!("{}/api/campaigns/{campaign}/imports", node.base))
        .bearer_auth(&key)
        .header("content-type", "text/csv")
        .body("object_id,external_id,name,email,phone\nC9,U9,Nine,n@x.io,+9\n")
        .send()
        .expect("upload");
    assert_eq!(upload.status().as_u16(), 403);
    let refused: serde_json::Value = upload.json().expect("problem");
    assert_eq!(refused["quota"]["quota"], "fuel_per_day", "{refused}");
    let bad = stratagem(data, &["tenant", "quota", "Acme", "--contacts", "lots"]);
    assert!(!bad.status.success() && text(&bad.stderr).contains("`lots` is not a quota"), "{}", text(&bad.stderr));
}
