//! Strategies tab: the list (name, type, build status), upload of a .py
//! file or pasted code, and the code view/editor with Python highlighting.
//! Builds run in the background: the tab polls until ready or failed, and
//! a failed build marks its error line.

use leptos::prelude::*;
use serde_json::{json, Value};

use crate::api::{self, Problem};
use crate::util::{items, show_problem, text};

fn build_status(strategy: &Value) -> String {
    text(&strategy["latest"], "status")
}

/// The status as shown: a build still waiting for a slot says where it is.
fn build_label(strategy: &Value) -> String {
    match strategy["latest"]["queue_position"].as_i64() {
        Some(position) => format!("queued, {position} in line"),
        None => build_status(strategy),
    }
}

/// `/campaigns/:id/strategies`.
#[component]
pub fn StrategiesTab() -> impl IntoView {
    let id = crate::campaign::open().id;
    move || view! { <Strategies id=id.get()/> }
}

#[component]
pub fn Strategies(id: String) -> impl IntoView {
    let strategies = RwSignal::new(Vec::<Value>::new());
    let problem = RwSignal::new(None::<Problem>);
    let open = RwSignal::new(None::<String>);
    let reload = RwSignal::new(0u32);
    let campaign = StoredValue::new(id);

    Effect::new(move |_| {
        reload.track();
        let id = campaign.get_value();
        leptos::task::spawn_local(async move {
            match api::get(&format!("/api/campaigns/{id}/strategies")).await {
                Ok(list) => {
                    strategies.set(items(&list));
                    problem.set(None);
                }
                Err(error) => problem.set(Some(error)),
            }
        });
    });
    // Poll while any build is running.
    crate::util::every(1000, move || {
        if strategies.with_untracked(|list| list.iter().any(|s| build_status(s) == "building")) {
            reload.update(|n| *n += 1);
        }
    });

    let remove = move |strategy_id: String| {
        leptos::task::spawn_local(async move {
            match api::delete(&format!("/api/strategies/{strategy_id}")).await {
                Ok(_) => {
                    open.set(None);
                    reload.update(|n| *n += 1);
                }
                Err(error) => problem.set(Some(error)),
            }
        });
    };

    view! {
        <div id="strategies">
            <h3>"Strategies"</h3>
            {show_problem(problem)}
            <table class="grid" id="strategy-table">
                <thead><tr><th>"Name"</th><th>"Type"</th><th>"Build"</th><th>"Active version"</th><th></th></tr></thead>
                <tbody>
                    {move || strategies.get().into_iter().map(|strategy| {
                        let status = build_status(&strategy);
                        let strategy_id = text(&strategy, "id");
                        let (view_id, delete_id) = (strategy_id.clone(), strategy_id.clone());
                        let active = strategy["active_version"].as_i64().map(|v| format!("v{v}")).unwrap_or_else(|| "none".into());
                        view! {
                            <tr>
                                <td>{text(&strategy, "name")}</td>
                                <td>{text(&strategy, "type")}</td>
                                <td><span class=format!("badge build-{status}")>{format!("{} (v{})", build_label(&strategy), text(&strategy["latest"], "version"))}</span></td>
                                <td>{active}</td>
                                <td class="actions">
                                    <button on:click=move |_| open.set(Some(view_id.clone()))>"View / Edit"</button>
                                    <button class="danger" on:click=move |_| remove(delete_id.clone())>"Delete"</button>
                                </td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
            {move || open.get().map(|strategy_id| view! { <StrategyEditor strategy_id on_saved=Callback::new(move |_| reload.update(|n| *n += 1))/> })}
            <Upload campaign=campaign.get_value() on_uploaded=Callback::new(move |strategy_id| { open.set(Some(strategy_id)); reload.update(|n| *n += 1); })/>
        </div>
    }
}

#[component]
fn Upload(campaign: String, on_uploaded: Callback<String>) -> impl IntoView {
    let name = RwSignal::new(String::new());
    let kind = RwSignal::new("DATA_LOAD".to_owned());
    let file_name = RwSignal::new("strategy.py".to_owned());
    let source = RwSignal::new(String::new());
    let problem = RwSignal::new(None::<Problem>);
    let choose_file = move |ev: leptos::ev::Event| {
        let input: web_sys::HtmlInputElement = event_target(&ev);
        let Some(file) = input.files().and_then(|files| files.get(0)) else { return };
        let chosen = file.name();
        leptos::task::spawn_local(async move {
            match api::file_text(&file).await {
                Ok(code) => {
                    if name.get_untracked().is_empty() {
                        name.set(chosen.trim_end_matches(".py").to_owned());
                    }
                    file_name.set(chosen);
                    source.set(code);
                }
                Err(error) => problem.set(Some(error)),
            }
        });
    };
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let body = json!({"name": name.get_untracked(), "type": kind.get_untracked(), "file_name": file_name.get_untracked(), "source": source.get_untracked()});
        let campaign = campaign.clone();
        leptos::task::spawn_local(async move {
            match api::post(&format!("/api/campaigns/{campaign}/strategies"), &body).await {
                Ok(strategy) => {
                    problem.set(None);
                    name.set(String::new());
                    source.set(String::new());
                    file_name.set("strategy.py".into());
                    on_uploaded.run(text(&strategy, "id"));
                }
                Err(error) => problem.set(Some(error)),
            }
        });
    };
    view! {
        <form class="card form" id="strategy-upload" on:submit=submit>
            <h4>"Upload a strategy"</h4>
            <div class="row">
                <label>"Name"<input id="strategy-name" prop:value=move || name.get() on:input=move |ev| name.set(event_target_value(&ev))/></label>
                <label>"Type"
                    <select id="strategy-type" prop:value=move || kind.get() on:change=move |ev| kind.set(event_target_value(&ev))>
                        <option value="DATA_LOAD">"DATA_LOAD"</option>
                        <option value="AGGREGATION">"AGGREGATION"</option>
                        <option value="CONTACT_ANSWER">"CONTACT_ANSWER"</option>
                    </select>
                </label>
                <label>".py file"<input id="strategy-file" type="file" accept=".py,text/x-python" on:change=choose_file/></label>
            </div>
            <label>"…or paste the code (" {move || file_name.get()} ")"
                <textarea id="strategy-source" class="code" rows="8" prop:value=move || source.get() on:input=move |ev| source.set(event_target_value(&ev))></textarea>
            </label>
            <button type="submit" class="primary" id="upload-strategy">"Upload"</button>
            {show_problem(problem)}
        </form>
    }
}

#[component]
fn StrategyEditor(strategy_id: String, on_saved: Callback<()>) -> impl IntoView {
    let strategy = RwSignal::new(None::<Value>);
    let code = RwSignal::new(String::new());
    let file = RwSignal::new(String::new());
    let problem = RwSignal::new(None::<Problem>);
    let strategy_id = StoredValue::new(strategy_id);

    let load = move |take_code: bool| {
        let id = strategy_id.get_value();
        leptos::task::spawn_local(async move {
            match api::get(&format!("/api/strategies/{id}")).await {
                Ok(value) => {
                    let was_building = strategy.with_untracked(|s| s.as_ref().is_some_and(|s| build_status(s) == "building"));
                    if was_building && build_status(&value) != "building" {
                        on_saved.run(());
                    }
                    if take_code {
                        let entry = text(&value["latest"], "entry");
                        code.set(text(&value["latest"]["sources"], &entry));
                        file.set(entry);
                    }
                    strategy.set(Some(value));
                }
                Err(error) => problem.set(Some(error)),
            }
        });
    };
    load(true);
    crate::util::every(1000, move || {
        if strategy.with_untracked(|s| s.as_ref().is_some_and(|s| build_status(s) == "building")) {
            load(false);
        }
    });

    let error_line = Memo::new(move |_| {
        strategy.with(|s| s.as_ref().and_then(|s| {
            let error = &s["latest"]["error"];
            let same_file = error["file"].as_str().is_none_or(|f| f == text(&s["latest"], "entry"));
            error["line"].as_u64().filter(|_| same_file)
        }))
    });
    let highlighted = move || crate::python::highlight(&code.get(), error_line.get());
    let lines = move || code.with(|c| c.split('\n').count());

    let save = move |_| {
        let id = strategy_id.get_value();
        let body = json!({"source": code.get_untracked(), "file_name": file.get_untracked()});
        leptos::task::spawn_local(async move {
            match api::put(&format!("/api/strategies/{id}"), &body).await {
                Ok(value) => {
                    strategy.set(Some(value));
                    problem.set(None);
                    on_saved.run(());
                }
                Err(error) => problem.set(Some(error)),
            }
        });
    };

    view! {
        <div class="card" id="strategy-editor">
            {move || strategy.get().map(|s| {
                let status = build_status(&s);
                let error = s["latest"]["error"].clone();
                view! {
                    <div class="row">
                        <h4>{format!("{} · {} · v{}", text(&s, "name"), text(&s, "type"), text(&s["latest"], "version"))}</h4>
                        <span id="strategy-build-status" class=format!("badge build-{status}")>{build_label(&s)}</span>
                    </div>
                    {(!error.is_null()).then(|| {
                        let place = match (error["file"].as_str(), error["line"].as_u64()) {
                            (Some(f), Some(l)) => format!("{f}, line {l}{}: ", error["column"].as_u64().map(|c| format!(", column {c}")).unwrap_or_default()),
                            _ => String::new(),
                        };
                        view! { <div class="problem" id="build-error"><strong>"Build failed: "</strong>{place}<pre>{text(&error, "detail")}</pre></div> }
                    })}
                }
            })}
            <div class="muted">{move || file.get()}</div>
            <div class="code-editor">
                <div class="layer">
                    <pre class="highlight" aria-hidden="true" inner_html=highlighted></pre>
                    <textarea id="strategy-code" spellcheck="false" wrap="off" rows=move || lines().to_string()
                        prop:value=move || code.get() on:input=move |ev| code.set(event_target_value(&ev))></textarea>
                </div>
            </div>
            <div class="row">
                <button class="primary" id="save-strategy" on:click=save>"Save as new version"</button>
            </div>
            {show_problem(problem)}
        </div>
    }
}
