//! AI Agents section: the list (RUNNING by default, or All) and the agent
//! form (instructions, LLM, status, channels, push integration).

use leptos::prelude::*;
use serde_json::{json, Value};

use crate::api::{self, Problem};
use crate::util::{field_errors, items, show_problem, text};

#[component]
pub fn Agents() -> impl IntoView {
    let running_only = RwSignal::new(true);
    let agents = RwSignal::new(Vec::<Value>::new());
    let integrations = RwSignal::new(Vec::<Value>::new());
    let problem = RwSignal::new(None::<Problem>);
    let editing = RwSignal::new(None::<Value>);
    let reload = RwSignal::new(0u32);

    Effect::new(move |_| {
        reload.track();
        let filter = if running_only.get() { "?status=RUNNING" } else { "" };
        leptos::task::spawn_local(async move {
            match api::get(&format!("/api/agents{filter}")).await {
                Ok(list) => {
                    agents.set(items(&list));
                    problem.set(None);
                }
                Err(error) => problem.set(Some(error)),
            }
            match api::get("/api/integrations").await {
                Ok(list) => integrations.set(items(&list)),
                Err(error) => problem.set(Some(error)),
            }
        });
    });
    let remove = move |agent_id: String| {
        leptos::task::spawn_local(async move {
            match api::delete(&format!("/api/agents/{agent_id}")).await {
                Ok(_) => {
                    editing.set(None);
                    reload.update(|n| *n += 1);
                }
                Err(error) => problem.set(Some(error)),
            }
        });
    };

    view! {
        <main class="split">
            <aside class="list-pane">
                <div class="tabs">
                    <button class:active=move || running_only.get() on:click=move |_| running_only.set(true)>"Running"</button>
                    <button class:active=move || !running_only.get() on:click=move |_| running_only.set(false)>"All"</button>
                    <button id="new-agent" class="primary" on:click=move |_| editing.set(Some(json!({"name": "", "description": "", "instructions": "", "status": "RUNNING", "channels": []})))>"+ New"</button>
                </div>
                {show_problem(problem)}
                <ul class="items" id="agent-list">
                    {move || {
                        let list = agents.get();
                        if list.is_empty() {
                            let note = if running_only.get() { "No running agents. Choose All to see every agent." } else { "No agents yet." };
                            return view! { <li class="empty">{note}</li> }.into_any();
                        }
                        list.into_iter().map(|agent| {
                            let status = text(&agent, "status");
                            let for_edit = agent.clone();
                            view! {
                                <li on:click=move |_| editing.set(Some(for_edit.clone()))>
                                    <span class="name">{text(&agent, "name")}</span>
                                    <span class=format!("badge status-{status}")>{status.clone()}</span>
                                </li>
                            }
                        }).collect_view().into_any()
                    }}
                </ul>
            </aside>
            <section class="detail-pane">
                {move || match editing.get() {
                    Some(agent) => view! { <AgentForm agent integrations remove=Callback::new(remove)
                        done=Callback::new(move |_| { editing.set(None); reload.update(|n| *n += 1); })/> }.into_any(),
                    None => view! { <p class="empty">"Select an agent to edit it, or create one."</p> }.into_any(),
                }}
            </section>
        </main>
    }
}

#[component]
fn AgentForm(agent: Value, integrations: RwSignal<Vec<Value>>, remove: Callback<String>, done: Callback<()>) -> impl IntoView {
    let agent_id = text(&agent, "id");
    let is_new = agent_id.is_empty();
    let draft = RwSignal::new(agent);
    let problem = RwSignal::new(None::<Problem>);
    let set = move |key: &'static str, value: Value| draft.update(|d| d[key] = value);
    let channel_count = Memo::new(move |_| draft.with(|d| d["channels"].as_array().map_or(0, Vec::len)));
    let id_for_save = agent_id.clone();
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let d = draft.get_untracked();
        let optional = |key: &str| match d[key].as_str() {
            Some(s) if !s.trim().is_empty() => json!(s.trim()),
            _ => Value::Null,
        };
        let body = json!({
            "name": d["name"], "description": d["description"], "instructions": d["instructions"],
            "llm_model": optional("llm_model"), "status": d["status"], "channels": d["channels"],
            "push_integration_id": optional("push_integration_id"),
        });
        let id = id_for_save.clone();
        leptos::task::spawn_local(async move {
            let reply = if is_new { api::post("/api/agents", body).await } else { api::put(&format!("/api/agents/{id}"), body).await };
            match reply {
                Ok(_) => done.run(()),
                Err(error) => problem.set(Some(error)),
            }
        });
    };
    let integration_options = move || {
        integrations.get().into_iter().map(|i| view! { <option value=text(&i, "id")>{format!("{} ({})", text(&i, "name"), text(&i, "kind"))}</option> }).collect_view()
    };
    view! {
        <form class="card form" id="agent-form" on:submit=save>
            <h3>{if is_new { "New AI agent" } else { "Edit AI agent" }}</h3>
            <label>"Name"<input id="agent-name" prop:value=move || draft.with(|d| text(d, "name")) on:input=move |ev| set("name", json!(event_target_value(&ev)))/>
                {field_errors(problem, "name".into())}</label>
            <label>"Description"<input prop:value=move || draft.with(|d| text(d, "description")) on:input=move |ev| set("description", json!(event_target_value(&ev)))/></label>
            <label>"Instructions (system prompt)"<textarea rows="6" prop:value=move || draft.with(|d| text(d, "instructions")) on:input=move |ev| set("instructions", json!(event_target_value(&ev)))></textarea>
                {field_errors(problem, "instructions".into())}</label>
            <div class="row">
                <label>"LLM model"<input prop:value=move || draft.with(|d| text(d, "llm_model")) on:input=move |ev| set("llm_model", json!(event_target_value(&ev)))/></label>
                <label>"Status"
                    <select prop:value=move || draft.with(|d| text(d, "status")) on:change=move |ev| set("status", json!(event_target_value(&ev)))>
                        <option value="RUNNING">"RUNNING"</option><option value="STOPPED">"STOPPED"</option>
                    </select>
                </label>
            </div>
            <label>"Push notification integration (FCM)"
                <select prop:value=move || draft.with(|d| text(d, "push_integration_id")) on:change=move |ev| set("push_integration_id", json!(event_target_value(&ev)))>
                    <option value="">"— none —"</option>{integration_options}
                </select>
                {field_errors(problem, "push_integration_id".into())}
            </label>
            <fieldset>
                <legend>"Channels"</legend>
                {move || (0..channel_count.get()).map(|i| view! {
                    <div class="row">
                        <label>"Name"<input prop:value=move || draft.with(|d| text(&d["channels"][i], "name")) on:input=move |ev| draft.update(|d| d["channels"][i]["name"] = json!(event_target_value(&ev)))/>
                            {field_errors(problem, format!("channels[{i}].name"))}</label>
                        <label>"Integration"
                            <select prop:value=move || draft.with(|d| text(&d["channels"][i], "integration_id")) on:change=move |ev| draft.update(|d| d["channels"][i]["integration_id"] = json!(event_target_value(&ev)))>
                                <option value="">"— choose —"</option>{integration_options}
                            </select>
                            {field_errors(problem, format!("channels[{i}].integration_id"))}
                        </label>
                        <button type="button" class="danger" on:click=move |_| draft.update(|d| { if let Some(list) = d["channels"].as_array_mut() { if i < list.len() { list.remove(i); } } })>"Remove"</button>
                    </div>
                }).collect_view()}
                <button type="button" on:click=move |_| draft.update(|d| {
                    if !d["channels"].is_array() { d["channels"] = json!([]); }
                    if let Some(list) = d["channels"].as_array_mut() { list.push(json!({"name": "", "integration_id": ""})); }
                })>"+ Add channel"</button>
            </fieldset>
            <div class="row">
                <button type="submit" class="primary" id="save-agent">"Save"</button>
                <button type="button" on:click=move |_| done.run(())>"Cancel"</button>
                {(!is_new).then(|| { let id = agent_id.clone(); view! { <button type="button" class="danger" on:click=move |_| remove.run(id.clone())>"Delete"</button> } })}
            </div>
            {show_problem(problem)}
        </form>
    }
}
