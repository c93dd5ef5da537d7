//! The syntax check an upload gets before its build (`wit/syntax.wit`).
//!
//! A strategy's build runs componentize-py, which takes seconds before a
//! syntax error surfaces. The platform's own checker component — the same
//! CPython, built once per toolchain ([`crate::Builder::build_syntax_checker`])
//! — compiles the entry file in a fresh sandboxed instance instead, under
//! the limits of an invocation, and runs none of it.

use std::sync::Arc;

use tokio::time::timeout;

use crate::bindings::checker::SyntaxCheckerPre;
use crate::clock::SystemClock;
use crate::componentize::StrategySource;
use crate::error::{InvokeError, PythonBuildError};
use crate::host_state::HostState;
use crate::limits::Limits;
use crate::runtime::{ticks, Runtime, INSTANTIATION_FUEL};

/// The loaded checker; checks run concurrently, each in its own instance.
pub struct SyntaxChecker {
    runtime: Arc<Runtime>,
    pre: SyntaxCheckerPre<HostState>,
}

impl SyntaxChecker {
    pub(crate) fn new(runtime: Arc<Runtime>, pre: SyntaxCheckerPre<HostState>) -> Self {
        Self { runtime, pre }
    }

    /// The entry file's syntax error, as a build would report it; `None`
    /// when it compiles, or when CPython could not judge it here (the
    /// full build then decides). Only the entry is checked: the build
    /// always imports it, while another file may be one it never imports.
    /// `Err` when the check itself broke a limit.
    pub async fn check(&self, source: &StrategySource, limits: Limits) -> Result<Option<PythonBuildError>, InvokeError> {
        let Some(text) = source.files.get(&source.entry) else { return Ok(None) };
        let memory_limit = limits.memory_bytes.min(self.runtime.max_memory_bytes());
        let mut store = self.runtime.new_store(Arc::new(SystemClock));
        store.data_mut().memory.reset(memory_limit, 0);
        store.set_epoch_deadline(ticks(limits.time));
        store.epoch_deadline_trap();
        let broken = |error: wasmtime::Error| InvokeError::Instantiate { message: format!("the syntax checker: {error:#}") };
        store.set_fuel(INSTANTIATION_FUEL).map_err(broken)?;
        let checker = match self.pre.instantiate_async(&mut store).await {
            Ok(checker) => checker,
            Err(_) if store.data().memory.refused => return Err(InvokeError::MemoryLimit { limit_bytes: memory_limit, exception: None }),
            Err(error) => return Err(broken(error)),
        };
        store.set_fuel(limits.fuel).map_err(broken)?;
        let syntax = checker.stratagem_strategy_syntax();
        let found = match timeout(limits.time, syntax.call_check(&mut store, &source.entry, text)).await {
            Err(_) => return Err(InvokeError::TimeLimit { limit_ms: limits.time.as_millis() as u64 }),
            Ok(Err(_)) if store.data().memory.refused => {
                return Err(InvokeError::MemoryLimit { limit_bytes: memory_limit, exception: None });
            }
            Ok(Err(trap)) => {
                return Err(match trap.downcast_ref::<wasmtime::Trap>() {
                    Some(wasmtime::Trap::OutOfFuel) => InvokeError::FuelExhausted { budget: limits.fuel },
                    Some(wasmtime::Trap::Interrupt) => InvokeError::TimeLimit { limit_ms: limits.time.as_millis() as u64 },
                    _ => InvokeError::Trap { message: format!("{trap:#}") },
                })
            }
            Ok(Ok(found)) => found,
        };
        Ok(found.map(|error| located(&source.entry, error)))
    }
}

/// CPython's error as a build reports one, with a traceback in Python's
/// own form.
fn located(file: &str, error: crate::bindings::checker::exports::stratagem::strategy::syntax::LocatedError) -> PythonBuildError {
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
