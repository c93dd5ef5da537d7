//! Runs customer strategies — Python compiled to WebAssembly components —
//! under wasmtime with fuel, time, memory and output limits.
//!
//! - [`Builder`]: Python sources → component (componentize-py).
//! - [`Runtime::load`]: component → compiled, cached, contract-checked
//!   [`Strategy`].
//! - [`SyntaxChecker::check`]: an upload's syntax, checked before its
//!   build by the platform's own component.
//! - [`Strategy::invoke`]: one hook call under [`Limits`], returning an
//!   [`Invocation`] with the result, the log and the [`Usage`].

mod artifact_cache;
mod atomic_file;
mod bindings;
pub mod clock;
mod build_sandbox;
mod componentize;
mod convert;
mod error;
mod function_cache;
mod host_state;
mod limits;
mod outbound_http;
mod python_library;
mod runtime;
mod syntax_check;

pub use artifact_cache::{content_hash, CacheOutcome};
pub use clock::{Clock, SystemClock, VirtualClock};
pub use build_sandbox::BuildLimits;
pub use componentize::{Builder, StrategySource};
pub use error::{BuildError, Frame, InvokeError, LoadError, PythonBuildError, PythonException};
pub use host_state::{LogLevel, LogRecord};
pub use limits::{Limits, Usage};
pub use outbound_http::{Credential, Credentials, HttpPolicy};
pub use python_library::PythonLibrary;
pub use stratagem_outbound::EgressPolicy;
pub use syntax_check::SyntaxChecker;
pub use runtime::{Hook, Invocation, InvokeOptions, Isolation, Runtime, RuntimeConfig, Strategy};
