//! The one place that runs `bindgen!` over `wit/`. Imports are async so a
//! strategy waiting on HTTP parks its fiber, never a host thread.

wasmtime::component::bindgen!({
    world: "strategy",
    path: "../../wit",
    imports: { default: async },
    exports: { default: async },
});

pub use exports::stratagem::strategy::hooks;
pub use stratagem::strategy::{clock, http, log, types};

/// The platform's own component (`platform.rs`): the strategy world's
/// imports and hooks, with the loader and the syntax check besides.
pub mod platform {
    wasmtime::component::bindgen!({
        world: "platform",
        path: "../../wit",
        imports: { default: async },
        exports: { default: async },
        with: {
            "stratagem:strategy/types": super::types,
            "stratagem:strategy/log": super::log,
            "stratagem:strategy/clock": super::clock,
            "stratagem:strategy/http": super::http,
        },
    });

    pub use exports::stratagem::strategy::{loader, syntax};
}
