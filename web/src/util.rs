//! Small helpers shared by the screens: showing free-form JSON values,
//! times and problems next to what caused them, timers.

use leptos::prelude::*;
use serde_json::Value;

use crate::api::Problem;

/// Any value as the screens show it: text as is, `null` as "—".
pub fn shown(value: &Value) -> String {
    match value {
        Value::Null => "—".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A time to the minute: `2026-11-27T10:00:00.123Z` (or a `DateTime`,
/// `2026-11-27 10:00:00.123 UTC`) → `2026-11-27 10:00`.
pub fn short_time(stamp: impl ToString) -> String {
    let stamp = stamp.to_string();
    stamp.get(..16).map(|s| s.replace('T', " ")).unwrap_or(stamp)
}

/// Counts as horizontal bars: each label, a bar scaled to the largest
/// count, the count and its share of the total.
pub fn value_bars(values: Vec<(String, i64)>) -> impl IntoView {
    let total: i64 = values.iter().map(|v| v.1).sum();
    let max = values.iter().map(|v| v.1).max().unwrap_or(0).max(1);
    let bars = values
        .into_iter()
        .map(|(value, count)| {
            let share = if total > 0 { count as f64 * 100.0 / total as f64 } else { 0.0 };
            let width = format!("{:.1}%", count as f64 * 100.0 / max as f64);
            view! {
                <div class="value-bar">
                    <span class="value-label" title=value.clone()>{value.clone()}</span>
                    <span class="value-track"><i style:width=width></i></span>
                    <span class="value-count">{format!("{count} · {share:.0} %")}</span>
                </div>
            }
        })
        .collect_view();
    view! { <div class="value-bars">{bars}</div> }
}

/// A problem document as people read it: its detail, position, the
/// statuses allowed next and every field error, with the field named in
/// words. No HTTP status or JSON path is shown; they are for programs.
#[component]
pub fn ProblemView(problem: Problem) -> impl IntoView {
    let position = match (problem.line, problem.column) {
        (Some(line), Some(column)) => format!(" (line {line}, column {column})"),
        (Some(line), None) => format!(" (line {line})"),
        _ => String::new(),
    };
    let allowed = problem.allowed.clone().map(|allowed| {
        let list = if allowed.is_empty() { "nothing else".to_owned() } else { allowed.join(", ").to_lowercase() };
        view! { <div class="allowed">"From here it can be: " {list}</div> }
    });
    let errors = problem
        .errors
        .iter()
        .flatten()
        .map(|e| {
            let at = match (e.line, e.column) {
                (Some(l), Some(c)) => format!("line {l}, column {c}: "),
                (Some(l), None) => format!("line {l}: "),
                _ => String::new(),
            };
            view! { <li><strong>{field_label(&e.field)}</strong>": " {at} {e.message.clone()}</li> }
        })
        .collect_view();
    view! {
        <div class="problem" role="alert">
            <span class="detail">{problem.detail.clone()}</span>
            {position}
            {allowed}
            <ul class="field-errors">{errors}</ul>
        </div>
    }
}

/// Words of field names written in capitals.
const ACRONYMS: [&str; 8] = ["api", "url", "llm", "smtp", "fcm", "http", "sip", "ab"];

/// A field's JSON path in words: `alternatives[1].settings.integration_id`
/// is "Alternative 2, integration"; `settings.api_base_url` "API base URL".
fn field_label(path: &str) -> String {
    let words: Vec<String> = path
        .split('.')
        .filter(|segment| !segment.is_empty() && *segment != "settings")
        .map(|segment| {
            let (name, index) = match segment.split_once('[') {
                Some((name, rest)) => (name.strip_suffix('s').unwrap_or(name), rest.trim_end_matches(']').parse::<usize>().ok()),
                None => (segment, None),
            };
            let name = name.strip_suffix("_id").unwrap_or(name);
            let name: Vec<String> = name.split('_').map(|word| if ACRONYMS.contains(&word) { word.to_uppercase() } else { word.to_owned() }).collect();
            let name = name.join(" ");
            match index {
                Some(index) => format!("{name} {}", index + 1),
                None => name,
            }
        })
        .collect();
    let mut label = words.join(", ");
    if let Some(first) = label.get(..1) {
        label.replace_range(..1, &first.to_uppercase());
    }
    label
}

/// Shows the problem in `signal` when there is one.
pub fn show_problem(signal: RwSignal<Option<Problem>>) -> impl IntoView {
    move || signal.get().map(|problem| view! { <ProblemView problem/> })
}

/// The messages for one field of the last failed save, under its input.
pub fn field_errors(signal: RwSignal<Option<Problem>>, field: String) -> impl IntoView {
    move || {
        signal
            .get()
            .map(|p| p.field(&field))
            .unwrap_or_default()
            .into_iter()
            .map(|message| view! { <div class="field-error">{message}</div> })
            .collect_view()
    }
}

/// Runs `tick` every `millis` while the calling component is mounted.
pub fn every(millis: u64, tick: impl Fn() + 'static) {
    if let Ok(handle) = set_interval_with_handle(tick, std::time::Duration::from_millis(millis)) {
        on_cleanup(move || handle.clear());
    }
}

/// The browser's IANA time zone, for the analytics buckets.
pub fn time_zone() -> String {
    let format = js_sys::Intl::DateTimeFormat::new(&js_sys::Array::new(), &js_sys::Object::new());
    let options = format.resolved_options();
    js_sys::Reflect::get(&options, &"timeZone".into()).ok().and_then(|v| v.as_string()).unwrap_or_else(|| "UTC".into())
}

/// The button of an action that cannot be undone (a delete): the first
/// click asks `question`, which names what is affected; only the second,
/// on the question's own button, does it.
#[component]
pub fn ConfirmButton(
    label: &'static str,
    question: String,
    on_confirm: Callback<()>,
    /// The first button's id, where a test or a link needs one.
    #[prop(optional)]
    id: Option<&'static str>,
) -> impl IntoView {
    let asking = RwSignal::new(false);
    let question = StoredValue::new(question);
    move || match asking.get() {
        true => view! {
            <span class="confirm-question" role="alertdialog">
                {question.get_value()}" "
                <button type="button" class="danger confirm-yes" on:click=move |_| { asking.set(false); on_confirm.run(()); }>{label}</button>
                <button type="button" class="confirm-no" on:click=move |_| asking.set(false)>"Cancel"</button>
            </span>
        }
        .into_any(),
        false => view! { <button type="button" id=id class="danger" on:click=move |_| asking.set(true)>{label}</button> }.into_any(),
    }
}
