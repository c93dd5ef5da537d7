//! How `stratagem` is configured. Every setting is a flag of its command
//! (`stratagem serve --help` lists them), which can also be given as an
//! environment variable (named in the help) or in a config file:
//!
//! ```toml
//! # stratagem serve --config /etc/stratagem.toml
//! listen = "0.0.0.0:8080"
//! data-dir = "/var/lib/stratagem"
//! build-slots = 4
//! ```
//!
//! A flag wins over its variable, a variable over the file, the file over
//! the default. The file's keys are the flags' long names; a key that is
//! not a setting of the command is refused, with its line. The command's
//! parsed arguments are the one configuration struct, and the library
//! crates get their values from it: none of them reads the environment.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use clap::parser::ValueSource;
use clap::{ArgMatches, Args, Command};
use stratagem_runtime::{Builder, PythonLibrary};

/// The variable that names a config file when `--config` is not given.
pub const CONFIG_ENV: &str = "STRATAGEM_CONFIG";

/// Where the Python tool chain is and where builds are cached: shared by
/// every command that builds strategies.
#[derive(Args, Clone)]
pub struct Toolchain {
    /// componentize-py, which turns Python into a component. Without it,
    /// the first found of: next to the `stratagem` binary, a `.venv/bin`
    /// next to the binary or in the working directory (where `make setup`
    /// installs it), the PATH.
    #[arg(long, env = "STRATAGEM_COMPONENTIZE_PY")]
    pub componentize_py: Option<PathBuf>,
    /// Where built components are kept for reuse, keyed by content hash
    /// (default: `builds` in the data directory for `serve`, none otherwise).
    #[arg(long, env = "STRATAGEM_BUILD_CACHE")]
    pub build_cache: Option<PathBuf>,
}

/// The executable's name.
const COMPONENTIZE_PY: &str = "componentize-py";

impl Toolchain {
    /// The componentize-py to run: the one named, else the first found
    /// where it is installed the documented ways (see the flag); else the
    /// bare name, which fails with the places to put it.
    pub fn componentize_py(&self) -> PathBuf {
        if let Some(named) = &self.componentize_py {
            return named.clone();
        }
        let exe_dir = std::env::current_exe().ok().and_then(|exe| exe.parent().map(Path::to_path_buf));
        let mut places: Vec<PathBuf> = Vec::new();
        if let Some(dir) = &exe_dir {
            places.push(dir.join(COMPONENTIZE_PY));
            places.push(dir.join(".venv/bin").join(COMPONENTIZE_PY));
        }
        places.push(PathBuf::from(".venv/bin").join(COMPONENTIZE_PY));
        if let Some(path) = std::env::var_os("PATH") {
            places.extend(std::env::split_paths(&path).map(|dir| dir.join(COMPONENTIZE_PY)));
        }
        places
            .into_iter()
            .find(|place| place.is_file())
            .map(|found| std::path::absolute(&found).unwrap_or(found))
            .unwrap_or_else(|| PathBuf::from(COMPONENTIZE_PY))
    }

    /// A builder with the build cache, or `default_cache` when none is set.
    pub fn builder(&self, default_cache: Option<&Path>) -> Builder {
        let builder = Builder::new(self.componentize_py());
        match self.build_cache.as_deref().or(default_cache) {
            Some(dir) => builder.with_cache(dir),
            None => builder,
        }
    }

    /// Where the interpreter's library is kept: beside the build cache,
    /// else in `~/.cache/stratagem`.
    pub fn library_parent(&self, default_cache: Option<&Path>) -> Result<PathBuf, String> {
        match self.build_cache.as_deref().or(default_cache) {
            Some(dir) => Ok(dir.to_path_buf()),
            None => std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache/stratagem")).ok_or_else(|| "no build cache and no HOME".to_owned()),
        }
    }

    /// [`Toolchain::builder`] and the interpreter's library strategies
    /// import from at run time ([`PythonLibrary`], prepared once per
    /// toolchain), for a command that builds and runs. What is missing is
    /// said once, on stderr: a library that must be prepared first, one
    /// without time zones, none at all (strategies then import only what
    /// their build imported).
    pub async fn builder_and_library(&self, default_cache: Option<&Path>) -> (Builder, Option<PythonLibrary>) {
        let builder = self.builder(default_cache);
        let tool = self.componentize_py();
        if !tool.is_file() {
            return (builder, None); // the build says what is missing
        }
        let prepared = match self.library_parent(default_cache) {
            Ok(under) => {
                if matches!(PythonLibrary::find(&tool, &under), Ok(None)) {
                    eprintln!("copying the Python library out of componentize-py for strategies (once per toolchain version; about 30 s)");
                }
                tokio::task::spawn_blocking(move || PythonLibrary::prepare(&tool, &under)).await.unwrap_or_else(|error| Err(error.to_string()))
            }
            Err(error) => Err(error),
        };
        match prepared {
            Ok(library) => {
                if library.zoneinfo().is_none() {
                    eprintln!("warning: strategies have no time zone database: `pip install tzdata` where componentize-py is (`make setup` does)");
                }
                (builder.with_python_library(library.clone()), Some(library))
            }
            Err(error) => {
                eprintln!("warning: no Python library for strategies ({error}): they can import only what their build imported");
                (builder, None)
            }
        }
    }
}

/// The command line with the config file's settings added where neither a
/// flag nor a variable gave them. `command` is the whole CLI.
pub fn with_config_file(command: Command, args: Vec<OsString>) -> anyhow::Result<Vec<OsString>> {
    let Some(path) = config_path(&args) else { return Ok(args) };
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading the config file {}", path.display()))?;
    let table: toml::Table = text.parse().map_err(|error: toml::de::Error| file_error(&path, &text, &error))?;
    // A command line that does not parse (or asks for --help) is left to
    // the real parse, which says so.
    let Ok(matches) = command.clone().try_get_matches_from(&args) else { return Ok(args) };
    // Built, every subcommand has the global settings (`log-format`) too.
    let mut command = command;
    command.build();
    let (subcommand, matches) = deepest(&command, &matches);
    let mut args = args;
    for (key, value) in &table {
        let Some(arg) = subcommand.get_arguments().find(|arg| arg.get_long() == Some(key.as_str())) else {
            let line = line_of(&text, key);
            let known: Vec<String> =
                subcommand.get_arguments().filter_map(|arg| arg.get_long()).filter(|long| *long != "config").map(|long| format!("`{long}`")).collect();
            bail!(
                "{}, line {line}: `{key}` is not a setting of `{}`; its settings are {}",
                path.display(),
                subcommand.get_name(),
                known.join(", ")
            );
        };
        let id = arg.get_id().as_str();
        if !matches!(matches.value_source(id), None | Some(ValueSource::DefaultValue)) {
            continue;
        }
        match value {
            toml::Value::Boolean(true) => args.push(format!("--{key}").into()),
            toml::Value::Boolean(false) => {}
            toml::Value::String(text) => args.push(format!("--{key}={text}").into()),
            toml::Value::Integer(number) => args.push(format!("--{key}={number}").into()),
            toml::Value::Float(number) => args.push(format!("--{key}={number}").into()),
            other => bail!(
                "{}, line {}: `{key}` is a {}; give a string, a number or true/false",
                path.display(),
                line_of(&text, key),
                other.type_str()
            ),
        }
    }
    Ok(args)
}

/// The settings of `subcommand` as a Markdown table — flag (also the
/// config file's key), variable, default, meaning — for the README, which
/// a test keeps equal to it.
#[cfg(test)]
pub fn settings_table(mut command: Command, subcommand: &str) -> String {
    command.build();
    let Some(subcommand) = command.find_subcommand(subcommand) else { return String::new() };
    let mut table = String::from("| Flag and config key | Environment variable | Default | What it sets |\n|---|---|---|---|\n");
    for arg in subcommand.get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        if matches!(long, "help" | "version") {
            continue;
        }
        let variable = arg.get_env().map(|name| format!("`{}`", name.to_string_lossy())).unwrap_or_default();
        let default: Vec<String> = arg.get_default_values().iter().map(|value| value.to_string_lossy().into_owned()).collect();
        let default = match default.join(",") {
            text if text.is_empty() => String::new(),
            text => format!("`{text}`"),
        };
        let help = arg.get_long_help().or(arg.get_help()).map(|help| help.to_string()).unwrap_or_default();
        let help = help.split_whitespace().collect::<Vec<_>>().join(" ").replace('|', "\\|");
        table.push_str(&format!("| `--{long}` | {variable} | {default} | {help} |\n"));
    }
    table
}

/// `--config FILE` or `--config=FILE` anywhere on the line, else
/// `$STRATAGEM_CONFIG`.
fn config_path(args: &[OsString]) -> Option<PathBuf> {
    let mut words = args.iter().map(|arg| arg.to_string_lossy());
    while let Some(word) = words.next() {
        if word == "--config" {
            return words.next().map(|path| PathBuf::from(path.as_ref()));
        }
        if let Some(path) = word.strip_prefix("--config=") {
            return Some(PathBuf::from(path));
        }
    }
    std::env::var_os(CONFIG_ENV).filter(|path| !path.is_empty()).map(PathBuf::from)
}

/// The subcommand that runs, with its matches.
fn deepest<'a>(command: &'a Command, matches: &'a ArgMatches) -> (&'a Command, &'a ArgMatches) {
    match matches.subcommand() {
        Some((name, sub_matches)) => match command.find_subcommand(name) {
            Some(subcommand) => deepest(subcommand, sub_matches),
            None => (command, matches),
        },
        None => (command, matches),
    }
}

fn line_of(text: &str, key: &str) -> usize {
    // The key itself, not a longer one it begins (`build-cache` in `build-cache-mib`).
    let is_key = |line: &str| line.trim_start().strip_prefix(key).is_some_and(|rest| rest.trim_start().starts_with('='));
    text.lines().position(is_key).map_or(1, |index| index + 1)
}

fn file_error(path: &Path, text: &str, error: &toml::de::Error) -> anyhow::Error {
    let Some(span) = error.span() else { return anyhow!("{}: {}", path.display(), error.message()) };
    let before = &text[..span.start.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |start| start.chars().count()) + 1;
    anyhow!("{}, line {line}, column {column}: {}", path.display(), error.message())
}
