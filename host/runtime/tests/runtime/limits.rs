//! Every limit, obeyed and violated, with the exact error.

use std::time::Duration;

use serde_json::json;
use stratagem_runtime::{HttpPolicy, InvokeError, Limits};

use crate::support::{http_server, new_runtime, load_with, options, run_probe, strategy, PROBE};

#[tokio::test]
async fn works_when_fuel_suffices_and_reports_fuel_used() {
    let probe = strategy(PROBE).await;
    let invocation = run_probe(&probe, json!({"case": "ok"}), &options()).await;
    let contact = invocation.result.expect("ok").expect("a contact");
    assert_eq!(contact.internal_data["calls"], 1);
    let usage = invocation.usage;
    assert!(usage.fuel > 0 && usage.fuel < Limits::default().fuel, "{usage:?}");
    assert!(usage.peak_memory_bytes > 1 << 20, "{usage:?}");
    assert!(usage.duration > Duration::ZERO);
}

#[tokio::test]
async fn errors_when_fuel_runs_out_in_an_endless_loop() {
    let probe = strategy(PROBE).await;
    let mut options = options();
    options.limits.fuel = 50_000_000;
    options.limits.time = Duration::from_secs(60);
    let invocation = run_probe(&probe, json!({"case": "loop"}), &options).await;
    assert_eq!(invocation.result, Err(InvokeError::FuelExhausted { budget: 50_000_000 }));
    assert_eq!(invocation.usage.fuel, 50_000_000);
}

#[tokio::test]
async fn errors_when_cpu_time_runs_out_before_fuel() {
    let probe = strategy(PROBE).await;
    let mut options = options();
    options.limits.fuel = u64::MAX / 2;
    options.limits.time = Duration::from_millis(200);
    let invocation = run_probe(&probe, json!({"case": "loop"}), &options).await;
    assert_eq!(invocation.result, Err(InvokeError::TimeLimit { limit_ms: 200 }));
}

#[tokio::test]
async fn works_when_a_host_call_returns_within_the_time_limit() {
    let runtime = new_runtime();
    let probe = load_with(&runtime, PROBE).await;
    let server = http_server().await;
    let mut options = options();
    options.http = HttpPolicy { allowed_hosts: vec![server.clone()], ..HttpPolicy::default() };
    options.limits.time = Duration::from_secs(5);
    let invocation = run_probe(&probe, json!({"case": "http", "url": format!("http://{server}/ok")}), &options).await;
    let contact = invocation.result.expect("ok").expect("contact");
    assert_eq!(contact.internal_data["status"], 200);
}

#[tokio::test]
async fn errors_when_a_host_call_stalls_past_the_time_limit() {
    let runtime = new_runtime();
    let probe = load_with(&runtime, PROBE).await;
    let server = http_server().await;
    let mut options = options();
    // The HTTP timeout alone would wait 30 s; the invocation's 300 ms wins.
    options.http =
        HttpPolicy { allowed_hosts: vec![server.clone()], timeout: Duration::from_secs(30), ..HttpPolicy::default() };
    options.limits.time = Duration::from_millis(300);
    let started = std::time::Instant::now();
    let invocation = run_probe(&probe, json!({"case": "http", "url": format!("http://{server}/slow")}), &options).await;
    assert_eq!(invocation.result, Err(InvokeError::TimeLimit { limit_ms: 300 }));
    assert!(started.elapsed() < Duration::from_secs(10), "the stall was cut short");
}

#[tokio::test]
async fn works_when_memory_stays_under_the_limit() {
    let probe = strategy(PROBE).await;
    let mut options = options();
    options.limits.memory_bytes = 128 << 20;
    let invocation = run_probe(&probe, json!({"case": "alloc", "mib": 32}), &options).await;
    let contact = invocation.result.expect("ok").expect("contact");
    assert_eq!(contact.internal_data["allocated_mib"], 32);
    assert!(invocation.usage.peak_memory_bytes >= 32 << 20, "{:?}", invocation.usage);
    assert!(invocation.usage.peak_memory_bytes <= 128 << 20);
}

#[tokio::test]
async fn errors_when_an_allocation_bomb_hits_the_memory_limit() {
    let probe = strategy(PROBE).await;
    let mut options = options();
    options.limits.memory_bytes = 128 << 20;
    let invocation = run_probe(&probe, json!({"case": "alloc", "mib": 4096}), &options).await;
    match invocation.result {
        Err(InvokeError::MemoryLimit { limit_bytes, exception }) => {
            assert_eq!(limit_bytes, 128 << 20);
            // CPython turns the refused growth into a MemoryError at the user's line.
            let exception = exception.expect("the MemoryError is kept");
            assert_eq!(exception.type_name, "MemoryError");
            assert_eq!(exception.traceback.last().map(|f| f.file.as_str()), Some("probe.py"));
        }
        other => panic!("expected MemoryLimit, got {other:?}"),
    }
    assert!(invocation.usage.peak_memory_bytes <= 128 << 20);
}

#[tokio::test]
async fn errors_when_one_allocation_is_larger_than_the_sandbox_can_address() {
    let probe = strategy(PROBE).await;
    let mut options = options();
    options.limits.memory_bytes = 128 << 20;
    let invocation = run_probe(&probe, json!({"case": "alloc_once", "mib": 4096}), &options).await;
    match invocation.result {
        // wasm32 CPython refuses a 4 GiB size with OverflowError; it is still the memory limit.
        Err(error @ InvokeError::MemoryLimit { limit_bytes, .. }) => {
            assert_eq!(limit_bytes, 128 << 20);
            assert!(error.to_string().starts_with("memory limit: the strategy needed more than 134217728 bytes of memory\nTraceback"), "{error}");
            let InvokeError::MemoryLimit { exception: Some(exception), .. } = error else { panic!("the exception is kept") };
            assert_eq!(exception.traceback.last().map(|f| f.file.as_str()), Some("probe.py"));
        }
        other => panic!("expected MemoryLimit, got {other:?}"),
    }
}

#[tokio::test]
async fn works_when_one_allocation_fits_the_memory_limit() {
    let probe = strategy(PROBE).await;
    let mut options = options();
    options.limits.memory_bytes = 128 << 20;
    let invocation = run_probe(&probe, json!({"case": "alloc_once", "mib": 16}), &options).await;
    assert_eq!(invocation.result.expect("ok").expect("contact").internal_data["allocated_mib"], 16);
}

#[tokio::test]
async fn works_when_output_is_under_the_cap() {
    let probe = strategy(PROBE).await;
    let invocation = run_probe(&probe, json!({"case": "output", "bytes": 2000}), &options()).await;
    assert!(invocation.result.expect("ok").is_some());
}

#[tokio::test]
async fn errors_when_output_exceeds_the_cap() {
    let probe = strategy(PROBE).await;
    let mut options = options();
    options.limits.output_bytes = 1 << 20;
    let invocation = run_probe(&probe, json!({"case": "output", "bytes": 4 << 20}), &options).await;
    match invocation.result {
        Err(InvokeError::OutputTooLarge { size_bytes, limit_bytes }) => {
            assert_eq!(limit_bytes, 1 << 20);
            assert!(size_bytes > 4 << 20, "{size_bytes}");
        }
        other => panic!("expected OutputTooLarge, got {other:?}"),
    }
}

#[tokio::test]
async fn works_when_logs_fit_and_drops_and_counts_the_excess() {
    let probe = strategy(PROBE).await;
    let fits = run_probe(&probe, json!({"case": "log_flood", "lines": 10}), &options()).await;
    assert_eq!((fits.logs.len(), fits.dropped_log_records), (10, 0));

    let mut options = options();
    options.limits.log_bytes = 10_000;
    let flood = run_probe(&probe, json!({"case": "log_flood", "lines": 1000}), &options).await;
    assert!(flood.result.is_ok(), "a log flood does not fail the strategy");
    let kept: usize = flood.logs.iter().map(|r| r.logger.len() + r.message.len()).sum();
    assert!(kept <= 10_000, "{kept}");
    assert_eq!(flood.logs.len() + flood.dropped_log_records, 1000);
}
