//! The one place that runs `bindgen!` over `wit/`. Imports are async so a
//! strategy waiting on HTTP parks its fiber, never a host thread.

wasmtime::component::bindgen!({
    world: "strategy",
    path: "../../wit",
    imports: { default: async },
    exports: { default: async },
});

pub use stratagem::strategy::{clock, http, log, types};

/// The platform's syntax checker (`wit/syntax.wit`): WASI only.
pub mod checker {
    wasmtime::component::bindgen!({
        world: "syntax-checker",
        path: "../../wit",
        exports: { default: async },
    });
}
