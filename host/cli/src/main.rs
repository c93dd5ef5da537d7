//! `stratagem`: the local development loop for strategies.
//!
//!   stratagem strategy build app.py -o app.wasm
//!   stratagem strategy run app.wasm --hook data-load --contact contact.json

mod strategy;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "stratagem", version, about = "Stratagem campaign platform")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build and run strategies locally.
    #[command(subcommand)]
    Strategy(strategy::Command),
}

/// Exit codes: 0 success, 1 the strategy failed, 2 bad input or set-up.
#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("STRATAGEM_LOG"))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Strategy(command) => command.run().await,
    }
}
