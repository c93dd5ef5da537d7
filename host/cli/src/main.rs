//! `stratagem`: the local development loop for strategies.
//!
//!   stratagem serve
//!   stratagem tenant create "Acme Collections"
//!   stratagem tenant list | key create T | disable T | enable T | delete T --yes
//!   stratagem strategy build app.py -o app.wasm
//!   stratagem strategy run app.wasm --hook data-load --contact contact.json
//!   stratagem simulate --contacts c.csv --data-load d.py --aggregation a.py

mod config;
mod platform;
mod simulate;
mod strategy;

use std::process::ExitCode;

use std::path::PathBuf;

use clap::{CommandFactory, Parser, Subcommand};

#[derive(Parser)]
#[command(name = "stratagem", version, about = "Stratagem campaign platform")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// A TOML file of settings, keyed by the flags' long names; flags and
    /// environment variables win over it (see `host/cli/src/config.rs`).
    #[arg(long, global = true, env = config::CONFIG_ENV, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Log lines as text, or as one JSON object each, whose `span` carries
    /// the request id, tenant and campaign of the request it concerns.
    /// Which lines: STRATAGEM_LOG (e.g. `info`; errors only by default).
    #[arg(long, global = true, env = "STRATAGEM_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the platform service (HTTP API on --listen).
    Serve(platform::ServeArgs),
    /// Administer tenants: create, list, mint keys, disable, enable, delete.
    #[command(subcommand)]
    Tenant(platform::TenantCommand),
    /// Build and run strategies locally.
    #[command(subcommand)]
    Strategy(strategy::Command),
    /// Print what `serve` would find (toolchain, database, data directory,
    /// secrets key, web UI) and what is missing, changing nothing.
    Doctor(platform::DoctorArgs),
    /// Run a campaign's strategies over a contact file in virtual time
    /// against a simulated population; prints the timeline and outcomes.
    Simulate(simulate::SimulateArgs),
}

/// Exit codes: 0 success, 1 the strategy failed, 2 bad input or set-up.
#[tokio::main]
async fn main() -> ExitCode {
    let args = match config::with_config_file(Cli::command(), std::env::args_os().collect()) {
        Ok(args) => args,
        Err(error) => {
            eprintln!("error: {error:#}");
            return ExitCode::from(2);
        }
    };
    let cli = Cli::parse_from(args);
    let logs = tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_env("STRATAGEM_LOG")).with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
    let outcome = match cli.command {
        Command::Serve(args) => platform::serve(args).await,
        Command::Tenant(command) => platform::tenant(command).await,
        Command::Doctor(args) => platform::doctor(args).await,
        Command::Simulate(args) => simulate::run(args).await,
        Command::Strategy(command) => return command.run().await,
    };
    outcome.unwrap_or_else(|error| {
        eprintln!("error: {error:#}");
        ExitCode::from(2)
    })
}
