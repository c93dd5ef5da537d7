//! The syntax check an upload gets before its build: the platform's own
//! component compiles the entry file with the CPython strategies run on,
//! so it agrees with the build, new grammar included, and runs nothing.

use std::time::Duration;

use stratagem_runtime::{BuildError, InvokeError, Limits, Platform, StrategySource};

use crate::support::{builder, runtime};

async fn checker() -> Platform {
    let bytes = builder().build_platform().await.expect("the platform component builds");
    runtime().load_platform(&bytes).expect("it loads")
}

async fn check(source: &str) -> Option<stratagem_runtime::PythonBuildError> {
    checker().await.check(&StrategySource::single("app.py", source), Limits::default()).await.expect("the check runs")
}

#[tokio::test]
async fn works_when_the_source_uses_the_newest_grammar() {
    // PEP 758's unbracketed `except` and PEP 750's template strings: an
    // older CPython (the host's 3.11) calls both syntax errors.
    let source = "def parse(text):\n    try:\n        return int(text)\n    except ValueError, TypeError:\n        return t\"bad {text}\"\n";
    assert_eq!(check(source).await, None);
    builder().build(&StrategySource::single("app.py", source)).await.expect("and the build agrees");
}

#[tokio::test]
async fn errors_as_the_build_does_when_the_source_has_a_syntax_error() {
    let source = "async def run(contact, existing_contact, logger, **kwargs):\n    x = (1,\n    return contact\n";
    let found = check(source).await.expect("a syntax error");
    let BuildError::Python(built) = builder().build(&StrategySource::single("app.py", source)).await.expect_err("the build fails") else {
        panic!("not a Python error")
    };
    assert_eq!(
        (found.type_name.as_str(), found.message.as_str(), found.file.as_deref(), found.line, found.column, found.source.as_deref()),
        (built.type_name.as_str(), built.message.as_str(), built.file.as_deref(), built.line, built.column, built.source.as_deref()),
    );
    assert_eq!(found.traceback, "  File \"app.py\", line 2\n    x = (1,\n        ^\nSyntaxError: '(' was never closed");
}

#[tokio::test]
async fn errors_with_the_line_when_indentation_is_wrong() {
    let found = check("def run(contact):\nreturn contact\n").await.expect("an indentation error");
    assert_eq!((found.type_name.as_str(), found.line), ("IndentationError", Some(2)));
    assert_eq!(found.message, "expected an indented block after function definition on line 1");
}

#[tokio::test]
async fn works_when_top_level_code_would_fail_for_the_check_runs_none_of_it() {
    // Only the build runs top-level code; the check compiles it.
    assert_eq!(check("import pandas\nwhile True:\n    pass\n").await, None);
}

#[tokio::test]
async fn errors_when_the_check_exceeds_its_limits() {
    let checker = checker().await;
    let source = StrategySource::single("app.py", "x = 1\n".repeat(20_000));
    let within = checker.check(&source, Limits::default()).await;
    assert!(matches!(within, Ok(None)), "{within:?}");
    let starved = Limits { fuel: 10_000, ..Limits::default() };
    let error = checker.check(&source, starved).await.expect_err("out of fuel");
    assert!(matches!(error, InvokeError::FuelExhausted { budget: 10_000 }), "{error:?}");
    let hurried = Limits { time: Duration::from_millis(1), fuel: u64::MAX / 4, ..Limits::default() };
    let big = StrategySource::single("app.py", "x = [".to_owned() + &"1, ".repeat(200_000) + "]\n");
    let error = checker.check(&big, hurried).await.expect_err("out of time");
    assert!(matches!(error, InvokeError::TimeLimit { limit_ms: 1 }), "{error:?}");
    let cramped = Limits { memory_bytes: 1 << 20, ..Limits::default() };
    let error = checker.check(&source, cramped).await.expect_err("out of memory");
    assert!(matches!(error, InvokeError::MemoryLimit { limit_bytes: 1_048_576, .. }), "{error:?}");
}
