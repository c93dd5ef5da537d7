//! Runs customer strategies — Python compiled to WebAssembly components —
//! under wasmtime with fuel, time, memory and output limits.
//!
//! - [`Builder`]: Python sources → component (componentize-py).
//! - [`Runtime::load`]: component → compiled, cached, contract-checked
//!   [`Strategy`].
//! - [`Platform`]: the platform's own component, shared by every tenant:
//!   strategies uploaded as source run in it ([`Platform::strategy`]),
//!   and it checks an upload's syntax ([`Platform::check`]).
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
mod platform;
mod python_library;
mod runtime;

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
pub use platform::Platform;
pub use runtime::{Hook, Invocation, InvokeOptions, Isolation, Runtime, RuntimeConfig, Strategy};
