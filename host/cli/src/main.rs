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
mod replay;
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
    /// environment variables win over it.
    #[arg(long, global = true, env = config::CONFIG_ENV, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Log lines as text, or as one JSON object each, whose `span` carries
    /// the request id, tenant and campaign of the request it concerns.
    #[arg(long, global = true, env = "STRATAGEM_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Which log lines to write: a level (`info`), or per module
    /// (`info,stratagem_engine=debug`).
    #[arg(long, global = true, env = "STRATAGEM_LOG", default_value = "error")]
    log: String,
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
fn main() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(2);
        }
    };
    let code = runtime.block_on(run());
    // A blocking task still running — a strategy being compiled when
    // `serve` was stopped — is not waited for: shutdown stays bounded.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    code
}

async fn run() -> ExitCode {
    let args = match config::with_config_file(Cli::command(), std::env::args_os().collect()) {
        Ok(args) => args,
        Err(error) => {
            eprintln!("error: {error:#}");
            return ExitCode::from(2);
        }
    };
    let cli = Cli::parse_from(args);
    let filter = match tracing_subscriber::EnvFilter::try_new(&cli.log) {
        Ok(filter) => filter,
        Err(error) => {
            eprintln!("error: --log (STRATAGEM_LOG) `{}`: {error}; give a level such as `info`, or e.g. `info,stratagem_engine=debug`", cli.log);
            return ExitCode::from(2);
        }
    };
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The README lists every setting of `serve` once, as `serve --help`
    /// has them: this keeps the two the same.
    #[test]
    fn works_when_the_readme_lists_every_setting_of_serve() {
        let table = config::settings_table(Cli::command(), "serve");
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).expect("README");
        assert!(table.lines().count() > 20, "{table}");
        assert!(readme.contains(&table), "README.md's settings table differs from `serve`'s settings; replace it with:\n\n{table}");
    }
}
