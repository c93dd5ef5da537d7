//! What each isolation mode guarantees about module-level state.

use serde_json::json;
use stratagem_runtime::{InvokeOptions, Isolation, Strategy};

use crate::support::{options, run_probe, strategy, PROBE};

async fn calls_seen(probe: &Strategy, options: &InvokeOptions, case: &str) -> Option<u64> {
    let invocation = run_probe(probe, json!({"case": case}), options).await;
    invocation.result.ok().flatten().and_then(|c| c.internal_data["calls"].as_u64())
}

#[tokio::test]
async fn works_when_fresh_instances_share_nothing_between_invocations() {
    let probe = strategy(PROBE).await;
    for _ in 0..3 {
        let invocation = run_probe(&probe, json!({}), &options()).await;
        assert!(!invocation.reused_instance);
        assert_eq!(invocation.result.expect("ok").expect("contact").internal_data["calls"], 1);
    }
}

#[tokio::test]
async fn works_when_a_reused_instance_keeps_state_only_within_one_tenant() {
    let probe = strategy(PROBE).await;
    let mut tenant_a = options();
    tenant_a.isolation = Isolation::ReuseInstance;
    tenant_a.tenant = "isolation-a".into();
    let mut tenant_b = tenant_a.clone();
    tenant_b.tenant = "isolation-b".into();

    let mut seen = Vec::new();
    for _ in 0..3 {
        let invocation = run_probe(&probe, json!({}), &tenant_a).await;
        seen.push((invocation.reused_instance, invocation.result.expect("ok").expect("c").internal_data["calls"].clone()));
    }
    assert_eq!(seen, [(false, json!(1)), (true, json!(2)), (true, json!(3))]);

    // Another tenant never sees tenant A's instance.
    let other = run_probe(&probe, json!({}), &tenant_b).await;
    assert_eq!((other.reused_instance, other.result.expect("ok").expect("c").internal_data["calls"].clone()), (false, json!(1)));

    // An error discards the instance: the next call starts from the snapshot.
    assert!(run_probe(&probe, json!({"case": "raise"}), &tenant_a).await.result.is_err());
    let after_error = run_probe(&probe, json!({}), &tenant_a).await;
    assert!(!after_error.reused_instance);
    assert_eq!(after_error.result.expect("ok").expect("c").internal_data["calls"], 1);
}

#[tokio::test]
async fn works_when_a_trap_discards_the_reused_instance() {
    let mut options = options();
    options.isolation = Isolation::ReuseInstance;
    options.tenant = "isolation-trap".into();
    options.limits.fuel = 100_000_000;
    let probe = strategy(PROBE).await;
    assert_eq!(calls_seen(&probe, &options, "ok").await, Some(1));
    assert_eq!(calls_seen(&probe, &options, "ok").await, Some(2), "healthy instances are reused");
    assert_eq!(calls_seen(&probe, &options, "loop").await, None);
    assert_eq!(calls_seen(&probe, &options, "ok").await, Some(1), "the trapped instance was not reused");
}

#[tokio::test]
async fn works_when_idle_instances_never_fill_the_pool() {
    // 4 slots: at most 2 may sit idle, so fresh work always finds a slot.
    let cache = crate::support::cache_dir();
    let runtime = std::sync::Arc::new(
        stratagem_runtime::Runtime::new(stratagem_runtime::RuntimeConfig { cache_dir: cache, max_instances: 4, max_memory_bytes: 256 << 20, ..Default::default() })
            .expect("runtime"),
    );
    let probe = crate::support::load_with(&runtime, PROBE).await;
    let mut reuse = options();
    reuse.isolation = Isolation::ReuseInstance;
    for tenant in ["t1", "t2", "t3", "t4", "t5"] {
        reuse.tenant = tenant.into();
        assert!(run_probe(&probe, json!({}), &reuse).await.result.is_ok(), "tenant {tenant}");
    }
    let fresh = run_probe(&probe, json!({}), &options()).await;
    assert!(fresh.result.is_ok(), "{:?}", fresh.result);
}
