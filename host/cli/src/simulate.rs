//! `stratagem simulate`: a campaign's strategies over a contact file in
//! virtual time, against a simulated population — the timeline and the
//! final outcomes, before a single real message is sent.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{anyhow, Context};
use chrono::{DateTime, Utc};
use clap::Args;
use stratagem_domain::contact_file::FileFormat;
use stratagem_domain::StrategyType;
use stratagem_engine::{Personas, StrategyService};
use stratagem_runtime::{Runtime, RuntimeConfig, StrategySource};
use stratagem_services::dry_run::{read_contacts, Sandbox, Simulation, SimulationReport};
use stratagem_services::CONTACT_FILE_LIMIT_BYTES;
use stratagem_store::NewCampaign;

use crate::config::Toolchain;

#[derive(Args)]
pub struct SimulateArgs {
    /// Contact file (CSV or JSON Lines, as imported). A `persona` column
    /// scripts a contact's answers, e.g. `NO_RESPONSE>PROMISE_TO_PAY>PAID`.
    #[arg(long)]
    contacts: PathBuf,
    /// DATA_LOAD strategy (.py file, package directory, or built .wasm).
    #[arg(long)]
    data_load: PathBuf,
    /// AGGREGATION strategy (.py, directory or .wasm).
    #[arg(long)]
    aggregation: Option<PathBuf>,
    /// Virtual start time (RFC 3339); now by default.
    #[arg(long)]
    start: Option<DateTime<Utc>>,
    /// How many virtual days to run at most.
    #[arg(long, default_value_t = 30)]
    days: u32,
    /// How contacts without a `persona` answer: OUTCOME=WEIGHT,…
    #[arg(long, default_value = "NO_RESPONSE=35,PROMISE_TO_PAY=30,PAID=20,REFUSED=15")]
    personas: String,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Where compiled strategies are cached.
    #[arg(long, env = "STRATAGEM_CACHE_DIR", default_value = ".stratagem/cache")]
    cache_dir: PathBuf,
    #[command(flatten)]
    toolchain: Toolchain,
}

pub async fn run(args: SimulateArgs) -> anyhow::Result<ExitCode> {
    let personas = Personas::parse(&args.personas).map_err(|error| anyhow!("--personas {error}"))?;
    let start = args.start.unwrap_or_else(Utc::now);
    let bytes = std::fs::read(&args.contacts).with_context(|| format!("reading {}", args.contacts.display()))?;
    let name = args.contacts.file_name().and_then(|name| name.to_str());
    let format = FileFormat::detect(name, None, &bytes);
    let contacts = read_contacts(format, &bytes, CONTACT_FILE_LIMIT_BYTES as u64, usize::MAX)
        .map_err(|error| anyhow!("{}: {error}", args.contacts.display()))?;

    // A throwaway campaign: the simulation shares the engine's code paths.
    let sandbox = Sandbox::new(NewCampaign {
        name: "simulation".into(),
        description: String::new(),
        llm_integration_id: None,
        llm_model: None,
        result_fields: Vec::new(),
        http_allowlist: Vec::new(),
    })
    .await?;
    let (builder, python_library) = args.toolchain.builder_and_library(None).await;
    let runtime = Arc::new(Runtime::new(RuntimeConfig { cache_dir: args.cache_dir.clone(), max_instances: 8, python_library, ..RuntimeConfig::default() })?);
    let strategies = Arc::new(StrategyService::new(runtime, builder));
    let mut kinds = vec![(StrategyType::DataLoad, &args.data_load)];
    if let Some(path) = &args.aggregation {
        kinds.push((StrategyType::Aggregation, path));
    }
    for (kind, path) in kinds {
        let component = if path.extension().is_some_and(|ext| ext == "wasm") {
            std::fs::read(path).with_context(|| format!("reading {}", path.display()))?
        } else {
            let source = StrategySource::from_path(path)?;
            strategies.build_source(&source).await.map_err(|error| anyhow!("{}: {error}", path.display()))?
        };
        sandbox.install(&strategies, kind, &component).await.map_err(|error| anyhow!("{}: {error}", path.display()))?;
    }

    let until = start + chrono::Duration::days(i64::from(args.days));
    let report = sandbox.run(strategies, contacts, Simulation { start, until, personas }).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_report(report: &SimulationReport) {
    println!(
        "Simulated {} contacts from {} to {} (virtual time); campaign {}; {} communications sent.",
        report.contacts.len(),
        report.start.format("%Y-%m-%d %H:%M"),
        report.end.format("%Y-%m-%d %H:%M"),
        report.campaign_status.as_str(),
        report.sends
    );
    println!("\nTimeline:");
    for entry in &report.timeline {
        println!(
            "  {}  {:<12} {:<24} {:<10} {}{}",
            entry.start_date.format("%Y-%m-%d %H:%M"),
            entry.object_id,
            entry.stage,
            entry.status,
            entry.outcome.as_deref().unwrap_or("-"),
            entry.alternative.as_deref().filter(|label| *label != "default").map(|label| format!(" [{label}]")).unwrap_or_default()
        );
    }
    let total = report.contacts.len().max(1) as f64;
    println!("\nResults (ResultFlag):");
    for (result, count) in &report.results {
        println!("  {result:<13} {count:>6}  {:>5.1}%", *count as f64 * 100.0 / total);
    }
    println!("\nFinal stages:");
    for (stage, count) in &report.stages {
        println!("  {stage:<28} {count:>6}");
    }
    for row in &report.rejected {
        // The reason starts with its line already.
        println!("\nRejected row: {}", row.reason);
    }
    for (object_id, error) in &report.import_errors {
        println!("\nDATA_LOAD failed for {object_id}: {error}");
    }
    for contact in report.contacts.iter().filter(|contact| contact.last_error.is_some()) {
        println!("\nAGGREGATION failed for {}: {}", contact.object_id, contact.last_error.as_deref().unwrap_or_default());
    }
}
