//! Deep Analysis: the latest run of the campaign's YAML metrics (status,
//! progress, Stop / Recalculate / Continue calculation), polled every 2 s
//! while it is in PROGRESS, and the results per metric (answers counted
//! per value as bars, the mean for numbers and scales).

use leptos::prelude::*;
use stratagem_types::analytics_file::MetricType;
use stratagem_types::deep_analysis::{AnalysisMode, AnalysisResults, AnalysisRun, AnalysisStart, AnalysisStatus, MetricResult};

use crate::api::{self, Problem};
use crate::util::{short_time, show_problem, value_bars, ProblemView};

/// The latest run of campaign `id`: `None` when there is none (the API's
/// 404).
async fn latest(id: String) -> Result<Option<AnalysisRun>, Problem> {
    match api::get(&format!("/api/campaigns/{}/analysis/runs/latest", api::enc(&id))).await {
        Ok(run) => Ok(Some(run)),
        Err(error) if error.status == 404 => Ok(None),
        Err(error) => Err(error),
    }
}

fn in_progress(run: &Option<AnalysisRun>) -> bool {
    run.as_ref().is_some_and(|r| r.status == AnalysisStatus::Progress)
}

/// The latest run with its progress; with `actions`, the Stop, Recalculate
/// and Continue calculation buttons. `run` is shared with the caller, which
/// may redraw what depends on it.
#[component]
pub fn RunStatus(id: String, run: RwSignal<Option<AnalysisRun>>, #[prop(optional)] actions: bool) -> impl IntoView {
    let id = StoredValue::new(id);
    let loaded = LocalResource::new(move || latest(id.get_value()));
    crate::util::every(2000, move || {
        if run.with_untracked(in_progress) {
            loaded.refetch();
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(latest)) = loaded.get() {
            run.set(latest);
        }
    });
    let problem = move || loaded.get().and_then(Result::err).map(|problem| view! { <ProblemView problem/> });
    let answered = Signal::derive(move || loaded.with(Option::is_some));
    view! {
        <div class="analysis-run" id="analysis-run">
            {move || match run.get() {
                None => view! { <p class="muted" id="analysis-none">{move || if answered.get() { "No analysis has run yet." } else { "Loading…" }}</p> }.into_any(),
                Some(run) => view! { <RunSummary run/> }.into_any(),
            }}
            {actions.then(|| view! { <RunActions id=id.get_value() run refresh=Callback::new(move |_| loaded.refetch())/> })}
            <Transition fallback=|| ()>{problem}</Transition>
        </div>
    }
}

/// A run's status, progress, mode, times, metrics and last error.
#[component]
fn RunSummary(run: AnalysisRun) -> impl IntoView {
    let status = run.status.as_str();
    let label = match run.status {
        AnalysisStatus::Progress => "Progress",
        AnalysisStatus::Done => "Done",
        AnalysisStatus::Stopped => "Stopped",
    };
    let (total, done, failed) = (run.total, run.done, run.failed);
    let mode = match run.mode {
        AnalysisMode::Continue => "Continue calculation",
        AnalysisMode::Recalculate => "Recalculate",
    };
    let metrics = run.metrics.join(", ");
    let when = match run.finished_at {
        None => format!("started {}", short_time(run.created_at)),
        Some(finished) => format!("started {}, finished {}", short_time(run.created_at), short_time(finished)),
    };
    let last_error = run.last_error.filter(|e| !e.is_empty());
    view! {
        <div class="row">
            <span id="analysis-status" class=format!("badge big status-{status}")>{label}</span>
            <progress max=total.max(1).to_string() value=done.min(total).to_string()></progress>
            <span id="analysis-progress">{format!("{done} of {total} sessions analysed")}
                {(failed > 0).then(|| view! { <span class="field-error">{format!(" · {failed} failed")}</span> })}
            </span>
        </div>
        <p class="muted">{format!("{mode} · {when}")}{(!metrics.is_empty()).then(|| format!(" · metrics: {metrics}"))}</p>
        {last_error.map(|error| view! { <div class="field-error" id="analysis-last-error">"Last error: " {error}</div> })}
    }
}

/// Stop, Recalculate, Continue calculation and Refresh.
#[component]
fn RunActions(id: String, run: RwSignal<Option<AnalysisRun>>, refresh: Callback<()>) -> impl IntoView {
    let id = StoredValue::new(id);
    let start = Action::new_local(move |mode: &AnalysisMode| {
        let path = format!("/api/campaigns/{}/analysis/runs", api::enc(&id.get_value()));
        let body = AnalysisStart { mode: *mode };
        async move { api::post::<AnalysisRun>(&path, &body).await }
    });
    let stop = Action::new_local(move |run_id: &String| {
        let path = format!("/api/campaigns/{}/analysis/runs/{}/stop", api::enc(&id.get_value()), api::enc(run_id));
        async move { api::post::<AnalysisRun>(&path, &serde_json::json!({})).await }
    });
    let problem = RwSignal::new(None::<Problem>);
    for action in [start.value(), stop.value()] {
        Effect::new(move |_| match action.get() {
            Some(Ok(value)) => {
                run.set(Some(value));
                problem.set(None);
            }
            Some(Err(error)) => problem.set(Some(error)),
            None => {}
        });
    }
    let busy = move || start.pending().get() || stop.pending().get();
    let running = Memo::new(move |_| run.with(in_progress));
    let on_stop = move |_| {
        if let Some(run_id) = run.with_untracked(|r| r.as_ref().map(|r| r.id.clone())) {
            stop.dispatch_local(run_id);
        }
    };
    view! {
        <div class="row">
            <button id="analysis-stop" disabled=move || !running.get() || busy() on:click=on_stop>"Stop"</button>
            <button id="analysis-recalculate" title="Analyse every metric again over the YAML's depth"
                disabled=move || running.get() || busy() on:click=move |_| { start.dispatch_local(AnalysisMode::Recalculate); }>"Recalculate"</button>
            <button id="analysis-continue" title="Analyse only the metrics new in the uploaded YAML"
                disabled=move || running.get() || busy() on:click=move |_| { start.dispatch_local(AnalysisMode::Continue); }>"Continue calculation"</button>
            <button class="link" on:click=move |_| refresh.run(())>"Refresh"</button>
        </div>
        <div id="analysis-problem">{show_problem(problem)}</div>
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
    let run = RwSignal::new(None::<AnalysisRun>);
    // Results follow the run: reloaded whenever its progress changes.
    let progress = Memo::new(move |_| run.with(|r| r.as_ref().map(|r| (r.id.clone(), r.status, r.done))));
    let path = format!("/api/campaigns/{}/analysis/results", api::enc(&id));
    let results = LocalResource::new(move || {
        progress.track();
        let path = path.clone();
        async move { api::get::<AnalysisResults>(&path).await }
    });
    view! {
        <div id="deep-analysis">
            <h3>"Deep Analysis"</h3>
            <p class="muted">"The metrics of the campaign's YAML analytics, answered by its LLM for each conversation. Upload the YAML and run the analysis in Settings."</p>
            <RunStatus id run/>
            <div id="deep-analysis-problem">
                <Transition fallback=|| ()>{move || results.get().and_then(Result::err).map(|problem| view! { <ProblemView problem/> })}</Transition>
            </div>
            <Transition fallback=|| ()>
                {move || results.get().and_then(Result::ok).map(|r| {
                    if r.metrics.is_empty() {
                        return view! { <p class="empty">"No metrics yet: upload a YAML analytics file in Settings."</p> }.into_any();
                    }
                    view! { <div class="metrics">{r.metrics.into_iter().map(|metric| view! { <MetricCard metric/> }).collect_view()}</div> }.into_any()
                })}
            </Transition>
        </div>
    }
}

/// One metric: its answers counted per value as horizontal bars, the mean
/// for number and scale metrics.
#[component]
fn MetricCard(metric: MetricResult) -> impl IntoView {
    let mut values: Vec<(String, i64)> = metric.values.into_iter().collect();
    // Numbers and scales read best in their order; categories by count.
    let kind = metric.kind.type_of();
    if matches!(kind, MetricType::Number | MetricType::Scale) {
        values.sort_by(|a, b| a.0.parse::<f64>().ok().partial_cmp(&b.0.parse::<f64>().ok()).unwrap_or(std::cmp::Ordering::Equal));
    } else {
        values.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    }
    let answered: i64 = values.iter().map(|v| v.1).sum();
    let mean = metric.mean.map(|m| format!("{m:.2}"));
    let errors = metric.errors;
    view! {
        <section class="card metric" id=format!("metric-{}", metric.code)>
            <div class="row">
                <h4>{metric.name}</h4>
                <span class="badge">{kind.as_str()}</span>
                {mean.map(|m| view! { <span class="metric-mean">"Mean " <strong>{m}</strong></span> })}
            </div>
            <p class="muted">{metric.description}</p>
            {if answered == 0 {
                view! { <p class="empty">"No answers yet."</p> }.into_any()
            } else {
                value_bars(values).into_any()
            }}
            <p class="muted">{format!("{} sessions analysed", metric.sessions)}
                {(errors > 0).then(|| view! { <span class="field-error">{format!(" · {errors} without an answer (LLM errors)")}</span> })}
            </p>
        </section>
    }
}
