//! Settings tab: LLM settings (one of the tenant's LLM integrations and an
//! optional model), YAML analytics (upload with every error's line and
//! column, download, the latest Deep Analysis run with Stop, Recalculate
//! and Continue calculation), the campaign's custom result fields, and the
//! hosts its strategies may call (External APIs). PUT /api/campaigns/{id}
//! takes the whole campaign body, so each part is saved with the others'
//! current values.

use leptos::prelude::*;
use serde_json::json;
use stratagem_types::analytics::AnalyticsView;
use stratagem_types::deep_analysis::AnalysisRun;
use stratagem_types::{Campaign, Integration, IntegrationKind, ResultField};
use wasm_bindgen::JsValue;

use crate::api::{self, Body, Problem};
use crate::util::{field_errors, short_time, show_problem};

/// `/campaigns/:id/settings`: shown once the campaign is loaded, and not
/// redrawn by the panel's polling, so edits in progress stay.
#[component]
pub fn SettingsTab() -> impl IntoView {
    let open = crate::campaign::open();
    let list: crate::campaigns::ListReload = expect_context();
    let loaded = Memo::new(move |_| open.campaign.with(|c| matches!(c, Some(Ok(_)))));
    let on_saved = Callback::new(move |campaign: Campaign| {
        open.campaign.set(Some(Ok(campaign)));
        list.bump();
    });
    move || {
        loaded.track();
        match open.campaign.get_untracked() {
            Some(Ok(campaign)) => view! { <Settings id=open.id.get() campaign on_saved/> }.into_any(),
            _ => view! { <p class="muted">"Loading…"</p> }.into_any(),
        }
    }
}

/// What Settings edits of the campaign; PUT takes it with the campaign's
/// name and description.
#[derive(Clone)]
struct Edits {
    llm_integration_id: String,
    llm_model: String,
    result_fields: Vec<ResultField>,
    /// One host per line, as typed.
    http_allowlist: String,
}

/// Which card asked for the save: its problem and note show there.
#[derive(Clone, Copy, PartialEq)]
enum Part {
    Llm,
    Results,
    Hosts,
}

/// Blank optional text is no value.
fn optional(text: &str) -> Option<&str> {
    Some(text.trim()).filter(|t| !t.is_empty())
}

#[component]
pub fn Settings(id: String, campaign: Campaign, on_saved: Callback<Campaign>) -> impl IntoView {
    let llm = RwSignal::new(campaign.llm_model.clone().unwrap_or_default());
    let llm_integration = RwSignal::new(campaign.llm_integration_id.clone().unwrap_or_default());
    let fields = RwSignal::new(campaign.result_fields.clone());
    let hosts = RwSignal::new(campaign.http_allowlist.join("\n"));
    let base = StoredValue::new(campaign);
    let path = format!("/api/campaigns/{}", api::enc(&id));
    let saving = RwSignal::new(Part::Llm);
    let save = Action::new_local(move |edits: &Edits| {
        let current = base.get_value();
        let body = json!({
            "name": current.name,
            "description": current.description,
            "llm_integration_id": optional(&edits.llm_integration_id),
            "llm_model": optional(&edits.llm_model),
            "result_fields": edits.result_fields,
            "http_allowlist": edits.http_allowlist.lines().map(str::trim).filter(|line| !line.is_empty()).collect::<Vec<_>>(),
        });
        let path = path.clone();
        async move { api::put::<Campaign>(&path, &body).await }
    });
    let llm_problem = RwSignal::new(None::<Problem>);
    let fields_problem = RwSignal::new(None::<Problem>);
    let hosts_problem = RwSignal::new(None::<Problem>);
    let saved_note = RwSignal::new(String::new());
    let hosts_note = RwSignal::new(String::new());
    Effect::new(move |_| {
        let problem = match saving.get_untracked() {
            Part::Llm => llm_problem,
            Part::Results => fields_problem,
            Part::Hosts => hosts_problem,
        };
        match save.value().get() {
            Some(Ok(campaign)) => {
                problem.set(None);
                let note = if saving.get_untracked() == Part::Hosts { hosts_note } else { saved_note };
                note.set(format!("Saved at {}", short_time(campaign.updated_at)));
                hosts.set(campaign.http_allowlist.join("\n"));
                base.set_value(campaign.clone());
                on_saved.run(campaign);
            }
            Some(Err(error)) => problem.set(Some(error)),
            None => {}
        }
    });
    let submit = Callback::new(move |part: Part| {
        saving.set(part);
        save.dispatch_local(Edits {
            llm_integration_id: llm_integration.get_untracked(),
            llm_model: llm.get_untracked(),
            result_fields: fields.get_untracked(),
            http_allowlist: hosts.get_untracked(),
        });
    });
    view! {
        <div id="settings">
            <LlmSettings llm llm_integration problem=llm_problem saved_note save=Callback::new(move |_| submit.run(Part::Llm))/>
            <YamlAnalytics id/>
            <ResultFields fields problem=fields_problem save=Callback::new(move |_| submit.run(Part::Results))/>
            <ExternalApis hosts problem=hosts_problem note=hosts_note save=Callback::new(move |_| submit.run(Part::Hosts))/>
        </div>
    }
}

/// The hosts the campaign's strategies may call with `stratagem.http`.
#[component]
fn ExternalApis(hosts: RwSignal<String>, problem: RwSignal<Option<Problem>>, note: RwSignal<String>, save: Callback<()>) -> impl IntoView {
    // The API names each bad line as http_allowlist[i] (of the non-blank lines).
    let line_errors = move || {
        let count = hosts.with(|text| text.lines().filter(|line| !line.trim().is_empty()).count());
        (0..count).map(|i| field_errors(problem, format!("http_allowlist[{i}]"))).collect_view()
    };
    view! {
        <section class="card">
            <h4>"External APIs"</h4>
            <p class="muted">"Hosts this campaign's strategies may call with stratagem.http, one per line: api.example.com, api.example.com:8443, or *.example.com for its subdomains. Nothing else is reachable, and private or local addresses only where the operator allows them."</p>
            <textarea id="http-allowlist" rows="4" placeholder="api.example-crm.com" prop:value=move || hosts.get() on:input=move |ev| hosts.set(event_target_value(&ev))></textarea>
            {line_errors}
            {field_errors(problem, "http_allowlist".into())}
            <div class="row">
                <button class="primary" id="save-hosts" on:click=move |_| save.run(())>"Save hosts"</button>
                <span class="muted">{move || note.get()}</span>
            </div>
            {show_problem(problem)}
        </section>
    }
}

#[component]
fn LlmSettings(
    llm: RwSignal<String>,
    llm_integration: RwSignal<String>,
    problem: RwSignal<Option<Problem>>,
    saved_note: RwSignal<String>,
    save: Callback<()>,
) -> impl IntoView {
    let integrations = LocalResource::new(|| async {
        api::get::<Vec<Integration>>("/api/integrations").await.map(|list| list.into_iter().filter(|i| i.kind == IntegrationKind::Llm).collect::<Vec<_>>())
    });
    Effect::new(move |_| {
        if let Some(Err(error)) = integrations.get() {
            problem.set(Some(error));
        }
    });
    let listed = move || integrations.get().and_then(Result::ok);
    let default_model = move || {
        let chosen = llm_integration.get();
        listed().into_iter().flatten().find(|i| i.id == chosen).and_then(|i| i.settings.get("default_model")?.as_str().map(str::to_owned)).filter(|m| !m.is_empty())
    };
    let options = move || {
        let mut list: Vec<(String, String)> = listed().unwrap_or_default().into_iter().map(|i| (i.id, i.name)).collect();
        // The chosen one stays listed even if it is gone or not loaded yet.
        let chosen = llm_integration.get_untracked();
        if !chosen.is_empty() && !list.iter().any(|(id, _)| *id == chosen) {
            list.push((chosen.clone(), chosen.clone()));
        }
        list.into_iter().map(|(id, name)| view! { <option selected=id == chosen value=id>{name}</option> }).collect_view()
    };
    view! {
        <section class="card">
            <h4>"LLM Settings"</h4>
            <div class="row">
                <label>"LLM integration"
                    <select id="llm-integration" prop:value=move || llm_integration.get() on:change=move |ev| llm_integration.set(event_target_value(&ev))>
                        <option value="">"— none —"</option>
                        {options}
                    </select>
                    {field_errors(problem, "llm_integration_id".into())}
                </label>
                <label>"Model (optional)"
                    <input id="llm-model" placeholder=move || default_model().map(|m| format!("integration default: {m}")).unwrap_or_else(|| "model name, e.g. gpt-4o-mini".into())
                        prop:value=move || llm.get() on:input=move |ev| llm.set(event_target_value(&ev))/>
                    {field_errors(problem, "llm_model".into())}
                </label>
                <button class="primary" id="save-llm" on:click=move |_| save.run(())>"Save"</button>
                <span class="muted">{move || saved_note.get()}</span>
            </div>
            {move || listed().is_some_and(|l| l.is_empty()).then(|| view! {
                <p class="muted" id="llm-none">"No LLM integration yet: add one (kind LLM, an OpenAI-compatible endpoint) under Integrations."</p>
            })}
            {show_problem(problem)}
        </section>
    }
}

#[component]
fn ResultFields(fields: RwSignal<Vec<ResultField>>, problem: RwSignal<Option<Problem>>, save: Callback<()>) -> impl IntoView {
    let count = Memo::new(move |_| fields.with(Vec::len));
    let field = move |i: usize, read: fn(&ResultField) -> String| move || fields.with(|f| f.get(i).map(read).unwrap_or_default());
    let edit = move |i: usize, write: fn(&mut ResultField, String), value: String| {
        fields.update(|list| if let Some(f) = list.get_mut(i) { write(f, value) })
    };
    let blank = || ResultField { code: String::new(), name: String::new(), description: String::new() };
    view! {
        <section class="card">
            <h4>"Campaign Results"</h4>
            <p class="muted">"ResultFlag and ResultDatetime are in every campaign. Custom fields: the session_results code, a name and a description."</p>
            <table class="grid" id="result-fields">
                <thead><tr><th>"Code"</th><th>"Name"</th><th>"Description"</th><th></th></tr></thead>
                <tbody>
                    {move || (0..count.get()).map(|i| view! {
                        <tr>
                            <td><input prop:value=field(i, |f| f.code.clone()) on:input=move |ev| edit(i, |f, v| f.code = v, event_target_value(&ev))/>
                                {field_errors(problem, format!("result_fields[{i}].code"))}</td>
                            <td><input prop:value=field(i, |f| f.name.clone()) on:input=move |ev| edit(i, |f, v| f.name = v, event_target_value(&ev))/></td>
                            <td><input prop:value=field(i, |f| f.description.clone()) on:input=move |ev| edit(i, |f, v| f.description = v, event_target_value(&ev))/></td>
                            <td><button class="danger" on:click=move |_| fields.update(|f| { if i < f.len() { f.remove(i); } })>"Remove"</button></td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
            <div class="row">
                <button id="add-result" on:click=move |_| fields.update(|f| f.push(blank()))>"+ Add results"</button>
                <button class="primary" id="save-results" on:click=move |_| save.run(())>"Save results"</button>
            </div>
            {show_problem(problem)}
        </section>
    }
}

#[component]
fn YamlAnalytics(id: String) -> impl IntoView {
    let path = format!("/api/campaigns/{}/analytics", api::enc(&id));
    let current = RwSignal::new(None::<AnalyticsView>);
    // Why there is none: the API's 404, or any other failure.
    let missing = RwSignal::new(None::<Problem>);
    let problem = RwSignal::new(None::<Problem>);
    let run = RwSignal::new(None::<AnalysisRun>);
    let loaded = LocalResource::new({
        let path = path.clone();
        move || {
            let path = path.clone();
            async move { api::get::<AnalyticsView>(&path).await }
        }
    });
    let upload = Action::new_local(move |file: &web_sys::File| {
        let (path, body) = (path.clone(), Body::Raw(JsValue::from(file.clone()), "application/yaml".into()));
        async move { api::call::<AnalyticsView>("PUT", &path, body).await }
    });
    Effect::new(move |_| match loaded.get() {
        Some(Ok(view)) => current.set(Some(view)),
        Some(Err(error)) => missing.set(Some(error)),
        None => {}
    });
    Effect::new(move |_| match upload.value().get() {
        Some(Ok(view)) => {
            problem.set(None);
            missing.set(None);
            current.set(Some(view));
        }
        Some(Err(error)) => problem.set(Some(error)),
        None => {}
    });
    let choose = move |ev: leptos::ev::Event| {
        let input: web_sys::HtmlInputElement = event_target(&ev);
        let Some(file) = input.files().and_then(|files| files.get(0)) else { return };
        input.set_value("");
        upload.dispatch_local(file);
    };
    let campaign = id.clone();
    let download = Action::new_local(move |_: &()| {
        let (path, file_name) = (format!("/api/campaigns/{}/analytics/yaml", api::enc(&campaign)), format!("{campaign}-analytics.yaml"));
        async move { api::download(&path, &file_name).await }
    });
    Effect::new(move |_| {
        if let Some(Err(error)) = download.value().get() {
            problem.set(Some(error));
        }
    });
    let summary = move || match current.get() {
        Some(view) => {
            let (metrics, depth) = (view.definition.metrics.len(), view.definition.depth_days);
            let schedule = match view.definition.schedule {
                Some(schedule) => format!("analysed on its own every {} min (Continue calculation of the sessions that ended since)", schedule.every_minutes),
                None => "schedule off: analysed only when you click Recalculate or Continue calculation".to_owned(),
            };
            view! {
                <p>{format!("Uploaded {} · {metrics} metrics · depth {depth} days", short_time(view.uploaded_at))}</p>
                <p class="muted" id="yaml-schedule">{schedule}</p>
            }.into_any()
        }
        None => view! { <p class="muted">{move || missing.get().map(|p| p.detail).unwrap_or_default()}</p> }.into_any(),
    };
    view! {
        <section class="card" id="yaml-analytics">
            <h4>"YAML Analytics"</h4>
            <div class="row">
                <label>"Upload YAML"<input id="yaml-file" type="file" accept=".yaml,.yml" on:change=choose/></label>
                <button id="download-yaml" disabled=move || current.with(Option::is_none) on:click=move |_| { download.dispatch_local(()); }>"Download YAML"</button>
            </div>
            {summary}
            <div id="yaml-problem">{show_problem(problem)}</div>
            <h4>"Deep Analysis status"</h4>
            <crate::deep_analysis::RunStatus id run actions=true/>
        </section>
    }
}
