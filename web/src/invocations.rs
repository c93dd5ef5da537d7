//! What strategies did, wherever it is asked: a contact's invocations in
//! its history, a failed import row's log in the import report, and a
//! strategy version's recent invocations with error rate and median fuel.

use leptos::prelude::*;
use stratagem_types::invocation::{InvocationDetail, InvocationRecord, LogRecord, VersionInvocations};

use crate::api::{self, Problem};
use crate::util::{short_time, ProblemView};

/// Invocations newest first: when, which hook, how it went and what it
/// used; each opens to its log and error.
#[component]
pub fn InvocationList(invocations: Vec<InvocationRecord>) -> impl IntoView {
    if invocations.is_empty() {
        return view! { <p class="muted">"No strategy has run for it within the retention period."</p> }.into_any();
    }
    let rows = invocations.into_iter().map(|invocation| view! { <InvocationRow invocation/> }).collect_view();
    view! { <div class="invocations">{rows}</div> }.into_any()
}

#[component]
fn InvocationRow(invocation: InvocationRecord) -> impl IntoView {
    let failed = invocation.outcome != "ok";
    let outcome = if failed { invocation.outcome.replace('_', " ") } else { "ok".into() };
    let calls = match invocation.http_calls {
        0 => String::new(),
        1 => " · 1 HTTP call".to_owned(),
        n => format!(" · {n} HTTP calls"),
    };
    let summary = format!(
        "{} · {} · {} fuel · {:.1} ms · {:.1} MiB{calls}",
        short_time(invocation.started_at),
        invocation.hook.as_str(),
        grouped(invocation.fuel),
        invocation.duration_us as f64 / 1000.0,
        invocation.peak_memory_bytes as f64 / (1 << 20) as f64,
    );
    let replay = invocation.replayable.then(|| {
        view! { <div class="muted">"Replay locally: " <code>{format!("stratagem strategy replay {}", invocation.id)}</code></div> }
    });
    view! {
        <details class=if failed { "invocation invocation-failed" } else { "invocation" } data-id=invocation.id.clone()>
            <summary>
                <span class=format!("badge outcome-{}", invocation.outcome)>{outcome}</span>
                " " {summary}
            </summary>
            {invocation.message.clone().map(|message| view! { <pre class="error">{message}</pre> })}
            {log_view(&invocation.logs, invocation.dropped_log_records)}
            {replay}
        </details>
    }
}

fn log_view(logs: &[LogRecord], dropped: u64) -> impl IntoView {
    let lines = logs
        .iter()
        .map(|line| {
            let level = serde_json::to_value(line.level).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
            view! { <div class=format!("log-line log-{level}")><span class="log-level">{level.to_uppercase()}</span> " " {line.logger.clone()} ": " {line.message.clone()}</div> }
        })
        .collect_view();
    let empty = logs.is_empty().then(|| view! { <div class="muted">"It logged nothing."</div> });
    let dropped = (dropped > 0).then(|| view! { <div class="muted">{format!("{dropped} more log records were dropped: the call logged more than its limit.")}</div> });
    view! { <div class="log">{lines}{empty}{dropped}</div> }
}

/// 1234567 → "1,234,567".
fn grouped(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// The log of one invocation, loaded when asked for (the import report
/// names each failed row's invocation).
#[component]
pub fn InvocationLog(id: String) -> impl IntoView {
    let open = RwSignal::new(false);
    let path = format!("/api/invocations/{}", api::enc(&id));
    let detail = LocalResource::new(move || {
        let (path, open) = (path.clone(), open.get());
        async move {
            if open {
                Some(api::get::<InvocationDetail>(&path).await)
            } else {
                None
            }
        }
    });
    view! {
        <button class="link show-log" on:click=move |_| open.update(|o| *o = !*o)>
            {move || if open.get() { "Hide its log" } else { "Show its log" }}
        </button>
        <Suspense fallback=|| ()>
            {move || detail.get().flatten().map(|reply| match reply {
                Ok(detail) => view! {
                    <div class="invocation-log">
                        {log_view(&detail.record.logs, detail.record.dropped_log_records)}
                        <div class="muted">"Replay locally: " <code>{format!("stratagem strategy replay {}", detail.record.id)}</code></div>
                    </div>
                }.into_any(),
                Err(problem) => view! { <ProblemView problem/> }.into_any(),
            })}
        </Suspense>
    }
}

/// A strategy version's invocations: how many, the error rate, median fuel
/// and duration, and the newest ones.
#[component]
pub fn VersionInvocationsCard(strategy_id: String, version: i64) -> impl IntoView {
    let path = format!("/api/strategies/{}/versions/{version}/invocations", api::enc(&strategy_id));
    let stats: LocalResource<Result<VersionInvocations, Problem>> = LocalResource::new(move || {
        let path = path.clone();
        async move { api::get(&path).await }
    });
    crate::util::every(5000, move || stats.refetch());
    view! {
        <div class="card" id="version-invocations">
            <h4>{format!("Recent runs of v{version}")}</h4>
            <Transition fallback=|| ()>
                {move || stats.get().map(|reply| match reply {
                    Ok(stats) => {
                        let median = |value: Option<u64>, show: fn(u64) -> String| value.map(show).unwrap_or_else(|| "—".into());
                        view! {
                            <div class="counts">
                                <span id="version-invocation-count">{format!("Runs: {}", stats.invocations)}</span>
                                <span id="version-error-rate">{format!("Failed: {} ({:.1} %)", stats.errors, stats.error_rate * 100.0)}</span>
                                <span id="version-median-fuel">{format!("Median fuel: {}", median(stats.median_fuel, grouped))}</span>
                                <span>{format!("Median time: {}", median(stats.median_duration_us, |us| format!("{:.1} ms", us as f64 / 1000.0)))}</span>
                            </div>
                            <InvocationList invocations=stats.recent/>
                        }.into_any()
                    }
                    Err(problem) => view! { <ProblemView problem/> }.into_any(),
                })}
            </Transition>
        </div>
    }
}
