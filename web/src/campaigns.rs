//! Campaigns section (`/campaigns`): the list on the left (RUNNING by
//! default, or All), and on the right the route below it: nothing chosen,
//! or the campaign's panel (`crate::campaign`).

use leptos::prelude::*;
use leptos_router::components::Outlet;
use leptos_router::hooks::{use_location, use_navigate};
use serde_json::json;
use stratagem_types::Campaign;

use crate::api::{self, Problem};
use crate::util::{show_problem, ProblemView};

/// Bumped to reload the list: after a create, a status change, or when the
/// engine moved the open campaign.
#[derive(Clone, Copy)]
pub struct ListReload(pub RwSignal<u32>);

impl ListReload {
    pub fn bump(self) {
        self.0.update(|n| *n += 1);
    }
}

#[component]
pub fn Campaigns() -> impl IntoView {
    let running_only = RwSignal::new(true);
    let creating = RwSignal::new(false);
    let reload = RwSignal::new(0u32);
    provide_context(ListReload(reload));
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

#[component]
pub fn NoneSelected() -> impl IntoView {
    view! { <p class="empty">"Select a campaign to see its analytics and configuration."</p> }
}

/// The campaign id in the current URL, if any.
fn selected() -> Memo<Option<String>> {
    let location = use_location();
    Memo::new(move |_| {
        location.pathname.with(|path| path.strip_prefix("/campaigns/").and_then(|rest| rest.split('/').next()).map(str::to_owned))
    })
}

#[component]
fn CampaignList(running_only: RwSignal<bool>, reload: RwSignal<u32>) -> impl IntoView {
    let campaigns = LocalResource::new(move || {
        reload.track();
        let filter = if running_only.get() { "?status=RUNNING" } else { "" };
        async move { api::get::<Vec<Campaign>>(&format!("/api/campaigns{filter}")).await }
    });
    let selected = selected();
    let navigate = use_navigate();
    let rows = move |list: Vec<Campaign>| {
        if list.is_empty() {
            let note = if running_only.get_untracked() { "No running campaigns. Choose All to see every campaign." } else { "No campaigns yet." };
            return view! { <li class="empty">{note}</li> }.into_any();
        }
        list.into_iter()
            .map(|campaign| {
                let id = campaign.id.clone();
                let status = campaign.status.as_str();
                let navigate = navigate.clone();
                view! {
                    <li class:selected=move || selected.with(|s| s.as_deref() == Some(id.as_str()))
                        on:click=move |_| navigate(&format!("/campaigns/{}", campaign.id), Default::default())>
                        <span class="name">{campaign.name.clone()}</span>
                        <span class=format!("badge status-{status}")>{status}</span>
                    </li>
                }
            })
            .collect_view()
            .into_any()
    };
    view! {
        <ul class="items" id="campaign-list">
            <Transition fallback=|| view! { <li class="empty">"Loading…"</li> }>
                {move || campaigns.get().map(|reply| match reply {
                    Ok(list) => rows(list),
                    Err(problem) => view! { <li><ProblemView problem/></li> }.into_any(),
                })}
            </Transition>
        </ul>
    }
}

#[component]
fn NewCampaign(creating: RwSignal<bool>, running_only: RwSignal<bool>) -> impl IntoView {
    let name = RwSignal::new(String::new());
    let description = RwSignal::new(String::new());
    let problem = RwSignal::new(None::<Problem>);
    let ListReload(reload) = expect_context();
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
