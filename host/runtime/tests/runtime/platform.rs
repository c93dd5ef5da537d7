//! Strategies uploaded as source run in the platform's own component: the
//! same sources must behave as they do in a component of their own, and
//! loading them must report what a build reports, under the limits.

use std::time::Duration;

use serde_json::json;
use stratagem_runtime::{BuildError, Hook, InvokeError, Isolation, Limits, Platform, Strategy, StrategySource};

use crate::support::{builder, component, contact, options, repo_root, run_probe, runtime, PROBE};

async fn platform() -> Platform {
    let bytes = builder().build_platform().await.expect("the platform component builds");
    runtime().load_platform(&bytes).expect("it loads")
}

fn source(relative: &str) -> StrategySource {
    StrategySource::from_path(&repo_root().join(relative)).expect("readable strategy source")
}

async fn in_platform(relative: &str) -> Strategy {
    let platform = platform().await;
    let source = source(relative);
    platform.try_load(&source, Limits::default()).await.expect("it loads");
    platform.strategy(&source).expect("a strategy")
}

#[tokio::test]
async fn works_when_the_spec_strategy_gives_what_its_own_component_gives() {
    let own = runtime().load(&component("examples/spec/data_load.py").await).expect("loads").0;
    let shared = in_platform("examples/spec/data_load.py").await;
    let hook = Hook::DataLoad { contact: contact(json!({"amount_due": 120})), existing: None };
    let (own, shared) = (own.invoke(&hook, &options()).await, shared.invoke(&hook, &options()).await);
    let shared = shared.result.expect("runs").expect("a contact");
    assert_eq!(shared.communications.len(), 1, "{shared:?}");
    assert_eq!(Some(shared), own.result.expect("runs"));
}

/// A contact with `count` communications, ids and names marked by
/// `prefix`: one completed with parameters, an A/B label and times to the
/// microsecond, one whose session just ended (flagged), one planned.
fn with_history(prefix: &str, count: usize) -> stratagem_domain::Contact {
    let mut contact = contact(json!({}));
    contact.object_id = format!("{prefix}-contact");
    let all = json!([
        {"id": format!("{prefix}-1"), "name": format!("{prefix} first"), "stage_name": "1. First contact",
         "start_date": "2026-11-20T09:00:00.123456Z", "end_date": "2026-11-20T17:00:00Z",
         "status": {"status": "COMPLETED", "detail": "answered", "updated_at": "2026-11-20T10:00:00.654321Z"},
         "alternative": "B", "parameters": {"template_name": "first", "when": {"$date": "2026-11-20"}}},
        {"id": format!("{prefix}-2"), "name": format!("{prefix} second"), "stage_name": "2. Retry",
         "start_date": "2026-11-27T09:00:00Z", "status": {"status": "IN_PROGRESS"}, "flagged": true},
        {"id": format!("{prefix}-3"), "name": format!("{prefix} third"), "stage_name": "2. Retry",
         "start_date": "2026-11-28T09:00:00Z"},
    ]);
    let all: Vec<stratagem_domain::Communication> = serde_json::from_value(all).expect("communications");
    contact.communications = all.into_iter().take(count).collect();
    contact
}

/// What a strategy returns is what the host gets, whichever way each
/// communication crossed back: untouched ones as their index in the
/// contact sent (`kept`), changed ones as records, a stored contact's and
/// an earlier call's as records — never as an index into this contact.
#[tokio::test]
async fn works_when_history_comes_back_as_the_strategy_returned_it() {
    let strategy = in_platform("host/runtime/tests/strategies/history.py").await;
    let mut reuse = options();
    reuse.isolation = Isolation::ReuseInstance;
    reuse.tenant = "history".into();
    let aggregate = |contact: &stratagem_domain::Contact| Hook::Aggregation { contact: contact.clone(), session_results: Some(Default::default()) };
    let returned = |invocation: stratagem_runtime::Invocation| invocation.result.expect("runs").expect("a contact").communications;

    let first = with_history("a", 3);
    let mut expected = first.communications.clone();
    expected[1].status.status = stratagem_domain::CommunicationStatus::Completed;
    assert_eq!(returned(strategy.invoke(&aggregate(&first), &reuse).await), expected);

    // The same instance; the strategy puts the first contact's first
    // communication, kept in a global, in this one's third place.
    let second = with_history("b", 3);
    let mut expected = second.communications.clone();
    expected[1].status.status = stratagem_domain::CommunicationStatus::Completed;
    expected[2] = first.communications[0].clone();
    assert_eq!(returned(strategy.invoke(&aggregate(&second), &reuse).await), expected);

    let (new, stored) = (with_history("new", 1), with_history("stored", 2));
    let hook = Hook::DataLoad { contact: new.clone(), existing: Some(stored.clone()) };
    let expected: Vec<_> = stored.communications.iter().chain(&new.communications).cloned().collect();
    assert_eq!(returned(strategy.invoke(&hook, &reuse).await), expected);
}

/// Every case of the sandbox, limit and isolation suites' probe ends the
/// same way in the platform's component as in the probe's own: files,
/// sockets, processes, the library, ctypes, exit, recursion, fuel and
/// memory are refused or stopped alike.
#[tokio::test]
async fn works_when_every_probe_case_ends_as_in_its_own_component() {
    let own = runtime().load(&component(PROBE).await).expect("loads").0;
    let shared = in_platform(PROBE).await;
    let cases = [
        json!({"case": "ok"}),
        json!({"case": "loop"}),
        json!({"case": "alloc", "mib": 400}),
        json!({"case": "raise"}),
        json!({"case": "wrong_type"}),
        json!({"case": "open_file"}),
        json!({"case": "list_dir"}),
        json!({"case": "environ"}),
        json!({"case": "socket"}),
        json!({"case": "subprocess"}),
        json!({"case": "stdlib"}),
        json!({"case": "write_library"}),
        json!({"case": "escape_library"}),
        json!({"case": "ctypes"}),
        json!({"case": "import_missing"}),
        json!({"case": "exit"}),
        json!({"case": "recursion"}),
        json!({"case": "raw_socket"}),
        json!({"case": "now"}),
    ];
    let mut limited = options();
    limited.limits = Limits { fuel: 500_000_000, time: Duration::from_secs(2), memory_bytes: 128 << 20, ..Limits::default() };
    for case in cases {
        let (own, shared) = (run_probe(&own, case.clone(), &limited).await, run_probe(&shared, case.clone(), &limited).await);
        let outcome = |invocation: stratagem_runtime::Invocation| match invocation.result {
            Ok(contact) => Ok(contact.map(|c| c.internal_data)),
            // Fuel counts differ between the two images; the kind does not.
            Err(error) => Err(error.kind().to_owned() + ": " + &error.to_string().lines().last().unwrap_or_default().to_owned()),
        };
        let (own, shared) = (outcome(own), outcome(shared));
        if case["case"] == "loop" {
            assert!(matches!(&shared, Err(kind) if kind.starts_with("fuel_exhausted")), "{case}: {shared:?}");
            assert!(matches!(&own, Err(kind) if kind.starts_with("fuel_exhausted")), "{case}: {own:?}");
            continue;
        }
        assert_eq!(shared, own, "{case}");
    }
}

#[tokio::test]
async fn works_when_a_strategy_of_several_files_imports_its_own_modules() {
    let platform = platform().await;
    let mut source = StrategySource::single(
        "main.py",
        "from rules.rates import fee\n\nasync def run(contact, existing_contact, logger, **kwargs):\n    contact.internal_data['fee'] = fee(contact.parameters['amount_due'])\n    return contact\n",
    );
    source.files.insert("rules/__init__.py".into(), String::new());
    source.files.insert("rules/rates.py".into(), "import decimal\nprint('rates loaded')\n\ndef fee(amount):\n    return str(decimal.Decimal(amount) / 4)\n".into());
    platform.try_load(&source, Limits::default()).await.expect("it loads");
    let invocation = run_probe(&platform.strategy(&source).expect("a strategy"), json!({"amount_due": 10}), &options()).await;
    assert_eq!(invocation.result.expect("runs").expect("a contact").internal_data["fee"], "2.5");
}

/// An exception in the top level is the strategy's build error, with the
/// place a build of a component of its own gives.
#[tokio::test]
async fn errors_as_a_build_does_when_top_level_code_raises() {
    let text = "RATES = {'a': 1}\n\nDEFAULT = RATES['b']\n";
    let source = StrategySource::single("app.py", text);
    let BuildError::Python(loaded) = platform().await.try_load(&source, Limits::default()).await.expect_err("it fails") else {
        panic!("not a Python error")
    };
    let BuildError::Python(built) = builder().build(&source).await.expect_err("the build fails") else { panic!("not a Python error") };
    assert_eq!(
        (loaded.type_name.as_str(), loaded.message.as_str(), loaded.file.as_deref(), loaded.line, loaded.source.as_deref()),
        ("KeyError", "'b'", Some("app.py"), Some(3), Some("DEFAULT = RATES['b']")),
    );
    assert_eq!((&loaded.type_name, &loaded.message, &loaded.file, loaded.line), (&built.type_name, &built.message, &built.file, built.line));
    assert!(loaded.traceback.contains("File \"app.py\", line 3, in <module>"), "{}", loaded.traceback);
}

#[tokio::test]
async fn errors_with_line_and_column_when_a_module_it_imports_has_a_syntax_error() {
    let mut source = StrategySource::single("main.py", "import helpers\n");
    source.files.insert("helpers.py".into(), "def f(:\n    pass\n".into());
    let BuildError::Python(loaded) = platform().await.try_load(&source, Limits::default()).await.expect_err("it fails") else {
        panic!("not a Python error")
    };
    assert_eq!(
        (loaded.type_name.as_str(), loaded.file.as_deref(), loaded.line, loaded.column),
        ("SyntaxError", Some("helpers.py"), Some(1), Some(7))
    );
}

/// Loading runs untrusted code: a call's fuel, time and memory limits hold
/// while it does, at the build and at run time.
#[tokio::test]
async fn errors_when_top_level_code_exceeds_the_limits_and_works_within_them() {
    let platform = platform().await;
    let quick = Limits { time: Duration::from_millis(300), ..Limits::default() };
    let within = StrategySource::single("app.py", "TABLE = [i * i for i in range(10_000)]\n");
    platform.try_load(&within, quick).await.expect("a small top level loads in time");

    let endless = StrategySource::single("app.py", "while True:\n    pass\n");
    let error = platform.try_load(&endless, quick).await.expect_err("it never ends");
    assert!(matches!(error, BuildError::Timeout(limit) if limit == quick.time), "{error:?}");
    let frugal = Limits { fuel: 1_000_000, time: Duration::from_secs(60), ..Limits::default() };
    let error = platform.try_load(&endless, frugal).await.expect_err("out of fuel");
    assert!(matches!(error, BuildError::Timeout(_)), "{error:?}");
    platform.try_load(&within, Limits { fuel: 200_000_000, ..frugal }).await.expect("enough fuel");

    let cramped = Limits { memory_bytes: 64 << 20, ..Limits::default() };
    let hungry = StrategySource::single("app.py", "BLOB = bytearray(100 << 20)\n");
    let error = platform.try_load(&hungry, cramped).await.expect_err("too big");
    assert!(matches!(error, BuildError::MemoryLimit { limit_bytes, .. } if limit_bytes == 64 << 20), "{error:?}");
    platform.try_load(&hungry, Limits { memory_bytes: 256 << 20, ..Limits::default() }).await.expect("it fits in more");

    // At run time, each new instance loads again under the invocation's limits.
    let strategy = platform.strategy(&hungry).expect("a strategy");
    let mut tight = options();
    tight.limits = cramped;
    let invocation = run_probe(&strategy, json!({}), &tight).await;
    let Err(InvokeError::MemoryLimit { limit_bytes, exception: Some(exception) }) = invocation.result else {
        panic!("not the memory limit: {:?}", invocation.result)
    };
    assert_eq!((limit_bytes, exception.traceback[0].line, exception.type_name.as_str()), (64 << 20, 1, "MemoryError"));
}

/// Each instance loads the sources afresh: a fresh instance per call sees
/// none of the last call's module state, a reused one keeps it.
#[tokio::test]
async fn works_when_each_instance_loads_the_sources_afresh() {
    let probe = in_platform(PROBE).await;
    for _ in 0..2 {
        let invocation = run_probe(&probe, json!({}), &options()).await;
        assert_eq!(invocation.result.expect("ok").expect("contact").internal_data["calls"], 1);
    }
    let mut reuse = options();
    reuse.isolation = Isolation::ReuseInstance;
    reuse.tenant = "platform-reuse".into();
    let mut seen = Vec::new();
    for _ in 0..3 {
        let invocation = run_probe(&probe, json!({}), &reuse).await;
        seen.push(invocation.result.expect("ok").expect("contact").internal_data["calls"].clone());
    }
    assert_eq!(seen, [json!(1), json!(2), json!(3)]);
}
