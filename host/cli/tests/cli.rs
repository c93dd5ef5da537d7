//! `stratagem strategy build | run` driven as a user would, on every
//! example of examples/.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn stratagem(args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_stratagem"));
    command.current_dir(repo()).args(args);
    if std::env::var_os("STRATAGEM_COMPONENTIZE_PY").is_none() {
        command.env("STRATAGEM_COMPONENTIZE_PY", repo().join(".venv/bin/componentize-py"));
    }
    if std::env::var_os("STRATAGEM_CACHE_DIR").is_none() {
        command.env("STRATAGEM_CACHE_DIR", Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-artifacts"));
    }
    command.output().expect("stratagem runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs a hook with `--json` and returns the parsed invocation.
fn run_json(args: &[&str]) -> serde_json::Value {
    let mut all = vec!["strategy", "run"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--json", "--now", "2026-11-26T10:00:00Z"]);
    let output = stratagem(&all);
    assert!(output.status.success(), "{}\n{}", text(&output.stdout), text(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("--json prints JSON")
}

#[test]
fn works_when_a_built_component_runs_and_prints_contact_logs_and_usage() {
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("debt_data_load.wasm");
    let build = stratagem(&["strategy", "build", "examples/debt-collection/data_load.py", "-o", out.to_str().expect("utf-8")]);
    assert!(build.status.success(), "{}", text(&build.stderr));
    assert!(text(&build.stderr).starts_with(&format!("built {}", out.display())));

    let run = stratagem(&[
        "strategy", "run", out.to_str().expect("utf-8"), "--hook", "data-load",
        "--contact", "examples/inputs/contact.json", "--now", "2026-11-26T10:00:00Z",
    ]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    let contact: serde_json::Value = serde_json::from_slice(&run.stdout).expect("stdout is the contact");
    assert_eq!(contact["current_stage"], "1. Email reminder");
    assert_eq!(contact["communications"][0]["start_date"], "2026-11-27T09:00:00Z");
    let stderr = text(&run.stderr);
    assert!(stderr.contains("[Info] strategy: planned reminder email for CONTRACT-123 on 2026-11-27"), "{stderr}");
    assert!(stderr.contains("fuel used: ") && stderr.contains("peak memory: ") && stderr.contains("duration: "), "{stderr}");
}

#[test]
fn works_when_every_spec_example_runs() {
    let loaded = run_json(&["examples/spec/data_load.py", "--hook", "data-load", "--contact", "examples/inputs/contact.json"]);
    assert_eq!(loaded["result"]["Ok"]["current_stage"], "First Contact");
    assert!(loaded["usage"]["fuel"].as_u64().expect("fuel") > 0);
    assert!(loaded["usage"]["peak_memory_bytes"].as_u64().expect("memory") > 0);
    assert!(loaded["usage"]["duration_us"].as_u64().expect("duration") > 0);

    let aggregated = run_json(&[
        "examples/spec/aggregation.py", "--hook", "aggregation",
        "--contact", "examples/inputs/contact_in_session.json", "--session-results", "examples/inputs/no_response.json",
    ]);
    assert_eq!(aggregated["result"]["Ok"]["communications"][1]["name"], "Follow-up");

    let answered = run_json(&[
        "examples/spec/contact_answer.py", "--hook", "contact-answer",
        "--contact", "examples/inputs/contact.json", "--message", "examples/inputs/promise_message.json",
    ]);
    assert_eq!(answered["result"]["Ok"]["current_stage"], "Payment Promised");
}

#[test]
fn works_when_every_debt_collection_example_runs() {
    let promised = run_json(&[
        "examples/debt-collection/aggregation.py", "--hook", "aggregation",
        "--contact", "examples/inputs/contact_in_session.json", "--session-results", "examples/inputs/promise_to_pay.json",
    ]);
    assert_eq!(promised["result"]["Ok"]["current_stage"], "3. Payment reminder");
    let answered = run_json(&[
        "examples/debt-collection/contact_answer.py", "--hook", "contact-answer",
        "--contact", "examples/inputs/contact.json", "--message", "examples/inputs/promise_message.json",
    ]);
    assert_eq!(answered["result"]["Ok"]["current_stage"], "Payment Promised");
    let routed = run_json(&["examples/vip-routing", "--hook", "data-load", "--contact", "examples/inputs/contact.json"]);
    assert_eq!(routed["result"]["Ok"]["current_stage"], "1. Email");
}

/// `strategy run` of an `app.py` holding `source`, as DATA_LOAD on the
/// example contact.
fn run_app(source: &str) -> std::process::Output {
    let dir = tempfile::tempdir().expect("temp dir");
    let app = dir.path().join("app.py");
    std::fs::write(&app, source).expect("write");
    stratagem(&["strategy", "run", app.to_str().expect("utf-8"), "--hook", "data-load", "--contact", "examples/inputs/contact.json"])
}

#[test]
fn errors_with_the_traceback_when_the_strategy_raises() {
    let run = run_app("async def run(contact, existing_contact, logger, **kwargs):\n    return contact.parameters['missing']\n");
    assert_eq!(run.status.code(), Some(1));
    let stderr = text(&run.stderr);
    assert!(stderr.contains("Traceback (most recent call last):\n  File \"app.py\", line 2, in run\n    return contact.parameters['missing']\nKeyError: 'missing'"), "{stderr}");
}

#[test]
fn errors_with_line_and_column_when_the_build_fails() {
    let dir = tempfile::tempdir().expect("temp dir");
    let app = dir.path().join("app.py");
    std::fs::write(&app, "async def run(contact, existing_contact, logger, **kwargs)\n    return contact\n").expect("write");
    let build = stratagem(&["strategy", "build", app.to_str().expect("utf-8"), "-o", dir.path().join("x.wasm").to_str().expect("utf-8")]);
    assert_eq!(build.status.code(), Some(2));
    assert!(text(&build.stderr).contains("error: app.py, line 1, column 59: SyntaxError: expected ':'"), "{}", text(&build.stderr));
    assert!(!dir.path().join("x.wasm").exists(), "nothing is written on failure");
}

/// `strategy run` loads sources as the service does, into the platform's
/// component: an exception at top level is reported with its place.
#[test]
fn errors_with_the_place_when_the_top_level_raises_in_a_run() {
    let run = run_app("RATES = {}\nFEE = RATES['eur']\n");
    assert_eq!(run.status.code(), Some(2));
    assert!(text(&run.stderr).contains("error: app.py, line 2: KeyError: 'eur'\n    FEE = RATES['eur']"), "{}", text(&run.stderr));
}

#[test]
fn errors_with_line_and_column_when_the_contact_file_is_malformed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let contact = dir.path().join("contact.json");
    std::fs::write(&contact, "{\n  \"object_id\": \"1\",\n  \"external_id\": \"2\",\n  \"name\": \"Ann\",\n  \"stage\": \"x\"\n}\n").expect("write");
    let run = stratagem(&["strategy", "run", "examples/spec/data_load.py", "--hook", "data-load", "--contact", contact.to_str().expect("utf-8")]);
    assert_eq!(run.status.code(), Some(2));
    let stderr = text(&run.stderr);
    assert!(stderr.contains(&format!("{}, line 5, column 9: unknown field `stage`", contact.display())), "{stderr}");
}

#[test]
fn errors_when_a_hook_input_is_missing() {
    let run = stratagem(&["strategy", "run", "examples/spec/contact_answer.py", "--hook", "contact-answer", "--contact", "examples/inputs/contact.json"]);
    assert_eq!(run.status.code(), Some(2));
    assert!(text(&run.stderr).contains("--hook contact-answer needs --message"), "{}", text(&run.stderr));
}

/// The spec's "Campaign Workflow Example", end to end in virtual time:
/// email, no response, WhatsApp three days later, a promise to pay, a
/// reminder on the promised day, payment.
#[test]
fn works_when_the_debt_collection_workflow_is_simulated() {
    let output = stratagem(&[
        "simulate", "--contacts", "examples/debt-collection/contacts.csv",
        "--data-load", "examples/debt-collection/data_load.py",
        "--aggregation", "examples/debt-collection/aggregation.py",
        "--start", "2026-12-01T08:00:00Z", "--days", "30", "--json",
    ]);
    assert!(output.status.success(), "{}\n{}", text(&output.stdout), text(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("--json prints JSON");
    assert_eq!(report["campaign_status"], "FINISHED", "{report}");
    assert_eq!(report["results"], serde_json::json!({"true": 4, "false": 1}), "{report}");

    let steps: Vec<(String, String, String)> = report["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .filter(|entry| entry["object_id"] == "CONTRACT-1")
        .map(|entry| {
            let field = |name: &str| entry[name].as_str().unwrap_or_default().to_owned();
            (field("start_date"), field("stage"), field("outcome"))
        })
        .collect();
    let expected = [
        ("2026-12-02T09:00:00Z", "1. Email reminder", "NO_RESPONSE"),
        ("2026-12-05T09:00:00Z", "2. WhatsApp follow-up", "PROMISE_TO_PAY"),
        ("2026-12-08T09:00:00Z", "3. Payment reminder", "PAID"),
    ];
    let expected: Vec<(String, String, String)> =
        expected.iter().map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string())).collect();
    assert_eq!(steps, expected, "{report}");
    let nobody: Vec<&serde_json::Value> =
        report["timeline"].as_array().expect("timeline").iter().filter(|entry| entry["object_id"] == "CONTRACT-5").collect();
    assert_eq!(nobody.len(), 3, "three attempts, then unreachable: {report}");
    assert_eq!(report["sends"], 9, "one send per started communication: {report}");
}

/// A `Persona` column is the persona whatever its case, and a bad row is
/// rejected with its line (said once) while the others are simulated.
#[test]
fn works_when_a_simulation_rejects_a_bad_row_and_reads_any_persona_header() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("simulate-rows");
    std::fs::create_dir_all(&dir).expect("dir");
    let contacts = dir.join("contacts.csv");
    std::fs::write(
        &contacts,
        "Object_ID,External_ID,Name,Email,Phone,Persona\n\
         P1,U1,Paula Payer,p@example.com,+1,PAID\n\
         R1,U2,Rex Refuser,r@example.com,+2,REFUSED\n\
         P1,U3,Paula Again,p2@example.com,+3,PAID\n",
    )
    .expect("contacts");
    let run = |extra: &[&str]| {
        let mut args = vec![
            "simulate", "--contacts", contacts.to_str().expect("utf-8"),
            "--data-load", "examples/simulated/data_load.py", "--aggregation", "examples/simulated/aggregation.py",
            "--personas", "NO_RESPONSE=1", "--start", "2026-12-01T08:00:00Z", "--days", "3",
        ];
        args.extend_from_slice(extra);
        stratagem(&args)
    };
    let output = run(&["--json"]);
    assert!(output.status.success(), "{}\n{}", text(&output.stdout), text(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("--json prints JSON");
    let stage = |object_id: &str| {
        report["contacts"].as_array().expect("contacts").iter().find(|c| c["object_id"] == object_id).map(|c| c["current_stage"].clone())
    };
    assert_eq!(stage("P1"), Some(serde_json::json!("Paid")), "the Persona column decided, not the NO_RESPONSE default: {report}");
    assert_eq!(stage("R1"), Some(serde_json::json!("Refused")), "{report}");
    assert_eq!(report["rejected"][0]["line"], 4, "{report}");

    let output = run(&[]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let printed = text(&output.stdout);
    assert!(printed.contains("Rejected row: line 4: object_id P1 already appears on line 2"), "{printed}");
    assert_eq!(printed.matches("line 4").count(), 1, "{printed}");
}

#[test]
fn errors_when_the_simulation_personas_are_malformed() {
    let output = stratagem(&[
        "simulate", "--contacts", "examples/debt-collection/contacts.csv",
        "--data-load", "examples/debt-collection/data_load.py", "--personas", "PAID:20",
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(text(&output.stderr).trim(), "error: --personas `PAID:20`: write each persona as OUTCOME=WEIGHT, e.g. PAID=20");
}

/// A config file sets what neither a flag nor a variable did, and a key
/// that is not a setting is refused with its line.
#[test]
fn works_when_a_config_file_sets_what_flags_and_variables_leave_unset() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("config-file");
    std::fs::create_dir_all(&dir).expect("dir");
    let config = dir.join("stratagem.toml");
    std::fs::write(&config, "# the tool chain\ncomponentize-py = \"/nowhere/componentize-py\"\n").expect("config");
    let out = dir.join("out.wasm");
    let build_with = |extra: &[&str], tool_variable: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_stratagem"));
        command.current_dir(repo()).env_remove("STRATAGEM_COMPONENTIZE_PY").env_remove("STRATAGEM_BUILD_CACHE");
        if let Some(tool) = tool_variable {
            command.env("STRATAGEM_COMPONENTIZE_PY", tool);
        }
        command.args(["strategy", "build", "examples/spec/data_load.py", "-o", out.to_str().expect("utf-8")]);
        command.args(extra).output().expect("stratagem runs")
    };
    let build = |extra: &[&str]| build_with(extra, None);

    let from_file = build(&["--config", config.to_str().expect("utf-8")]);
    assert!(!from_file.status.success());
    assert!(text(&from_file.stderr).contains("/nowhere/componentize-py"), "{}", text(&from_file.stderr));

    let variable_wins = build_with(&["--config", config.to_str().expect("utf-8")], Some("/fromenv/componentize-py"));
    assert!(text(&variable_wins.stderr).contains("/fromenv/componentize-py"), "{}", text(&variable_wins.stderr));

    let flag_wins = build(&["--config", config.to_str().expect("utf-8"), "--componentize-py", "/elsewhere/componentize-py"]);
    assert!(text(&flag_wins.stderr).contains("/elsewhere/componentize-py"), "{}", text(&flag_wins.stderr));

    std::fs::write(&config, "componentize-py = \"/nowhere\"\nbuild-slots = 3\n").expect("config");
    let unknown = build(&["--config", config.to_str().expect("utf-8")]);
    assert_eq!(unknown.status.code(), Some(2));
    let stderr = text(&unknown.stderr);
    assert!(stderr.contains("stratagem.toml, line 2: `build-slots` is not a setting of `build`"), "{stderr}");

    std::fs::write(&config, "componentize-py = \n").expect("config");
    let malformed = build(&["--config", config.to_str().expect("utf-8")]);
    assert!(text(&malformed.stderr).contains("stratagem.toml, line 1, column"), "{}", text(&malformed.stderr));
}

#[test]
fn errors_when_the_config_file_is_missing() {
    let output = stratagem(&["strategy", "build", "examples/spec/data_load.py", "-o", "/tmp/x.wasm", "--config", "/nowhere/stratagem.toml"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("reading the config file /nowhere/stratagem.toml"), "{}", text(&output.stderr));
}
