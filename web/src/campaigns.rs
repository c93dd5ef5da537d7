//! Campaigns section: the list on the left (RUNNING by default, or All),
//! the selected campaign's panel on the right with its status, the status
//! actions, analytics and the four configuration tabs.

use leptos::prelude::*;
use serde_json::{json, Value};

use crate::api::{self, Problem};
use crate::util::{show_problem, text};

#[derive(Clone, Copy, PartialEq)]
enum Tab {
    Analytics,
    Stages,
    Strategies,
    Contacts,
    Settings,
}

#[component]
pub fn Campaigns() -> impl IntoView {
    let running_only = RwSignal::new(true);
    let campaigns = RwSignal::new(Vec::<Value>::new());
    let selected = RwSignal::new(None::<String>);
    let list_problem = RwSignal::new(None::<Problem>);
    let reload = RwSignal::new(0u32);

    Effect::new(move |_| {
        reload.track();
        let filter = if running_only.get() { "?status=RUNNING" } else { "" };
        leptos::task::spawn_local(async move {
            match api::get(&format!("/api/campaigns{filter}")).await {
                Ok(list) => {
                    campaigns.set(crate::util::items(&list));
                    list_problem.set(None);
                }
                Err(problem) => list_problem.set(Some(problem)),
            }
        });
    });

    let creating = RwSignal::new(false);
    view! {
        <main class="split">
            <aside class="list-pane">
                <div class="tabs">
                    <button id="filter-running" class:active=move || running_only.get() on:click=move |_| running_only.set(true)>"Running"</button>
                    <button id="filter-all" class:active=move || !running_only.get() on:click=move |_| running_only.set(false)>"All"</button>
                    <button id="new-campaign" class="primary" on:click=move |_| creating.update(|c| *c = !*c)>"+ New"</button>
                </div>
                {move || creating.get().then(|| view! { <NewCampaign creating selected reload running_only/> })}
                {show_problem(list_problem)}
                <ul class="items" id="campaign-list">
                    {move || {
                        let list = campaigns.get();
                        if list.is_empty() {
                            let note = if running_only.get() { "No running campaigns. Choose All to see every campaign." } else { "No campaigns yet." };
                            return view! { <li class="empty">{note}</li> }.into_any();
                        }
                        list.into_iter().map(|campaign| {
                            let id = text(&campaign, "id");
                            let id_for_click = id.clone();
                            let status = text(&campaign, "status");
                            view! {
                                <li class:selected=move || selected.get().as_deref() == Some(id.as_str())
                                    on:click=move |_| selected.set(Some(id_for_click.clone()))>
                                    <span class="name">{text(&campaign, "name")}</span>
                                    <span class=format!("badge status-{status}")>{status.clone()}</span>
                                </li>
                            }
                        }).collect_view().into_any()
                    }}
                </ul>
            </aside>
            <section class="detail-pane">
                {move || match selected.get() {
                    Some(id) => view! { <CampaignPanel id reload/> }.into_any(),
                    None => view! { <p class="empty">"Select a campaign to see its analytics and configuration."</p> }.into_any(),
                }}
            </section>
        </main>
    }
}

#[component]
fn NewCampaign(creating: RwSignal<bool>, selected: RwSignal<Option<String>>, reload: RwSignal<u32>, running_only: RwSignal<bool>) -> impl IntoView {
    let name = RwSignal::new(String::new());
    let description = RwSignal::new(String::new());
    let problem = RwSignal::new(None::<Problem>);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let body = json!({"name": name.get_untracked(), "description": description.get_untracked()});
        leptos::task::spawn_local(async move {
            match api::post("/api/campaigns", body).await {
                Ok(campaign) => {
                    creating.set(false);
                    // A new campaign is CREATED: show it where it is listed.
                    running_only.set(false);
                    selected.set(Some(text(&campaign, "id")));
                    reload.update(|n| *n += 1);
                }
                Err(error) => problem.set(Some(error)),
            }
        });
    };
    view! {
        <form class="card" id="new-campaign-form" on:submit=submit>
            <label>"Name"<input id="campaign-name" prop:value=move || name.get() on:input=move |ev| name.set(event_target_value(&ev))/></label>
            <label>"Description"<textarea id="campaign-description" prop:value=move || description.get() on:input=move |ev| description.set(event_target_value(&ev))></textarea></label>
            <div class="row">
                <button type="submit" class="primary" id="create-campaign">"Create"</button>
                <button type="button" on:click=move |_| creating.set(false)>"Cancel"</button>
            </div>
            {show_problem(problem)}
        </form>
    }
}

#[component]
fn CampaignPanel(id: String, reload: RwSignal<u32>) -> impl IntoView {
    let campaign = RwSignal::new(None::<Value>);
    let problem = RwSignal::new(None::<Problem>);
    let action_problem = RwSignal::new(None::<Problem>);
    let tab = RwSignal::new(Tab::Analytics);
    let id = StoredValue::new(id);

    let load = move || {
        let id = id.get_value();
        leptos::task::spawn_local(async move {
            match api::get(&format!("/api/campaigns/{id}")).await {
                Ok(value) => {
                    // The engine moved it (FINISHED, ERROR): the list shows it too.
                    let before = campaign.with_untracked(|c| c.as_ref().map(|c| text(c, "status")));
                    if before.is_some_and(|before| before != text(&value, "status")) {
                        reload.update(|n| *n += 1);
                    }
                    campaign.set(Some(value));
                    problem.set(None);
                }
                Err(error) => problem.set(Some(error)),
            }
        });
    };
    load();
    crate::util::every(3000, load);

    let change_status = move |status: &'static str| {
        let id = id.get_value();
        leptos::task::spawn_local(async move {
            match api::post(&format!("/api/campaigns/{id}/status"), json!({"status": status})).await {
                Ok(value) => {
                    campaign.set(Some(value));
                    action_problem.set(None);
                    reload.update(|n| *n += 1);
                }
                Err(error) => action_problem.set(Some(error)),
            }
        });
    };

    let loaded = Memo::new(move |_| campaign.with(|c| c.is_some()));
    let status = move || campaign.with(|c| c.as_ref().map(|c| text(c, "status")).unwrap_or_default());
    view! {
        {show_problem(problem)}
        <div class="panel-head">
            <div>
                <h2 id="campaign-title">{move || campaign.with(|c| c.as_ref().map(|c| text(c, "name")).unwrap_or_default())}</h2>
                <p class="muted">{move || campaign.with(|c| c.as_ref().map(|c| text(c, "description")).unwrap_or_default())}</p>
            </div>
            <div class="status-box">
                <span id="campaign-status" class=move || format!("badge big status-{}", status())>{status}</span>
                {move || campaign.with(|c| c.as_ref().map(|c| text(c, "error_reason")).filter(|r| !r.is_empty()))
                    .map(|reason| view! { <div class="field-error">{reason}</div> })}
            </div>
            <div class="actions">
                <button id="action-configure" on:click=move |_| change_status("CONFIGURED")>"Configure"</button>
                <button id="action-start" class="primary" on:click=move |_| change_status("RUNNING")>"Start"</button>
                <button id="action-stop" on:click=move |_| change_status("STOPPED")>"Stop"</button>
            </div>
        </div>
        <div id="status-problem">{show_problem(action_problem)}</div>
        <div class="tabs" role="tablist">
            {[(Tab::Analytics, "Analytics", "tab-analytics"), (Tab::Stages, "Stages", "tab-stages"), (Tab::Strategies, "Strategies", "tab-strategies"),
              (Tab::Contacts, "Contacts", "tab-contacts"), (Tab::Settings, "Settings", "tab-settings")]
                .into_iter()
                .map(|(which, label, dom_id)| view! {
                    <button id=dom_id class:active=move || tab.get() == which on:click=move |_| tab.set(which)>{label}</button>
                })
                .collect_view()}
        </div>
        {move || {
            let id = id.get_value();
            loaded.track();
            match tab.get() {
                Tab::Analytics => view! { <crate::analytics::Analytics id/> }.into_any(),
                Tab::Stages => view! { <crate::stages::Stages id/> }.into_any(),
                Tab::Strategies => view! { <crate::strategies::Strategies id/> }.into_any(),
                Tab::Contacts => view! { <crate::contacts::Contacts id/> }.into_any(),
                Tab::Settings => match campaign.get_untracked() {
                    Some(value) => view! { <crate::settings::Settings id campaign=value on_saved=Callback::new(move |v| { campaign.set(Some(v)); reload.update(|n| *n += 1); })/> }.into_any(),
                    None => view! { <p class="muted">"Loading…"</p> }.into_any(),
                },
            }
        }}
    }
}
