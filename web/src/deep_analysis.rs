//! Deep Analysis: the latest run of the campaign's YAML metrics (status,
//! progress, Stop / Recalculate / Continue calculation), polled every 2 s
//! while it is in PROGRESS, and the results per metric (answers counted
//! per value as bars, the mean for numbers and scales).

use leptos::prelude::*;
use stratagem_types::analytics_file::{Display, MetricType};
use stratagem_types::deep_analysis::{AnalysisMode, AnalysisResults, AnalysisRun, AnalysisStart, AnalysisStatus, DayResult, MetricResult};

use crate::analytics::COLORS;

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
    let mode = match (run.mode, run.scheduled) {
        (_, true) => "Scheduled (the YAML's schedule)",
        (AnalysisMode::Continue, false) => "Continue calculation",
        (AnalysisMode::Recalculate, false) => "Recalculate",
    };
    let skipped = run.skipped;
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
        {(skipped > 0).then(|| view! {
            <p class="muted" id="analysis-skipped">{format!(
                "{skipped} session{} skipped: no transcript (one-way messages, simulated or operator sessions, unanswered calls) — nothing to ask the LLM about.",
                if skipped == 1 { "" } else { "s" }
            )}</p>
        })}
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

/// One metric, charted as its YAML `display` says: bars, a pie, a line
/// of the daily mean, one number, a histogram or a table.
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
    let mean_text = |mean: f64| match kind {
        MetricType::Boolean => format!("{:.0} % yes", mean * 100.0),
        _ => format!("{mean:.2}"),
    };
    let mean = metric.mean.map(mean_text);
    let errors = metric.errors;
    let chart = if answered == 0 {
        view! { <p class="empty">"No answers yet."</p> }.into_any()
    } else {
        match metric.display {
            Display::Bar => value_bars(values).into_any(),
            Display::Pie => pie(values).into_any(),
            Display::Table => value_table(values).into_any(),
            Display::Histogram => value_bars(histogram(&values)).into_any(),
            Display::Number => {
                let big = metric.mean.map(mean_text).unwrap_or_else(|| answered.to_string());
                view! { <p class="big-number">{big}</p> }.into_any()
            }
            Display::Line => daily_line(&metric.by_day, mean_text).into_any(),
        }
    };
    view! {
        <section class="card metric" id=format!("metric-{}", metric.code) data-display=metric.display.as_str()>
            <div class="row">
                <h4>{metric.name}</h4>
                <span class="badge">{kind.as_str()}</span>
                {mean.map(|m| view! { <span class="metric-mean">"Mean " <strong>{m}</strong></span> })}
            </div>
            <p class="muted">{metric.description}</p>
            {chart}
            <p class="muted">{format!("{} sessions analysed", metric.sessions)}
                {(errors > 0).then(|| view! { <span class="field-error">{format!(" · {errors} without an answer (LLM errors)")}</span> })}
            </p>
        </section>
    }
}

/// Each value's share as a slice, with a legend that gives the numbers.
fn pie(values: Vec<(String, i64)>) -> impl IntoView {
    let total: i64 = values.iter().map(|v| v.1).sum::<i64>().max(1);
    let mut angle = -std::f64::consts::FRAC_PI_2;
    let point = |angle: f64| (50.0 + 45.0 * angle.cos(), 50.0 + 45.0 * angle.sin());
    let slices = values
        .iter()
        .enumerate()
        .map(|(index, (value, count))| {
            let color = COLORS[index % COLORS.len()];
            let sweep = *count as f64 / total as f64 * std::f64::consts::TAU;
            let tip = format!("{value}: {count}");
            if *count == total {
                return view! { <circle cx="50" cy="50" r="45" fill=color><title>{tip}</title></circle> }.into_any();
            }
            let ((x1, y1), (x2, y2)) = (point(angle), point(angle + sweep));
            angle += sweep;
            let large = u8::from(sweep > std::f64::consts::PI);
            let path = format!("M50,50 L{x1:.2},{y1:.2} A45,45 0 {large} 1 {x2:.2},{y2:.2} Z");
            view! { <path d=path fill=color><title>{tip}</title></path> }.into_any()
        })
        .collect_view();
    let legend = values
        .iter()
        .enumerate()
        .map(|(index, (value, count))| {
            let share = *count as f64 * 100.0 / total as f64;
            view! { <span class="legend"><i style:background=COLORS[index % COLORS.len()]></i>{format!("{value}: {count} · {share:.0} %")}</span> }
        })
        .collect_view();
    view! {
        <div class="pie-chart">
            <svg viewBox="0 0 100 100" class="pie" role="img">{slices}</svg>
            <div class="legends">{legend}</div>
        </div>
    }
}

fn value_table(values: Vec<(String, i64)>) -> impl IntoView {
    let total: i64 = values.iter().map(|v| v.1).sum::<i64>().max(1);
    let rows = values
        .into_iter()
        .map(|(value, count)| view! { <tr><td>{value}</td><td>{count}</td><td>{format!("{:.0} %", count as f64 * 100.0 / total as f64)}</td></tr> })
        .collect_view();
    view! {
        <table class="grid value-table">
            <thead><tr><th>"Answer"</th><th>"Sessions"</th><th>"Share"</th></tr></thead>
            <tbody>{rows}</tbody>
        </table>
    }
}

/// Numeric answers in up to eight equal ranges, labelled `from–to`.
fn histogram(values: &[(String, i64)]) -> Vec<(String, i64)> {
    let numbers: Vec<(f64, i64)> = values.iter().filter_map(|(value, count)| value.parse::<f64>().ok().map(|x| (x, *count))).collect();
    let (Some(low), Some(high)) = (
        numbers.iter().map(|n| n.0).reduce(f64::min),
        numbers.iter().map(|n| n.0).reduce(f64::max),
    ) else {
        return values.to_vec();
    };
    let bins = numbers.len().clamp(1, 8);
    let width = if high > low { (high - low) / bins as f64 } else { 1.0 };
    let mut counts = vec![0i64; bins];
    for (x, count) in &numbers {
        let bin = (((x - low) / width) as usize).min(bins - 1);
        counts[bin] += count;
    }
    let label = |x: f64| if x.fract() == 0.0 { format!("{x:.0}") } else { format!("{x:.1}") };
    counts
        .into_iter()
        .enumerate()
        .map(|(bin, count)| (format!("{}–{}", label(low + bin as f64 * width), label(low + (bin + 1) as f64 * width)), count))
        .collect()
}

/// The daily mean as a line over the days sessions ended, each point
/// labelled with its value and the axis with its dates.
fn daily_line(days: &[DayResult], mean_text: impl Fn(f64) -> String) -> impl IntoView {
    let points: Vec<(String, f64, i64)> =
        days.iter().filter_map(|day| day.mean.map(|mean| (day.day.format("%m-%d").to_string(), mean, day.sessions))).collect();
    if points.is_empty() {
        return view! { <p class="empty">"No answers to chart by day."</p> }.into_any();
    }
    let (width, height, left, bottom) = (320.0, 140.0, 8.0, 22.0);
    let low = points.iter().map(|p| p.1).fold(f64::INFINITY, f64::min).min(0.0);
    let high = points.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max).max(low + 1e-9);
    let step = if points.len() > 1 { (width - 2.0 * left - 20.0) / (points.len() - 1) as f64 } else { 0.0 };
    let at = |index: usize, value: f64| {
        let x = left + 10.0 + index as f64 * step + if points.len() == 1 { (width - 2.0 * left - 20.0) / 2.0 } else { 0.0 };
        let y = 16.0 + (high - value) / (high - low) * (height - bottom - 24.0);
        (x, y)
    };
    let line: String = points.iter().enumerate().map(|(i, p)| { let (x, y) = at(i, p.1); format!("{x:.1},{y:.1} ") }).collect();
    let every = (points.len() / 6).max(1);
    let marks = points
        .iter()
        .enumerate()
        .map(|(i, (day, mean, sessions))| {
            let (x, y) = at(i, *mean);
            let tip = format!("{day}: {} over {sessions} sessions", mean_text(*mean));
            let label = (i % every == 0 || i + 1 == points.len()).then(|| view! {
                <text x=format!("{x:.1}") y=format!("{:.1}", y - 6.0) class="axis" text-anchor="middle">{mean_text(*mean)}</text>
                <text x=format!("{x:.1}") y=format!("{:.1}", height - 6.0) class="axis" text-anchor="middle">{day.clone()}</text>
            });
            view! { <circle cx=format!("{x:.1}") cy=format!("{y:.1}") r="3" fill=COLORS[0]><title>{tip}</title></circle>{label} }
        })
        .collect_view();
    view! {
        <svg viewBox=format!("0 0 {width} {height}") class="line-chart" role="img">
            <line x1=left.to_string() y1=(height - bottom).to_string() x2=(width - left).to_string() y2=(height - bottom).to_string() class="axis-line"/>
            <polyline points=line fill="none" stroke=COLORS[0] stroke-width="2"/>
            {marks}
        </svg>
        <p class="muted axis-caption">"Mean answer per day the session ended (UTC)"</p>
    }
    .into_any()
}
