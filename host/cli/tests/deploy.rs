//! The release binary as an operator ships it: copied to a directory of
//! its own and started from another, with nothing of the repository
//! around and no settings. It serves the UI built into it, finds the
//! Python toolchain where it is installed the documented way (here: next
//! to the binary), says once and clearly when it is not, refuses Python
//! uploads with a specific problem meanwhile, and `stratagem doctor`
//! reports all of it. Its logs can be JSON, each request's lines naming
//! the request, tenant and campaign.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{json, Value};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repo")
}

/// The copied binary, run from `work` with a bare environment.
fn shipped(binary: &Path, work: &Path, data: &Path) -> Command {
    let mut command = Command::new(binary);
    command
        .current_dir(work)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("STRATAGEM_DATA_DIR", data)
        .env("STRATAGEM_ALLOW_PRIVATE_ENDPOINTS", "1");
    command
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

#[test]
fn works_when_a_copied_binary_runs_from_its_own_directory() {
    let componentize = repo().join(".venv/bin/componentize-py");
    assert!(componentize.is_file(), "run `make setup` first: {} is missing", componentize.display());
    let root = tempfile::tempdir().expect("temp dir");
    let (bin, work, data) = (root.path().join("bin"), root.path().join("work"), root.path().join("data"));
    std::fs::create_dir_all(&bin).expect("bin");
    std::fs::create_dir_all(&work).expect("work");
    let binary = bin.join("stratagem");
    std::fs::copy(env!("CARGO_BIN_EXE_stratagem"), &binary).expect("copy the binary");

    // Nothing found: doctor says what is missing and how to fix it.
    let doctor = shipped(&binary, &work, &data).arg("doctor").output().expect("doctor");
    let report = text(&doctor);
    assert_eq!(doctor.status.code(), Some(1), "{report}");
    assert!(report.contains("MISSING  toolchain    cannot run `componentize-py`"), "{report}");
    assert!(report.contains("next to the stratagem binary, in .venv/bin (`make setup`) or on the PATH"), "{report}");
    assert!(report.contains("ok       web UI       built into this binary"), "{report}");
    assert!(report.contains("ok       database     sqlite://") && report.contains("not there yet"), "{report}");

    // Installed next to the binary: found without configuration.
    std::os::unix::fs::symlink(&componentize, bin.join("componentize-py")).expect("install next to the binary");
    let doctor = shipped(&binary, &work, &data).arg("doctor").output().expect("doctor");
    let report = text(&doctor);
    assert_eq!(doctor.status.code(), Some(0), "{report}");
    assert!(report.contains("ok       toolchain    componentize-py"), "{report}");
    assert!(report.contains(&bin.join("componentize-py").display().to_string()), "{report}");
    std::fs::remove_file(bin.join("componentize-py")).expect("uninstall");

    // Serving without it: said once at start-up; Python uploads refused
    // with the reason, the built-in UI served.
    let created = shipped(&binary, &work, &data).args(["tenant", "create", "Ops"]).output().expect("tenant create");
    assert!(created.status.success(), "{}", text(&created));
    let stdout = String::from_utf8_lossy(&created.stdout).into_owned();
    let key = stdout.lines().find_map(|line| line.strip_prefix("api key: ")).expect("key").trim().to_owned();
    let mut serve = shipped(&binary, &work, &data).args(["serve", "--listen", "127.0.0.1:0"]).stderr(Stdio::piped()).spawn().expect("serve");
    let mut lines = BufReader::new(serve.stderr.take().expect("stderr")).lines();
    let mut said = Vec::new();
    let base = loop {
        let line = lines.next().expect("serve prints its address").expect("line");
        if let Some(rest) = line.strip_prefix("stratagem serving on ") {
            break rest.split_whitespace().next().expect("url").to_owned();
        }
        said.push(line);
    };
    std::thread::spawn(move || for _ in lines {});
    let off: Vec<&String> = said.iter().filter(|line| line.contains("strategy builds are OFF")).collect();
    assert_eq!(off.len(), 1, "said once: {said:?}");
    assert!(off[0].contains("componentize-py"), "{said:?}");

    let http = reqwest::blocking::Client::new();
    let campaign: Value = http.post(format!("{base}/api/campaigns")).bearer_auth(&key).json(&json!({"name": "Shipped"})).send().expect("campaign").json().expect("json");
    let campaign = campaign["id"].as_str().expect("id");
    let upload = http
        .post(format!("{base}/api/campaigns/{campaign}/strategies"))
        .bearer_auth(&key)
        .json(&json!({"name": "load", "type": "DATA_LOAD", "source": "async def run(contact, existing_contact, logger, **kwargs):\n    return contact\n"}))
        .send()
        .expect("upload");
    assert_eq!(upload.status().as_u16(), 503);
    let problem: Value = upload.json().expect("problem");
    let detail = problem["detail"].as_str().expect("detail");
    assert!(detail.starts_with("this server cannot build Python strategies now: cannot run `componentize-py`"), "{detail}");
    assert!(detail.contains("stratagem strategy build"), "{detail}");
    let strategies: Value = http.get(format!("{base}/api/campaigns/{campaign}/strategies")).bearer_auth(&key).send().expect("list").json().expect("json");
    assert_eq!(strategies.as_array().map(Vec::len), Some(0), "nothing half-created: {strategies}");

    let page = http.get(format!("{base}/campaigns/{campaign}")).send().expect("ui");
    assert_eq!(page.status().as_u16(), 200);
    assert!(page.text().expect("html").contains("boot.js"), "the built-in UI");
    let _ = serve.kill();
    let _ = serve.wait();
}

/// `--log-format json`: each log line one JSON object, and a request's
/// lines carry its id (the client's own, echoed on the response), its
/// tenant and its campaign.
#[test]
fn works_when_logs_are_json_with_the_request_tenant_and_campaign() {
    let root = tempfile::tempdir().expect("temp dir");
    let (work, data) = (root.path().join("work"), root.path().join("data"));
    std::fs::create_dir_all(&work).expect("work");
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_stratagem"));
    let created = shipped(&binary, &work, &data).args(["tenant", "create", "Logs"]).output().expect("tenant create");
    assert!(created.status.success(), "{}", text(&created));
    let stdout = String::from_utf8_lossy(&created.stdout).into_owned();
    let field = |name: &str| stdout.lines().find_map(|line| line.strip_prefix(name)).expect("printed").trim().to_owned();
    let (tenant, key) = (field("tenant: "), field("api key: "));

    let mut serve = shipped(&binary, &work, &data)
        .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
        .env("STRATAGEM_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve");
    let mut lines = BufReader::new(serve.stderr.take().expect("stderr")).lines();
    let base = loop {
        let line = lines.next().expect("serve prints its address").expect("line");
        if let Some(rest) = line.strip_prefix("stratagem serving on ") {
            break rest.split_whitespace().next().expect("url").to_owned();
        }
    };
    let logged = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let sink = logged.clone();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            sink.lock().expect("lock").push(line);
        }
    });

    let http = reqwest::blocking::Client::new();
    let campaign: Value = http.post(format!("{base}/api/campaigns")).bearer_auth(&key).json(&json!({"name": "Logged"})).send().expect("campaign").json().expect("json");
    let campaign = campaign["id"].as_str().expect("id").to_owned();
    let read = http.get(format!("{base}/api/campaigns/{campaign}")).bearer_auth(&key).header("x-request-id", "req-test-1").send().expect("read");
    assert_eq!(read.status().as_u16(), 200);
    assert_eq!(read.headers()["x-request-id"], "req-test-1", "the client's id comes back");
    let minted = http.get(format!("{base}/healthz")).send().expect("health");
    assert_eq!(minted.headers()["x-request-id"].len(), 32, "a request without one gets one");

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let line = loop {
        let found = logged.lock().expect("lock").iter().find(|line| line.contains("req-test-1")).cloned();
        if let Some(line) = found {
            break line;
        }
        assert!(std::time::Instant::now() < deadline, "no log line of the request: {:?}", logged.lock().expect("lock"));
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let event: Value = serde_json::from_str(&line).unwrap_or_else(|error| panic!("not JSON ({error}): {line}"));
    let span = &event["span"];
    assert_eq!((span["request_id"].as_str(), span["tenant"].as_str(), span["campaign"].as_str()), (Some("req-test-1"), Some(tenant.as_str()), Some(campaign.as_str())), "{line}");
    assert_eq!((span["method"].as_str(), event["fields"]["status"].as_u64()), (Some("GET"), Some(200)), "{line}");
    let _ = serve.kill();
    let _ = serve.wait();
}
