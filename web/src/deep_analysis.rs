//! Deep Analysis: the latest run of the campaign's YAML metrics (status,
//! progress, Stop / Recalculate / Continue calculation), polled every 2 s
//! while it is in PROGRESS, and the results per metric (answers counted
//! per value as bars, the mean for numbers and scales).

use leptos::prelude::*;
use serde_json::{json, Value};

use crate::api::{self, Problem};
use crate::util::{int, items, short_time, show_problem, text, value_bars};

/// The latest run of campaign `id` into `run` (and `loaded` once the API
/// answered): `None` when there is none (the API's 404), the problem of any
/// other failure into `problem`.
fn load_latest(id: String, run: RwSignal<Option<Value>>, problem: RwSignal<Option<Problem>>, loaded: RwSignal<bool>) {
    leptos::task::spawn_local(async move {
        let reply = api::get(&format!("/api/campaigns/{id}/analysis/runs/latest")).await;
        loaded.set(true);
        match reply {
            Ok(value) => {
                run.set(Some(value));
                problem.set(None);
            }
            Err(error) if error.status == 404 => {
                run.set(None);
                problem.set(None);
            }
            Err(error) => problem.set(Some(error)),
        }
    });
}

fn in_progress(run: &Option<Value>) -> bool {
    run.as_ref().is_some_and(|r| text(r, "status") == "PROGRESS")
}

/// The latest run with its progress; with `actions`, the Stop, Recalculate
/// and Continue calculation buttons. `run` is shared with the caller, which
/// may redraw what depends on it.
#[component]
pub fn RunStatus(id: String, run: RwSignal<Option<Value>>, #[prop(optional)] actions: bool) -> impl IntoView {
    let problem = RwSignal::new(None::<Problem>);
    let action_problem = RwSignal::new(None::<Problem>);
    let busy = RwSignal::new(false);
    let loaded = RwSignal::new(false);
    let id = StoredValue::new(id);
    let load = move || load_latest(id.get_value(), run, problem, loaded);
    load();
    crate::util::every(2000, move || {
        if run.with_untracked(in_progress) {
            load();
        }
    });

    let start = move |mode: &'static str| {
        let id = id.get_value();
        busy.set(true);
        leptos::task::spawn_local(async move {
            match api::post(&format!("/api/campaigns/{id}/analysis/runs"), &json!({"mode": mode})).await {
                Ok(value) => {
                    run.set(Some(value));
                    action_problem.set(None);
                }
                Err(error) => action_problem.set(Some(error)),
            }
            busy.set(false);
        });
    };
    let stop = move |_| {
        let id = id.get_value();
        let Some(run_id) = run.with_untracked(|r| r.as_ref().map(|r| text(r, "id"))) else { return };
        busy.set(true);
        leptos::task::spawn_local(async move {
            match api::post(&format!("/api/campaigns/{id}/analysis/runs/{run_id}/stop"), &json!({})).await {
                Ok(value) => {
                    run.set(Some(value));
                    action_problem.set(None);
                }
                Err(error) => action_problem.set(Some(error)),
            }
            busy.set(false);
        });
    };
    let running = Memo::new(move |_| run.with(in_progress));

    let summary = move || match run.get() {
        None => view! { <p class="muted" id="analysis-none">{move || if loaded.get() { "No analysis has run yet." } else { "Loading…" }}</p> }.into_any(),
        Some(r) => {
            let status = text(&r, "status");
            let (total, done, failed) = (int(&r, "total"), int(&r, "done"), int(&r, "failed"));
            let mode = match text(&r, "mode").as_str() {
                "CONTINUE" => "Continue calculation",
                _ => "Recalculate",
            };
            let metrics = items(&r["metrics"]).iter().filter_map(|m| m.as_str().map(str::to_owned)).collect::<Vec<_>>().join(", ");
            let finished = text(&r, "finished_at");
            let when = if finished.is_empty() {
                format!("started {}", short_time(&text(&r, "created_at")))
            } else {
                format!("started {}, finished {}", short_time(&text(&r, "created_at")), short_time(&finished))
            };
            let last_error = text(&r, "last_error");
            let label = match status.as_str() {
                "PROGRESS" => "Progress",
                "DONE" => "Done",
                "STOPPED" => "Stopped",
                _ => "",
            };
            view! {
                <div class="row">
                    <span id="analysis-status" class=format!("badge big status-{status}")>{if label.is_empty() { status.clone() } else { label.to_owned() }}</span>
                    <progress max=total.max(1).to_string() value=done.min(total).to_string()></progress>
                    <span id="analysis-progress">{format!("{done} of {total} sessions analysed")}
                        {(failed > 0).then(|| view! { <span class="field-error">{format!(" · {failed} failed")}</span> })}
                    </span>
                </div>
                <p class="muted">{format!("{mode} · {when}")}{(!metrics.is_empty()).then(|| format!(" · metrics: {metrics}"))}</p>
                {(!last_error.is_empty()).then(|| view! { <div class="field-error" id="analysis-last-error">"Last error: " {last_error}</div> })}
            }
            .into_any()
        }
    };

    view! {
        <div class="analysis-run" id="analysis-run">
            {summary}
            {actions.then(|| view! {
                <div class="row">
                    <button id="analysis-stop" disabled=move || !running.get() || busy.get() on:click=stop>"Stop"</button>
                    <button id="analysis-recalculate" title="Analyse every metric again over the YAML's depth"
                        disabled=move || running.get() || busy.get() on:click=move |_| start("RECALCULATE")>"Recalculate"</button>
                    <button id="analysis-continue" title="Analyse only the metrics new in the uploaded YAML"
                        disabled=move || running.get() || busy.get() on:click=move |_| start("CONTINUE")>"Continue calculation"</button>
                    <button class="link" on:click=move |_| load()>"Refresh"</button>
                </div>
            })}
            {show_problem(problem)}
            <div id="analysis-problem">{show_problem(action_problem)}</div>
        </div>
    }
}

/// The Deep Analysis view of the analytics panel: the run and the results.
/// `/campaigns/:id/analytics/deep-analysis`.
#[component]
pub fn DeepAnalysisTab() -> impl IntoView {
    let id = crate::campaign::open().id;
    move || {
        let id = id.get();
        view! {
            <a class="link" id="back-to-overview" href=format!("/campaigns/{id}/analytics")>"← Performance overview"</a>
            <DeepAnalysis id/>
        }
    }
}

#[component]
pub fn DeepAnalysis(id: String) -> impl IntoView {
    let run = RwSignal::new(None::<Value>);
    let results = RwSignal::new(None::<Value>);
    let problem = RwSignal::new(None::<Problem>);
    let id = StoredValue::new(id);
    // Results follow the run: reloaded whenever its progress changes.
    let progress = Memo::new(move |_| run.with(|r| r.as_ref().map(|r| (text(r, "id"), text(r, "status"), int(r, "done")))));
    Effect::new(move |_| {
        progress.track();
        let id = id.get_value();
        leptos::task::spawn_local(async move {
            match api::get(&format!("/api/campaigns/{id}/analysis/results")).await {
                Ok(value) => {
                    results.set(Some(value));
                    problem.set(None);
                }
                Err(error) => problem.set(Some(error)),
            }
        });
    });
    view! {
        <div id="deep-analysis">
            <h3>"Deep Analysis"</h3>
            <p class="muted">"The metrics of the campaign's YAML analytics, answered by its LLM for each conversation. Upload the YAML and run the analysis in Settings."</p>
            <RunStatus id=id.get_value() run/>
            <div id="deep-analysis-problem">{show_problem(problem)}</div>
            {move || results.get().map(|r| {
                let metrics = items(&r["metrics"]);
                if metrics.is_empty() {
                    return view! { <p class="empty">"No metrics yet: upload a YAML analytics file in Settings."</p> }.into_any();
                }
                view! { <div class="metrics">{metrics.iter().map(metric_card).collect_view()}</div> }.into_any()
            })}
        </div>
    }
}

/// One metric: its answers counted per value as horizontal bars, the mean
/// for number and scale metrics.
fn metric_card(metric: &Value) -> impl IntoView {
    let mut values: Vec<(String, i64)> =
        metric["values"].as_object().map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_i64().unwrap_or(0))).collect()).unwrap_or_default();
    // Numbers and scales read best in their order; categories by count.
    let kind = text(metric, "type");
    if matches!(kind.as_str(), "number" | "scale") {
        values.sort_by(|a, b| a.0.parse::<f64>().ok().partial_cmp(&b.0.parse::<f64>().ok()).unwrap_or(std::cmp::Ordering::Equal));
    } else {
        values.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    }
    let answered: i64 = values.iter().map(|v| v.1).sum();
    let mean = metric["mean"].as_f64().map(|m| format!("{m:.2}"));
    let errors = int(metric, "errors");
    view! {
        <section class="card metric" id=format!("metric-{}", text(metric, "code"))>
            <div class="row">
                <h4>{text(metric, "name")}</h4>
                <span class="badge">{kind.clone()}</span>
                {mean.map(|m| view! { <span class="metric-mean">"Mean " <strong>{m}</strong></span> })}
            </div>
            <p class="muted">{text(metric, "description")}</p>
            {if answered == 0 {
                view! { <p class="empty">"No answers yet."</p> }.into_any()
            } else {
                value_bars(values).into_any()
            }}
            <p class="muted">{format!("{} sessions analysed", int(metric, "sessions"))}
                {(errors > 0).then(|| view! { <span class="field-error">{format!(" · {errors} without an answer (LLM errors)")}</span> })}
            </p>
        </section>
    }
}
