//! Dry run (Contacts tab): the campaign's stages and active strategies run
//! in virtual time over a contact file against a simulated population
//! (`POST /api/campaigns/{id}/simulate`). Nothing is sent and nothing of
//! the campaign changes; the panel shows where the contacts ended up and
//! the timeline of every communication.

use leptos::prelude::*;
use serde_json::Value;
use wasm_bindgen::JsValue;

use crate::api::{self, Body, Problem};
use crate::util::{int, items, short_time, show_problem, text, value_bars};

/// Timeline rows shown before "Show all".
const TIMELINE_ROWS: usize = 100;

#[component]
pub fn DryRun(campaign: String) -> impl IntoView {
    let campaign = StoredValue::new(campaign);
    let file_input = NodeRef::<leptos::html::Input>::new();
    let chosen = RwSignal::new(false);
    let days = RwSignal::new("30".to_owned());
    let personas = RwSignal::new(String::new());
    let running = RwSignal::new(false);
    let report = RwSignal::new(None::<Value>);
    let problem = RwSignal::new(None::<Problem>);

    let run = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Some(file) = file_input.get_untracked().and_then(|input| input.files()).and_then(|files| files.get(0)) else { return };
        let mut path = format!("/api/campaigns/{}/simulate?file_name={}", campaign.get_value(), api::enc(&file.name()));
        for (key, value) in [("days", days.get_untracked()), ("personas", personas.get_untracked())] {
            if !value.trim().is_empty() {
                path.push_str(&format!("&{key}={}", api::enc(value.trim())));
            }
        }
        let content_type = crate::contacts::file_type(&file);
        running.set(true);
        problem.set(None);
        report.set(None);
        leptos::task::spawn_local(async move {
            match api::call("POST", &path, Body::Raw(JsValue::from(file), content_type)).await {
                Ok(value) => report.set(Some(value)),
                Err(error) => problem.set(Some(error)),
            }
            running.set(false);
        });
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
fn Report(report: Value) -> impl IntoView {
    let counts = |value: &Value| -> Vec<(String, i64)> {
        value.as_object().map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_i64().unwrap_or(0))).collect()).unwrap_or_default()
    };
    // ResultFlag in a fixed order, with words for its values.
    let mut results = counts(&report["results"]);
    let rank = |key: &str| ["true", "false", "undetermined"].iter().position(|k| *k == key).unwrap_or(3);
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
            (label, n)
        })
        .collect();
    let mut stages = counts(&report["stages"]);
    stages.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));

    let contacts = items(&report["contacts"]);
    let import_errors = items(&report["import_errors"])
        .into_iter()
        .map(|e| view! { <li>{format!("{}: ", e[0].as_str().unwrap_or_default())}<pre>{e[1].as_str().unwrap_or_default().to_owned()}</pre></li> })
        .collect_view();
    let failures = contacts
        .iter()
        .filter(|c| !c["last_error"].is_null())
        .map(|c| view! { <li>{format!("{}: ", text(c, "object_id"))}<pre>{text(c, "last_error")}</pre></li> })
        .collect_view();
    let status = text(&report, "campaign_status");
    let timeline = StoredValue::new(items(&report["timeline"]));
    let total = timeline.with_value(Vec::len);
    let all = RwSignal::new(false);

    view! {
        <div id="dry-run-report">
            <div class="row">
                <span class=format!("badge status-{status}")>{status.clone()}</span>
                <span>{format!("{} → {} (virtual time)", short_time(&text(&report, "start")), short_time(&text(&report, "end")))}</span>
                <span class="counts">
                    <span>{format!("Contacts: {}", contacts.len())}</span>
                    <span>{format!("Sends: {}", int(&report, "sends"))}</span>
                    <span>{format!("Communications: {total}")}</span>
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
            {(!import_errors.is_empty()).then(|| view! { <div class="problem"><strong>"DATA_LOAD failed for:"</strong><ul>{import_errors}</ul></div> })}
            {(!failures.is_empty()).then(|| view! { <div class="problem"><strong>"Strategy errors:"</strong><ul>{failures}</ul></div> })}
            <h4>"Timeline"</h4>
            <div class="scroll-x">
                <table class="grid" id="dry-run-timeline">
                    <thead><tr><th>"Start"</th><th>"Contact"</th><th>"Communication"</th><th>"Stage"</th><th>"Status"</th><th>"A/B"</th><th>"Outcome"</th></tr></thead>
                    <tbody>
                        {move || {
                            let limit = if all.get() { usize::MAX } else { TIMELINE_ROWS };
                            timeline.with_value(|rows| rows.iter().take(limit).map(|entry| {
                                let status = text(entry, "status");
                                view! {
                                    <tr>
                                        <td>{short_time(&text(entry, "start_date"))}</td>
                                        <td>{text(entry, "object_id")}</td>
                                        <td>{text(entry, "name")}</td>
                                        <td class="stage">{text(entry, "stage")}</td>
                                        <td><span class=format!("badge status-{status}")>{status.clone()}</span></td>
                                        <td>{text(entry, "alternative")}</td>
                                        <td class="outcome">{text(entry, "outcome")}</td>
                                    </tr>
                                }
                            }).collect_view())
                        }}
                    </tbody>
                </table>
            </div>
            {(total == 0).then(|| view! { <p class="empty">"No communication was planned."</p> })}
            {move || (total > TIMELINE_ROWS && !all.get()).then(|| view! {
                <button type="button" class="link" on:click=move |_| all.set(true)>{format!("Show all {total} communications")}</button>
            })}
        </div>
    }
}
