//! The platform's own component (`wit/world.wit`, world `platform`):
//! CPython and the SDK, pre-initialised, with no strategy in it. Built
//! once per toolchain ([`crate::Builder::build_platform`]) and compiled
//! once, it serves every tenant:
//!
//! - a strategy uploaded as source runs in instances of it, each loading
//!   the sources first ([`Platform::strategy`]): an edit costs a load of
//!   the user's code, not a componentize-py build and a compile, and every
//!   strategy shares one compiled artifact;
//! - [`Platform::try_load`] is such a strategy's build: its top level, run
//!   once under an invocation's limits, with its errors reported as a
//!   build reports them;
//! - [`Platform::check`] is an upload's syntax check: the entry file
//!   compiled by the same CPython, none of it run.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::timeout;
use wasmtime::component::InstancePre;
use wasmtime::Store;

use crate::bindings::platform::{loader, syntax};
use crate::clock::SystemClock;
use crate::componentize::{is_out_of_memory, StrategySource};
use crate::error::{BuildError, Frame, InvokeError, LoadError, PythonBuildError, PythonException};
use crate::host_state::HostState;
use crate::limits::Limits;
use crate::runtime::{contract_error, instantiate_error, ticks, Runtime, Strategy};

/// The loaded platform component; its instances run concurrently.
pub struct Platform {
    runtime: Arc<Runtime>,
    pre: InstancePre<HostState>,
    loader: loader::GuestIndices,
    syntax: syntax::GuestIndices,
}

impl Platform {
    pub(crate) fn new(runtime: Arc<Runtime>, pre: InstancePre<HostState>) -> Result<Self, LoadError> {
        let loader = loader::GuestIndices::new(&pre).map_err(contract_error)?;
        let syntax = syntax::GuestIndices::new(&pre).map_err(contract_error)?;
        Ok(Self { runtime, pre, loader, syntax })
    }

    /// `source` as a strategy: every new instance loads it (under the
    /// invocation's fuel, time and memory limits) before its first call.
    /// Its identity is its bundle's hash.
    pub fn strategy(&self, source: &StrategySource) -> Result<Strategy, LoadError> {
        let bundle = source.to_bundle();
        Strategy::new(self.runtime.clone(), self.pre.clone(), crate::content_hash(&bundle), bundle.len(), Some(self.sources(source)))
    }

    /// The build of a strategy uploaded as source: its sources loaded into
    /// a fresh instance under `limits`, so that a syntax error or an
    /// exception in its top level is reported now, with its place, as a
    /// build reports it.
    pub async fn try_load(&self, source: &StrategySource, limits: Limits) -> Result<(), BuildError> {
        source.validate()?;
        let memory_limit = limits.memory_bytes.min(self.runtime.max_memory_bytes());
        let limit = |error: InvokeError| match error {
            InvokeError::MemoryLimit { limit_bytes, .. } => BuildError::MemoryLimit { limit_bytes: limit_bytes as u64, python: None },
            InvokeError::TimeLimit { .. } | InvokeError::FuelExhausted { .. } => BuildError::Timeout(limits.time),
            other => BuildError::Toolchain(format!("the platform component: {other}")),
        };
        let (mut store, instance) =
            self.runtime.instantiate(&self.pre, Arc::new(SystemClock), memory_limit).await.map_err(limit)?;
        match self.sources(source).load(&mut store, &instance, &limits).await {
            Ok(()) => Ok(()),
            Err(LoadFailure::Python(python)) if is_out_of_memory(&python.type_name, &python.message) => {
                Err(BuildError::MemoryLimit { limit_bytes: memory_limit as u64, python: Some(python) })
            }
            Err(LoadFailure::Python(python)) => Err(BuildError::Python(python)),
            Err(LoadFailure::Limit(error)) => Err(limit(error)),
        }
    }

    fn sources(&self, source: &StrategySource) -> Sources {
        let files = source.files.iter().map(|(name, text)| (name.clone(), text.clone())).collect();
        Sources { loader: self.loader.clone(), entry: source.entry.clone(), files }
    }

    /// The entry file's syntax error, as loading it would report it;
    /// `None` when it compiles, or when CPython could not judge it here
    /// (loading then decides). Only the entry is checked: loading always
    /// runs it, while another file may be one it never imports. `Err` when
    /// the check itself broke a limit.
    pub async fn check(&self, source: &StrategySource, limits: Limits) -> Result<Option<PythonBuildError>, InvokeError> {
        let Some(text) = source.files.get(&source.entry) else { return Ok(None) };
        let memory_limit = limits.memory_bytes.min(self.runtime.max_memory_bytes());
        let (mut store, instance) =
            self.runtime.instantiate(&self.pre, Arc::new(SystemClock), memory_limit).await?;
        let syntax = self.syntax.load(&mut store, &instance).map_err(instantiate_error)?;
        store.set_fuel(limits.fuel).map_err(instantiate_error)?;
        store.set_epoch_deadline(ticks(limits.time));
        let found = match timeout(limits.time, syntax.call_check(&mut store, &source.entry, text)).await {
            Err(_) => return Err(InvokeError::TimeLimit { limit_ms: limits.time.as_millis() as u64 }),
            Ok(Err(trap)) => return Err(limit_breach(&trap, &store, limits.fuel, limits.time)),
            Ok(Ok(found)) => found,
        };
        Ok(found.map(|error| located(&source.entry, error)))
    }
}

/// A strategy's sources, as each new instance of the platform loads them.
pub(crate) struct Sources {
    loader: loader::GuestIndices,
    entry: String,
    files: Vec<(String, String)>,
}

/// Why loading sources into an instance failed.
pub(crate) enum LoadFailure {
    /// The strategy's code: a syntax error, or its top level raised.
    Python(Box<PythonBuildError>),
    /// A limit (fuel, time, memory), or the sandbox trapped.
    Limit(InvokeError),
}

impl LoadFailure {
    /// As an invocation reports it: loading worked when the version was
    /// built, so a failure now is the top level's (a random value, the
    /// clock) or a limit's.
    pub(crate) fn into_invoke_error(self, memory_limit: usize) -> InvokeError {
        match self {
            LoadFailure::Python(python) if is_out_of_memory(&python.type_name, &python.message) => {
                let place = python.file.clone().zip(python.line).map(|(file, line)| Frame {
                    file,
                    line,
                    function: "<module>".into(),
                    source: python.source.as_deref().map(|line| line.trim().to_owned()),
                });
                let exception = PythonException { type_name: python.type_name, message: python.message, traceback: place.into_iter().collect() };
                InvokeError::MemoryLimit { limit_bytes: memory_limit, exception: Some(exception) }
            }
            LoadFailure::Python(python) => {
                InvokeError::Instantiate { message: format!("the strategy's top-level code failed while loading: {python}") }
            }
            LoadFailure::Limit(error) => error,
        }
    }
}

impl Sources {
    /// Loads the sources into a new `instance` with a hook call's fuel,
    /// within the time left of `limits.time` (its deadline was set when it
    /// was instantiated): a top level costs at most what a call may.
    pub(crate) async fn load(
        &self,
        store: &mut Store<HostState>,
        instance: &wasmtime::component::Instance,
        limits: &Limits,
    ) -> Result<(), LoadFailure> {
        let broken = |error| LoadFailure::Limit(instantiate_error(error));
        let loader = self.loader.load(&mut *store, instance).map_err(broken)?;
        store.set_fuel(limits.fuel).map_err(broken)?;
        store.set_epoch_deadline(ticks(limits.time));
        match timeout(limits.time, loader.call_load(&mut *store, &self.entry, &self.files)).await {
            Err(_) => Err(LoadFailure::Limit(InvokeError::TimeLimit { limit_ms: limits.time.as_millis() as u64 })),
            Ok(Err(trap)) => Err(LoadFailure::Limit(limit_breach(&trap, store, limits.fuel, limits.time))),
            Ok(Ok(Err(error))) => Err(LoadFailure::Python(Box::new(PythonBuildError {
                type_name: error.type_name,
                message: error.message,
                file: error.file,
                line: error.line,
                column: error.column,
                source: error.source.map(|line| line.trim_end().to_owned()),
                traceback: error.traceback,
            }))),
            Ok(Ok(Ok(()))) => Ok(()),
        }
    }
}

/// What stopped guest code that trapped: a limit, or a crash.
pub(crate) fn limit_breach(trap: &wasmtime::Error, store: &Store<HostState>, fuel: u64, time: Duration) -> InvokeError {
    let memory = &store.data().memory;
    match trap.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::OutOfFuel) => InvokeError::FuelExhausted { budget: fuel },
        Some(wasmtime::Trap::Interrupt) => InvokeError::TimeLimit { limit_ms: time.as_millis() as u64 },
        _ if memory.refused => InvokeError::MemoryLimit { limit_bytes: memory.limit, exception: None },
        _ => InvokeError::Trap { message: format!("{trap:#}") },
    }
}

/// CPython's error as a build reports one, with a traceback in Python's
/// own form.
fn located(file: &str, error: syntax::LocatedError) -> PythonBuildError {
    let mut traceback = format!("  File \"{file}\", line {}\n", error.line);
    if let Some(line) = &error.source {
        let shown = line.trim_start();
        let indent = line.chars().count() - shown.chars().count();
        let caret = (error.column as usize).saturating_sub(1 + indent);
        traceback.push_str(&format!("    {}\n    {}^\n", shown.trim_end(), " ".repeat(caret)));
    }
    traceback.push_str(&format!("{}: {}", error.type_name, error.message));
    PythonBuildError {
        type_name: error.type_name,
        message: error.message,
        file: Some(file.to_owned()),
        line: Some(error.line),
        column: Some(error.column),
        source: error.source.map(|line| line.trim_end().to_owned()),
        traceback,
    }
}
