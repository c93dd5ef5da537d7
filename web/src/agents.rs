//! AI Agents section: the list (RUNNING by default, or All) at `/agents`,
//! and the agent form (instructions, LLM, status, channels, push
//! integration) at `/agents/new` and `/agents/:agent_id`.

use leptos::prelude::*;
use leptos_router::components::Outlet;
use leptos_router::hooks::{use_navigate, use_params_map};
use stratagem_types::agent::{AgentChannel, AgentDefinition, AgentStatus};
use stratagem_types::{Agent, Integration, IntegrationKind};

use crate::api::{self, Problem};
use crate::item_list::{Item, ItemList, Items};
use crate::util::{field_errors, show_problem, ConfirmButton, ProblemView};

/// Bumped when an agent is saved or deleted.
#[derive(Clone, Copy)]
struct Reload(RwSignal<u32>);

#[component]
pub fn Agents() -> impl IntoView {
    let running_only = RwSignal::new(true);
    let reload = RwSignal::new(0u32);
    provide_context(Reload(reload));
    view! {
        <main class="split">
            <aside class="list-pane">
                <div class="tabs">
                    <button class:active=move || running_only.get() on:click=move |_| running_only.set(true)>"Running"</button>
                    <button class:active=move || !running_only.get() on:click=move |_| running_only.set(false)>"All"</button>
                    <a id="new-agent" class="button primary" href="/agents/new">"+ New"</a>
                </div>
                <AgentList running_only reload/>
            </aside>
            <section class="detail-pane">
                <Outlet/>
            </section>
        </main>
    }
}

#[component]
pub fn NoneSelected() -> impl IntoView {
    view! { <p class="empty">"Select an agent to edit it, or create one."</p> }
}

#[component]
fn AgentList(running_only: RwSignal<bool>, reload: RwSignal<u32>) -> impl IntoView {
    let agents: Items = LocalResource::new(move || {
        reload.track();
        let filter = if running_only.get() { "?status=RUNNING" } else { "" };
        async move {
            let agents = api::get::<Vec<Agent>>(&format!("/api/agents{filter}")).await?;
            Ok(agents
                .into_iter()
                .map(|agent| Item {
                    href: format!("/agents/{}", agent.id),
                    badge: agent.definition.status.as_str().to_owned(),
                    badge_class: Some(format!("status-{}", agent.definition.status.as_str())),
                    name: agent.definition.name,
                })
                .collect())
        }
    });
    let empty = Signal::derive(move || match running_only.get() {
        true => "No running agents. Choose All to see every agent.".to_owned(),
        false => "No agents yet.".to_owned(),
    });
    view! { <ItemList id="agent-list" items=agents empty/> }
}

/// `/agents/new`.
#[component]
pub fn NewAgent() -> impl IntoView {
    view! { <AgentForm id=None definition=AgentDefinition::default()/> }
}

/// `/agents/:agent_id`: the agent as the service has it.
#[component]
pub fn EditAgent() -> impl IntoView {
    let params = use_params_map();
    let agent = LocalResource::new(move || {
        let id = params.with(|p| p.get("agent_id").unwrap_or_default());
        async move { api::get::<Agent>(&format!("/api/agents/{}", api::enc(&id))).await }
    });
    view! {
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || agent.get().map(|reply| match reply {
                Ok(agent) => view! { <AgentForm id=Some(agent.id) definition=agent.definition/> }.into_any(),
                Err(problem) => view! { <ProblemView problem/> }.into_any(),
            })}
        </Suspense>
    }
}

/// Blank optional text is no value.
fn optional(text: Option<String>) -> Option<String> {
    text.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty())
}

#[component]
fn AgentForm(id: Option<String>, definition: AgentDefinition) -> impl IntoView {
    let is_new = id.is_none();
    let draft = RwSignal::new(definition);
    let Reload(reload) = expect_context();
    let navigate = use_navigate();
    let to_list = move || navigate("/agents", Default::default());
    let id = StoredValue::new(id);
    let save = Action::new_local(move |definition: &AgentDefinition| {
        let mut body = definition.clone();
        body.llm_model = optional(body.llm_model);
        body.push_integration_id = optional(body.push_integration_id);
        let id = id.get_value();
        async move {
            match id {
                None => api::post::<Agent>("/api/agents", &body).await.map(|_| ()),
                Some(id) => api::put::<Agent>(&format!("/api/agents/{id}"), &body).await.map(|_| ()),
            }
        }
    });
    let remove = Action::new_local(move |_: &()| {
        let path = format!("/api/agents/{}", id.get_value().unwrap_or_default());
        async move { api::delete(&path).await }
    });
    let problem = RwSignal::new(None::<Problem>);
    let done = to_list.clone();
    Effect::new(move |_| match save.value().get().or_else(|| remove.value().get()) {
        Some(Ok(())) => {
            reload.update(|n| *n += 1);
            done();
        }
        Some(Err(error)) => problem.set(Some(error)),
        None => {}
    });
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        save.dispatch_local(draft.get_untracked());
    };
    view! {
        <form class="card form" id="agent-form" on:submit=submit>
            <h3>{if is_new { "New AI agent" } else { "Edit AI agent" }}</h3>
            <AgentFields draft problem/>
            <ChannelList draft problem/>
            <div class="row">
                <button type="submit" class="primary" id="save-agent">"Save"</button>
                <button type="button" on:click=move |_| to_list()>"Cancel"</button>
                {(!is_new).then(|| view! {
                    <ConfirmButton label="Delete" question=format!("Delete agent “{}”? Stages that use it cannot send through it any more.", draft.get_untracked().name)
                        on_confirm=Callback::new(move |()| { remove.dispatch_local(()); })/>
                })}
            </div>
            {show_problem(problem)}
        </form>
    }
}

/// The tenant's integrations that `fits` takes, for the channel and push
/// selects.
fn integration_options(integrations: LocalResource<Result<Vec<Integration>, Problem>>, fits: fn(IntegrationKind) -> bool) -> impl IntoView {
    move || {
        integrations.get().and_then(Result::ok).unwrap_or_default().into_iter()
            .filter(|i| fits(i.kind))
            .map(|i| view! { <option value=i.id.clone()>{format!("{} ({})", i.name, i.kind.as_str())}</option> })
            .collect_view()
    }
}

fn integrations() -> LocalResource<Result<Vec<Integration>, Problem>> {
    LocalResource::new(|| api::get::<Vec<Integration>>("/api/integrations"))
}

#[component]
fn AgentFields(draft: RwSignal<AgentDefinition>, problem: RwSignal<Option<Problem>>) -> impl IntoView {
    let integrations = integrations();
    let text = move |read: fn(&AgentDefinition) -> &str| move || draft.with(|d| read(d).to_owned());
    view! {
        <label>"Name"<input id="agent-name" prop:value=text(|d| &d.name) on:input=move |ev| draft.update(|d| d.name = event_target_value(&ev))/>
            {field_errors(problem, "name".into())}</label>
        <label>"Description"<input prop:value=text(|d| &d.description) on:input=move |ev| draft.update(|d| d.description = event_target_value(&ev))/></label>
        <label>"Instructions (system prompt)"<textarea rows="6" prop:value=text(|d| &d.instructions) on:input=move |ev| draft.update(|d| d.instructions = event_target_value(&ev))></textarea>
            {field_errors(problem, "instructions".into())}</label>
        <div class="row">
            <label>"LLM model"<input prop:value=text(|d| d.llm_model.as_deref().unwrap_or_default()) on:input=move |ev| draft.update(|d| d.llm_model = Some(event_target_value(&ev)))/></label>
            <label>"Status"
                <select prop:value=move || draft.with(|d| d.status.as_str()) on:change=move |ev| draft.update(|d| d.status = AgentStatus::parse(&event_target_value(&ev)).unwrap_or_default())>
                    <option value="RUNNING">"RUNNING"</option><option value="STOPPED">"STOPPED"</option>
                </select>
            </label>
        </div>
        <label>"Push notification integration (FCM)"
            <select id="agent-push" prop:value=text(|d| d.push_integration_id.as_deref().unwrap_or_default()) on:change=move |ev| draft.update(|d| d.push_integration_id = Some(event_target_value(&ev)))>
                <option value="">"— none —"</option>{integration_options(integrations, |kind| kind == IntegrationKind::Fcm)}
            </select>
            {field_errors(problem, "push_integration_id".into())}
        </label>
    }
}

#[component]
fn ChannelList(draft: RwSignal<AgentDefinition>, problem: RwSignal<Option<Problem>>) -> impl IntoView {
    let integrations = integrations();
    let count = Memo::new(move |_| draft.with(|d| d.channels.len()));
    let channel = move |i: usize, read: fn(&AgentChannel) -> String| move || draft.with(|d| d.channels.get(i).map(read).unwrap_or_default());
    let edit = move |i: usize, write: fn(&mut AgentChannel, String), value: String| {
        draft.update(|d| if let Some(c) = d.channels.get_mut(i) { write(c, value) })
    };
    view! {
        <fieldset>
            <legend>"Channels"</legend>
            {move || (0..count.get()).map(|i| view! {
                <div class="row">
                    <label>"Name"<input prop:value=channel(i, |c| c.name.clone()) on:input=move |ev| edit(i, |c, v| c.name = v, event_target_value(&ev))/>
                        {field_errors(problem, format!("channels[{i}].name"))}</label>
                    <label>"Integration"
                        <select prop:value=channel(i, |c| c.integration_id.clone()) on:change=move |ev| edit(i, |c, v| c.integration_id = v, event_target_value(&ev))>
                            <option value="">"— choose —"</option>{integration_options(integrations, |_| true)}
                        </select>
                        {field_errors(problem, format!("channels[{i}].integration_id"))}
                    </label>
                    <button type="button" class="danger" on:click=move |_| draft.update(|d| { if i < d.channels.len() { d.channels.remove(i); } })>"Remove"</button>
                </div>
            }).collect_view()}
            <button type="button" on:click=move |_| draft.update(|d| d.channels.push(AgentChannel::default()))>"+ Add channel"</button>
        </fieldset>
    }
}
