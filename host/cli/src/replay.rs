//! `stratagem strategy replay`: fetch a kept invocation from a server and
//! run it again here, with the time it saw and the limits it ran under.
//! Unchanged, it says whether the result is reproduced; with `--source`,
//! how the edited strategy's returned contact differs.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::Args;
use serde_json::Value;
use stratagem_domain::invocation::InvocationDetail;
use stratagem_domain::CampaignContext;
use stratagem_runtime::{Hook, HttpPolicy, Invocation, InvokeOptions, Isolation, Limits, StrategySource, VirtualClock};

use crate::config::Toolchain;
use crate::strategy::{load_source, local_runtime};

#[derive(Args)]
pub struct ReplayArgs {
    /// The invocation's id (`inv_…`: in the contact's history, the import
    /// report, or the strategy version's invocations).
    invocation: String,
    /// The server that kept it.
    #[arg(long, env = "STRATAGEM_SERVER", default_value = "http://127.0.0.1:8080")]
    server: String,
    /// An API key of the invocation's tenant.
    #[arg(long, env = "STRATAGEM_API_KEY", hide_env_values = true)]
    api_key: String,
    /// Run this Python (a .py file, or a directory with main.py) instead of
    /// the version that ran, and show how its result differs.
    #[arg(long)]
    source: Option<PathBuf>,
    /// Host the strategy may call over HTTP; repeatable.
    #[arg(long = "allow-host")]
    allow_hosts: Vec<String>,
    /// Let the strategy reach private and local addresses.
    #[arg(long, env = "STRATAGEM_ALLOW_PRIVATE_ENDPOINTS", action = clap::ArgAction::SetTrue, value_parser = clap::builder::BoolishValueParser::new())]
    allow_private_endpoints: bool,
    /// Where compiled artifacts are cached.
    #[arg(long, env = "STRATAGEM_CACHE_DIR", default_value = ".stratagem/cache")]
    cache_dir: PathBuf,
    #[command(flatten)]
    toolchain: Toolchain,
}

pub async fn replay(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let kept = fetch(&args).await?;
    let record = &kept.record;
    let Some(input) = kept.input.clone() else {
        bail!(
            "invocation {} kept no input: the service keeps it for every failed invocation and one successful one in {}; replay a failed one, or one marked replayable",
            record.id,
            stratagem_engine::invocations::SAMPLE_EVERY
        );
    };
    let campaign: CampaignContext = serde_json::from_value(input.get("campaign").cloned().unwrap_or_default())
        .context("the kept input's campaign cannot be read")?;
    let hook = Hook::from_input(record.hook, input).context("the kept input cannot be read as the hook's arguments")?;
    let limits: Limits = match &kept.limits {
        Some(limits) => serde_json::from_value(limits.clone()).context("the kept limits cannot be read")?,
        None => Limits::default(),
    };

    let (source, what) = match &args.source {
        Some(path) => (StrategySource::from_path(path)?, format!("{}", path.display())),
        None => match (&kept.entry, &kept.sources) {
            (Some(entry), Some(files)) => (
                StrategySource { entry: entry.clone(), files: files.clone() },
                format!("version {} as it ran", kept.version.unwrap_or_default()),
            ),
            _ => bail!(
                "the strategy version that ran is not available as Python (a prebuilt component, or a version since deleted); pass --source with its Python"
            ),
        },
    };
    let (builder, python_library) = args.toolchain.builder_and_library(None).await;
    eprintln!("loading {what}…");
    let runtime = local_runtime(args.cache_dir.clone(), limits.memory_bytes, args.allow_private_endpoints, python_library)?;
    let strategy = load_source(&runtime, &builder, &source).await?;
    let options = InvokeOptions {
        tenant: "replay".into(),
        campaign,
        limits,
        isolation: Isolation::FreshInstance,
        credentials: None,
        http: HttpPolicy { allowed_hosts: args.allow_hosts.clone(), ..HttpPolicy::default() },
        clock: Arc::new(VirtualClock::new(record.started_at)),
    };
    let replayed = strategy.invoke(&hook, &options).await;
    for line in &replayed.logs {
        eprintln!("[{:?}] {}: {}", line.level, line.logger, line.message);
    }
    eprintln!(
        "{} of {} for {} at {} (recorded: {}, fuel {}; replayed: fuel {})",
        record.hook.as_str(),
        record.id,
        record.object_id,
        record.started_at.to_rfc3339(),
        record.outcome,
        record.fuel,
        replayed.usage.fuel,
    );
    Ok(if args.source.is_none() { compare_unchanged(&kept, &replayed) } else { compare_edited(&kept, &hook, &replayed) })
}

async fn fetch(args: &ReplayArgs) -> anyhow::Result<InvocationDetail> {
    let url = format!("{}/api/invocations/{}", args.server.trim_end_matches('/'), args.invocation);
    let response = reqwest::Client::new()
        .get(&url)
        .bearer_auth(&args.api_key)
        .send()
        .await
        .with_context(|| format!("fetching {url}"))?;
    let status = response.status();
    if !status.is_success() {
        // The API answers problems (RFC 9457); their `detail` says why.
        let problem: Value = response.json().await.unwrap_or_default();
        let detail = problem.get("detail").and_then(Value::as_str).unwrap_or("no detail");
        bail!("{url} answered {status}: {detail}");
    }
    response.json().await.with_context(|| format!("reading the invocation from {url}"))
}

/// The outcome of an invocation as replay compares it: the returned
/// contact, or the error's kind and message.
fn outcome_of(invocation: &Invocation) -> Result<Value, (String, String)> {
    match &invocation.result {
        Ok(contact) => Ok(serde_json::to_value(contact).unwrap_or_default()),
        Err(error) => Err((error.kind().to_owned(), error.to_string())),
    }
}

/// The same version again: the same error, or the same returned contact.
fn compare_unchanged(kept: &InvocationDetail, replayed: &Invocation) -> ExitCode {
    let record = &kept.record;
    match (outcome_of(replayed), record.outcome.as_str()) {
        (Err((kind, message)), recorded) if kind == recorded && Some(&message) == record.message.as_ref() => {
            println!("reproduced: the same {kind} error\n{message}");
            ExitCode::SUCCESS
        }
        (Err((kind, message)), recorded) => {
            println!("not reproduced: recorded {recorded}, replayed {kind}\n{message}");
            ExitCode::FAILURE
        }
        (Ok(contact), "ok") => match &kept.output {
            Some(output) if *output == contact => {
                println!("reproduced: the same returned contact");
                ExitCode::SUCCESS
            }
            Some(output) => {
                println!("not reproduced: the returned contact differs from the recorded one");
                print_diff(output, &contact);
                ExitCode::FAILURE
            }
            None if contact.is_null() => {
                println!("reproduced: no change, as recorded");
                ExitCode::SUCCESS
            }
            None => {
                println!("not reproduced: recorded no change, replayed a returned contact");
                ExitCode::FAILURE
            }
        },
        (Ok(_), recorded) => {
            println!("not reproduced: recorded {recorded} ({}), replayed successfully", record.message.as_deref().unwrap_or(""));
            ExitCode::FAILURE
        }
    }
}

/// An edited strategy: what it returns, against what the recorded call
/// returned — or, when that failed, against the contact it was given.
fn compare_edited(kept: &InvocationDetail, hook: &Hook, replayed: &Invocation) -> ExitCode {
    let record = &kept.record;
    match outcome_of(replayed) {
        Err((kind, message)) => {
            println!("the edited strategy fails ({kind}):\n{message}");
            ExitCode::FAILURE
        }
        Ok(contact) => {
            let (baseline, against) = match &kept.output {
                Some(output) if record.outcome == "ok" => (output.clone(), "the recorded result"),
                _ => (serde_json::to_value(hook.contact()).unwrap_or_default(), "the contact it was given"),
            };
            match &record.message {
                Some(message) if record.outcome != "ok" => println!("recorded: {} error\n{message}", record.outcome),
                _ => {}
            }
            if contact.is_null() {
                println!("the edited strategy returns no change");
            } else if contact == baseline {
                println!("the edited strategy returns the same contact as {against}");
            } else {
                println!("the edited strategy's returned contact, against {against}:");
                print_diff(&baseline, &contact);
            }
            ExitCode::SUCCESS
        }
    }
}

fn print_diff(before: &Value, after: &Value) {
    let mut lines = Vec::new();
    diff("", before, after, &mut lines);
    for line in lines {
        println!("{line}");
    }
}

/// `- path: old`, `+ path: new` and `~ path: old → new`, by JSON path.
fn diff(path: &str, before: &Value, after: &Value, lines: &mut Vec<String>) {
    let at = |key: &str| if path.is_empty() { key.to_owned() } else { format!("{path}.{key}") };
    match (before, after) {
        (Value::Object(old), Value::Object(new)) => {
            for (key, value) in old {
                match new.get(key) {
                    Some(next) => diff(&at(key), value, next, lines),
                    None => lines.push(format!("- {}: {value}", at(key))),
                }
            }
            for (key, value) in new.iter().filter(|(key, _)| !old.contains_key(*key)) {
                lines.push(format!("+ {}: {value}", at(key)));
            }
        }
        (Value::Array(old), Value::Array(new)) => {
            for index in 0..old.len().max(new.len()) {
                let item = format!("{path}[{index}]");
                match (old.get(index), new.get(index)) {
                    (Some(value), Some(next)) => diff(&item, value, next, lines),
                    (Some(value), None) => lines.push(format!("- {item}: {value}")),
                    (None, Some(next)) => lines.push(format!("+ {item}: {next}")),
                    (None, None) => {}
                }
            }
        }
        _ if before != after => lines.push(format!("~ {}: {before} → {after}", if path.is_empty() { "." } else { path })),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn works_when_a_diff_names_each_changed_path() {
        let before = json!({"name": "Ann", "results": {"paid": false}, "communications": [{"name": "a"}], "gone": 1});
        let after = json!({"name": "Ann", "results": {"paid": true}, "communications": [{"name": "a"}, {"name": "b"}], "new": 2});
        let mut lines = Vec::new();
        diff("", &before, &after, &mut lines);
        // serde_json's objects iterate in key order.
        assert_eq!(lines, ["+ communications[1]: {\"name\":\"b\"}", "- gone: 1", "~ results.paid: false → true", "+ new: 2"]);
    }
}
