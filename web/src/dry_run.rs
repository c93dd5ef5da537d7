//! Dry run (Contacts tab): the campaign's stages and active strategies run
//! in virtual time over a contact file against a simulated population
//! (`POST /api/campaigns/{id}/simulate`). Nothing is sent and nothing of
//! the campaign changes; the panel shows where the contacts ended up and
//! the timeline of every communication.

use leptos::prelude::*;
use stratagem_types::dry_run::{SimulationReport, TimelineEntry};
use wasm_bindgen::JsValue;

use crate::api::{self, Body, Problem};
use crate::util::{short_time, show_problem, value_bars};

/// Timeline rows shown before "Show all".
const TIMELINE_ROWS: usize = 100;

#[component]
pub fn DryRun(campaign: String) -> impl IntoView {
    let file_input = NodeRef::<leptos::html::Input>::new();
    let chosen = RwSignal::new(false);
    let days = RwSignal::new("30".to_owned());
    let personas = RwSignal::new(String::new());
    let report = RwSignal::new(None::<SimulationReport>);
    let problem = RwSignal::new(None::<Problem>);
    let simulate = Action::new_local(move |file: &web_sys::File| {
        let mut path = format!("/api/campaigns/{campaign}/simulate?file_name={}", api::enc(&file.name()));
        for (key, value) in [("days", days.get_untracked()), ("personas", personas.get_untracked())] {
            if !value.trim().is_empty() {
                path.push_str(&format!("&{key}={}", api::enc(value.trim())));
            }
        }
        let body = Body::Raw(JsValue::from(file.clone()), crate::contacts::file_type(file));
        async move { api::call::<SimulationReport>("POST", &path, body).await }
    });
    let running = simulate.pending();
    Effect::new(move |_| match simulate.value().get() {
        Some(Ok(value)) => report.set(Some(value)),
        Some(Err(error)) => problem.set(Some(error)),
        None => {}
    });
    let run = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Some(file) = file_input.get_untracked().and_then(|input| input.files()).and_then(|files| files.get(0)) else { return };
        problem.set(None);
        report.set(None);
        simulate.dispatch_local(file);
    };

    view! {
        <form class="card form" id="dry-run" on:submit=run>
            <h4>"Dry run"</h4>
            <p class="muted">"Runs the stages and active strategies over a contact file in virtual time, against simulated contacts answering by persona (a "
                <code>"persona"</code>" column, or the mix below). Nothing is sent and the campaign does not change."</p>
            <div class="row">
                <label>"Contact file (CSV or JSONL)"
                    <input id="dry-run-file" type="file" accept=".csv,.jsonl,.json,.ndjson,text/csv,application/x-ndjson" node_ref=file_input
                        on:change=move |ev| {
                            let input: web_sys::HtmlInputElement = event_target(&ev);
                            chosen.set(input.files().is_some_and(|files| files.length() > 0));
                        }/>
                </label>
                <label class="narrow">"Days"
                    <input id="dry-run-days" type="number" min="1" max="366" prop:value=move || days.get() on:input=move |ev| days.set(event_target_value(&ev))/>
                </label>
                <label>"Personas (optional)"
                    <input id="dry-run-personas" placeholder="NO_RESPONSE=35,PROMISE_TO_PAY=30,PAID=20,REFUSED=15"
                        prop:value=move || personas.get() on:input=move |ev| personas.set(event_target_value(&ev))/>
                </label>
            </div>
            <div class="row">
                <button type="submit" class="primary" id="dry-run-start" disabled=move || !chosen.get() || running.get()>"Run"</button>
                {move || running.get().then(|| view! { <span id="dry-run-running"><span class="spinner"></span>" Running…"</span> })}
                {move || report.get().is_some().then(|| view! { <button type="button" class="link" on:click=move |_| report.set(None)>"Clear"</button> })}
            </div>
            <div id="dry-run-problem">{show_problem(problem)}</div>
            {move || report.get().map(|r| view! { <Report report=r/> })}
        </form>
    }
}

/// A dry run's answer: the outcome distribution, failures and the timeline.
#[component]
fn Report(report: SimulationReport) -> impl IntoView {
    // ResultFlag in a fixed order, with words for its values.
    let rank = |key: &str| ["true", "false", "undetermined"].iter().position(|k| *k == key).unwrap_or(3);
    let mut results: Vec<(String, usize)> = report.results.into_iter().collect();
    results.sort_by_key(|(key, _)| rank(key));
    let results = results
        .into_iter()
        .map(|(key, n)| {
            let label = match key.as_str() {
                "true" => "Success (true)".to_owned(),
                "false" => "Failure (false)".to_owned(),
                "undetermined" => "Not determined".to_owned(),
                _ => key,
            };
            (label, n as i64)
        })
        .collect();
    let mut stages: Vec<(String, i64)> = report.stages.into_iter().map(|(stage, n)| (stage, n as i64)).collect();
    stages.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let import_errors = report
        .import_errors
        .into_iter()
        .map(|(object_id, error)| view! { <li>{format!("{object_id}: ")}<pre>{error}</pre></li> })
        .collect_view();
    let rejected = report.rejected.into_iter().map(|row| view! { <li>{row.reason}</li> }).collect_view();
    let failures = report
        .contacts
        .iter()
        .filter_map(|c| Some((c.object_id.clone(), c.last_error.clone()?)))
        .map(|(object_id, error)| view! { <li>{format!("{object_id}: ")}<pre>{error}</pre></li> })
        .collect_view();
    let status = report.campaign_status.as_str();
    view! {
        <div id="dry-run-report">
            <div class="row">
                <span class=format!("badge status-{status}")>{status}</span>
                <span>{format!("{} → {} (virtual time)", short_time(report.start), short_time(report.end))}</span>
                <span class="counts">
                    <span>{format!("Contacts: {}", report.contacts.len())}</span>
                    <span>{format!("Sends: {}", report.sends)}</span>
                    <span>{format!("Communications: {}", report.timeline.len())}</span>
                </span>
            </div>
            <div class="two-col">
                <section id="dry-run-results">
                    <h4>"Results"</h4>
                    {value_bars(results)}
                </section>
                <section id="dry-run-stages">
                    <h4>"Final stage"</h4>
                    {if stages.is_empty() { view! { <p class="empty">"No contact reached a stage."</p> }.into_any() } else { value_bars(stages).into_any() }}
                </section>
            </div>
            {(!rejected.is_empty()).then(|| view! { <div class="problem" id="dry-run-rejected"><strong>"Rows not simulated:"</strong><ul>{rejected}</ul></div> })}
            {(!import_errors.is_empty()).then(|| view! { <div class="problem"><strong>"DATA_LOAD failed for:"</strong><ul>{import_errors}</ul></div> })}
            {(!failures.is_empty()).then(|| view! { <div class="problem"><strong>"Strategy errors:"</strong><ul>{failures}</ul></div> })}
            <Timeline timeline=report.timeline/>
        </div>
    }
}

/// Every planned communication, the first [`TIMELINE_ROWS`] until "Show all".
#[component]
fn Timeline(timeline: Vec<TimelineEntry>) -> impl IntoView {
    let total = timeline.len();
    let timeline = StoredValue::new(timeline);
    let all = RwSignal::new(false);
    let row = |entry: &TimelineEntry| {
        view! {
            <tr>
                <td>{short_time(entry.start_date)}</td>
                <td>{entry.object_id.clone()}</td>
                <td>{entry.name.clone()}</td>
                <td class="stage">{entry.stage.clone()}</td>
                <td><span class=format!("badge status-{}", entry.status)>{entry.status.clone()}</span></td>
                <td>{entry.alternative.clone().unwrap_or_default()}</td>
                <td class="outcome">{entry.outcome.clone().unwrap_or_default()}</td>
            </tr>
        }
    };
    view! {
        <h4>"Timeline"</h4>
        <div class="scroll-x">
            <table class="grid" id="dry-run-timeline">
                <thead><tr><th>"Start"</th><th>"Contact"</th><th>"Communication"</th><th>"Stage"</th><th>"Status"</th><th>"A/B"</th><th>"Outcome"</th></tr></thead>
                <tbody>
                    {move || {
                        let limit = if all.get() { usize::MAX } else { TIMELINE_ROWS };
                        timeline.with_value(|rows| rows.iter().take(limit).map(row).collect_view())
                    }}
                </tbody>
            </table>
        </div>
        {(total == 0).then(|| view! { <p class="empty">"No communication was planned."</p> })}
        {move || (total > TIMELINE_ROWS && !all.get()).then(|| view! {
            <button type="button" class="link" on:click=move |_| all.set(true)>{format!("Show all {total} communications")}</button>
        })}
    }
}
