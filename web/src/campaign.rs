//! One campaign's panel (`/campaigns/:id/…`): its status, polled and always
//! visible, the status actions, the tabs as links, and the tab's route
//! below them. The tabs read the campaign from [`Open`].

use leptos::prelude::*;
use leptos_router::components::Outlet;
use leptos_router::hooks::{use_location, use_params_map};
use serde_json::json;
use stratagem_types::{Blocker, BlockerCode, Campaign, CampaignStatus, Readiness};

use crate::api::{self, Problem};
use crate::campaigns::ListReload;
use crate::util::{ConfirmButton, ProblemView};

/// The campaign of the URL, for the tabs below the panel.
#[derive(Clone, Copy)]
pub struct Open {
    pub id: Memo<String>,
    pub campaign: LocalResource<Result<Campaign, Problem>>,
}

pub fn open() -> Open {
    expect_context()
}

/// The last campaign the service answered, if any.
fn loaded(campaign: LocalResource<Result<Campaign, Problem>>) -> Option<Campaign> {
    campaign.with(|reply| reply.as_ref().and_then(|r| r.as_ref().ok()).cloned())
}

#[component]
pub fn CampaignPanel() -> impl IntoView {
    let params = use_params_map();
    let id = Memo::new(move |_| params.with(|p| p.get("id").unwrap_or_default()));
    let campaign = LocalResource::new(move || {
        let path = format!("/api/campaigns/{}", api::enc(&id.get()));
        async move { api::get::<Campaign>(&path).await }
    });
    provide_context(Open { id, campaign });
    crate::util::every(3000, move || campaign.refetch());
    // Its status moved (the user's action, or the engine's: FINISHED,
    // ERROR): the list shows it too, and keeps it listed.
    let list: ListReload = expect_context();
    Effect::new(move |before: Option<Option<(String, CampaignStatus)>>| {
        let now = loaded(campaign).map(|c| (c.id, c.status));
        if let (Some(Some(before)), Some(now)) = (&before, &now) {
            if before.0 == now.0 && before.1 != now.1 {
                list.keep_listed(now.1);
            }
        }
        now
    });
    view! {
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || campaign.get().and_then(Result::err).map(|problem| view! { <ProblemView problem/> })}
        </Transition>
        <div class="panel-head">
            <div>
                <h2 id="campaign-title">{move || loaded(campaign).map(|c| c.name).unwrap_or_default()}</h2>
                <p class="muted">{move || loaded(campaign).map(|c| c.description).unwrap_or_default()}</p>
            </div>
            <StatusBox campaign/>
            <StatusActions id campaign/>
        </div>
        <ReadinessChecklist id campaign/>
        <TabLinks id/>
        <Outlet/>
    }
}

#[component]
fn StatusBox(campaign: LocalResource<Result<Campaign, Problem>>) -> impl IntoView {
    let status = move || loaded(campaign).map(|c| c.status.as_str()).unwrap_or_default();
    view! {
        <div class="status-box">
            <span id="campaign-status" class=move || format!("badge big status-{}", status())>{status}</span>
            {move || loaded(campaign).and_then(|c| c.error_reason).filter(|r| !r.is_empty())
                .map(|reason| view! { <div class="field-error">{reason}</div> })}
            {move || loaded(campaign).and_then(|c| c.waiting_for)
                .map(|why| view! { <div id="campaign-waiting" class="notice">{why}</div> })}
        </div>
    }
}

/// The moves the campaign's status allows now, and only those (the status
/// machine is `CampaignStatus::next`, shared with the service). Stop and
/// Finish ask first, naming what they affect. The panel sees the new status
/// and reloads the list (`CampaignPanel`).
#[component]
fn StatusActions(id: Memo<String>, campaign: LocalResource<Result<Campaign, Problem>>) -> impl IntoView {
    let change = Action::new_local(move |status: &CampaignStatus| {
        let path = format!("/api/campaigns/{}/status", api::enc(&id.get_untracked()));
        let body = json!({ "status": status });
        async move { api::post::<Campaign>(&path, &body).await }
    });
    Effect::new(move |_| {
        if let Some(Ok(updated)) = change.value().get() {
            campaign.set(Some(Ok(updated)));
        }
    });
    // A problem belongs to the status it was about: moving on clears it.
    Effect::new(move |before: Option<Option<CampaignStatus>>| {
        let now = loaded(campaign).map(|c| c.status);
        if before.is_some_and(|before| before != now) {
            change.value().set(None);
        }
        now
    });
    let buttons = move || {
        let campaign = loaded(campaign)?;
        let buttons = campaign
            .status
            .next()
            .iter()
            .map(|&next| {
                let (id, label, class) = action(campaign.status, next);
                match consequence(next, &campaign.name) {
                    Some(question) => {
                        view! { <ConfirmButton id label question on_confirm=Callback::new(move |()| { change.dispatch_local(next); })/> }.into_any()
                    }
                    None => view! { <button id=id class=class on:click=move |_| { change.dispatch_local(next); }>{label}</button> }.into_any(),
                }
            })
            .collect_view();
        Some(buttons)
    };
    let problem = move || change.value().get().and_then(Result::err).map(|problem| view! { <ProblemView problem/> });
    view! {
        <div id="campaign-actions" class="actions">{buttons}</div>
        <div id="status-problem">{problem}</div>
    }
}

/// The button that moves a campaign from `current` to `next`: its id,
/// label and class.
fn action(current: CampaignStatus, next: CampaignStatus) -> (&'static str, &'static str, &'static str) {
    match next {
        CampaignStatus::Configured => ("action-configure", "Configure", "primary"),
        CampaignStatus::Running if current == CampaignStatus::Stopped => ("action-start", "Resume", "primary"),
        CampaignStatus::Running => ("action-start", "Start", "primary"),
        CampaignStatus::Stopped => ("action-stop", "Stop", ""),
        CampaignStatus::Finished => ("action-finish", "Finish", ""),
        CampaignStatus::Created => ("action-unconfigure", "Back to setup", ""),
        CampaignStatus::Error => ("action-error", "Mark as failed", ""),
    }
}

/// What moving to `next` does, asked before it is done; `None` for the
/// moves that need no asking.
fn consequence(next: CampaignStatus, name: &str) -> Option<String> {
    match next {
        CampaignStatus::Stopped => Some(format!(
            "Stop “{name}”? Nothing more is sent until you resume it; planned messages whose window closes meanwhile are marked missed."
        )),
        CampaignStatus::Finished => Some(format!(
            "Finish “{name}”? Nothing more is sent, ever: a finished campaign cannot be started again. Its results and analytics stay."
        )),
        _ => None,
    }
}

/// Until the campaign runs: what keeps it from CONFIGURED and RUNNING, as
/// the service checks it, each item linking to the tab where it is fixed.
#[component]
fn ReadinessChecklist(id: Memo<String>, campaign: LocalResource<Result<Campaign, Problem>>) -> impl IntoView {
    let readiness = LocalResource::new(move || {
        let path = format!("/api/campaigns/{}/readiness", api::enc(&id.get()));
        async move { api::get::<Readiness>(&path).await }
    });
    let before_running = move || {
        loaded(campaign).is_some_and(|c| matches!(c.status, CampaignStatus::Created | CampaignStatus::Configured | CampaignStatus::Stopped | CampaignStatus::Error))
    };
    // Checked again each time the campaign is polled while it is shown (a
    // build finishing or an import ending clears its item); not while the
    // campaign runs, when nothing shows it.
    Effect::new(move |_| {
        if before_running() {
            readiness.refetch();
        }
    });
    let items = move || {
        let blockers = readiness.get().and_then(Result::ok).map(|r| r.blockers).unwrap_or_default();
        (before_running() && !blockers.is_empty()).then(|| {
            let items = blockers.into_iter().map(|blocker| view! { <BlockerItem id=id.get_untracked() blocker/> }).collect_view();
            view! {
                <div id="readiness" class="card checklist">
                    <strong>"Before this campaign can run:"</strong>
                    <ul>{items}</ul>
                </div>
            }
        })
    };
    view! { <Transition fallback=|| ()>{items}</Transition> }
}

#[component]
fn BlockerItem(id: String, blocker: Blocker) -> impl IntoView {
    let (tab, code) = match blocker.code {
        BlockerCode::NoStages => ("stages", "no-stages"),
        BlockerCode::Stage => ("stages", "stage"),
        BlockerCode::StrategyBuilding => ("strategies", "strategy-building"),
        BlockerCode::StrategyFailed => ("strategies", "strategy-failed"),
        BlockerCode::NoContacts => ("contacts", "no-contacts"),
    };
    view! {
        <li class=format!("blocker blocker-{code}")>
            <a href=format!("/campaigns/{id}/{tab}")>{blocker.message}</a>
        </li>
    }
}

const TABS: [(&str, &str, &str); 5] = [
    ("analytics", "Analytics", "tab-analytics"),
    ("stages", "Stages", "tab-stages"),
    ("strategies", "Strategies", "tab-strategies"),
    ("contacts", "Contacts", "tab-contacts"),
    ("settings", "Settings", "tab-settings"),
];

#[component]
fn TabLinks(id: Memo<String>) -> impl IntoView {
    let location = use_location();
    let links = TABS.map(|(tab, label, dom_id)| {
        let href = move || format!("/campaigns/{}/{tab}", id.get());
        // `/campaigns/:id` itself shows the first tab.
        let active = move || {
            location.pathname.with(|path| {
                let rest = path.strip_prefix(&format!("/campaigns/{}", id.get())).unwrap_or_default();
                rest.trim_start_matches('/').split('/').next() == Some(tab) || (tab == "analytics" && rest.trim_matches('/').is_empty())
            })
        };
        view! { <a id=dom_id class="button" class:active=active href=href>{label}</a> }
    });
    view! { <div class="tabs" role="tablist">{links.into_iter().collect_view()}</div> }
}
