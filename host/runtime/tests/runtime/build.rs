//! Building, loading and contract checks; strategy errors at build and
//! invocation time carry the user's file, line and the exception.

use serde_json::json;
use stratagem_domain::Message;
use stratagem_runtime::{
    BuildError, CacheOutcome, Hook, InvokeError, LoadError, Runtime, RuntimeConfig, StrategySource,
};

use crate::support::{builder, component, contact, options, run_probe, strategy, PROBE};

async fn build_error(source: &str) -> BuildError {
    builder().build(&StrategySource::single("app.py", source)).await.expect_err("the build fails")
}

#[tokio::test]
async fn errors_with_line_and_column_when_the_source_has_a_syntax_error() {
    let error = build_error("async def run(contact, existing_contact, logger, **kwargs):\n    x = (1,\n    return contact\n").await;
    let BuildError::Python(python) = &error else { panic!("{error:?}") };
    assert_eq!(python.type_name, "SyntaxError");
    assert_eq!((python.file.as_deref(), python.line, python.column), (Some("app.py"), Some(2), Some(9)));
    assert_eq!(python.source.as_deref(), Some("    x = (1,"));
    // The caret is under the bracket, the line shown without its indentation.
    assert_eq!(error.to_string(), "app.py, line 2, column 9: SyntaxError: '(' was never closed\n    x = (1,\n        ^");
}

#[tokio::test]
async fn errors_with_the_line_when_top_level_code_raises() {
    let error = build_error("RATE = 1\nLIMIT = RATE / 0\n").await;
    let BuildError::Python(python) = &error else { panic!("{error:?}") };
    assert_eq!((python.type_name.as_str(), python.message.as_str()), ("ZeroDivisionError", "division by zero"));
    assert_eq!((python.file.as_deref(), python.line), (Some("app.py"), Some(2)));
    assert_eq!(python.source.as_deref(), Some("LIMIT = RATE / 0"));
}

#[tokio::test]
async fn errors_when_top_level_code_imports_a_module_that_is_not_bundled() {
    let error = build_error("import pandas\n").await;
    let BuildError::Python(python) = &error else { panic!("{error:?}") };
    assert_eq!(python.type_name, "ModuleNotFoundError");
    assert_eq!(python.message, "No module named 'pandas'");
    assert_eq!(python.line, Some(1));
}

#[tokio::test]
async fn errors_when_a_file_name_would_escape_the_build() {
    let mut source = StrategySource::single("app.py", "");
    source.files.insert("../../etc/evil.py".into(), String::new());
    let error = builder().build(&source).await.expect_err("rejected");
    assert!(matches!(error, BuildError::InvalidSource(ref m) if m.contains("not a valid module path")), "{error}");
}

/// A runtime of its own, over an artifact cache in `dir`.
fn cache_config(dir: &std::path::Path) -> RuntimeConfig {
    RuntimeConfig { cache_dir: dir.into(), max_instances: 4, max_memory_bytes: 256 << 20, ..RuntimeConfig::default() }
}

/// The spec's CONTACT_ANSWER strategy runs: a promise to pay moves the contact.
async fn assert_promise_is_heard(strategy: &stratagem_runtime::Strategy) {
    let message: Message = serde_json::from_value(json!({"content": "I promise to pay", "sent_at": "2026-11-26T10:00:00Z"})).expect("message");
    let invocation = strategy.invoke(&Hook::ContactAnswer { contact: contact(json!({})), message }, &options()).await;
    assert_eq!(invocation.result.expect("ok").expect("changed").current_stage.as_deref(), Some("Payment Promised"));
}

#[tokio::test]
async fn works_when_the_artifact_cache_survives_a_restart() {
    let bytes = component("examples/spec/contact_answer.py").await;
    let cache = tempfile::tempdir().expect("temp dir");
    let config = cache_config(cache.path());
    let first = std::sync::Arc::new(Runtime::new(config.clone()).expect("runtime"));
    assert_eq!(first.load(&bytes).expect("loads").1, CacheOutcome::Compiled);
    assert_eq!(first.load(&bytes).expect("loads").1, CacheOutcome::Hit);
    drop(first);
    let restarted = std::sync::Arc::new(Runtime::new(config).expect("runtime"));
    let (strategy, outcome) = restarted.load(&bytes).expect("loads");
    assert_eq!(outcome, CacheOutcome::Hit, "a restart does not recompile");
    assert_promise_is_heard(&strategy).await;
}

/// A cached artifact that was damaged on disk is compiled again, not run.
#[tokio::test]
async fn works_when_a_cached_artifact_is_damaged() {
    let bytes = component("examples/spec/contact_answer.py").await;
    let cache = tempfile::tempdir().expect("temp dir");
    let config = cache_config(cache.path());
    let first = std::sync::Arc::new(Runtime::new(config.clone()).expect("runtime"));
    assert_eq!(first.load(&bytes).expect("loads").1, CacheOutcome::Compiled);
    drop(first);
    let artifact = std::fs::read_dir(cache.path())
        .expect("cache")
        .map(|entry| entry.expect("entry").path())
        .find(|path| path.extension().is_some_and(|extension| extension == "cwasm"))
        .expect("an artifact");
    let whole = std::fs::read(&artifact).expect("artifact");
    std::fs::write(&artifact, &whole[..whole.len() / 2]).expect("cut in half");
    let restarted = std::sync::Arc::new(Runtime::new(config).expect("runtime"));
    let (strategy, outcome) = restarted.load(&bytes).expect("loads");
    assert_eq!(outcome, CacheOutcome::Compiled, "the damaged artifact is compiled again");
    assert_eq!(std::fs::read(&artifact).expect("artifact").len(), whole.len(), "and written whole");
    assert_promise_is_heard(&strategy).await;
}

/// Two strategies share almost all their code (the interpreter's and the
/// SDK's): the second compiles only the functions the first did not.
#[tokio::test]
async fn works_when_a_new_strategy_reuses_the_functions_compiled_for_another() {
    let (first_bytes, second_bytes) = (component("examples/spec/contact_answer.py").await, component("examples/spec/data_load.py").await);
    let cache = tempfile::tempdir().expect("temp dir");
    let config = cache_config(cache.path());
    let runtime = std::sync::Arc::new(Runtime::new(config).expect("runtime"));
    let functions = || std::fs::read_dir(cache.path().join("functions")).expect("function cache").count();
    assert_eq!(runtime.load(&first_bytes).expect("loads").1, CacheOutcome::Compiled);
    let after_first = functions();
    assert!(after_first > 1000, "the first strategy's functions are kept: {after_first}");
    let (second, outcome) = runtime.load(&second_bytes).expect("loads");
    assert_eq!(outcome, CacheOutcome::Compiled, "a different component has an artifact of its own");
    let new_functions = functions() - after_first;
    assert!(new_functions * 4 < after_first, "the second compiled {new_functions} functions of its own, not the {after_first} it shares");
    let contact = contact(json!({"parameters": {"amount_due": "120.50"}}));
    let invocation = second.invoke(&Hook::DataLoad { contact, existing: None }, &options()).await;
    assert!(invocation.result.expect("ok").is_some(), "the second strategy runs");
}

#[tokio::test]
async fn errors_when_the_bytes_are_not_a_component() {
    let runtime = crate::support::runtime();
    let core_module = b"\0asm\x01\0\0\0";
    for bytes in [&b"print('hello')"[..], &core_module[..]] {
        match runtime.load(bytes) {
            Err(LoadError::NotAComponent(message)) => assert!(message.contains("component-model header"), "{message}"),
            other => panic!("expected NotAComponent, got {:?}", other.map(|_| ())),
        }
    }
}

#[tokio::test]
async fn errors_when_a_prebuilt_component_targets_another_world() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("other.wit"), "package other:thing;\nworld other {\n  export run: func() -> string;\n}\n").expect("wit");
    let app = "import wit_world\nclass WitWorld(wit_world.WitWorld):\n    def run(self) -> str:\n        return 'hi'\n";
    let bytes = crate::support::handmade_component(dir.path(), "other", app);
    match crate::support::runtime().load(&bytes) {
        Err(LoadError::ContractMismatch(message)) => assert!(message.contains("stratagem:strategy/hooks"), "{message}"),
        other => panic!("expected ContractMismatch, got {:?}", other.map(|_| ())),
    }
}

#[tokio::test]
async fn errors_with_traceback_when_the_hook_raises() {
    let probe = strategy(PROBE).await;
    let Err(InvokeError::Exception { exception }) = run_probe(&probe, json!({"case": "raise"}), &options()).await.result else {
        panic!("expected an exception")
    };
    assert_eq!((exception.type_name.as_str(), exception.message.as_str()), ("ValueError", "amount_due must be positive, got -5"));
    let frame = exception.traceback.last().expect("a frame");
    assert_eq!((frame.file.as_str(), frame.line, frame.function.as_str()), ("probe.py", 36, "run"));
    assert_eq!(frame.source.as_deref(), Some("raise ValueError(f\"amount_due must be positive, got {amount}\")"));
    assert!(exception.to_string().starts_with("Traceback (most recent call last):\n  File \"probe.py\", line 36, in run\n"));
}

#[tokio::test]
async fn errors_when_recursion_is_too_deep_with_a_collapsed_traceback() {
    let probe = strategy(PROBE).await;
    let Err(InvokeError::Exception { exception }) = run_probe(&probe, json!({"case": "recursion"}), &options()).await.result else {
        panic!("expected an exception")
    };
    assert_eq!(exception.type_name, "RecursionError");
    assert!(exception.traceback.len() <= 6, "{:?}", exception.traceback);
    assert!(exception.to_string().contains("[previous frame repeated"), "{exception}");
}

#[tokio::test]
async fn errors_when_the_hook_returns_the_wrong_type() {
    let probe = strategy(PROBE).await;
    let result = run_probe(&probe, json!({"case": "wrong_type"}), &options()).await.result;
    assert_eq!(result, Err(InvokeError::InvalidResult {
        message: "run() returned str; expected Contact (did you forget `return contact`?)".into()
    }));
}

#[tokio::test]
async fn errors_when_the_strategy_lacks_the_hook_function() {
    let probe = strategy(PROBE).await;
    let message: Message = serde_json::from_value(json!({"content": "hi", "sent_at": "2026-11-26T10:00:00Z"})).expect("message");
    let invocation = probe.invoke(&Hook::ContactAnswer { contact: contact(json!({})), message }, &options()).await;
    assert_eq!(invocation.result, Err(InvokeError::MissingHook {
        message: "the strategy defines no `async def on_agent_answer(contact, message, **kwargs)`".into()
    }));
}

#[tokio::test]
async fn works_when_logs_and_prints_reach_the_host() {
    let probe = strategy(PROBE).await;
    let invocation = run_probe(&probe, json!({"case": "log"}), &options()).await;
    let lines: Vec<String> = invocation.logs.iter().map(|r| format!("{:?} {} {}", r.level, r.logger, r.message)).collect();
    assert_eq!(lines, ["Info strategy hello John Smith", "Info stdout printed line", "Warning strategy careful"]);
}

#[tokio::test]
async fn works_when_datetime_now_reads_the_platform_clock() {
    let probe = strategy(PROBE).await;
    let contact = run_probe(&probe, json!({"case": "now"}), &options()).await.result.expect("ok").expect("contact");
    assert_eq!(contact.internal_data["now"], json!({"$datetime": "2026-11-26T10:00:00"}));
}
