//! Stratagem's web UI: a client-side Leptos app over the public JSON API.
//! Sign in with an API key, then the Campaigns, AI Agents and Integrations
//! sections.

mod agents;
mod analytics;
mod api;
mod campaigns;
mod contacts;
mod deep_analysis;
mod dry_run;
mod integrations;
mod python;
mod settings;
mod stages;
mod strategies;
mod util;

use leptos::prelude::*;

use crate::api::Problem;
use crate::util::show_problem;

fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(App);
}

#[derive(Clone, Copy, PartialEq)]
enum Section {
    Campaigns,
    Agents,
    Integrations,
}

#[component]
fn App() -> impl IntoView {
    let signed_in = RwSignal::new(api::stored_key().is_some());
    move || {
        if signed_in.get() {
            view! { <Shell signed_in/> }.into_any()
        } else {
            view! { <SignIn signed_in/> }.into_any()
        }
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
            match api::get("/api/campaigns?status=RUNNING").await {
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
    let section = RwSignal::new(Section::Campaigns);
    let sign_out = move |_| {
        api::clear_key();
        signed_in.set(false);
    };
    view! {
        <header class="top">
            <span class="brand">"Stratagem"</span>
            <nav>
                <button id="nav-campaigns" class:active=move || section.get() == Section::Campaigns
                    on:click=move |_| section.set(Section::Campaigns)>"Campaigns"</button>
                <button id="nav-agents" class:active=move || section.get() == Section::Agents
                    on:click=move |_| section.set(Section::Agents)>"AI Agents"</button>
                <button id="nav-integrations" class:active=move || section.get() == Section::Integrations
                    on:click=move |_| section.set(Section::Integrations)>"Integrations"</button>
            </nav>
            <button id="sign-out" class="link" on:click=sign_out>"Sign out"</button>
        </header>
        {move || match section.get() {
            Section::Campaigns => view! { <campaigns::Campaigns/> }.into_any(),
            Section::Agents => view! { <agents::Agents/> }.into_any(),
            Section::Integrations => view! { <integrations::Integrations/> }.into_any(),
        }}
    }
}
