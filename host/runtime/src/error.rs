//! Typed failures, named after the stage that failed: building a
//! component from Python, loading a component, invoking a hook.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One frame of a Python traceback, innermost last.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frame {
    pub file: String,
    pub line: u32,
    pub function: String,
    pub source: Option<String>,
}

/// An exception raised by strategy code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PythonException {
    pub type_name: String,
    pub message: String,
    pub traceback: Vec<Frame>,
}

impl fmt::Display for PythonException {
    /// The familiar Python rendering, so the user's own file and line lead.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Traceback (most recent call last):")?;
        for frame in &self.traceback {
            // The guest's marker for collapsed recursion: "[previous frame repeated N more times]".
            if frame.file == "..." {
                writeln!(f, "  {}", frame.function)?;
                continue;
            }
            writeln!(f, "  File \"{}\", line {}, in {}", frame.file, frame.line, frame.function)?;
            if let Some(source) = &frame.source {
                writeln!(f, "    {source}")?;
            }
        }
        write!(f, "{}: {}", self.type_name, self.message)
    }
}

/// Python code that failed while the component was built: a syntax error
/// or an exception raised by the strategy's top-level code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PythonBuildError {
    pub type_name: String,
    pub message: String,
    pub file: Option<String>,
    pub line: Option<u32>,
    pub column: Option<u32>,
    /// The line as CPython has it, indentation included (`column` counts it).
    pub source: Option<String>,
    pub traceback: String,
}

impl fmt::Display for PythonBuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, self.line) {
            (Some(file), Some(line)) => {
                write!(f, "{file}, line {line}")?;
                if let Some(column) = self.column {
                    write!(f, ", column {column}")?;
                }
                write!(f, ": {}: {}", self.type_name, self.message)?;
                if let Some(source) = &self.source {
                    // Shown without its indentation, as Python does; the
                    // caret moves with it.
                    let shown = source.trim_start();
                    write!(f, "\n    {}", shown.trim_end())?;
                    if let Some(column) = self.column {
                        let indent = source.chars().count() - shown.chars().count();
                        write!(f, "\n    {}^", " ".repeat((column as usize).saturating_sub(1 + indent)))?;
                    }
                }
                Ok(())
            }
            _ => write!(f, "{}", self.traceback),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{0}")]
    Python(Box<PythonBuildError>),
    #[error("invalid strategy source: {0}")]
    InvalidSource(String),
    #[error("componentize-py failed: {0}")]
    Toolchain(String),
    #[error("the build did not finish within {0:?}; does the strategy's top-level code loop forever?")]
    Timeout(Duration),
    #[error("the build used all of its {} s of CPU time; does the strategy's top-level code loop forever?", .0.as_secs())]
    CpuLimit(Duration),
    #[error("memory limit: the build needed more than {} MiB of memory; keep large data out of the strategy's top-level code{}",
        limit_bytes >> 20, python.as_ref().map(|p| format!("\n{p}")).unwrap_or_default())]
    MemoryLimit { limit_bytes: u64, python: Option<Box<PythonBuildError>> },
    #[error("the strategy's top-level state is too large to snapshot into a component; build large values inside the hook functions instead of at module level")]
    SnapshotTooLarge,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("not a WebAssembly component: {0}")]
    NotAComponent(String),
    #[error("the component does not fit the stratagem:strategy contract: {0}")]
    ContractMismatch(String),
    #[error("artifact cache at {path}: {source}")]
    Cache { path: String, source: std::io::Error },
    /// This node cannot run strategies uploaded as source: the platform's
    /// component could not be built or loaded.
    #[error("the platform component is not available: {0}")]
    Platform(String),
}

/// Why an invocation produced no result. Limit breaches are detected by the
/// host; the first three variants come from the strategy itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum InvokeError {
    #[error("{exception}")]
    Exception { exception: PythonException },
    #[error("{message}")]
    MissingHook { message: String },
    #[error("invalid result: {message}")]
    InvalidResult { message: String },
    #[error("fuel exhausted: the strategy used all of its {budget} fuel (an endless loop?)")]
    FuelExhausted { budget: u64 },
    #[error("time limit: the strategy ran longer than {limit_ms} ms")]
    TimeLimit { limit_ms: u64 },
    #[error("memory limit: the strategy needed more than {limit_bytes} bytes of memory{}", .exception.as_ref().map(|e| format!("\n{e}")).unwrap_or_default())]
    MemoryLimit { limit_bytes: usize, exception: Option<PythonException> },
    #[error("output too large: the returned contact is {size_bytes} bytes, the limit is {limit_bytes}")]
    OutputTooLarge { size_bytes: usize, limit_bytes: usize },
    #[error("the strategy crashed: {message}")]
    Trap { message: String },
    #[error("could not start the strategy: {message}")]
    Instantiate { message: String },
}

impl InvokeError {
    /// The variant's name, as its JSON `kind` says it.
    pub fn kind(&self) -> &'static str {
        match self {
            InvokeError::Exception { .. } => "exception",
            InvokeError::MissingHook { .. } => "missing_hook",
            InvokeError::InvalidResult { .. } => "invalid_result",
            InvokeError::FuelExhausted { .. } => "fuel_exhausted",
            InvokeError::TimeLimit { .. } => "time_limit",
            InvokeError::MemoryLimit { .. } => "memory_limit",
            InvokeError::OutputTooLarge { .. } => "output_too_large",
            InvokeError::Trap { .. } => "trap",
            InvokeError::Instantiate { .. } => "instantiate",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn works_when_an_errors_kind_is_its_json_kind() {
        let message = || "m".to_owned();
        let errors = [
            InvokeError::MissingHook { message: message() },
            InvokeError::InvalidResult { message: message() },
            InvokeError::FuelExhausted { budget: 1 },
            InvokeError::TimeLimit { limit_ms: 1 },
            InvokeError::MemoryLimit { limit_bytes: 1, exception: None },
            InvokeError::OutputTooLarge { size_bytes: 2, limit_bytes: 1 },
            InvokeError::Trap { message: message() },
            InvokeError::Instantiate { message: message() },
        ];
        for error in errors {
            let json = serde_json::to_value(&error).expect("serializes");
            assert_eq!(json["kind"], error.kind(), "{json}");
        }
    }
}
