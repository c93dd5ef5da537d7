//! What the service keeps of each strategy invocation: its outcome, log
//! and usage always; its input (and output) for every failed call and one
//! successful call in [`SAMPLE_EVERY`], so it can be replayed.

use std::sync::atomic::{AtomicU64, Ordering};

use stratagem_runtime::{Hook, Invocation, InvokeOptions, Strategy};
use stratagem_domain::invocation::InvocationRecord;
use stratagem_store::NewInvocation;

/// One successful invocation in this many keeps its input and output.
pub const SAMPLE_EVERY: u64 = 100;

static SUCCESSES: AtomicU64 = AtomicU64::new(0);

/// Whether this successful call is in the sample (the first one on a node
/// is, then every `SAMPLE_EVERY`th).
fn sampled() -> bool {
    SUCCESSES.fetch_add(1, Ordering::Relaxed).is_multiple_of(SAMPLE_EVERY)
}

/// The hook's arguments and the campaign as the strategy saw it.
fn input(hook: &Hook, options: &InvokeOptions) -> serde_json::Value {
    let mut input = hook.input();
    if let (Some(fields), Ok(campaign)) = (input.as_object_mut(), serde_json::to_value(&options.campaign)) {
        fields.insert("campaign".into(), campaign);
    }
    input
}

/// The record of `invocation`, which ran `hook` of `strategy` under
/// `options`; `import_job_id` names the import whose row it ran for.
pub fn record(strategy: &Strategy, hook: &Hook, options: &InvokeOptions, invocation: &Invocation, import_job_id: Option<&str>) -> NewInvocation {
    let (outcome, error, message) = match &invocation.result {
        Ok(_) => ("ok".to_owned(), None, None),
        Err(error) => (error.kind().to_owned(), serde_json::to_value(error).ok(), Some(error.to_string())),
    };
    let keep_input = invocation.result.is_err() || sampled();
    let output = match &invocation.result {
        Ok(Some(contact)) if keep_input => serde_json::to_value(contact).ok(),
        _ => None,
    };
    NewInvocation {
        tenant_id: options.tenant.clone(),
        record: InvocationRecord {
            id: NewInvocation::new_id(),
            campaign_id: options.campaign.id.clone(),
            hook: hook.strategy_type(),
            component_hash: strategy.content_hash().to_owned(),
            object_id: hook.contact().object_id.clone(),
            import_job_id: import_job_id.map(str::to_owned),
            started_at: invocation.started_at,
            outcome,
            error,
            message,
            logs: invocation.logs.clone(),
            dropped_log_records: invocation.dropped_log_records as u64,
            fuel: invocation.usage.fuel,
            peak_memory_bytes: invocation.usage.peak_memory_bytes as u64,
            duration_us: invocation.usage.duration.as_micros().min(u64::MAX as u128) as u64,
            http_calls: invocation.usage.http_calls,
            replayable: keep_input,
        },
        input: keep_input.then(|| input(hook, options)),
        output,
        limits: keep_input.then(|| serde_json::to_value(options.limits).ok()).flatten(),
    }
}
