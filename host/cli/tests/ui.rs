//! The web UI end to end, in a real headless Chromium driven through
//! chromedriver (WebDriver, via fantoccini) against the real `stratagem`
//! binary: sign in, create a campaign, add stages, upload strategies and
//! watch them build, import contacts and read the report, configure and
//! start the campaign, and watch contacts and analytics change; dry-run
//! the campaign over a contact file; read a contact's 360 Results; create an
//! LLM integration (its secret never reaches the page) and an SMTP one,
//! send a stage's email as a test to a local SMTP server, see the Deep
//! Analysis view and the analysis status in Settings; all of it under the
//! UI's Content-Security-Policy, with no violation.
//!
//! Screenshots of each main screen go to `target/ui-screenshots/`.
//! Needs the built UI (`make web`) and Debian's `chromium` and
//! `chromium-driver` (`make test` installs both); the test is skipped,
//! saying so, only when the browser or its driver is not installed.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repo")
}

fn on_path(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    names.iter().find_map(|name| std::env::split_paths(&path).map(|dir| dir.join(name)).find(|p| p.is_file()))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

fn wait_for_port(port: u16, what: &str, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited with {status} before listening");
        }
        assert!(Instant::now() < deadline, "{what} did not listen on port {port}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Kills its process when the test ends, however it ends.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Ui {
    client: Client,
    shots: PathBuf,
}

impl Ui {
    async fn find(&self, css: &str) -> Element {
        self.client.wait().at_most(Duration::from_secs(20)).for_element(Locator::Css(css)).await.unwrap_or_else(|e| panic!("no `{css}`: {e}"))
    }

    async fn click(&self, css: &str) {
        self.find(css).await.click().await.unwrap_or_else(|e| panic!("click `{css}`: {e}"));
    }

    async fn fill(&self, css: &str, text: &str) {
        let element = self.find(css).await;
        element.clear().await.expect("clear");
        element.send_keys(text).await.unwrap_or_else(|e| panic!("type into `{css}`: {e}"));
    }

    async fn select(&self, css: &str, value: &str) {
        self.find(css).await.select_by_value(value).await.unwrap_or_else(|e| panic!("select {value} in `{css}`: {e}"));
    }

    /// Waits until the text of `css` satisfies `ok`; returns it.
    async fn text_until(&self, css: &str, seconds: u64, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let mut last = String::new();
        loop {
            if let Ok(element) = self.client.find(Locator::Css(css)).await {
                if let Ok(text) = element.text().await {
                    if ok(&text) {
                        return text;
                    }
                    last = text;
                }
            }
            if Instant::now() > deadline {
                let _ = self.shot("zz-failure").await;
                panic!("`{css}` never matched after {seconds} s; last text: {last:?}");
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    async fn shot(&self, name: &str) -> std::io::Result<()> {
        let png = self.client.screenshot().await.map_err(std::io::Error::other)?;
        std::fs::write(self.shots.join(format!("{name}.png")), png)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn works_when_a_user_runs_a_campaign_through_the_web_ui() {
    let (Some(driver), Some(browser)) =
        (on_path(&["chromedriver"]), on_path(&["chromium", "chromium-browser", "google-chrome"]))
    else {
        eprintln!("SKIPPED works_when_a_user_runs_a_campaign_through_the_web_ui: chromium and chromedriver are not installed (apt-get install chromium chromium-driver; `make test` does it)");
        return;
    };
    let repo = repo();
    // The binary serves the UI it was built with (`make web` first), as
    // an operator's copy does; STRATAGEM_WEB_DIR still points elsewhere
    // for UI development.
    let web_dir = std::env::var_os("STRATAGEM_WEB_DIR").map(PathBuf::from);
    let componentize = std::env::var_os("STRATAGEM_COMPONENTIZE_PY").map(PathBuf::from).unwrap_or_else(|| repo.join(".venv/bin/componentize-py"));
    assert!(componentize.is_file(), "strategy builds need componentize-py at {}: run `make setup`", componentize.display());
    let shots = repo.join("target/ui-screenshots");
    std::fs::create_dir_all(&shots).expect("screenshot folder");

    // The service, on a fresh data directory with one tenant.
    let data = tempfile::tempdir().expect("data dir");
    let tenant = Command::new(env!("CARGO_BIN_EXE_stratagem"))
        .args(["tenant", "create", "UI tenant"])
        .env("STRATAGEM_DATA_DIR", data.path())
        .output()
        .expect("stratagem tenant create");
    let stdout = String::from_utf8_lossy(&tenant.stdout);
    assert!(tenant.status.success(), "{stdout}{}", String::from_utf8_lossy(&tenant.stderr));
    let key = stdout.lines().find_map(|line| line.strip_prefix("api key: ")).expect("api key line").trim().to_owned();
    assert!(key.starts_with("stg_"), "{stdout}");
    let port = free_port();
    let mut serve = Command::new(env!("CARGO_BIN_EXE_stratagem"));
    // Started from a directory of its own, not the repository.
    serve
        .arg("serve")
        .current_dir(data.path())
        .env("STRATAGEM_DATA_DIR", data.path())
        .env("STRATAGEM_LISTEN", format!("127.0.0.1:{port}"))
        .env_remove("STRATAGEM_WEB_DIR")
        .env("STRATAGEM_COMPONENTIZE_PY", &componentize)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    if let Some(dir) = &web_dir {
        serve.env("STRATAGEM_WEB_DIR", dir);
    }
    let mut server = Guard(serve.spawn().expect("stratagem serve"));
    wait_for_port(port, "stratagem serve", &mut server.0);

    let driver_port = free_port();
    let mut chromedriver = Guard(
        Command::new(driver).arg(format!("--port={driver_port}")).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("chromedriver"),
    );
    wait_for_port(driver_port, "chromedriver", &mut chromedriver.0);
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": browser,
            "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,1400"],
        }),
    );
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{driver_port}"))
        .await
        .expect("a browser session");
    let ui = Ui { client, shots };
    let base = format!("http://127.0.0.1:{port}");
    run(&ui, &base, &key, &repo).await;
    ui.client.close().await.expect("close the browser");
}

/// A minimal SMTP server on 127.0.0.1 that keeps every message it is sent
/// (as in the API tests), but refuses `bounce@example.com` at RCPT with 550.
fn smtp_server() -> (u16, Arc<Mutex<Vec<String>>>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    let received = Arc::new(Mutex::new(Vec::new()));
    let messages = received.clone();
    std::thread::spawn(move || {
        for socket in listener.incoming().flatten() {
            let messages = messages.clone();
            std::thread::spawn(move || {
                let mut write = socket.try_clone().expect("socket");
                let mut data: Option<String> = None;
                write.write_all(b"220 fake ESMTP\r\n").ok();
                for line in BufReader::new(socket).lines().map_while(Result::ok) {
                    if let Some(body) = data.as_mut() {
                        if line == "." {
                            messages.lock().expect("lock").push(data.take().unwrap_or_default());
                            write.write_all(b"250 queued\r\n").ok();
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
                        write.write_all(b"221 bye\r\n").ok();
                        break;
                    } else {
                        b"250 OK\r\n"
                    };
                    write.write_all(reply).ok();
                }
            });
        }
    });
    (port, received)
}

/// Typed into the LLM integration's `api_key`; the page never shows it.
const SECRET: &str = "sk-ui-test-NEVER-SHOWN-4242";

/// Collects every Content-Security-Policy violation of the page from here
/// on (an inline style or script the policy blocks); a reload forgets them.
async fn watch_csp(ui: &Ui) {
    ui.client
        .execute(
            "window.cspViolations = []; document.addEventListener('securitypolicyviolation', \
             e => window.cspViolations.push(e.violatedDirective + ' ' + e.blockedURI)); return true;",
            vec![],
        )
        .await
        .expect("listen for CSP violations");
}

/// The page is no wider than the window, once `screen` has settled (its
/// data fetched and drawn: a second).
async fn assert_no_sideways_scroll(ui: &Ui, screen: &str) {
    tokio::time::sleep(Duration::from_secs(1)).await;
    let measure = "return [document.documentElement.scrollWidth, window.innerWidth];";
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let widths = ui.client.execute(measure, vec![]).await.expect("page widths");
        let (page, window) = (widths[0].as_i64().expect("scroll width"), widths[1].as_i64().expect("window width"));
        if page <= window {
            return;
        }
        if Instant::now() > deadline {
            let _ = ui.shot("zz-sideways").await;
            panic!("after {screen}, the page is {page} px wide in a {window} px window");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn assert_no_csp_violations(ui: &Ui) {
    let violations = ui.client.execute("return window.cspViolations || [];", vec![]).await.expect("CSP violations");
    assert_eq!(violations, serde_json::json!([]), "the Content-Security-Policy blocked something");
}

/// A campaign made through the API: one stage that sends nothing and one
/// contact, without strategies, so nothing ever gives the contact a result
/// and, once started, it runs until someone stops it. Returns its id.
async fn waiting_campaign(base: &str, key: &str) -> String {
    let http = reqwest::Client::new();
    let call = |request: reqwest::RequestBuilder| async move {
        let response = request.bearer_auth(key).send().await.expect("the API answers");
        let status = response.status();
        let body: serde_json::Value = response.json().await.expect("JSON");
        assert!(status.is_success(), "{status}: {body}");
        body
    };
    let campaign = call(http.post(format!("{base}/api/campaigns")).json(&serde_json::json!({"name": "UI stop"}))).await;
    let id = campaign["id"].as_str().expect("id").to_owned();
    let stage = serde_json::json!({"name": "Wait", "channel": "NO_COMMUNICATION"});
    call(http.post(format!("{base}/api/campaigns/{id}/stages")).json(&stage)).await;
    let csv = "object_id,external_id,name,email,phone\nW1,W1,Wendy Waiting,w@example.com,+1\n";
    let job = call(http.post(format!("{base}/api/campaigns/{id}/imports")).header("content-type", "text/csv").body(csv)).await;
    let job = job["id"].as_str().expect("job").to_owned();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = call(http.get(format!("{base}/api/imports/{job}"))).await;
        if status["status"] == "done" {
            assert_eq!(status["accepted"], 1, "{status}");
            return id;
        }
        assert!(Instant::now() < deadline && ["queued", "running"].contains(&status["status"].as_str().unwrap_or_default()), "{status}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The browser's local day `days_back` days ago, as a date input writes it.
async fn browser_day(ui: &Ui, days_back: u32) -> String {
    let script = "const d = new Date(Date.now() - arguments[0] * 86400000); \
                  return d.getFullYear() + '-' + String(d.getMonth() + 1).padStart(2, '0') + '-' + String(d.getDate()).padStart(2, '0');";
    let day = ui.client.execute(script, vec![serde_json::json!(days_back)]).await.expect("the browser's day");
    day.as_str().expect("a day").to_owned()
}

/// The text of every element `css` matches (SVG text too), once `ok`
/// accepts them.
async fn svg_texts(ui: &Ui, css: &str, ok: impl Fn(&[String]) -> bool) -> Vec<String> {
    let script = "return Array.from(document.querySelectorAll(arguments[0])).map(e => e.textContent);";
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let found = ui.client.execute(script, vec![serde_json::json!(css)]).await.expect("texts");
        let texts: Vec<String> = serde_json::from_value(found).expect("strings");
        if ok(&texts) {
            return texts;
        }
        if Instant::now() > deadline {
            let _ = ui.shot("zz-failure").await;
            panic!("`{css}` never matched; last texts: {texts:?}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Each analytics chart is drawn at the width it is shown at, so its text
/// is the page's size, neither shrunk nor blown up.
async fn assert_chart_at_page_scale(ui: &Ui) {
    let script = "return Array.from(document.querySelectorAll('#analytics svg.bars')) \
                  .map(s => s.getBoundingClientRect().width / s.viewBox.baseVal.width);";
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let scales: Vec<f64> = serde_json::from_value(ui.client.execute(script, vec![]).await.expect("scales")).expect("numbers");
        if scales.len() == 3 && scales.iter().all(|scale| (0.9..=1.1).contains(scale)) {
            return;
        }
        assert!(Instant::now() < deadline, "the charts are drawn at {scales:?} of their size");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn run(ui: &Ui, base: &str, key: &str, repo: &Path) {
    let (smtp_port, smtp_received) = smtp_server();
    // Sign in: a wrong key says so in words (no HTTP status on screen).
    ui.client.goto(base).await.expect("open the UI");
    ui.fill("#api-key", "stg_wrong").await;
    ui.click("#sign-in").await;
    ui.text_until(".problem", 20, |t| t.contains("a valid API key is required") && !t.contains("401")).await;
    ui.shot("01-sign-in-error").await.expect("shot");
    ui.fill("#api-key", key).await;
    ui.click("#sign-in").await;
    ui.text_until("#campaign-list", 20, |t| t.contains("No running campaigns")).await;
    // A new tenant is shown what to do first.
    ui.text_until("#getting-started", 20, |t| t.contains("Connect a channel") && !t.contains("done")).await;
    // The app booted under the Content-Security-Policy; from here on, any
    // violation (an inline style or script the policy blocks) is collected.
    watch_csp(ui).await;

    // Integrations: an LLM endpoint. Its missing setting is named under the
    // input; its secret is write-only and never comes back to the page.
    ui.click("#nav-integrations").await;
    ui.text_until("#integration-list", 20, |t| t.contains("No integrations yet")).await;
    ui.click("#new-integration").await;
    ui.select("#integration-kind", "LLM").await;
    ui.fill("#integration-name", "Local LLM").await;
    ui.fill("#integration-secret-api_key", SECRET).await;
    ui.click("#save-integration").await;
    ui.text_until("#integration-form label:has(#integration-setting-api_base_url) .field-error", 20, |t| t.contains("is required for LLM")).await;
    // The form's summary names the field in words, not by its JSON path.
    ui.text_until("#integration-form .problem .field-errors", 20, |t| t.contains("API base URL: ") && !t.contains("settings.")).await;
    ui.fill("#integration-setting-api_base_url", "http://127.0.0.1:9/v1").await;
    ui.fill("#integration-setting-default_model", "test-model").await;
    ui.click("#save-integration").await;
    ui.text_until("#integration-list", 20, |t| t.contains("Local LLM")).await;
    ui.text_until("#integration-secrets", 20, |t| t.contains("set") && !t.contains("not set")).await;
    let typed = ui.find("#integration-secret-api_key").await.prop("value").await.expect("value").unwrap_or_default();
    assert_eq!(typed, "", "the secret input is empty once saved");
    let page = ui.client.source().await.expect("page source");
    assert!(!page.contains(SECRET), "the secret value appears in the page");
    assert!(ui.client.find(Locator::Css("#integration-webhook")).await.is_err(), "an LLM endpoint calls no webhooks");
    // A chat provider's integration shows the webhook URL to register.
    ui.click("#new-integration").await;
    ui.select("#integration-kind", "TELEGRAM").await;
    ui.fill("#integration-name", "Support bot").await;
    ui.fill("#integration-secret-bot_token", "1:A").await;
    ui.click("#save-integration").await;
    ui.text_until("#integration-list", 20, |t| t.contains("Support bot")).await;
    ui.text_until("#integration-webhook", 20, |t| t.contains("register it in the provider's console") && t.contains("/webhooks/int_")).await;
    ui.shot("01b-integrations").await.expect("shot");
    // An SMTP server of the tenant's, for email stages (a local one here).
    ui.click("#new-integration").await;
    ui.select("#integration-kind", "SMTP").await;
    ui.fill("#integration-name", "Local mail").await;
    ui.fill("#integration-setting-host", "127.0.0.1").await;
    ui.fill("#integration-setting-port", &smtp_port.to_string()).await;
    ui.fill("#integration-setting-from_address", "billing@example.com").await;
    ui.select("#integration-setting-tls", "none").await;
    ui.click("#save-integration").await;
    ui.text_until("#integration-list", 20, |t| t.contains("Local mail")).await;
    ui.click("#nav-campaigns").await;
    ui.text_until("#campaign-list", 20, |t| t.contains("No running campaigns")).await;
    ui.text_until("#start-integration", 20, |t| t.contains("✓ done")).await;
    ui.text_until("#start-campaign", 20, |t| !t.contains("done")).await;

    // A campaign, selected with its status.
    ui.click("#new-campaign").await;
    ui.fill("#campaign-name", "UI collections").await;
    ui.fill("#campaign-description", "Driven by the end-to-end test").await;
    ui.click("#create-campaign").await;
    ui.text_until("#campaign-title", 20, |t| t == "UI collections").await;
    ui.text_until("#campaign-status", 20, |t| t == "CREATED").await;
    // What it needs before it can run, from the service.
    ui.text_until("#readiness", 20, |t| t.contains("has no stage") && t.contains("has no contacts")).await;
    // Only the moves its status allows are offered: a CREATED campaign is
    // configured, not started or stopped.
    ui.text_until("#campaign-actions", 20, |t| t == "Configure").await;
    ui.shot("02-campaigns").await.expect("shot");

    // Stages: the email form shows its own fields and a live preview;
    // the saved stages are SIMULATED.
    ui.click("#tab-stages").await;
    ui.click("#add-stage").await;
    ui.fill("#stage-name", "1. First contact").await;
    ui.select("#stage-channel", "EMAIL_NOTIFICATION").await;
    ui.find("#setting-email_subject").await;
    ui.click("#setting-email_template-html").await;
    ui.fill("#setting-email_subject", "Hi {{name}}").await;
    ui.fill("#setting-email_template", "<h1>Hello {name}</h1><p>Your balance is due.</p>").await;
    // The service renders the preview, for a sample contact until one is chosen.
    ui.text_until("#setting-email_template-preview", 20, |t| t.contains("Hi John Smith")).await;
    ui.shot("03-stage-form-email").await.expect("shot");
    ui.select("#stage-channel", "SIMULATED").await;
    ui.click("#save-stage").await;
    ui.text_until("#stage-table", 20, |t| t.contains("1. First contact")).await;
    ui.click("#add-stage").await;
    ui.fill("#stage-name", "2. Retry").await;
    ui.select("#stage-channel", "SIMULATED").await;
    ui.click("#save-stage").await;
    ui.text_until("#stage-table", 20, |t| t.contains("2. Retry")).await;
    ui.shot("04-stages").await.expect("shot");

    // Strategies: uploaded as files, built in the background, polled to ready.
    ui.click("#tab-strategies").await;
    for (file, kind) in [("data_load.py", "DATA_LOAD"), ("aggregation.py", "AGGREGATION")] {
        ui.fill("#strategy-name", file.trim_end_matches(".py")).await;
        ui.select("#strategy-type", kind).await;
        let path = repo.join("examples/simulated").join(file);
        ui.find("#strategy-file").await.send_keys(path.to_str().expect("utf-8")).await.expect("choose the file");
        ui.text_until("#strategy-source", 20, |_| true).await;
        let deadline = Instant::now() + Duration::from_secs(10);
        while ui.find("#strategy-source").await.prop("value").await.ok().flatten().unwrap_or_default().is_empty() {
            assert!(Instant::now() < deadline, "the chosen file was not read");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        ui.click("#upload-strategy").await;
        ui.text_until("#strategy-editor h4", 20, |t| t.contains(kind)).await;
        // Sources load into the platform's component: ready in
        // milliseconds once this server has prepared it, in seconds if it
        // is still doing so (the badge then shows the phase and the time:
        // the API's builds tests cover the phases).
        ui.text_until("#strategy-build-status", 300, |t| t == "ready").await;
    }
    ui.text_until("#strategy-table", 20, |t| t.matches("ready").count() == 2).await;
    // The running version's invocations, none yet.
    ui.text_until("#version-invocations", 20, |t| t.contains("Runs: 0") && t.contains("No strategy has run")).await;
    ui.shot("05-strategies").await.expect("shot");
    // Pasted code that does not build: the editor marks the error line.
    ui.fill("#strategy-name", "broken").await;
    ui.select("#strategy-type", "CONTACT_ANSWER").await;
    ui.fill("#strategy-source", "async def on_agent_answer(contact, message, **kwargs):\n    return contact +\n").await;
    ui.click("#upload-strategy").await;
    ui.text_until("#strategy-editor h4", 20, |t| t.starts_with("broken")).await;
    ui.text_until("#strategy-build-status", 300, |t| t == "failed").await;
    ui.text_until("#build-error", 20, |t| t.contains("line 2") && t.contains("SyntaxError")).await;
    let marked = ui.find("#strategy-editor .error-line").await.text().await.expect("error line");
    assert!(marked.contains("return contact +"), "{marked:?}");
    ui.shot("05b-strategy-build-error").await.expect("shot");
    // Deleting asks first, naming the strategy; Cancel keeps it.
    let broken_row = || async {
        for row in ui.client.find_all(Locator::Css("#strategy-table tbody tr")).await.expect("rows") {
            if row.text().await.unwrap_or_default().starts_with("broken") {
                return row;
            }
        }
        panic!("no row of the strategy `broken`");
    };
    broken_row().await.find(Locator::Css("button.danger")).await.expect("delete").click().await.expect("delete");
    ui.text_until("#strategy-table .confirm-question", 20, |t| t.contains("Delete strategy “broken” and all its versions?")).await;
    ui.click("#strategy-table .confirm-no").await;
    ui.text_until("#strategy-table", 20, |t| t.contains("broken") && !t.contains("all its versions?")).await;
    broken_row().await.find(Locator::Css("button.danger")).await.expect("delete").click().await.expect("delete");
    ui.click("#strategy-table .confirm-yes").await;
    ui.text_until("#strategy-table", 20, |t| !t.contains("broken")).await;

    // Contacts: a CSV with one broken row; the report names its line.
    ui.click("#tab-contacts").await;
    let past = (chrono::Utc::now() - chrono::Duration::hours(5)).format("%Y-%m-%dT%H:%M:%S");
    // Rex's first send fails (his persona says so); he is retried and refuses.
    let csv = format!(
        "object_id,external_id,name,email,phone,persona,contact_after\n\
         P1,U1,Paula Payer,p@example.com,+100,paid,\n\
         R1,U2,Rex Refuser,r@example.com,+200,failed>refused,\n\
         B1,U3,Broken row\n\
         M1,U4,Max Missed,m@example.com,+400,paid,{past}\n"
    );
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("contacts.csv");
    std::fs::write(&file, csv).expect("csv");
    ui.find("#contacts-file").await.send_keys(file.to_str().expect("utf-8")).await.expect("choose the file");
    ui.find("#import-report.import-done").await;
    let report = ui.text_until("#import-report", 20, |t| t.contains("Accepted: 3")).await;
    assert!(report.contains("Rejected: 1") && report.contains("line 4"), "{report}");
    ui.text_until("#contact-table", 20, |t| t.contains("Paula Payer") && t.contains("1. First contact")).await;
    ui.text_until("#contact-range", 20, |t| t == "1–3 of 3").await;
    ui.shot("06-contacts-import").await.expect("shot");

    // An email previewed as one of the campaign's contacts gets it.
    ui.click("#tab-stages").await;
    ui.click("#add-stage").await;
    ui.select("#stage-channel", "EMAIL_NOTIFICATION").await;
    ui.fill("#setting-email_subject", "Hi {{name}}").await;
    ui.fill("#setting-email_template", "Your balance, {{name}}").await;
    ui.text_until("#setting-email_template-preview-contact", 20, |t| t.contains("Paula Payer (P1)")).await;
    ui.select("#setting-email_template-preview-contact", "P1").await;
    ui.text_until("#setting-email_template-preview", 20, |t| t.contains("Hi Paula Payer")).await;
    // The Default editor formats in place; the service sends its HTML
    // sanitized, and the preview shows it.
    ui.client
        .execute("const e = document.getElementById('setting-email_template'); e.focus(); document.execCommand('selectAll'); return true;", vec![])
        .await
        .expect("select the text");
    ui.click("#setting-email_template-bold").await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let srcdoc = ui.find("#setting-email_template-preview iframe").await.attr("srcdoc").await.expect("srcdoc").unwrap_or_default();
        if srcdoc.contains("<b>Your balance, Paula Payer</b>") {
            break;
        }
        assert!(Instant::now() < deadline, "the preview never showed the bold text: {srcdoc}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The same email, sent as a test to an address through the stage's
    // SMTP integration: it arrives as previewed; a refused address is said
    // in words, never as sent.
    ui.text_until("#setting-integration_id", 20, |t| t.contains("Local mail")).await;
    ui.find("#setting-integration_id").await.select_by_index(1).await.expect("choose the SMTP integration");
    ui.fill("#setting-email_template-test-address", "bounce@example.com").await;
    ui.click("#setting-email_template-test-send").await;
    let refused = ui.text_until("#setting-email_template-test-result", 30, |t| t.contains("refused the recipient bounce@example.com")).await;
    assert!(refused.contains("Check the address") && !refused.contains("Sent to") && !refused.contains("422"), "{refused}");
    ui.fill("#setting-email_template-test-address", "paula.tester@example.com").await;
    ui.click("#setting-email_template-test-send").await;
    ui.text_until("#setting-email_template-test-result", 30, |t| t.contains("Sent to paula.tester@example.com")).await;
    ui.shot("06b-stage-test-email").await.expect("shot");
    {
        let messages = smtp_received.lock().expect("lock");
        assert_eq!(messages.len(), 1, "only the accepted test email: {messages:?}");
        // The HTML part may be quoted-printable: its soft line breaks joined.
        let html = messages[0].replace("=\n", "");
        assert!(messages[0].contains("Subject: Hi Paula Payer") && html.contains("<b>Your balance, Paula Payer</b>"), "{}", messages[0]);
    }
    ui.click("#tab-contacts").await;

    // Configure and start; the engine runs the contacts to their results.
    ui.click("#action-configure").await;
    ui.text_until("#campaign-status", 20, |t| t == "CONFIGURED").await;
    ui.text_until("#campaign-actions", 20, |t| t.contains("Start") && t.contains("Back to setup") && !t.contains("Stop")).await;
    // Under the Running filter the configured campaign is not listed; once
    // it has run and finished it stays listed beside its panel (the list
    // shows All).
    ui.click("#filter-running").await;
    ui.text_until("#campaign-list", 20, |t| !t.contains("UI collections")).await;
    let started_on = browser_day(ui, 0).await;
    ui.click("#action-start").await;
    ui.text_until("#campaign-status", 20, |t| t == "RUNNING" || t == "FINISHED").await;
    ui.text_until("#contact-table", 240, |t| t.contains("Paid") && t.contains("Refused")).await;
    ui.text_until("#campaign-status", 240, |t| t == "FINISHED").await;
    ui.text_until("#campaign-list", 20, |t| t.contains("UI collections")).await;
    ui.find("#filter-all.active").await;
    ui.shot("07-contacts-after-run").await.expect("shot");

    // A dry run of the campaign over a small file: a bad row is answered
    // with its line; a good file gives the outcomes and the timeline.
    let bad = dir.path().join("dry-run-bad.csv");
    std::fs::write(&bad, "object_id,external_id,name,email,phone,persona\nD1,V1,Dora Dry,d@example.com,+500,paid\nB1,V2,Broken row\n").expect("csv");
    ui.find("#dry-run-file").await.send_keys(bad.to_str().expect("utf-8")).await.expect("choose the file");
    ui.click("#dry-run-start").await;
    // The bad row is reported with its line, as an import does; the good one is simulated.
    ui.text_until("#dry-run-rejected", 120, |t| t.contains("line 3")).await;
    ui.text_until("#dry-run-timeline", 20, |t| t.contains("D1")).await;
    let good = dir.path().join("dry-run.csv");
    std::fs::write(&good, "object_id,external_id,name,email,phone,persona\nD1,V1,Dora Dry,d@example.com,+500,paid\nD2,V2,Dan Dry,e@example.com,+600,refused\n").expect("csv");
    ui.find("#dry-run-file").await.send_keys(good.to_str().expect("utf-8")).await.expect("choose the file");
    ui.fill("#dry-run-days", "10").await;
    ui.click("#dry-run-start").await;
    ui.text_until("#dry-run-timeline", 240, |t| t.contains("D1") && t.contains("D2")).await;
    let outcomes = ui.text_until("#dry-run-results", 20, |t| t.contains("Success")).await;
    assert!(outcomes.contains("Failure"), "{outcomes}");
    ui.text_until("#dry-run-stages", 20, |t| t.contains("Paid") && t.contains("Refused")).await;
    ui.client.execute("document.getElementById('dry-run').scrollIntoView(); return true;", vec![]).await.expect("scroll");
    ui.shot("07b-dry-run").await.expect("shot");
    // Nothing of the campaign changed.
    ui.text_until("#contact-range", 20, |t| t == "1–3 of 3").await;
    // Contacts are searched as the name is typed, without pressing Enter.
    ui.fill("#contact-search", "Max").await;
    ui.text_until("#contact-range", 20, |t| t == "1–1 of 1").await;
    ui.text_until("#contact-table", 20, |t| t.contains("Max Missed")).await;
    ui.fill("#contact-search", "").await;
    ui.text_until("#contact-range", 20, |t| t == "1–3 of 3").await;

    // Max's first window had passed: MISSED, then retried.
    let rows = ui.client.find_all(Locator::Css("#contact-table tbody tr")).await.expect("rows");
    let mut opened = false;
    for row in rows {
        if row.text().await.unwrap_or_default().contains("Max Missed") {
            row.find(Locator::Css("button.count")).await.expect("count").click().await.expect("open history");
            opened = true;
        }
    }
    assert!(opened, "Max's row is listed");
    ui.text_until("#history", 20, |t| t.contains("MISSED") && t.contains("COMPLETED")).await;
    ui.find("#history tr.comm.status-MISSED").await;
    ui.text_until("#contact-results", 20, |t| t.contains("ResultFlag") && t.contains("ResultDatetime")).await;
    // Which strategy ran when, and how it went; each opens to its log.
    ui.text_until("#history .invocations", 20, |t| t.contains("DATA_LOAD") && t.contains("AGGREGATION") && t.contains("fuel")).await;
    ui.shot("08-communication-history").await.expect("shot");

    // The history has its own URL: reloading it shows the same screen.
    let url = ui.client.current_url().await.expect("url");
    assert!(url.path().starts_with("/campaigns/") && url.path().ends_with("/contacts/M1"), "{url}");
    assert_no_csp_violations(ui).await;
    ui.client.refresh().await.expect("reload the history");
    watch_csp(ui).await;
    ui.text_until("#history", 30, |t| t.contains("MISSED") && t.contains("COMPLETED")).await;
    ui.text_until("#campaign-title", 20, |t| t == "UI collections").await;
    ui.find("#tab-contacts.active").await;

    // Analytics: the overview and the charts, or the API's own error where
    // this build has no analytics endpoints.
    ui.click("#tab-analytics").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let total = match ui.client.find(Locator::Css("#tile-total .value")).await {
            Ok(tile) => tile.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        let problem = match ui.client.find(Locator::Css("#overview-problem .problem")).await {
            Ok(problem) => problem.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if total == "3" || !problem.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "analytics showed neither the overview nor the API's error: {total:?} {problem:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    ui.shot("09-analytics").await.expect("shot");
    // The charts cover the campaign's own span: from the day it started
    // (not 29 days back) to today, in days. Their axes say what they count
    // and in which buckets; each bar shows its total, each segment its
    // count; the failure chart counts Rex's failed first contact.
    let today = browser_day(ui, 0).await;
    let from = ui.find("#analytics-from").await.prop("value").await.expect("from").unwrap_or_default();
    assert!(from == started_on || from == today, "the default From is the day the campaign started ({started_on}), not {from:?}");
    assert_ne!(from, browser_day(ui, 29).await);
    let to = ui.find("#analytics-to").await.prop("value").await.expect("to").unwrap_or_default();
    assert_eq!(to, today, "the last bucket is today");
    assert_eq!(ui.find("#analytics-period").await.prop("value").await.expect("period").as_deref(), Some("day"));
    assert_eq!(svg_texts(ui, "#chart-stage .y-title", |t| !t.is_empty()).await, ["Communications"]);
    let x_title = svg_texts(ui, "#chart-stage .x-title", |t| !t.is_empty()).await;
    assert!(x_title[0].starts_with("Day, 20"), "{x_title:?}");
    // Today's bar: Paula's and Rex's first contacts, Rex's and Max's
    // retries, and Max's missed first contact unless it was yesterday.
    let totals = svg_texts(ui, "#chart-stage .bar-total", |t| !t.is_empty()).await;
    let sum: i64 = totals.iter().map(|t| t.parse::<i64>().expect("a number")).sum();
    assert!(sum == 5 || sum == 4, "{totals:?}");
    assert!(!svg_texts(ui, "#chart-stage .segment-value", |t| !t.is_empty()).await.is_empty());
    ui.text_until("#chart-status .legends", 20, |t| t.contains("FAILED 1") && t.contains("COMPLETED")).await;
    assert_eq!(svg_texts(ui, "#chart-failure .y-title", |t| !t.is_empty()).await, ["Failed deliveries"]);
    assert_eq!(svg_texts(ui, "#chart-failure .bar-total", |t| !t.is_empty()).await, ["1"]);
    ui.text_until("#chart-failure .legends", 20, |t| t.contains("1. First contact 1")).await;
    assert_chart_at_page_scale(ui).await;
    ui.client.execute("document.getElementById('chart-stage').scrollIntoView(); return true;", vec![]).await.expect("scroll");
    ui.shot("09c-analytics-charts").await.expect("shot");
    // The bucket size is the user's to change: weeks, labelled as weeks.
    ui.select("#analytics-period", "week").await;
    svg_texts(ui, "#chart-stage .x-title", |t| t.len() == 1 && t[0].starts_with("Week (Monday to Sunday)")).await;
    svg_texts(ui, "#chart-failure .x-tick", |t| t.len() == 1 && t[0].contains('–')).await;
    // Back returns to the history the tab was left from; Forward to the analytics.
    ui.client.back().await.expect("back");
    ui.text_until("#history", 20, |t| t.contains("MISSED")).await;
    assert!(ui.client.current_url().await.expect("url").path().ends_with("/contacts/M1"));
    ui.client.forward().await.expect("forward");
    ui.find("#tile-total, #overview-problem").await;

    // Deep Analysis of the panel: no YAML yet, so no run and no metrics.
    ui.click("#view-deep-analysis").await;
    ui.find("#deep-analysis #analysis-run").await;
    ui.shot("09b-deep-analysis").await.expect("shot");
    ui.click("#back-to-overview").await;
    ui.find("#tile-total, #overview-problem").await;

    // Settings: the LLM integration and model, a YAML analytics file with
    // the status of its analysis, result fields.
    ui.click("#tab-settings").await;
    let option = ui.find("#llm-integration option:nth-child(2)").await;
    assert_eq!(option.text().await.expect("option"), "Local LLM");
    ui.find("#llm-integration").await.select_by_index(1).await.expect("choose the LLM integration");
    ui.fill("#llm-model", "gpt-4o-mini").await;
    ui.click("#save-llm").await;
    ui.text_until("#settings", 20, |t| t.contains("Saved at")).await;
    let yaml = repo.join("examples/analytics/debt-collection.yaml");
    ui.find("#yaml-file").await.send_keys(yaml.to_str().expect("utf-8")).await.expect("choose the YAML");
    ui.text_until("#yaml-analytics", 20, |t| t.contains("metrics")).await;
    ui.text_until("#yaml-schedule", 20, |t| t.contains("every 60 min")).await;
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "depth_days: many\nmetrics: 3\n").expect("yaml");
    ui.find("#yaml-file").await.send_keys(bad.to_str().expect("utf-8")).await.expect("choose the YAML");
    ui.text_until("#yaml-problem", 20, |t| t.contains("line 1") && !t.contains("422")).await;
    // The latest run, or none; the test does not wait for an LLM.
    ui.find("#analysis-recalculate").await;
    ui.find("#analysis-status, #analysis-none").await;
    ui.client.execute("document.getElementById('yaml-analytics').scrollIntoView(); return true;", vec![]).await.expect("scroll");
    ui.shot("10a-settings-analysis").await.expect("shot");
    ui.click("#add-result").await;
    ui.fill("#result-fields tbody tr:last-child td:nth-child(1) input", "OutcomeStatus").await;
    ui.fill("#result-fields tbody tr:last-child td:nth-child(2) input", "Outcome").await;
    ui.click("#save-results").await;
    ui.text_until("#settings", 20, |t| t.contains("Saved at")).await;
    // External APIs: a URL is refused with what to write instead, a host is kept.
    ui.fill("#http-allowlist", "https://api.example-crm.com/v2/contacts").await;
    ui.click("#save-hosts").await;
    ui.text_until("#settings", 20, |t| t.contains("is a URL; write its host only: api.example-crm.com")).await;
    ui.fill("#http-allowlist", "api.example-crm.com").await;
    ui.click("#save-hosts").await;
    ui.text_until("#settings", 20, |t| !t.contains("is a URL") && t.matches("Saved at").count() == 2).await;
    ui.shot("10-settings").await.expect("shot");

    // AI agents: RUNNING by default; a new one is listed.
    ui.click("#nav-agents").await;
    ui.text_until("#agent-list", 20, |t| t.contains("No running agents")).await;
    ui.click("#new-agent").await;
    // Push notifications go through FCM: the tenant's LLM and Telegram
    // integrations are not offered for them (given a second to load).
    tokio::time::sleep(Duration::from_secs(1)).await;
    let push_options = ui.client.find_all(Locator::Css("#agent-push option")).await.expect("push options");
    assert_eq!(push_options.len(), 1, "only “none”: the tenant has no FCM integration");
    ui.fill("#agent-name", "Collector").await;
    ui.click("#save-agent").await;
    ui.text_until("#agent-list", 20, |t| t.contains("Collector")).await;
    ui.shot("11-agents").await.expect("shot");

    // Stopping asks first, naming the campaign; Cancel keeps it running.
    // This campaign has a contact but no strategy to give it a result, so
    // it stays RUNNING until it is stopped.
    let waiting = waiting_campaign(base, key).await;
    ui.click("#nav-campaigns").await;
    ui.click("#filter-all").await;
    ui.text_until("#campaign-list", 20, |t| t.contains("UI stop")).await;
    for entry in ui.client.find_all(Locator::Css("#campaign-list li")).await.expect("campaigns") {
        if entry.text().await.unwrap_or_default().contains("UI stop") {
            entry.click().await.expect("open the campaign");
            break;
        }
    }
    ui.text_until("#campaign-title", 20, |t| t == "UI stop").await;
    assert!(ui.client.current_url().await.expect("url").path().contains(&waiting), "the campaign's own URL");
    ui.click("#action-configure").await;
    ui.text_until("#campaign-status", 20, |t| t == "CONFIGURED").await;
    ui.click("#action-start").await;
    ui.text_until("#campaign-status", 20, |t| t == "RUNNING").await;
    ui.text_until("#campaign-actions", 20, |t| t.contains("Stop") && t.contains("Finish") && !t.contains("Start")).await;
    ui.click("#action-stop").await;
    ui.text_until("#campaign-actions .confirm-question", 20, |t| t.contains("UI stop")).await;
    ui.shot("11b-stop-confirmation").await.expect("shot");
    ui.click("#campaign-actions .confirm-no").await;
    ui.text_until("#campaign-actions", 20, |t| !t.contains("UI stop")).await;
    ui.text_until("#campaign-status", 20, |t| t == "RUNNING").await;
    ui.click("#action-stop").await;
    ui.click("#campaign-actions .confirm-yes").await;
    ui.text_until("#campaign-status", 20, |t| t == "STOPPED").await;
    // Stopped, it can resume or finish; finishing asks too.
    ui.text_until("#campaign-actions", 20, |t| t.contains("Resume") && t.contains("Finish") && !t.contains("Stop")).await;
    ui.click("#action-finish").await;
    ui.text_until("#campaign-actions .confirm-question", 20, |t| t.contains("UI stop")).await;
    ui.click("#campaign-actions .confirm-yes").await;
    ui.text_until("#campaign-status", 20, |t| t == "FINISHED").await;
    ui.text_until("#campaign-actions", 20, |t| t.is_empty()).await;

    // Phone width: the campaigns section stacks and stays usable.
    ui.click("#nav-campaigns").await;
    ui.click("#filter-all").await;
    ui.text_until("#campaign-list", 20, |t| t.contains("UI collections")).await;
    ui.client.set_window_size(390, 844).await.expect("phone width");
    ui.click("#campaign-list li").await;
    ui.text_until("#campaign-status", 20, |t| t == "FINISHED").await;
    ui.text_until("#campaign-actions", 20, |t| t.is_empty()).await;
    ui.shot("12-phone-campaign").await.expect("shot");
    // The charts fit the phone's width, their text as large as the page's.
    for entry in ui.client.find_all(Locator::Css("#campaign-list li")).await.expect("campaigns") {
        if entry.text().await.unwrap_or_default().contains("UI collections") {
            entry.click().await.expect("open the campaign");
            break;
        }
    }
    ui.text_until("#campaign-title", 20, |t| t == "UI collections").await;
    ui.click("#tab-analytics").await;
    assert_eq!(svg_texts(ui, "#chart-failure .bar-total", |t| !t.is_empty()).await, ["1"]);
    assert_chart_at_page_scale(ui).await;
    ui.client.execute("document.getElementById('chart-stage').scrollIntoView(); return true;", vec![]).await.expect("scroll");
    ui.shot("12b-phone-analytics").await.expect("shot");
    // A month of days still fits: thinner bars, fewer dates on the axis.
    let month_ago = browser_day(ui, 30).await;
    let set_from = "const input = document.getElementById('analytics-from'); input.value = arguments[0]; \
                    input.dispatchEvent(new Event('change', { bubbles: true })); return true;";
    ui.client.execute(set_from, vec![serde_json::json!(month_ago)]).await.expect("choose From");
    let ticks = svg_texts(ui, "#chart-stage .x-tick", |t| t.len() > 2).await;
    assert!(ticks.len() < 31, "every date would overlap at phone width: {ticks:?}");
    assert_eq!(svg_texts(ui, "#chart-failure .bar-total", |t| !t.is_empty()).await, ["1"], "a thin bar still shows its total");
    assert_no_sideways_scroll(ui, "a month of days on the analytics tab").await;
    assert_chart_at_page_scale(ui).await;
    ui.shot("12c-phone-analytics-month").await.expect("shot");
    // No main screen scrolls sideways at phone width: wide tables scroll
    // inside their box.
    for tab in ["#tab-analytics", "#tab-stages", "#tab-strategies", "#tab-contacts", "#tab-settings"] {
        ui.click(tab).await;
        assert_no_sideways_scroll(ui, tab).await;
    }
    for section in ["#nav-integrations", "#nav-agents", "#nav-campaigns"] {
        ui.click(section).await;
        assert_no_sideways_scroll(ui, section).await;
    }
    ui.client.set_window_size(1280, 1400).await.expect("desktop width");

    assert_no_csp_violations(ui).await;

    // Signing out forgets the key.
    ui.click("#sign-out").await;
    ui.find("#api-key").await;
    ui.client.refresh().await.expect("reload");
    ui.find("#api-key").await;
}
