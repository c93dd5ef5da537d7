//! Campaigns section (`/campaigns`): the list on the left (RUNNING by
//! default, or All), and on the right the route below it: nothing chosen,
//! or the campaign's panel (`crate::campaign`).

use leptos::prelude::*;
use leptos_router::components::Outlet;
use leptos_router::hooks::use_navigate;
use serde_json::json;
use stratagem_types::{Agent, Campaign, CampaignStatus, Integration};

use crate::api::{self, Problem};
use crate::item_list::{Item, ItemList, Items};
use crate::util::{show_problem, ProblemView};

/// The campaign list's state the panel changes: bumped to reload it after
/// a create or a status change (the user's or the engine's), and its
/// Running filter.
#[derive(Clone, Copy)]
pub struct ListReload {
    reload: RwSignal<u32>,
    running_only: RwSignal<bool>,
}

impl ListReload {
    pub fn bump(self) {
        self.reload.update(|n| *n += 1);
    }

    /// The open campaign left RUNNING (stopped, finished, failed): if the
    /// list shows only running campaigns, it shows all, so the campaign
    /// stays listed, selected, beside its panel.
    pub fn keep_listed(self, status: CampaignStatus) {
        if status != CampaignStatus::Running && self.running_only.get_untracked() {
            self.running_only.set(false);
        }
        self.bump();
    }
}

#[component]
pub fn Campaigns() -> impl IntoView {
    let running_only = RwSignal::new(true);
    let creating = RwSignal::new(false);
    let reload = RwSignal::new(0u32);
    provide_context(ListReload { reload, running_only });
    view! {
        <main class="split">
            <aside class="list-pane">
                <div class="tabs">
                    <button id="filter-running" class:active=move || running_only.get() on:click=move |_| running_only.set(true)>"Running"</button>
                    <button id="filter-all" class:active=move || !running_only.get() on:click=move |_| running_only.set(false)>"All"</button>
                    <button id="new-campaign" class="primary" on:click=move |_| creating.update(|c| *c = !*c)>"+ New"</button>
                </div>
                {move || creating.get().then(|| view! { <NewCampaign creating running_only/> })}
                <CampaignList running_only reload/>
            </aside>
            <section class="detail-pane">
                <Outlet/>
            </section>
        </main>
    }
}

/// No campaign chosen: what to do first while the tenant is new (each step
/// done once the service has one), else how to pick one.
#[component]
pub fn NoneSelected() -> impl IntoView {
    let ListReload { reload, .. } = expect_context();
    let progress = LocalResource::new(move || {
        reload.track();
        async move {
            let integrations = api::get::<Vec<Integration>>("/api/integrations").await?.len();
            let agents = api::get::<Vec<Agent>>("/api/agents").await?.len();
            let campaigns = api::get::<Vec<Campaign>>("/api/campaigns").await?.len();
            Ok::<_, Problem>((integrations, agents, campaigns))
        }
    });
    move || match progress.get() {
        Some(Ok((integrations, agents, campaigns))) if integrations == 0 || campaigns == 0 => {
            let step = |id: &'static str, done: bool, text: &'static str, href: &'static str, why: &'static str| {
                view! {
                    <li id=id class:done=done>
                        <a href=href>{text}</a>" "{if done { "✓ done" } else { "" }}
                        <div class="muted">{why}</div>
                    </li>
                }
            };
            view! {
                <div id="getting-started" class="card checklist">
                    <strong>"Getting started"</strong>
                    <ol>
                        {step("start-integration", integrations > 0, "Connect a channel", "/integrations",
                            "An integration is how messages go out: an email server, an SMS or chat provider, an LLM for AI agents.")}
                        {step("start-agent", agents > 0, "Create an AI agent (optional)", "/agents",
                            "An agent holds conversations for a stage on chat, email or phone channels.")}
                        {step("start-campaign", campaigns > 0, "Create a campaign with “+ New”", "/campaigns",
                            "Its checklist then leads on: stages, strategies, contacts, Configure, Start.")}
                    </ol>
                </div>
            }
            .into_any()
        }
        Some(Err(problem)) => view! { <ProblemView problem/> }.into_any(),
        _ => view! { <p class="empty">"Select a campaign to see its analytics and configuration."</p> }.into_any(),
    }
}

#[component]
fn CampaignList(running_only: RwSignal<bool>, reload: RwSignal<u32>) -> impl IntoView {
    let campaigns: Items = LocalResource::new(move || {
        reload.track();
        let filter = if running_only.get() { "?status=RUNNING" } else { "" };
        async move {
            let campaigns = api::get::<Vec<Campaign>>(&format!("/api/campaigns{filter}")).await?;
            Ok(campaigns
                .into_iter()
                .map(|campaign| Item {
                    href: format!("/campaigns/{}", campaign.id),
                    badge: campaign.status.as_str().to_owned(),
                    badge_class: Some(format!("status-{}", campaign.status.as_str())),
                    name: campaign.name,
                })
                .collect())
        }
    });
    let empty = Signal::derive(move || match running_only.get() {
        true => "No running campaigns. Choose All to see every campaign.".to_owned(),
        false => "No campaigns yet.".to_owned(),
    });
    view! { <ItemList id="campaign-list" items=campaigns empty/> }
}

#[component]
fn NewCampaign(creating: RwSignal<bool>, running_only: RwSignal<bool>) -> impl IntoView {
    let name = RwSignal::new(String::new());
    let description = RwSignal::new(String::new());
    let problem = RwSignal::new(None::<Problem>);
    let ListReload { reload, .. } = expect_context();
    let navigate = use_navigate();
    let create = Action::new_local(move |body: &serde_json::Value| {
        let body = body.clone();
        async move { api::post::<Campaign>("/api/campaigns", &body).await }
    });
    Effect::new(move |_| match create.value().get() {
        Some(Ok(campaign)) => {
            creating.set(false);
            // A new campaign is CREATED: show it where it is listed.
            running_only.set(false);
            reload.update(|n| *n += 1);
            navigate(&format!("/campaigns/{}", campaign.id), Default::default());
        }
        Some(Err(error)) => problem.set(Some(error)),
        None => {}
    });
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        create.dispatch_local(json!({"name": name.get_untracked(), "description": description.get_untracked()}));
    };
    view! {
        <form class="card" id="new-campaign-form" on:submit=submit>
            <label>"Name"<input id="campaign-name" prop:value=move || name.get() on:input=move |ev| name.set(event_target_value(&ev))/></label>
            <label>"Description"<textarea id="campaign-description" prop:value=move || description.get() on:input=move |ev| description.set(event_target_value(&ev))></textarea></label>
            <div class="row">
                <button type="submit" class="primary" id="create-campaign" disabled=move || create.pending().get()>"Create"</button>
                <button type="button" on:click=move |_| creating.set(false)>"Cancel"</button>
            </div>
            {show_problem(problem)}
        </form>
    }
}
