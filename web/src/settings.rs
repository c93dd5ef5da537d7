//! Settings tab: LLM settings (one of the tenant's LLM integrations and an
//! optional model), YAML analytics (upload with every error's line and
//! column, download, the latest Deep Analysis run with Stop, Recalculate
//! and Continue calculation) and the campaign's custom result fields.
//! PUT /api/campaigns/{id} takes the whole campaign body, so both the LLM
//! and the result fields are saved with the campaign's current values.

use leptos::prelude::*;
use serde_json::{json, Value};
use wasm_bindgen::JsValue;

use crate::api::{self, Body, Problem};
use crate::util::{field_errors, items, short_time, show_problem, text};

/// `/campaigns/:id/settings`: shown once the campaign is loaded, and not
/// redrawn by the panel's polling, so edits in progress stay.
#[component]
pub fn SettingsTab() -> impl IntoView {
    let open = crate::campaign::open();
    let list: crate::campaigns::ListReload = expect_context();
    let loaded = Memo::new(move |_| open.campaign.with(|c| matches!(c, Some(Ok(_)))));
    let on_saved = Callback::new(move |value: Value| {
        if let Ok(campaign) = serde_json::from_value(value) {
            open.campaign.set(Some(Ok(campaign)));
        }
        list.bump();
    });
    move || {
        loaded.track();
        match open.campaign.get_untracked() {
            Some(Ok(campaign)) => {
                let campaign = serde_json::to_value(campaign).unwrap_or_default();
                view! { <Settings id=open.id.get() campaign on_saved/> }.into_any()
            }
            _ => view! { <p class="muted">"Loading…"</p> }.into_any(),
        }
    }
}

#[component]
pub fn Settings(id: String, campaign: Value, on_saved: Callback<Value>) -> impl IntoView {
    let llm = RwSignal::new(text(&campaign, "llm_model"));
    let llm_integration = RwSignal::new(text(&campaign, "llm_integration_id"));
    let llm_integrations = RwSignal::new(None::<Vec<Value>>);
    let fields = RwSignal::new(items(&campaign["result_fields"]));
    let base = StoredValue::new(campaign);
    let id = StoredValue::new(id);
    let llm_problem = RwSignal::new(None::<Problem>);
    let fields_problem = RwSignal::new(None::<Problem>);
    let saved_note = RwSignal::new(String::new());
    leptos::task::spawn_local(async move {
        match api::get("/api/integrations").await {
            Ok(list) => llm_integrations.set(Some(items(&list).into_iter().filter(|i| text(i, "kind") == "LLM").collect())),
            Err(error) => llm_problem.set(Some(error)),
        }
    });

    let save = move |problem: RwSignal<Option<Problem>>| {
        let current = base.get_value();
        let optional = |value: String| if value.trim().is_empty() { Value::Null } else { json!(value.trim()) };
        let body = json!({
            "name": current["name"],
            "description": current["description"],
            "llm_integration_id": optional(llm_integration.get_untracked()),
            "llm_model": optional(llm.get_untracked()),
            "result_fields": fields.get_untracked(),
        });
        let id = id.get_value();
        leptos::task::spawn_local(async move {
            match api::put::<Value>(&format!("/api/campaigns/{id}"), &body).await {
                Ok(value) => {
                    problem.set(None);
                    base.set_value(value.clone());
                    saved_note.set(format!("Saved at {}", short_time(&text(&value, "updated_at"))));
                    on_saved.run(value);
                }
                Err(error) => problem.set(Some(error)),
            }
        });
    };
    let default_model = move || {
        let chosen = llm_integration.get();
        llm_integrations.with(|list| {
            list.iter().flatten().find(|i| text(i, "id") == chosen).map(|i| text(&i["settings"], "default_model")).filter(|m| !m.is_empty())
        })
    };
    let count = Memo::new(move |_| fields.with(Vec::len));
    let edit = move |index: usize, key: &'static str, value: String| {
        fields.update(|list| {
            if let Some(field) = list.get_mut(index) {
                field[key] = json!(value);
            }
        })
    };

    view! {
        <div id="settings">
            <section class="card">
                <h4>"LLM Settings"</h4>
                <div class="row">
                    <label>"LLM integration"
                        <select id="llm-integration" prop:value=move || llm_integration.get() on:change=move |ev| llm_integration.set(event_target_value(&ev))>
                            <option value="">"— none —"</option>
                            {move || {
                                let mut list = llm_integrations.get().unwrap_or_default();
                                // The chosen one stays listed even if it is gone or not loaded yet.
                                let chosen = llm_integration.get_untracked();
                                if !chosen.is_empty() && !list.iter().any(|i| text(i, "id") == chosen) {
                                    list.push(json!({"id": chosen, "name": chosen}));
                                }
                                list.into_iter().map(|i| {
                                    let id = text(&i, "id");
                                    view! { <option selected=id == chosen value=id>{text(&i, "name")}</option> }
                                }).collect_view()
                            }}
                        </select>
                        {field_errors(llm_problem, "llm_integration_id".into())}
                    </label>
                    <label>"Model (optional)"
                        <input id="llm-model" placeholder=move || default_model().map(|m| format!("integration default: {m}")).unwrap_or_else(|| "model name, e.g. gpt-4o-mini".into())
                            prop:value=move || llm.get() on:input=move |ev| llm.set(event_target_value(&ev))/>
                        {field_errors(llm_problem, "llm_model".into())}
                    </label>
                    <button class="primary" id="save-llm" on:click=move |_| save(llm_problem)>"Save"</button>
                    <span class="muted">{move || saved_note.get()}</span>
                </div>
                {move || (llm_integrations.with(|l| l.as_ref().is_some_and(Vec::is_empty))).then(|| view! {
                    <p class="muted" id="llm-none">"No LLM integration yet: add one (kind LLM, an OpenAI-compatible endpoint) under Integrations."</p>
                })}
                {show_problem(llm_problem)}
            </section>
            <YamlAnalytics id=id.get_value()/>
            <section class="card">
                <h4>"Campaign Results"</h4>
                <p class="muted">"ResultFlag and ResultDatetime are in every campaign. Custom fields: the session_results code, a name and a description."</p>
                <table class="grid" id="result-fields">
                    <thead><tr><th>"Code"</th><th>"Name"</th><th>"Description"</th><th></th></tr></thead>
                    <tbody>
                        {move || (0..count.get()).map(|i| view! {
                            <tr>
                                <td><input prop:value=move || fields.with(|f| f.get(i).map(|f| text(f, "code")).unwrap_or_default()) on:input=move |ev| edit(i, "code", event_target_value(&ev))/>
                                    {field_errors(fields_problem, format!("result_fields[{i}].code"))}</td>
                                <td><input prop:value=move || fields.with(|f| f.get(i).map(|f| text(f, "name")).unwrap_or_default()) on:input=move |ev| edit(i, "name", event_target_value(&ev))/></td>
                                <td><input prop:value=move || fields.with(|f| f.get(i).map(|f| text(f, "description")).unwrap_or_default()) on:input=move |ev| edit(i, "description", event_target_value(&ev))/></td>
                                <td><button class="danger" on:click=move |_| fields.update(|f| { if i < f.len() { f.remove(i); } })>"Remove"</button></td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
                <div class="row">
                    <button id="add-result" on:click=move |_| fields.update(|f| f.push(json!({"code": "", "name": "", "description": ""})))>"+ Add results"</button>
                    <button class="primary" id="save-results" on:click=move |_| save(fields_problem)>"Save results"</button>
                </div>
                {show_problem(fields_problem)}
            </section>
        </div>
    }
}

#[component]
fn YamlAnalytics(id: String) -> impl IntoView {
    let current = RwSignal::new(None::<Value>);
    let missing = RwSignal::new(None::<Problem>);
    let problem = RwSignal::new(None::<Problem>);
    let run = RwSignal::new(None::<Value>);
    let id = StoredValue::new(id);
    let load = move || {
        let id = id.get_value();
        leptos::task::spawn_local(async move {
            match api::get(&format!("/api/campaigns/{id}/analytics")).await {
                Ok(value) => {
                    current.set(Some(value));
                    missing.set(None);
                }
                Err(error) => {
                    current.set(None);
                    missing.set(Some(error));
                }
            }
        });
    };
    load();
    let upload = move |ev: leptos::ev::Event| {
        let input: web_sys::HtmlInputElement = event_target(&ev);
        let Some(file) = input.files().and_then(|files| files.get(0)) else { return };
        input.set_value("");
        let id = id.get_value();
        leptos::task::spawn_local(async move {
            match api::call("PUT", &format!("/api/campaigns/{id}/analytics"), Body::Raw(JsValue::from(file), "application/yaml".into())).await {
                Ok(value) => {
                    problem.set(None);
                    missing.set(None);
                    current.set(Some(value));
                }
                Err(error) => problem.set(Some(error)),
            }
        });
    };
    let download = move |_| {
        let id = id.get_value();
        leptos::task::spawn_local(async move {
            if let Err(error) = api::download(&format!("/api/campaigns/{id}/analytics/yaml"), &format!("{id}-analytics.yaml")).await {
                problem.set(Some(error));
            }
        });
    };
    view! {
        <section class="card" id="yaml-analytics">
            <h4>"YAML Analytics"</h4>
            <div class="row">
                <label>"Upload YAML"<input id="yaml-file" type="file" accept=".yaml,.yml" on:change=upload/></label>
                <button id="download-yaml" disabled=move || current.with(Option::is_none) on:click=download>"Download YAML"</button>
            </div>
            {move || match current.get() {
                Some(value) => {
                    let metrics = items(&value["definition"]["metrics"]).len();
                    view! { <p>{format!("Uploaded {} · {metrics} metrics · depth {} days", short_time(&text(&value, "uploaded_at")), text(&value["definition"], "depth_days"))}</p> }.into_any()
                }
                None => view! { <p class="muted">{move || missing.get().map(|p| p.detail).unwrap_or_default()}</p> }.into_any(),
            }}
            <div id="yaml-problem">{show_problem(problem)}</div>
            <h4>"Deep Analysis status"</h4>
            <crate::deep_analysis::RunStatus id=id.get_value() run actions=true/>
        </section>
    }
}
