//! Stratagem's web UI: a client-side Leptos app over the public JSON API.
//! Sign in with an API key, then the Campaigns, AI Agents and Integrations
//! sections, each screen at its own URL (the routes below), so deep links,
//! reload and the browser's back button work.

mod agents;
mod analytics;
mod api;
mod campaign;
mod campaigns;
mod contacts;
mod deep_analysis;
mod dry_run;
mod integrations;
mod invocations;
mod item_list;
mod python;
mod settings;
mod stages;
mod strategies;
mod util;

use leptos::prelude::*;
use leptos_router::components::{ParentRoute, Redirect, Route, Router, Routes};
use leptos_router::hooks::use_location;
use leptos_router::path;

use crate::api::Problem;
use crate::util::show_problem;

fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(App);
}

#[component]
fn App() -> impl IntoView {
    let signed_in = RwSignal::new(api::stored_key().is_some());
    // Signed out, every URL shows the sign-in form; once signed in, the
    // same URL shows its screen, so a deep link survives signing in.
    view! {
        <Router>
            {move || if signed_in.get() { view! { <Shell signed_in/> }.into_any() } else { view! { <SignIn signed_in/> }.into_any() }}
        </Router>
    }
}

/// The key is checked against the API before it is kept for the tab.
#[component]
fn SignIn(signed_in: RwSignal<bool>) -> impl IntoView {
    let key = RwSignal::new(String::new());
    let problem = RwSignal::new(None::<Problem>);
    let busy = RwSignal::new(false);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let candidate = key.get_untracked().trim().to_owned();
        api::store_key(&candidate);
        busy.set(true);
        leptos::task::spawn_local(async move {
            match api::get::<serde::de::IgnoredAny>("/api/campaigns?status=RUNNING").await {
                Ok(_) => signed_in.set(true),
                Err(error) => {
                    api::clear_key();
                    problem.set(Some(error));
                }
            }
            busy.set(false);
        });
    };
    view! {
        <main class="signin">
            <form class="card" on:submit=submit>
                <h1>"Stratagem"</h1>
                <p>"Sign in with your tenant's API key. It is kept in this browser tab only."</p>
                <label>"API key"
                    <input id="api-key" type="password" autocomplete="off" placeholder="stg_…"
                        prop:value=move || key.get() on:input=move |ev| key.set(event_target_value(&ev))/>
                </label>
                <button id="sign-in" type="submit" disabled=move || busy.get()>"Sign in"</button>
                {show_problem(problem)}
            </form>
        </main>
    }
}

#[component]
fn Shell(signed_in: RwSignal<bool>) -> impl IntoView {
    view! {
        <TopBar signed_in/>
        <Routes fallback=|| view! { <main><p class="empty">"There is no such page."</p></main> }>
            <Route path=path!("/") view=|| view! { <Redirect path="/campaigns"/> }/>
            <ParentRoute path=path!("/campaigns") view=campaigns::Campaigns>
                <Route path=path!("") view=campaigns::NoneSelected/>
                <ParentRoute path=path!(":id") view=campaign::CampaignPanel>
                    <Route path=path!("") view=analytics::AnalyticsTab/>
                    <Route path=path!("analytics") view=analytics::AnalyticsTab/>
                    <Route path=path!("analytics/deep-analysis") view=deep_analysis::DeepAnalysisTab/>
                    <Route path=path!("stages") view=stages::StagesTab/>
                    <Route path=path!("strategies") view=strategies::StrategiesTab/>
                    <ParentRoute path=path!("contacts") view=contacts::ContactsTab>
                        <Route path=path!("") view=|| ()/>
                        <Route path=path!(":object_id") view=contacts::HistoryRoute/>
                    </ParentRoute>
                    <Route path=path!("settings") view=settings::SettingsTab/>
                </ParentRoute>
            </ParentRoute>
            <ParentRoute path=path!("/agents") view=agents::Agents>
                <Route path=path!("") view=agents::NoneSelected/>
                <Route path=path!("new") view=agents::NewAgent/>
                <Route path=path!(":agent_id") view=agents::EditAgent/>
            </ParentRoute>
            <ParentRoute path=path!("/integrations") view=integrations::Integrations>
                <Route path=path!("") view=integrations::NoneSelected/>
                <Route path=path!("new") view=integrations::NewIntegration/>
                <Route path=path!(":integration_id") view=integrations::EditIntegration/>
            </ParentRoute>
        </Routes>
    }
}

/// The sections as links, the current one marked, and Sign out.
#[component]
fn TopBar(signed_in: RwSignal<bool>) -> impl IntoView {
    let location = use_location();
    let sign_out = move |_| {
        api::clear_key();
        signed_in.set(false);
    };
    let link = move |href: &'static str, id: &'static str, label: &'static str| {
        let active = move || location.pathname.with(|path| path == href || path.starts_with(&format!("{href}/")));
        view! { <a href=href id=id class="button" class:active=active>{label}</a> }
    };
    view! {
        <header class="top">
            <span class="brand">"Stratagem"</span>
            <nav>
                {link("/campaigns", "nav-campaigns", "Campaigns")}
                {link("/agents", "nav-agents", "AI Agents")}
                {link("/integrations", "nav-integrations", "Integrations")}
            </nav>
            <button id="sign-out" class="link" on:click=sign_out>"Sign out"</button>
        </header>
    }
}
